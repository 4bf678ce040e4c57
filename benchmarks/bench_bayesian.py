"""How many components is it? One Dirichlet-process fit against scikit-learn's and against ``daskem select``.

For data drawn from mixtures of a known number of Gaussian components (``--clusters``), on rows that fit in
memory, the script fits in the same run:

- ``daskem.BayesianGaussianMixture(n_components=30)`` (a Dirichlet process over the weights);
- scikit-learn's ``BayesianGaussianMixture`` with the same settings and the same stop (its ``tol`` is on the
  total bound, daskem's per row: it is given ``tol × n_samples``);
- ``daskem.select`` over K = 1 … 30 (full covariances, BIC, its own default stop, at most ``--max-iter``
  passes: what it needs to converge), unless ``--skip-select``.

and prints, for each, the passes over the data, the seconds, and the number of components found: those
whose weight is at least 1e-3 (for ``select``, the best K by BIC).  daskem's passes count EM's and the one
that takes the data's mean and covariance for the prior (the start reads a sample, not the data).

    python benchmarks/bench_bayesian.py                    # 20,000 × 5, clusters 3, 6, 12
    python benchmarks/bench_bayesian.py --skip-select --n-samples 1000000
"""

from __future__ import annotations

import warnings

import harness
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as TheirBayesianGaussianMixture

import daskem

#: A component counts as found when its weight is at least this.
FOUND = 1e-3


def main() -> None:
    parser = harness.parser(__doc__)
    harness.add_shape_options(parser, n_samples=20_000, n_features=5, n_components=30)
    parser.add_argument("--clusters", default="3,6,12", help="true numbers of components, comma-separated")
    parser.add_argument("--tol", type=float, default=1e-6, help="daskem's tol (per row); scikit-learn's is n × it")
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--skip-select", action="store_true", help="leave out daskem select over K = 1 … 30")
    args = parser.parse_args()
    print(f"{args.n_samples:,} rows × {args.n_features} features; n_components={args.n_components}, Dirichlet "
          f"process; found: weight >= {FOUND:g}; tol {args.tol:g} per row")
    print(f"{'true K':>6}  {'fit':<28} {'passes':>7} {'seconds':>8} {'found':>6}  bound per row")
    for truth in (int(k) for k in args.clusters.split(",")):
        X, _ = harness.mixture_rows(args.n_samples, args.n_features, truth, np.random.default_rng(truth),
                                    separation=6.0)
        settings = dict(n_components=args.n_components, max_iter=args.max_iter, random_state=0)
        ours_seconds, ours = harness.timed(lambda: daskem.BayesianGaussianMixture(**settings, tol=args.tol).fit(X))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs_seconds, theirs = harness.timed(lambda: TheirBayesianGaussianMixture(
                **settings, tol=args.tol * len(X), init_params="k-means++").fit(X))
        print(f"{'':>6}  (fits done: daskem {ours.n_iter_} iterations, converged {ours.converged_}; scikit-learn "
              f"{theirs.n_iter_}, converged {theirs.converged_})", flush=True)
        rows = [("daskem BayesianGaussianMixture", ours.n_iter_ + 1, ours_seconds, found(ours.weights_),
                 ours.lower_bound_ / len(X)),
                ("scikit-learn BayesianGM", theirs.n_iter_, theirs_seconds, found(theirs.weights_),
                 float(np.squeeze(theirs.lower_bound_)) / len(X))]
        if not args.skip_select:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                select_seconds, selection = harness.timed(lambda: daskem.select(
                    X, n_components=range(1, args.n_components + 1), covariance_types=["full"], random_state=0,
                    max_iter=args.max_iter))
            unconverged = int((~selection.table["converged"]).sum())
            print(f"{'':>6}  (select: {unconverged} of {len(selection.table)} candidates not converged)")
            rows.append(("daskem select K=1..30 (BIC)", selection.n_passes, select_seconds,
                         selection.best_.n_components, float("nan")))
        for name, passes, seconds, count, bound in rows:
            print(f"{truth:>6}  {name:<28} {passes:>7} {seconds:>8.2f} {count:>6}  {bound:.6f}")
        print(f"{'':>6}  time ratio daskem / scikit-learn: {ours_seconds / theirs_seconds:.2f}; passes ratio "
              f"daskem / scikit-learn: {(ours.n_iter_ + 1) / theirs.n_iter_:.2f}"
              + ("" if args.skip_select else f"; passes daskem / select: {(ours.n_iter_ + 1) / rows[2][1]:.2f}"))


def found(weights: np.ndarray) -> int:
    """How many components hold at least :data:`FOUND` of the weight."""
    return int(np.sum(weights >= FOUND))


if __name__ == "__main__":
    main()
