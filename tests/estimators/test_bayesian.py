"""daskem.BayesianGaussianMixture against scikit-learn's, step by step, and what users want it for."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as TheirBayesianGaussianMixture
from sklearn.utils.estimator_checks import parametrize_with_checks

import daskem
from daskem.exceptions import InputError, NonFiniteDataError
from daskem.kernels.variational import WEIGHT_PRIORS
from tests.helpers import make_mixture_data, write_zarr

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def close(ours, theirs, what):
    """Equal to 1e-8 of the array's scale: the same float64 arithmetic in other orders (sums about reference
    points, chunk by chunk, here; about the means, at once, there) costs ~1e-12 of scale over five steps."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8 * max(np.abs(theirs).max(), 1e-300), err_msg=what)


def started(ours, theirs, X, resp):
    """Both estimators at the posterior that responsibilities ``resp`` (n, K) give, ready for warm starts."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours.set_params(max_iter=0).fit(X)  # resolves the prior from the data
    family = ours.family_
    reference = np.repeat(X.mean(axis=0, keepdims=True), resp.shape[1], axis=0)
    ours._params = family.params_from_assignment(
        family.assignment_statistics(X, resp, np.ones(len(X)), reference), reference)
    theirs._check_parameters(X)
    theirs._initialize(X, resp)
    theirs.converged_, theirs.lower_bound_ = False, -np.inf
    ours.set_params(max_iter=1, warm_start=True)
    theirs.set_params(max_iter=1, warm_start=True)


@pytest.mark.parametrize("weight_type", WEIGHT_PRIORS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_each_step_equals_scikit_learns(covariance_type, weight_type):
    """From the same responsibilities, every pass (a warm fit of one iteration) gives scikit-learn's posterior
    and its evidence lower bound, far from the origin, in chunks."""
    X = make_mixture_data(n_samples=600, n_features=3, n_components=4, seed=3) + 1e3
    settings = dict(n_components=6, covariance_type=covariance_type, weight_concentration_prior_type=weight_type,
                    tol=0.0)
    ours = daskem.BayesianGaussianMixture(**settings, chunk_rows=128)
    theirs = TheirBayesianGaussianMixture(**settings)
    started(ours, theirs, X, np.random.default_rng(0).dirichlet(np.ones(6), size=len(X)))
    for step in range(5):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours.fit(X)
            theirs.fit(X)
        where = f"{covariance_type}, {weight_type}, step {step}"
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_", "mean_precision_",
                     "degrees_of_freedom_", "mean_prior_", "covariance_prior_"):
            close(getattr(ours, name), getattr(theirs, name), f"{name} ({where})")
        close(np.stack(ours.weight_concentration_) if weight_type == "dirichlet_process"
              else ours.weight_concentration_, np.stack(theirs.weight_concentration_)
              if weight_type == "dirichlet_process" else theirs.weight_concentration_, f"concentration ({where})")
        close(ours.lower_bound_, np.squeeze(theirs.lower_bound_), f"lower bound ({where})")  # tied: (1,) there
        close(ours.predict_proba(X), theirs.predict_proba(X), f"responsibilities ({where})")
        close(ours.score_samples(X), theirs.score_samples(X), f"score_samples ({where})")


@parametrize_with_checks([daskem.BayesianGaussianMixture(),
                          daskem.BayesianGaussianMixture(n_components=2, covariance_type="diag", max_iter=20)],
                         expected_failed_checks=lambda estimator: {} if estimator.n_components == 1 else {
                             "check_sample_weight_equivalence_on_dense_data": (
                                 "the start draws a random sample of rows, and repeating a row changes which "
                                 "rows are drawn; from the same start, integer weights and repeated rows give "
                                 "the same fit (tests/estimators/test_conformance.py)")})
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def clusters(n_clusters: int, n_samples: int = 4000, seed: int = 0) -> np.ndarray:
    """Rows of ``n_clusters`` well-separated spherical clusters in 2 to 4 features."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-30, 30, size=(n_clusters, 3))
    return centres[rng.integers(n_clusters, size=n_samples)] + rng.normal(size=(n_samples, 3))


@pytest.mark.parametrize("n_clusters", [3, 7, 12])
def test_a_dirichlet_process_with_30_components_finds_the_clusters(n_clusters):
    """The reason for the model: 30 components on data of 3 to 12 clusters, every setting but the stop at its
    default, leave the surplus below 1e-3."""
    X = clusters(n_clusters, seed=n_clusters)
    model = daskem.BayesianGaussianMixture(n_components=30, random_state=0, max_iter=1000, tol=1e-6).fit(X)
    assert model.converged_
    assert int(np.sum(model.weights_ >= 1e-3)) == n_clusters


