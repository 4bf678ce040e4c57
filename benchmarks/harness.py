"""What the benchmarks share: their data, their starts, their clocks and their command-line options.

Every ``bench_*.py`` script imports from here and from no other script.  Run
the scripts as ``python benchmarks/bench_X.py``: Python puts ``benchmarks/`` on
the path, so ``import harness`` finds this module.

- data: :func:`mixture_rows` (rows of a random Gaussian mixture, in memory),
  :func:`read_rows` and :func:`write_rows` (the ``X`` array of a Zarr store);
  stores of ``daskem generate`` are written with :func:`daskem.app.generate.generate`, seed 0;
- starts: :func:`initial_parameters`;
- timing: :func:`timed`, :func:`seconds_per_iteration`, :func:`traced_fit`,
  :func:`first_within`, :func:`median_or_over`, and the yardstick of the same
  run, :func:`dgemm_rate` with :func:`print_roofline`;
- options: :func:`parser`, :func:`add_shape_options`, :func:`add_dtype_option`,
  :func:`add_workdir_option`.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zarr

import daskem
from daskem.kernels.gaussian import random_mixture, sample

#: Rows per Zarr chunk of the stores the benchmarks write, unless told otherwise.
CHUNK_ROWS = 50_000


# --- data ---------------------------------------------------------------------------------------------------------

def mixture_rows(n_samples: int, n_features: int, n_components: int, rng: np.random.Generator,
                 **mixture: float) -> tuple[np.ndarray, Any]:
    """Rows drawn from a random Gaussian mixture (``random_mixture(..., **mixture)``, then ``sample``), both
    from ``rng``, which goes on from there.  Returns ``(X, truth)``: X float64 (n_samples, n_features), truth
    the mixture's parameters (:class:`daskem.kernels.gaussian.GaussianParams`)."""
    truth = random_mixture(n_components, n_features, rng, **mixture)
    X, _ = sample(truth, n_samples, rng)
    return X, truth


def read_rows(path: str | Path, n_rows: int | None = None) -> np.ndarray:
    """The first ``n_rows`` (None: all) rows of the ``X`` array of the Zarr group at ``path``, in memory, in
    the store's dtype."""
    return zarr.open_group(path, mode="r")["X"][:n_rows]


def write_rows(path: str | Path, rows: np.ndarray, chunk_rows: int = CHUNK_ROWS) -> None:
    """Write ``rows`` as float64 array ``X`` of a new Zarr group at ``path``, uncompressed, in chunks of
    ``chunk_rows`` rows.  Returns nothing."""
    zarr.open_group(path, mode="w").create_array("X", data=rows.astype(np.float64), chunks=(chunk_rows,
                                                 rows.shape[1]), compressors=None)


def n_chunks(n_samples: int, chunk_rows: int) -> int:
    """How many chunks of ``chunk_rows`` rows hold ``n_samples`` rows (the last one may be short)."""
    return -(-n_samples // chunk_rows)


# --- starts -------------------------------------------------------------------------------------------------------

def initial_parameters(X: np.ndarray, n_components: int, covariance_type: str = "full") -> dict[str, np.ndarray]:
    """Fixed starts for ``GaussianMixture(**start)``: equal weights, K random rows of X as means (the rows
    ``default_rng(1)`` picks), and the average variance of X as every variance.  Returns a dict of
    ``weights_init`` (K,), ``means_init`` (K, d) float64 and ``precisions_init`` in the shape of
    ``covariance_type``, in the units of X (precisions: 1 / X's units squared)."""
    rng = np.random.default_rng(1)
    n_features = X.shape[1]
    precision = 1.0 / X.var(axis=0).mean()
    precisions = {
        "full": np.repeat(np.eye(n_features)[np.newaxis] * precision, n_components, axis=0),
        "tied": np.eye(n_features) * precision,
        "diag": np.full((n_components, n_features), precision),
        "spherical": np.full(n_components, precision),
    }[covariance_type]
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": X[rng.choice(len(X), n_components, replace=False)].astype(np.float64),
        "precisions_init": precisions,
    }


# --- timing -------------------------------------------------------------------------------------------------------

