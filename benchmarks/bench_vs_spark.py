"""Seconds per EM iteration: daskem reading Zarr against Apache Spark ML's GaussianMixture.

Both fit K full-covariance components to the same rows, on the same cores:
one SparkSession runs ``local[N]`` with N the cores daskem uses (Dask's
threaded scheduler), its DataFrame cached and counted before any timing;
daskem reads a Zarr store (page-cached) at every iteration.  Spark's start
cannot be given, so a fit's time per iteration is taken as
``(T(maxIter=M) − T(maxIter=1)) / (M − 1)`` for both, which leaves out each
one's initialisation.  Runs are interleaved so both see the same machine load;
the script prints medians, the ratio daskem ÷ Spark of each round, and the
same for daskem's float32 path on a float32 copy of the rows.  Then, time to
solution: Spark ML with its defaults (maxIter 100, tol 0.01 on the total
log-likelihood) timed to the end of its fit, and daskem with its defaults
(SQUAREM) timed to the pass where its history first reaches Spark's final
mean log-likelihood (its start and the read of the store included).

Needs the ``bench`` extra (pyspark) and a Java runtime.

    python benchmarks/bench_vs_spark.py                      # 1,000,000 × 16, K = 8
    python benchmarks/bench_vs_spark.py --n-samples 400000 --repeats 5
"""

from __future__ import annotations

import os
import statistics
import tempfile
import warnings
from pathlib import Path

from harness import (
    add_shape_options,
    add_workdir_option,
    dgemm_rate,
    first_within,
    initial_parameters,
    median_or_over,
    parser,
    print_roofline,
    read_rows,
    seconds_per_iteration,
    timed,
    traced_fit,
)

import daskem
from daskem.app.generate import generate


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options, n_samples=1_000_000)
    options.add_argument("--iterations", type=int, default=6, help="M: EM iterations of the long fits")
    options.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    options.add_argument("--cores", type=int, default=os.cpu_count(), help="N: Spark's local[N] and Dask's threads")
    add_workdir_option(options)
    args = options.parse_args()
    from pyspark.ml.clustering import GaussianMixture as SparkGaussianMixture
    from pyspark.ml.linalg import Vectors
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master(f"local[{args.cores}]").appName("daskem-bench")
             .config("spark.driver.memory", "8g").config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        paths = {dtype: Path(folder) / f"{dtype}.zarr" for dtype in ("float64", "float32")}
        for dtype, path in paths.items():
            generate(path, n_samples=args.n_samples, n_features=args.n_features,
                     n_components=args.n_components, seed=0, dtype=dtype)
        X = read_rows(paths["float64"])
        frame = spark.createDataFrame([(Vectors.dense(row),) for row in X.tolist()], ["features"],
                                      ).repartition(args.cores).cache()
        frame.count()
        inits = initial_parameters(X, args.n_components)

        def spark_fit(iterations: int) -> None:
            SparkGaussianMixture(k=args.n_components, maxIter=iterations, tol=0.0, seed=0).fit(frame)

        def daskem_fit(iterations: int, dtype: str) -> None:
            model = daskem.GaussianMixture(args.n_components, tol=0, max_iter=iterations, acceleration="none",
                                           **inits)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                model.fit(str(paths[dtype]), variable="X")

        fits = {"Spark ML": lambda m: spark_fit(m), "daskem float64": lambda m: daskem_fit(m, "float64"),
                "daskem float32": lambda m: daskem_fit(m, "float32")}
        for fit in fits.values():  # warm-up: JIT compilation on both sides
            fit(2)
        per_iteration: dict[str, list[float]] = {name: [] for name in fits}
        for _ in range(args.repeats):
            for name, fit in fits.items():  # (T(M) − T(1)) / (M − 1)
                per_iteration[name].append(seconds_per_iteration(fit, args.iterations - 1))
        solution = []  # time to Spark's answer: each with its defaults and its own start
        for seed in range(args.repeats):
            t_spark, reference = timed(lambda: SparkGaussianMixture(k=args.n_components, seed=seed).fit(frame))
            target = reference.summary.logLikelihood / args.n_samples
            model, times = traced_fit(str(paths["float64"]), args.n_components, seed, variable="X")
            n = first_within(model.history_, target, 0.0)
            solution.append((t_spark, reference.summary.numIter, None if n is None else times[n - 1],
                             model.lower_bound_ - target))
    spark.stop()
    dgemm = dgemm_rate()

    flops = 2 * args.n_samples * args.n_components * args.n_features**2
    print(f"data: {args.n_samples:,} × {args.n_features}, K={args.n_components}, full covariance; "
          f"local[{args.cores}] against {args.cores} Dask threads; per iteration = (T({args.iterations}) − T(1)) / "
          f"{args.iterations - 1}; {args.repeats} interleaved rounds; dgemm {dgemm / 1e9:.0f} GFLOP/s")
    print_roofline(list(per_iteration.items()), flops, dgemm, 18)
    for name in ("daskem float64", "daskem float32"):
        ratios = [ours / theirs for ours, theirs in zip(per_iteration[name], per_iteration["Spark ML"])]
        print(f"ratio {name} ÷ Spark ML, median of rounds: {statistics.median(ratios):.3f} "
              f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    reached = [ours / theirs for theirs, _, ours, _ in solution if ours is not None]
    print(f"time to Spark ML's final log-likelihood, each with its defaults (Spark: maxIter 100, tol 0.01 on the "
          f"total; daskem: SQUAREM, tol 1e-3), {len(solution)} seeds: Spark median "
          f"{statistics.median(t for t, _, _, _ in solution):.3g} s "
          f"({statistics.median(n for _, n, _, _ in solution):g} iterations); daskem reached it in "
          f"{len(reached)}/{len(solution)}, "
          f"median {median_or_over([o for _, _, o, _ in solution], 'its fit')} s, daskem ÷ Spark median "
          f"{statistics.median(reached) if reached else float('nan'):.3f}; daskem's own stop ended "
          f"{statistics.median(g for _, _, _, g in solution):.2g} nat per row above Spark's")


if __name__ == "__main__":
    main()