def test_zarr_and_dask_inputs_fit_as_numpy(tmp_path):
    X = make_mixture_data(n_samples=900, n_features=2, n_components=3, seed=1)
    path = write_zarr(tmp_path / "data.zarr", X, chunk_rows=300)
    settings = dict(n_components=4, random_state=0, max_iter=5, tol=0.0, chunk_rows=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        in_memory = daskem.BayesianGaussianMixture(**settings).fit(X)
        stored = daskem.BayesianGaussianMixture(**settings).fit(str(path), variable="X")
        frame = daskem.BayesianGaussianMixture(**settings).fit(xr.DataArray(X, dims=("row", "feature")))
    for other in (stored, frame):
        np.testing.assert_array_equal(other.means_, in_memory.means_)
        assert other.lower_bound_ == in_memory.lower_bound_


def test_nan_is_refused_pointing_to_gaussian_mixture():
    X = make_mixture_data(n_samples=300, n_features=2, seed=1)
    X[17, 1] = np.nan
    with pytest.raises(NonFiniteDataError, match="row 17.*fit daskem.GaussianMixture"):
        daskem.BayesianGaussianMixture(2).fit(X)
    with pytest.raises(NonFiniteDataError, match="row 17.*fit daskem.GaussianMixture"):  # no pass for the prior
        daskem.BayesianGaussianMixture(2, covariance_type="spherical", mean_prior=[0.0, 0.0],
                                       covariance_prior=1.0).fit(X)


@pytest.mark.parametrize(("settings", "words"), [
    ({"weight_concentration_prior": 0.0}, "weight_concentration_prior must be None or a finite number > 0"),
    ({"weight_concentration_prior_type": "pitman_yor"}, "choose one of"),
    ({"mean_prior": [0.0, 0.0, 0.0]}, "mean_prior has 3 values for data of 2 features"),
    ({"degrees_of_freedom_prior": 0.5}, "degrees_of_freedom_prior must be > n_features - 1 = 1"),
    ({"covariance_prior": np.eye(3)}, "covariance_prior has shape"),
    ({"covariance_prior": [[1.0, 2.0], [2.0, 1.0]]}, "positive definite"),
    ({"covariance_prior": [[1.0, 2.0], [0.0, 1.0]]}, "symmetric"),
    ({"covariance_type": "spherical", "covariance_prior": -1.0}, "positive definite"),
    ({"covariance_type": "diag", "covariance_prior": np.eye(2)}, r"must be \(n_features,\)"),
])
def test_a_bad_prior_is_refused_naming_it(settings, words):
    X = make_mixture_data(n_samples=200, n_features=2, seed=1)
    with pytest.raises(InputError, match=words):
        daskem.BayesianGaussianMixture(2, **settings).fit(X)


def test_a_loaded_model_keeps_the_prior_left_to_the_data(tmp_path):
    X = make_mixture_data(n_samples=400, n_features=2, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = daskem.BayesianGaussianMixture(3, covariance_type="tied", mean_prior=[1.0, 2.0], random_state=0,
                                             max_iter=5).fit(X)
    fit.save(tmp_path / "model.nc")
    loaded = daskem.load(tmp_path / "model.nc")
    assert loaded.get_params()["covariance_prior"] is None and loaded.get_params()["mean_prior"] == (1.0, 2.0)
    np.testing.assert_array_equal(loaded.covariance_prior_, fit.covariance_prior_)
    assert loaded.lower_bounds_ == fit.lower_bounds_ and loaded.lower_bounds_[-1] == fit.lower_bound_


def test_select_refuses_a_bayesian_family_and_says_why():
    with pytest.raises(InputError, match="finds its number of components itself"):
        daskem.select(make_mixture_data(n_samples=100, n_features=2, seed=1), families=["bayesian_gaussian"])


def test_scores_of_a_zarr_store_written_to_zarr_are_those_in_memory(tmp_path):
    X = make_mixture_data(n_samples=600, n_features=2, n_components=3, seed=1)
    path = write_zarr(tmp_path / "data.zarr", X, chunk_rows=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = daskem.BayesianGaussianMixture(5, random_state=0, max_iter=20).fit(X)
    model.score_dataset(str(path), variable="X").to_zarr(tmp_path / "scores.zarr")
    scores = xr.open_zarr(tmp_path / "scores.zarr")
    np.testing.assert_array_equal(scores["label"].values, model.predict(X))
    # the same kernels on the same rows, in chunks of 200 instead of at once: equal to rounding
    np.testing.assert_allclose(scores["responsibility"].values, model.predict_proba(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores["log_likelihood"].values, model.score_samples(X), rtol=1e-12)