def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``work()``; returns ``(seconds, what work returned)``, seconds of wall clock."""
    start = time.perf_counter()
    result = work()
    return time.perf_counter() - start, result


def seconds_per_iteration(fit: Callable[[int], Any], iterations: int) -> float:
    """Seconds per EM iteration, start left out: ``(T(fit(1 + M)) − T(fit(1))) / M`` with M = ``iterations``,
    where ``fit(max_iter)`` runs one fit of ``max_iter`` iterations (the long one first)."""
    long = timed(lambda: fit(1 + iterations))[0]
    short = timed(lambda: fit(1))[0]
    return (long - short) / iterations


def traced_fit(X: np.ndarray | str, k: int, seed: int, variable: str | None = None,
               **settings) -> tuple[daskem.GaussianMixture, np.ndarray]:
    """A ``daskem.GaussianMixture(k, random_state=seed, **settings)`` fit (of rows, or of ``variable`` of a
    Zarr store), warnings silenced.  Returns the model and the wall time (seconds) at the end of each of its
    passes, from the fit's own start."""
    seconds: list[float] = []
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = daskem.GaussianMixture(k, random_state=seed, **settings).fit(
            X, variable=variable, callbacks=[lambda info: seconds.append(time.perf_counter() - start)])
    return model, np.asarray(seconds)


def first_within(history: np.ndarray, target: float, within: float) -> int | None:
    """The number of passes after which the history (log-likelihood per row) first comes within ``within``
    (nats per row) of ``target``; None if it never does."""
    hits = np.flatnonzero(history >= target - within)
    return int(hits[0]) + 1 if hits.size else None


def median_or_over(values: list, bound: object) -> str:
    """The median of passes or seconds (None: never got there) formatted ``.3g``, or '> bound' where the
    median is one of those that never got there."""
    median = statistics.median([np.inf if v is None else v for v in values])
    return f"> {bound}" if median == np.inf else f"{median:.3g}"


def dgemm_rate(size: int = 2048, repeats: int = 3) -> float:
    """float64 matrix-product rate of this machine now, all cores: flops per second, best of ``repeats``
    products of two ``size`` × ``size`` matrices (after one to warm up)."""
    a = np.random.default_rng(0).random((size, size))
    a @ a
    return max(2 * size**3 / timed(lambda: a @ a)[0] for _ in range(repeats))


def print_roofline(rows: list[tuple[str, list[float]]], flops: float, rate: float, width: int) -> None:
    """Print a table of seconds per iteration: for each ``(name, values)`` the median, min and max (s), and
    ``flops`` (useful flops per iteration) ÷ median ÷ ``rate`` (the dgemm rate, flops/s), the fraction of the
    roofline reached; names in a column ``width`` wide.  Returns nothing."""
    print(f"{'':{width}}{'median s/iter':>14}{'min':>9}{'max':>9}{'÷ dgemm roofline':>18}")
    for name, values in rows:
        median = statistics.median(values)
        print(f"{name:{width}}{median:14.3f}{min(values):9.3f}{max(values):9.3f}{flops / median / rate:18.3f}")


# --- options ------------------------------------------------------------------------------------------------------

def parser(doc: str | None) -> argparse.ArgumentParser:
    """The scripts' argument parser: returns one whose ``--help`` shows ``doc`` (the script's docstring) as
    written."""
    return argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def add_shape_options(parser: argparse.ArgumentParser, n_samples: int = 400_000, n_features: int = 16,
                      n_components: int = 8) -> None:
    """Add ``--n-samples``, ``--n-features`` and ``--n-components`` (whole numbers) with these defaults.
    Returns nothing."""
    parser.add_argument("--n-samples", type=int, default=n_samples)
    parser.add_argument("--n-features", type=int, default=n_features)
    parser.add_argument("--n-components", type=int, default=n_components)


def add_dtype_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--dtype``: float64 (the default) or float32, the rows' type.  Returns nothing."""
    parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")


def add_workdir_option(parser: argparse.ArgumentParser, help: str | None = "where to write the Zarr stores",
                       **options) -> None:
    """Add ``--workdir``, an existing folder (a Path; default None: the system's temporary folder), with
    ``help`` and any other ``add_argument`` options (``required=True``).  Returns nothing."""
    parser.add_argument("--workdir", type=existing_folder, default=None, help=help, **options)


def existing_folder(text: str) -> Path:
    """``--workdir``'s type: the folder named, which must exist (the scripts write their stores inside it)."""
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not an existing folder; create it first")
    return Path(text)
