"""Seconds per EM iteration of Bernoulli and Poisson mixtures beside the diagonal Gaussian's,
and beside pomegranate 1.x's Bernoulli and Poisson mixtures on the same rows.

daskem's three read Zarr stores of the same shape and dtype (float64,
uncompressed, 50,000-row chunks) from disk at every iteration, through
``daskem.BernoulliMixture``, ``daskem.PoissonMixture`` and
``daskem.GaussianMixture``, from fixed starts.  pomegranate (PyTorch) fits the
same rows held in memory as tensors (float32, its default, and float64) from the
same starts; it needs
torch, so it runs in the interpreter ``--pomegranate-python`` names (one with
``pip install pomegranate``), or is left out.  Each time per iteration is
(T(1 + M) − T(1)) / M with tol=0, interleaved, medians printed.  The dgemm
rate of the same run is the yardstick: a product family's iteration does
4·N·K·d useful flops (two products), a diagonal Gaussian's 6·N·K·d.

    python benchmarks/bench_families.py                  # 400,000 × 16, K = 8
    python benchmarks/bench_families.py --n-components 64 --repeats 7
    python benchmarks/bench_families.py --pomegranate-python /path/to/venv/bin/python
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
from harness import (
    CHUNK_ROWS,
    add_shape_options,
    add_workdir_option,
    dgemm_rate,
    initial_parameters,
    parser,
    read_rows,
    seconds_per_iteration,
    write_rows,
)

import daskem
from daskem.app.generate import generate


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options)
    options.add_argument("--iterations", type=int, default=5, help="M: iterations timed per fit")
    options.add_argument("--repeats", type=int, default=5)
    add_workdir_option(options)
    options.add_argument("--pomegranate-python", default=None,
                         help="a Python interpreter that imports pomegranate (and torch), to time it too")
    args = options.parse_args()
    n, d, k = args.n_samples, args.n_features, args.n_components
    rng = np.random.default_rng(0)

    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        gaussian_path = Path(folder) / "gaussian.zarr"
        generate(gaussian_path, n_samples=n, n_features=d, n_components=k, seed=0, chunk_rows=CHUNK_ROWS)
        gaussian_rows = read_rows(gaussian_path)
        inits = initial_parameters(gaussian_rows, k, "diag")
        labels = rng.integers(k, size=n)
        stores = {
            "bernoulli": (daskem.BernoulliMixture,
                          rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.9, size=(k, d))[labels],
                          rng.uniform(0.3, 0.7, size=(k, d))),
            "poisson": (daskem.PoissonMixture, rng.poisson(rng.gamma(2.0, 2.0, size=(k, d))[labels]),
                        rng.uniform(1.0, 5.0, size=(k, d))),
        }
        runs, pomegranate = {}, {}
        for name, (estimator, rows, means) in stores.items():
            path = Path(folder) / f"{name}.zarr"
            write_rows(path, rows, CHUNK_ROWS)
            runs[name] = lambda m, estimator=estimator, path=path, means=means: quietly(
                estimator(k, tol=0, max_iter=m, acceleration="none", weights_init=np.full(k, 1.0 / k),
                          means_init=means).fit, str(path), variable="X")
            if args.pomegranate_python:
                np.save(Path(folder) / f"{name}.npy", rows.astype(np.float64))
                np.save(Path(folder) / f"{name}-means.npy", means)
                pomegranate[name] = (Path(folder) / f"{name}.npy", Path(folder) / f"{name}-means.npy")

        runs["diag Gaussian"] = lambda m: quietly(
            daskem.GaussianMixture(k, covariance_type="diag", tol=0, max_iter=m, acceleration="none",
                                   **inits).fit, str(gaussian_path),
            variable="X")
        for run in runs.values():  # compile and warm the page cache
            run(1)
        times: dict[str, list[float]] = {name: [] for name in runs}
        rate = dgemm_rate()
        for name in pomegranate:
            for dtype in POMEGRANATE_DTYPES:
                times[f"pomegranate {name} {dtype}"] = []
        for _ in range(args.repeats):
            for name, run in runs.items():
                times[name].append(seconds_per_iteration(run, args.iterations))
            for name, (rows_file, means_file) in pomegranate.items():
                for dtype in POMEGRANATE_DTYPES:
                    times[f"pomegranate {name} {dtype}"].append(pomegranate_iteration(
                        args.pomegranate_python, name, rows_file, means_file, args.iterations, dtype))
        print(f"data: {n:,} × {d} float64, K={k}, Zarr stores of {n // CHUNK_ROWS} chunks of {CHUNK_ROWS:,} rows; "
              f"{args.repeats} interleaved runs; dgemm {rate / 1e9:.0f} GFLOP/s")
        print(f"{'':30} {'median s/iter':>14} {'÷ diag Gaussian':>16} {'÷ dgemm roofline':>17}")
        reference = statistics.median(times["diag Gaussian"])
        for name, values in times.items():
            flops = (6 if name == "diag Gaussian" else 4) * n * k * d
            median = statistics.median(values)
            print(f"{name:30} {median:14.4f} {median / reference:16.2f} {flops / rate / median:17.3f}")
        for name in pomegranate:
            for dtype in POMEGRANATE_DTYPES:
                ratio = statistics.median(times[f"pomegranate {name} {dtype}"]) / statistics.median(times[name])
                print(f"pomegranate {name} {dtype} (in memory) ÷ daskem {name} float64 (from Zarr): {ratio:.2f}")


def quietly(fit, *args, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        fit(*args, **kwargs)


#: pomegranate's arithmetic: float32 (its default) and float64 (daskem's for these families).
POMEGRANATE_DTYPES = ("float32", "float64")
#: Times pomegranate's fit from the start for 1 and 1 + M iterations (its loop's first pass only
#: scores the start), in the interpreter that has it; prints the difference per iteration.
POMEGRANATE = """
import json, sys, time
import numpy as np, torch
from pomegranate.distributions import Bernoulli, Poisson
from pomegranate.gmm import GeneralMixtureModel

family, rows, means, m = sys.argv[1], np.load(sys.argv[2]), np.load(sys.argv[3]), int(sys.argv[4])
dtype = getattr(torch, sys.argv[5])
X, k = torch.from_numpy(rows).to(dtype), len(means)

def seconds(iterations):
    kind, name = (Bernoulli, "probs") if family == "bernoulli" else (Poisson, "lambdas")
    model = GeneralMixtureModel([kind(**{name: torch.from_numpy(mean.copy()).to(dtype)}) for mean in means],
                                priors=torch.full((k,), 1.0 / k, dtype=dtype), max_iter=iterations,
                                tol=-1.0)
    start = time.perf_counter()
    model.fit(X)
    return time.perf_counter() - start

seconds(2)  # warm up
print(json.dumps((seconds(1 + m) - seconds(1)) / m))
"""


def pomegranate_iteration(python: str, family: str, rows: Path, means: Path, iterations: int, dtype: str) -> float:
    """Seconds per iteration of pomegranate's mixture of ``family`` on the saved rows and start, in ``dtype``."""
    result = subprocess.run([python, "-c", POMEGRANATE, family, str(rows), str(means), str(iterations), dtype],
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
