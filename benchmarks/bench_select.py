"""Model selection in shared passes vs the same candidates fitted one after another.

Selects over K = 1..8 × the four covariance types (32 candidates) on N × 16
rows in a Zarr store on disk, then fits the same 32 models one by one with
the same settings, and prints both wall times and the number of reads of the
data each needed.

    python benchmarks/bench_select.py                    # N = 200,000
    python benchmarks/bench_select.py --n-samples 1000000
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

from harness import CHUNK_ROWS, add_workdir_option, parser, timed

import daskem
from daskem.app.generate import generate
from daskem.estimators.selection import select
from daskem.kernels.gaussian import COVARIANCE_TYPES


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--n-samples", type=int, default=200_000)
    options.add_argument("--n-features", type=int, default=16)
    options.add_argument("--max-components", type=int, default=8)
    options.add_argument("--true-components", type=int, default=5)
    options.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    add_workdir_option(options, None)
    args = options.parse_args()
    components = range(1, args.max_components + 1)
    settings = {"tol": 1e-3, "max_iter": 100, "random_state": 0}

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        path = str(Path(folder) / "bench.zarr")
        generate(path, n_samples=args.n_samples, n_features=args.n_features,
                 n_components=args.true_components, seed=0, chunk_rows=args.chunk_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shared_seconds, selection = timed(lambda: select(path, components, COVARIANCE_TYPES, variable="X",
                                                             **settings))
            shared_reads = 1 + selection.n_passes  # the initialisation sample, then EM

            def one_by_one() -> int:
                """Fit every candidate on its own; returns the reads of the data they needed."""
                reads = 0
                for k in components:
                    for covariance_type in COVARIANCE_TYPES:
                        model = daskem.GaussianMixture(k, covariance_type=covariance_type, **settings)
                        model.fit(path, variable="X")
                        reads += 1 + model.n_iter_
                return reads

            one_by_one_seconds, one_by_one_reads = timed(one_by_one)

    best = selection.best_
    n_candidates = len(selection.table)
    print(f"data: {args.n_samples:,} × {args.n_features} float64 in Zarr ({args.chunk_rows:,}-row chunks), "
          f"drawn from {args.true_components} full-covariance components")
    print(f"candidates: K = 1..{args.max_components} × {', '.join(COVARIANCE_TYPES)} = {n_candidates}; "
          f"tol={settings['tol']}, max_iter={settings['max_iter']}")
    print(f"{'':28}{'seconds':>10}{'reads of the data':>20}")
    print(f"{'select (shared passes)':28}{shared_seconds:10.1f}{shared_reads:20d}")
    print(f"{'32 fits one after another':28}{one_by_one_seconds:10.1f}{one_by_one_reads:20d}")
    print(f"speed-up {one_by_one_seconds / shared_seconds:.2f}×, {one_by_one_reads / shared_reads:.1f}× fewer reads; "
          f"best by BIC: {best.n_components} components, {best.covariance_type}")


if __name__ == "__main__":
    main()
