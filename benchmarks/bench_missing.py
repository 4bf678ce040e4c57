"""Missing values: what exact EM costs per iteration, and what it is worth against the usual fixes.

**Cost.**  Rows drawn from a K-component full-covariance mixture (``daskem
generate``) are stored in Zarr again for each fraction of their values set to
NaN completely at random (5 %, 20 % and 50 % unless told).  daskem fits each (``missing="nan"``)
from the same start as the complete data; the time per iteration is
(T(1 + M) − T(1)) / M, interleaved, medians; the ratio to the complete-data
iteration is what missing values cost.

**Worth.**  On smaller data (overlapping components, so that errors show),
values go missing completely at random (MCAR) or at random (MAR: a value of
features 1 … d − 1 goes missing more often when feature 0, always observed,
is above its median).  Three fits from the same kind of start are compared
with the truth the rows were drawn from: daskem's exact EM, dropping every
incomplete row, and replacing each missing value by its feature's mean.  The
error of the means (largest absolute difference, in units of the data's
standard deviation) and of the covariances (relative Frobenius norm), after
matching fitted to true components, is printed for each.

    python benchmarks/bench_missing.py                    # 400,000 × 16, K = 8
    python benchmarks/bench_missing.py --n-samples 100000 --repeats 3
    python benchmarks/bench_missing.py --fractions 0.2,0.5,0.7,0.9   # where patterns are most distinct
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
from harness import (
    CHUNK_ROWS,
    add_shape_options,
    add_workdir_option,
    initial_parameters,
    mixture_rows,
    n_chunks,
    parser,
    read_rows,
    seconds_per_iteration,
    write_rows,
)
from scipy.optimize import linear_sum_assignment

import daskem
from daskem.app.generate import generate


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options)
    options.add_argument("--iterations", type=int, default=3, help="M: iterations timed per fit")
    options.add_argument("--repeats", type=int, default=7, help="interleaved runs (a shared machine: more, steadier)")
    options.add_argument("--fractions", type=fractions, default=[0.05, 0.2, 0.5],
                         help="fractions of values missing, comma-separated, each in (0, 1)")
    add_workdir_option(options)
    args = options.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        cost(Path(folder), args)
    worth()


def fractions(text: str) -> list[float]:
    """``--fractions``: comma-separated numbers strictly between 0 and 1."""
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give numbers separated by commas, e.g. 0.05,0.2") from None
    if not all(0.0 < value < 1.0 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: each fraction must lie strictly between 0 and 1")
    return values


def cost(folder: Path, args: argparse.Namespace) -> None:
    n, d, k = args.n_samples, args.n_features, args.n_components
    complete = folder / "complete.zarr"
    generate(complete, n_samples=n, n_features=d, n_components=k, seed=0, chunk_rows=CHUNK_ROWS)
    rows = read_rows(complete)
    inits = initial_parameters(rows, k, "full")
    rng = np.random.default_rng(1)
    paths = {"complete": complete}
    for fraction in args.fractions:
        holed = np.where(rng.random(rows.shape) < fraction, np.nan, rows)
        paths[f"{fraction:.0%} missing"] = path = folder / f"missing-{fraction}.zarr"
        write_rows(path, holed, CHUNK_ROWS)

    def run(path: Path, iterations: int) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", daskem.ConvergenceWarning)
            daskem.GaussianMixture(k, tol=0, max_iter=iterations, missing="nan", acceleration="none",
                                   **inits).fit(str(path), variable="X")

    for path in paths.values():  # compile and warm the page cache
        run(path, 1)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.repeats):
        for name, path in paths.items():
            times[name].append(seconds_per_iteration(lambda m, path=path: run(path, m), args.iterations))
    print(f"cost: {n:,} × {d} float64, K={k}, full covariance, Zarr of {n_chunks(n, CHUNK_ROWS)} chunk(s); "
          f"{args.repeats} interleaved runs")
    print(f"{'':14} {'median s/iter':>14} {'÷ complete':>11}")
    reference = statistics.median(times["complete"])
    for name, values in times.items():
        print(f"{name:14} {statistics.median(values):14.4f} {statistics.median(values) / reference:11.2f}")


def worth(n_samples: int = 20_000, n_features: int = 6, n_components: int = 3, seed: int = 2) -> None:
    rng = np.random.default_rng(seed)
    X, truth = mixture_rows(n_samples, n_features, n_components, rng, separation=2.0)
    scale = X.std()
    print(f"\nworth: {n_samples:,} × {n_features} rows of {n_components} overlapping components; error of the "
          "means (largest, ÷ the data's sd) and covariances (relative Frobenius), matched to the truth")
    print(f"{'missing':>12} {'':>6} {'exact EM':>20} {'drop rows':>20} {'mean imputation':>20}")
    for mechanism in ("MCAR", "MAR"):
        for fraction in (0.1, 0.3, 0.5):
            holed = X.copy()
            if mechanism == "MCAR":
                holed[rng.random(X.shape) < fraction] = np.nan
            else:  # more often missing where feature 0 is high; feature 0 itself always observed
                high = X[:, 0] > np.median(X[:, 0])
                chance = np.where(high, 1.6 * fraction, 0.4 * fraction)[:, None]
                holed[:, 1:][rng.random((n_samples, n_features - 1)) < chance] = np.nan
            gaps = np.isnan(holed)
            fits = {
                "exact EM": fitted(holed, n_components, missing="nan"),
                "drop rows": fitted(holed[~gaps.any(axis=1)], n_components),
                "mean imputation": fitted(np.where(gaps, np.nanmean(holed, axis=0), holed), n_components),
            }
            cells = [errors(model, truth, scale) for model in fits.values()]
            print(f"{fraction:>11.0%} {mechanism:>6} " + " ".join(f"{m:9.3f} / {c:8.3f}" for m, c in cells))
    print("(each cell: means error / covariances error; drop rows kept "
          "rows with every value observed)")


def fitted(X: np.ndarray, n_components: int, **settings) -> daskem.GaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        return daskem.GaussianMixture(n_components, n_init=3, max_iter=500, tol=1e-6, random_state=0,
                                      **settings).fit(X)


def errors(model: daskem.GaussianMixture, truth, scale: float) -> tuple[float, float]:
    """Largest error of the means ÷ ``scale``, and the largest relative Frobenius error of the covariances,
    after matching the fitted components to the true ones (least total distance of the means)."""
    cost = np.linalg.norm(model.means_[:, None] - truth.means[None], axis=2)
    fitted_order, true_order = linear_sum_assignment(cost)
    means = np.abs(model.means_[fitted_order] - truth.means[true_order]).max() / scale
    covariances = max(
        np.linalg.norm(model.params.full_covariances()[i] - truth.covariances[j]) / np.linalg.norm(truth.covariances[j])
        for i, j in zip(fitted_order, true_order))
    return means, covariances


if __name__ == "__main__":
    main()
