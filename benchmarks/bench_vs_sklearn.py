"""Seconds per EM iteration: daskem reading Zarr from disk vs scikit-learn in memory.

Both start from the same initial parameters and run the same number of EM
iterations with tol=0, on the same rows (daskem reads them from a Zarr store
on disk at every iteration; scikit-learn holds them in memory).  Runs are
interleaved so both see the same machine load; the script prints the median
seconds per iteration of each and the median of the per-run ratios.

    python benchmarks/bench_vs_sklearn.py                # N = 400,000 × 16, K = 8
    python benchmarks/bench_vs_sklearn.py --n-samples 1000000 --repeats 7
    python benchmarks/bench_vs_sklearn.py --dtype float32   # also the float32 path against the float64 path
    python benchmarks/bench_vs_sklearn.py --covariance-type diag --n-features 8 --n-components 256
"""

from __future__ import annotations

import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
from harness import (
    CHUNK_ROWS,
    add_dtype_option,
    add_shape_options,
    add_workdir_option,
    dgemm_rate,
    initial_parameters,
    n_chunks,
    parser,
    print_roofline,
    read_rows,
    timed,
)
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import daskem
from daskem.app.generate import generate


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options)
    options.add_argument("--iterations", type=int, default=10, help="EM iterations per fit")
    options.add_argument("--repeats", type=int, default=5, help="fits of each library")
    options.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help="rows per Zarr chunk on disk")
    add_dtype_option(options)
    options.add_argument("--covariance-type", choices=["full", "tied", "diag", "spherical"], default="full")
    add_workdir_option(options, "where to write the Zarr store")
    args = options.parse_args()

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        path = Path(folder) / "bench.zarr"
        generate(path, n_samples=args.n_samples, n_features=args.n_features,
                 n_components=args.n_components, seed=0, chunk_rows=args.chunk_rows, dtype=args.dtype)
        X = read_rows(path)
        inits = initial_parameters(X, args.n_components, args.covariance_type)
        inits["covariance_type"] = args.covariance_type
        ours, theirs, ratios, exact, speedups = [], [], [], [], []
        for _ in range(args.repeats):
            t_sklearn, reference = timed(lambda: fit_sklearn(X, inits, args.iterations))
            t_daskem, model = timed(lambda: fit_daskem(str(path), inits, args.iterations))
            ours.append(t_daskem / args.iterations)
            theirs.append(t_sklearn / args.iterations)
            ratios.append(t_daskem / t_sklearn)
            if args.dtype == "float32":  # the float64 path on the same rows, for the float32 path's gain
                t_exact, exact_model = timed(lambda: fit_daskem(str(path), inits, args.iterations, "float64"))
                exact.append(t_exact / args.iterations)
                speedups.append(t_exact / t_daskem)
        difference = relative_difference(model, exact_model if exact else reference)
    dgemm = dgemm_rate()
    # Useful flops per iteration: full and tied whiten every row for every component and sum
    # its moments (2·N·K·d²); diag and spherical square, scale and sum (6·N·K·d).
    n, k, d = args.n_samples, args.n_components, args.n_features
    flops = 2 * n * k * d * d if args.covariance_type in ("full", "tied") else 6 * n * k * d

    chunks = n_chunks(args.n_samples, args.chunk_rows)
    print(f"data: {n:,} × {d} {args.dtype}, K={k}, {args.covariance_type} covariance; "
          f"Zarr store of {chunks} chunk(s) of {args.chunk_rows:,} rows; {args.iterations} iterations, tol=0; "
          f"{args.repeats} interleaved runs each; dgemm {dgemm / 1e9:.0f} GFLOP/s "
          f"(useful flops per iteration: {flops:.3g})")
    rows = [("daskem (Zarr on disk)", ours), ("scikit-learn (memory)", theirs)]
    if exact:
        rows.insert(1, ("daskem, float64 path", exact))
    print_roofline(rows, flops, dgemm, 24)
    print(f"ratio daskem / scikit-learn, median of runs: {statistics.median(ratios):.2f} "
          f"(runs: {', '.join(f'{r:.2f}' for r in ratios)})")
    if exact:
        print(f"float32 arithmetic: {statistics.median(speedups):.2f}× the speed of the float64 path "
              f"(runs: {', '.join(f'{r:.2f}' for r in speedups)}); parameters differ by {difference:.1e} "
              "of their scale")
    else:
        print(f"largest relative difference of the fitted parameters: {difference:.1e}")


def relative_difference(model, reference) -> float:
    """The largest difference of weights, means and covariances, each relative to its array's scale."""
    return max(float(np.abs(getattr(model, name) - getattr(reference, name)).max()
                     / np.abs(getattr(reference, name)).max()) for name in ("weights_", "means_", "covariances_"))


def fit_sklearn(X, inits, iterations):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # random_from_data: the cheapest start, since the given parameters replace it anyway
        return SklearnGaussianMixture(len(inits["weights_init"]), tol=0, max_iter=iterations,
                                      init_params="random_from_data", random_state=0, **inits).fit(X)


def fit_daskem(path, inits, iterations, precision="auto"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        return daskem.GaussianMixture(len(inits["weights_init"]), tol=0, max_iter=iterations, precision=precision,
                                      acceleration="none", **inits).fit(path, variable="X")


if __name__ == "__main__":
    main()
