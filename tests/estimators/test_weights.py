"""Sample weights: integer weights repeat rows, zero weights drop them, tol is
per unit weight, and bad weights are refused with a clear message."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr

import daskem
from daskem.exceptions import InputError
from tests.helpers import initial_parameters, make_mixture_data, write_zarr

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


DATA = make_mixture_data(n_samples=600, n_features=3, n_components=3, seed=1, separation=1.0)


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return DATA


def fit(X, covariance_type="full", n_iter=15, **kwargs):
    """EM from one fixed start (computed from DATA), whatever X is."""
    inits = initial_parameters(DATA, 3, covariance_type=covariance_type)
    with pytest.warns(daskem.ConvergenceWarning):
        return daskem.GaussianMixture(3, covariance_type=covariance_type, tol=0, max_iter=n_iter,
                                      chunk_rows=128, **inits).fit(X, **kwargs)


def assert_same_fit(a, b, rtol=1e-10):
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=1e-12, err_msg=name)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_equal_repeated_rows(data, covariance_type):
    counts = np.random.default_rng(0).integers(0, 4, size=len(data))
    weighted = fit(data, covariance_type, sample_weight=counts)
    repeated = fit(np.repeat(data, counts, axis=0), covariance_type)
    assert_same_fit(weighted, repeated)
    np.testing.assert_allclose(weighted.history_, repeated.history_, rtol=1e-12)


def test_zero_weights_equal_dropped_rows(data):
    keep = np.random.default_rng(1).uniform(size=len(data)) < 0.7
    weighted = fit(data, sample_weight=keep.astype(float))
    dropped = fit(data[keep])
    assert_same_fit(weighted, dropped)


def test_scaling_the_weights_changes_nothing(data):
    """tol is per unit weight: the history is a mean, whatever the weights' scale."""
    w = np.random.default_rng(2).uniform(0.5, 2.0, size=len(data))
    small, large = fit(data, sample_weight=w), fit(data, sample_weight=1000.0 * w)
    assert_same_fit(small, large)
    np.testing.assert_allclose(small.history_, large.history_, rtol=1e-12)
    converged = daskem.GaussianMixture(3, tol=1e-4, random_state=0).fit(data, sample_weight=1000.0 * w)
    assert converged.converged_ and abs(np.diff(converged.history_)[-1]) < 1e-4


def test_weights_as_variables_beside_the_data(tmp_path, data):
    w = np.random.default_rng(3).integers(1, 3, size=len(data)).astype(float)
    path = write_zarr(tmp_path / "d.zarr", data, 128)
    import zarr

    zarr.open_group(path, mode="a").create_array("w", data=w, chunks=(100,))
    dataset = xr.Dataset({"X": (("s", "f"), data), "w": ("s", w)})
    reference = fit(data, sample_weight=w)
    for X, kwargs in [
        (str(path), {"variable": "X", "sample_weight": "w"}),
        (dataset, {"variable": "X", "sample_weight": "w"}),
        (dataset["X"], {"sample_weight": dataset["w"]}),
        (da.from_array(data, chunks=200), {"sample_weight": da.from_array(w, chunks=50)}),
    ]:
        assert_same_fit(fit(X, **kwargs), reference)


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        (lambda n: -np.ones(n), "1 negative|negative, NaN or infinite"),
        (lambda n: np.r_[np.nan, np.ones(n - 1)], "negative, NaN or infinite value\\(s\\) \\(first at row 0,"),
        (lambda n: np.ones(n - 1), "sample_weight must have shape \\(600,\\)"),
        (lambda n: np.zeros(n), "sums to zero"),
        (lambda n: np.ones((n, 1)), "must have shape"),
        (lambda n: np.array(["a"] * n), "must be numeric"),
    ],
)
def test_bad_weights_are_refused(data, weights, message):
    with pytest.raises(InputError, match=message):
        daskem.GaussianMixture(3).fit(data, sample_weight=weights(len(data)))


def test_bad_lazy_weights_are_refused_when_read(data):
    w = np.ones(len(data))
    w[300] = -1.0
    with pytest.raises(InputError, match="negative, NaN or infinite value\\(s\\) \\(first at row 300, among rows 256–383\\)"):
        daskem.GaussianMixture(3, chunk_rows=128, **initial_parameters(data, 3)).fit(
            da.from_array(data), sample_weight=da.from_array(w, chunks=100)
        )


def test_a_weight_name_needs_a_container(data):
    with pytest.raises(InputError, match="sample_weight names a variable"):
        daskem.GaussianMixture(3).fit(data, sample_weight="w")
