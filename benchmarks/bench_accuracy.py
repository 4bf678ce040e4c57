"""Accuracy far from the origin: daskem and scikit-learn on data shifted by c.

EM is shift-equivariant: fitting X + c from a start shifted by c must give the
means of the fit of X plus c, and the very same weights and covariances.  For
each library and each shift the script fits X and X + c from the same start
(``tol=0``, the same number of iterations) and prints the largest difference
between the two fits, relative to each array's scale (its largest entry):

    error = max |cov(X + c) − cov(X)| / max |cov(X)|     (likewise means − c, weights)

The shifted data are themselves rounded to half an ulp of c (5.8e-11 at 1e6,
7.5e-9 at 1e8), so no method can do much better than that; the question is
how much each adds.  A library that fails on the shifted data is shown as
"fails".  The Bayesian rows do the same for ``BayesianGaussianMixture`` (a
Dirichlet process, the prior from the data): both libraries start from the
same responsibilities (each row assigned to the nearest of the Gaussian
starts' means) and take the same number of variational steps.

    python benchmarks/bench_accuracy.py                       # 20,000 × 8, K = 4, all covariance types
    python benchmarks/bench_accuracy.py --shifts 1e4 1e6 1e8 1e10
"""

from __future__ import annotations

import warnings

import numpy as np
from harness import add_shape_options, initial_parameters, mixture_rows, parser
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SklearnBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import daskem

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options, 20_000, 8, 4)
    options.add_argument("--iterations", type=int, default=20)
    options.add_argument("--shifts", type=float, nargs="+", default=[1e4, 1e6, 1e8])
    options.add_argument("--covariance-types", nargs="+", default=list(COVARIANCE_TYPES), choices=COVARIANCE_TYPES)
    args = options.parse_args()

    X, _ = mixture_rows(args.n_samples, args.n_features, args.n_components, np.random.default_rng(0),
                        separation=1.5)  # overlapping: EM keeps moving
    print(f"{args.n_samples:,} rows × {args.n_features} features, K = {args.n_components}, "
          f"{args.iterations} EM iterations from the same start; error relative to each array's scale")
    print()
    print(f"{'covariance':<10} {'shift':>8}  {'scikit-learn':>14}  {'daskem':>10}  {'ratio':>8}")
    for covariance_type in args.covariance_types:
        inits = initial_parameters(X, args.n_components, covariance_type)
        near = {name: fit(X, inits, covariance_type, args.iterations) for name, fit in FITS.items()}
        for shift in args.shifts:
            shifted = {**inits, "means_init": inits["means_init"] + shift}
            errors = {}
            for name, fit in FITS.items():
                try:
                    far = fit(X + shift, shifted, covariance_type, args.iterations)
                except ValueError as error:  # scikit-learn: "ill-defined empirical covariance"
                    errors[name] = None
                    failure = " ".join(str(error).split())[:70]
                    continue
                errors[name] = relative_error(far, near[name], shift)
            ratio = (f"{errors['scikit-learn'] / errors['daskem']:.2g}"
                     if errors["scikit-learn"] and errors["daskem"] else "")
            print(f"{covariance_type:<10} {shift:>8.0e}  {show(errors['scikit-learn']):>14}  "
                  f"{show(errors['daskem']):>10}  {ratio:>8}")
            if errors["scikit-learn"] is None:
                print(f"{'':<21}(scikit-learn: {failure}…)")
    print()
    print(f"{'Bayesian':<10} {'shift':>8}  {'scikit-learn':>14}  {'daskem':>10}  {'ratio':>8}")
    # the start: each row assigned to the nearest of the K rows the Gaussian starts take as means (a hard
    # assignment, as scikit-learn's own k-means start)
    centres = initial_parameters(X, args.n_components)["means_init"]
    nearest = np.argmin(((X[:, np.newaxis, :] - centres) ** 2).sum(axis=2), axis=1)
    resp = np.eye(args.n_components)[nearest]
    for covariance_type in args.covariance_types:
        near = {name: fit(X, resp, covariance_type, args.iterations) for name, fit in BAYESIAN_FITS.items()}
        for shift in args.shifts:
            errors = {}
            for name, fit in BAYESIAN_FITS.items():
                try:
                    errors[name] = relative_error(fit(X + shift, resp, covariance_type, args.iterations), near[name],
                                                  shift)
                except ValueError:  # scikit-learn: "ill-defined empirical covariance"
                    errors[name] = None
            ratio = (f"{errors['scikit-learn'] / errors['daskem']:.2g}"
                     if errors["scikit-learn"] and errors["daskem"] else "")
            print(f"{covariance_type:<10} {shift:>8.0e}  {show(errors['scikit-learn']):>14}  "
                  f"{show(errors['daskem']):>10}  {ratio:>8}")


def show(error: float | None) -> str:
    return "fails" if error is None else f"{error:.1e}"


def relative_error(far: tuple, near: tuple, shift: float) -> float:
    """Largest difference of the shifted fit from the unshifted one, each array relative to its scale."""
    weights, means, covariances = far
    pairs = zip((weights, means - shift, covariances), near)
    return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in pairs)


def fit_daskem(X: np.ndarray, inits: dict, covariance_type: str, iterations: int) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        model = daskem.GaussianMixture(len(inits["weights_init"]), covariance_type=covariance_type, tol=0,
                                       max_iter=iterations, acceleration="none", **inits).fit(X)
    return model.weights_, model.means_, model.covariances_


def fit_sklearn(X: np.ndarray, inits: dict, covariance_type: str, iterations: int) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model = SklearnGaussianMixture(len(inits["weights_init"]), covariance_type=covariance_type, tol=0,
                                       max_iter=iterations, **inits).fit(X)
    return model.weights_, model.means_, model.covariances_


FITS = {"scikit-learn": fit_sklearn, "daskem": fit_daskem}


def bayesian_daskem(X: np.ndarray, resp: np.ndarray, covariance_type: str, iterations: int) -> tuple:
    """daskem's variational fit from the posterior that responsibilities ``resp`` (n, K) give."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        model = daskem.BayesianGaussianMixture(resp.shape[1], covariance_type=covariance_type, tol=0,
                                               max_iter=0).fit(X)  # the prior, resolved from X
        family = model.family_
        reference = np.repeat(X[:1], resp.shape[1], axis=0)
        model._params = family.params_from_assignment(  # the start: scikit-learn's _initialize(X, resp)
            family.assignment_statistics(X, resp, np.ones(len(X)), reference), reference)
        model.set_params(max_iter=iterations, warm_start=True).fit(X)
    return model.weights_, model.means_, model.covariances_


def bayesian_sklearn(X: np.ndarray, resp: np.ndarray, covariance_type: str, iterations: int) -> tuple:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        model = SklearnBayesianGaussianMixture(n_components=resp.shape[1], covariance_type=covariance_type, tol=0,
                                               max_iter=iterations, warm_start=True)
        model._check_parameters(X)
        model._initialize(X, resp)
        model.converged_, model.lower_bound_ = False, -np.inf
        model.fit(X)
    return model.weights_, model.means_, model.covariances_


BAYESIAN_FITS = {"scikit-learn": bayesian_sklearn, "daskem": bayesian_daskem}


if __name__ == "__main__":
    main()
