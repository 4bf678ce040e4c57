"""Seconds per EM iteration of Bernoulli and Poisson mixtures beside the diagonal Gaussian's.

All three read Zarr stores of the same shape and dtype (float64, uncompressed,
50,000-row chunks) from disk at every iteration and start from fixed
parameters; each system's time per iteration is (T(1 + M) − T(1)) / M with
tol=0, interleaved, medians printed.  The Bernoulli and Poisson fits run
through the engine and the family interface directly (their estimator classes
come later); the Gaussian through ``daskem.GaussianMixture``.  The dgemm rate
of the same run is the yardstick: a product family's iteration does 4·N·K·d
useful flops (two products), a diagonal Gaussian's 6·N·K·d.

    python benchmarks/bench_families.py                  # 400,000 × 16, K = 8
    python benchmarks/bench_families.py --n-components 64 --repeats 7
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import zarr
from bench_vs_sklearn import dgemm_rate, initial_parameters

import daskem
from daskem.engine import Blocks, run_em
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.poisson import PoissonFamily
from daskem.families.product import MeanParams
from daskem.generate import generate
from daskem.inputs import as_row_chunked

CHUNK_ROWS = 50_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-samples", type=int, default=400_000)
    parser.add_argument("--n-features", type=int, default=16)
    parser.add_argument("--n-components", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=5, help="M: iterations timed per fit")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the Zarr stores")
    args = parser.parse_args()
    n, d, k = args.n_samples, args.n_features, args.n_components
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        gaussian_path = Path(folder) / "gaussian.zarr"
        generate(gaussian_path, n_samples=n, n_features=d, n_components=k, seed=0, chunk_rows=CHUNK_ROWS)
        gaussian_rows = zarr.open_group(gaussian_path, mode="r")["X"][:]
        inits = initial_parameters(gaussian_rows, k, "diag")
        labels = rng.integers(k, size=n)
        stores = {
            "bernoulli": (BernoulliFamily(), rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.9, size=(k, d))[labels],
                          rng.uniform(0.3, 0.7, size=(k, d))),
            "poisson": (PoissonFamily(), rng.poisson(rng.gamma(2.0, 2.0, size=(k, d))[labels]),
                        rng.uniform(1.0, 5.0, size=(k, d))),
        }
        runs = {}
        for name, (family, rows, means) in stores.items():
            path = Path(folder) / f"{name}.zarr"
            zarr.open_group(path, mode="w").create_array("X", data=rows.astype(np.float64),
                                                         chunks=(CHUNK_ROWS, d), compressors=None)
            blocks = Blocks.of(as_row_chunked(str(path), "X"))
            start = MeanParams(np.full(k, 1.0 / k), means)
            runs[name] = lambda m, blocks=blocks, family=family, start=start: run_em(
                blocks, [(family, start)], tol=0.0, max_iter=m)

        def gaussian(m: int) -> None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                daskem.GaussianMixture(k, covariance_type="diag", tol=0, max_iter=m, **inits).fit(
                    str(gaussian_path), variable="X")

        runs["diag Gaussian"] = gaussian
        for run in runs.values():  # compile and warm the page cache
            run(1)
        times: dict[str, list[float]] = {name: [] for name in runs}
        rate = dgemm_rate()
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append((timed(run, 1 + args.iterations) - timed(run, 1)) / args.iterations)
        print(f"data: {n:,} × {d} float64, K={k}, Zarr stores of {n // CHUNK_ROWS} chunks of {CHUNK_ROWS:,} rows; "
              f"{args.repeats} interleaved runs; dgemm {rate / 1e9:.0f} GFLOP/s")
        print(f"{'':16} {'median s/iter':>14} {'÷ diag Gaussian':>16} {'÷ dgemm roofline':>17}")
        reference = statistics.median(times["diag Gaussian"])
        for name, values in times.items():
            flops = (6 if name == "diag Gaussian" else 4) * n * k * d
            median = statistics.median(values)
            print(f"{name:16} {median:14.4f} {median / reference:16.2f} {flops / rate / median:17.3f}")


def timed(run, iterations: int) -> float:
    start = time.perf_counter()
    run(iterations)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
