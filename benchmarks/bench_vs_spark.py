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

import argparse
import os
import statistics
import tempfile
import warnings
from pathlib import Path

import zarr
from bench_passes import first_within, median_or_over, traced_fit
from bench_vs_sklearn import dgemm_rate, initial_parameters, timed

import daskem
from daskem.app.generate import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=6, help="M: EM iterations of the long fits")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--cores", type=int, default=os.cpu_count(), help="N: Spark's local[N] and Dask's threads")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the Zarr stores")
    args = parser.parse_args()
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
        X = zarr.open_group(paths["float64"], mode="r")["X"][:]
        frame = spark.createDataFrame([(Vectors.dense(row),) for row in X.tolist()], ["features"],
                                      ).repartition(args.cores).cache()
        frame.count()
        inits = initial_parameters(X, args.n_components)

        def spark_fit(iterations: int) -> float:
            model = SparkGaussianMixture(k=args.n_components, maxIter=iterations, tol=0.0, seed=0)
            return timed(lambda: model.fit(frame))[0]

        def daskem_fit(iterations: int, dtype: str) -> float:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                model = daskem.GaussianMixture(args.n_components, tol=0, max_iter=iterations, acceleration="none",
                                               **inits)
                return timed(lambda: model.fit(str(paths[dtype]), variable="X"))[0]

        fits = {"Spark ML": lambda m: spark_fit(m), "daskem float64": lambda m: daskem_fit(m, "float64"),
                "daskem float32": lambda m: daskem_fit(m, "float32")}
        for fit in fits.values():  # warm-up: JIT compilation on both sides
            fit(2)
        per_iteration: dict[str, list[float]] = {name: [] for name in fits}
        for _ in range(args.repeats):
            for name, fit in fits.items():
                long, short = fit(args.iterations), fit(1)
                per_iteration[name].append((long - short) / (args.iterations - 1))
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
    print(f"{'':18}{'median s/iter':>14}{'min':>9}{'max':>9}{'÷ dgemm roofline':>18}")
    for name, values in per_iteration.items():
        median = statistics.median(values)
        print(f"{name:18}{median:14.3f}{min(values):9.3f}{max(values):9.3f}{flops / median / dgemm:18.3f}")
    for name in ("daskem float64", "daskem float32"):
        ratios = [ours / theirs for ours, theirs in zip(per_iteration[name], per_iteration["Spark ML"])]
        print(f"ratio {name} ÷ Spark ML, median of rounds: {statistics.median(ratios):.3f} "
              f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
    reached = [ours / theirs for theirs, _, ours, _ in solution if ours is not None]
    print(f"time to Spark ML's final log-likelihood, each with its defaults (Spark: maxIter 100, tol 0.01 on the "
          f"total; daskem: SQUAREM, tol 1e-3), {len(solution)} seeds: Spark median "
          f"{statistics.median(t for t, _, _, _ in solution):.3g} s "
          f"({statistics.median(n for _, n, _, _ in solution):g} iterations); daskem reached it in {len(reached)}/{len(solution)}, "
          f"median {median_or_over([o for _, _, o, _ in solution], 'its fit')} s, daskem ÷ Spark median "
          f"{statistics.median(reached) if reached else float('nan'):.3f}; daskem's own stop ended "
          f"{statistics.median(g for _, _, _, g in solution):.2g} nat per row above Spark's")


if __name__ == "__main__":
    main()
