"""daskem against scikit-learn's GaussianMixture from the same initial parameters.

With ``tol=0`` both run exactly ``max_iter`` EM steps; after 20 of them the
parameters agree to rtol 1e-8 in float64 whatever the chunking of the Zarr
store, also when the data sit 1e6 away from the origin.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import daskem

from conftest import initial_parameters, make_mixture_data, write_zarr

N_ITER = 20
N_COMPONENTS = 3


def sklearn_fit(X: np.ndarray, inits: dict, n_iter: int = N_ITER, **settings) -> SklearnGaussianMixture:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SklearnConvergenceWarning)
        return SklearnGaussianMixture(N_COMPONENTS, tol=0, max_iter=n_iter, **inits, **settings).fit(X)


def daskem_fit(data, inits: dict, n_iter: int = N_ITER, settings=None, **kwargs) -> daskem.GaussianMixture:
    with pytest.warns(daskem.ConvergenceWarning):
        model = daskem.GaussianMixture(N_COMPONENTS, tol=0, max_iter=n_iter, **inits, **(settings or {}))
        return model.fit(data, **kwargs)


def assert_same_parameters(ours, theirs, rtol):
    for name in ("weights_", "means_", "covariances_", "precisions_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=rtol, err_msg=name)
    assert ours.n_iter_ == theirs.n_iter_ == N_ITER
    assert ours.converged_ is theirs.converged_ is False


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    # Overlapping components: EM is still moving after 20 iterations.
    return make_mixture_data(2000, 4, N_COMPONENTS, seed=1, separation=1.0)


@pytest.mark.parametrize("chunk_rows", [2000, 512, 333, 77])
@pytest.mark.parametrize("shift", [0.0, 1e6])
def test_float64_zarr_matches_scikit_learn(tmp_path, data, chunk_rows, shift):
    X = data + shift
    inits = initial_parameters(X, N_COMPONENTS)
    path = write_zarr(tmp_path / "data.zarr", X, chunk_rows)
    ours = daskem_fit(str(path), inits, variable="X")
    theirs = sklearn_fit(X, inits)
    assert_same_parameters(ours, theirs, rtol=1e-8)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    # EM still moved in the last iterations: the comparison is not of a fixed point.
    assert ours.history_[-1] - ours.history_[-2] > 1e-6


def test_shifted_data_give_shifted_parameters(data):
    """Stable moments: fitting data+1e6 equals fitting data, shifted, to rtol 1e-8."""
    inits = initial_parameters(data, N_COMPONENTS)
    near = daskem_fit(data, inits)
    far = daskem_fit(data + 1e6, {**inits, "means_init": inits["means_init"] + 1e6})
    np.testing.assert_allclose(far.means_ - 1e6, near.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(far.covariances_, near.covariances_, rtol=1e-8)
    np.testing.assert_allclose(far.weights_, near.weights_, rtol=1e-8)


@pytest.mark.parametrize("chunk_rows", [2000, 300])
def test_float32_data_match(tmp_path, data, chunk_rows):
    """float32 rows are accumulated in float64: they match scikit-learn fed the same
    values in float64 to 1e-8, and scikit-learn's own float32 run loosely."""
    X32 = data.astype(np.float32)
    inits = initial_parameters(X32.astype(np.float64), N_COMPONENTS)
    path = write_zarr(tmp_path / "data32.zarr", X32, chunk_rows)
    ours = daskem_fit(str(path), inits, variable="X")
    assert_same_parameters(ours, sklearn_fit(X32.astype(np.float64), inits), rtol=1e-8)
    assert_same_parameters(ours, sklearn_fit(X32, inits), rtol=1e-3)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("chunk_rows", [2000, 333])
@pytest.mark.parametrize("shift", [0.0, 1e6])
def test_every_covariance_type_matches_scikit_learn(tmp_path, data, covariance_type, chunk_rows, shift):
    X = data + shift
    inits = initial_parameters(X, N_COMPONENTS, covariance_type=covariance_type)
    path = write_zarr(tmp_path / "data.zarr", X, chunk_rows)
    ours = daskem_fit(str(path), inits, settings={"covariance_type": covariance_type}, variable="X")
    reference = X if shift == 0 else data  # scikit-learn's tied and diag moments are raw: fit it unshifted
    reference_inits = {**inits, "means_init": inits["means_init"] - shift}
    theirs = sklearn_fit(reference, reference_inits, covariance_type=covariance_type)
    np.testing.assert_allclose(ours.means_ - shift, theirs.means_, rtol=1e-8, atol=1e-8)
    for name in ("weights_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(theirs, name), rtol=1e-8, err_msg=name)
    assert ours.covariances_.shape == theirs.covariances_.shape
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-9)
    np.testing.assert_allclose(ours.bic(X), theirs.bic(reference), rtol=1e-9)


def test_predictions_match_scikit_learn(data):
    inits = initial_parameters(data, N_COMPONENTS)
    ours, theirs = daskem_fit(data, inits, n_iter=5), sklearn_fit(data, inits, n_iter=5)
    np.testing.assert_allclose(ours.score_samples(data), theirs.score_samples(data), rtol=1e-8)
    np.testing.assert_allclose(ours.predict_proba(data), theirs.predict_proba(data), rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(data), theirs.predict(data))
    np.testing.assert_allclose(ours.score(data), theirs.score(data), rtol=1e-10)
    np.testing.assert_allclose(ours.bic(data), theirs.bic(data), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(data), theirs.aic(data), rtol=1e-10)
    np.testing.assert_allclose(ours.precisions_cholesky_, theirs.precisions_cholesky_, rtol=1e-7, atol=1e-12)
