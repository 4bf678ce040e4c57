"""daskem.GaussianMixture as a scikit-learn estimator: its checks, its tools, its conventions."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from sklearn.utils.validation import check_is_fitted

import daskem
from daskem.exceptions import InputError
from daskem.io.model_files import write_dataset
from tests.helpers import make_mixture_data, reg_covar_dip, write_zarr

#: scikit-learn checks that daskem does not pass, each with its reason.
EXPECTED_FAILED_CHECKS: dict[str, str] = {
    "check_sample_weight_equivalence_on_dense_data": (
        "initialisation draws a random sample of rows, and repeating a row changes which rows are "
        "drawn, so the two fits start from different places; from the same start, integer weights "
        "and repeated rows give the same fit (tests/estimators/test_weights.py)"
    ),
}


@parametrize_with_checks(
    [daskem.GaussianMixture(), daskem.GaussianMixture(n_components=2, covariance_type="diag", max_iter=20)],
    # one component starts the same from any sample: the weights check passes there
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS if estimator.n_components > 1 else {},
)
def test_scikit_learn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.fixture(scope="module")
def data():
    return make_mixture_data(n_samples=600, n_features=3, seed=2)


def test_not_fitted_is_scikit_learns_error(data):
    model = daskem.GaussianMixture(2)
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.predict(data)
    check_is_fitted(model.fit(data))


def test_convergence_warning_is_scikit_learns(data):
    with pytest.warns(ConvergenceWarning):
        daskem.GaussianMixture(2, max_iter=1, random_state=0).fit(data)


@pytest.mark.parametrize("make_state", [lambda: 7, lambda: np.random.RandomState(7), lambda: np.random.default_rng(7)])
def test_random_state_takes_what_scikit_learn_takes(data, make_state):
    """An int, a RandomState or a Generator: the same state gives the same fit."""
    first = daskem.GaussianMixture(3, init_params="random_from_data", random_state=make_state()).fit(data)
    second = daskem.GaussianMixture(3, init_params="random_from_data", random_state=make_state()).fit(data)
    np.testing.assert_array_equal(first.means_, second.means_)


def test_clone_and_set_params_keep_every_setting():
    model = daskem.GaussianMixture(4, covariance_type="tied", chunk_rows=500, precision="float64")
    copy = clone(model)
    assert copy.get_params() == model.get_params() and copy is not model
    assert copy.set_params(n_components=5).n_components == 5 and model.n_components == 4
    assert repr(copy) == "GaussianMixture(chunk_rows=500, covariance_type='tied', n_components=5,\n" \
                         "                precision='float64')"


def test_pipeline_scales_then_fits(data):
    pipeline = make_pipeline(StandardScaler(), daskem.GaussianMixture(3, random_state=0)).fit(data)
    scaled = StandardScaler().fit_transform(data)
    direct = daskem.GaussianMixture(3, random_state=0).fit(scaled)
    np.testing.assert_array_equal(pipeline.predict(data), direct.predict(scaled))
    assert pipeline.score(data) == direct.score(scaled)


def _negative_bic(estimator, X, y=None):
    return -estimator.bic(X)


@pytest.mark.parametrize("rows", ["numpy", "dask", "zarr"])
@pytest.mark.parametrize("scoring", [None, _negative_bic])
def test_grid_search_over_n_components(data, rows, scoring, tmp_path):
    """GridSearchCV with the mean log-likelihood (score) or BIC, on NumPy, Dask or Zarr rows (the folds
    of a Zarr store are read lazily, as a Dask array)."""
    X = {"numpy": lambda: data, "dask": lambda: da.from_array(data, chunks=150),
         "zarr": lambda: da.from_zarr(str(write_zarr(tmp_path / "data.zarr", data, chunk_rows=150)), component="X")
         }[rows]()
    search = GridSearchCV(daskem.GaussianMixture(random_state=0), {"n_components": [1, 3]}, scoring=scoring, cv=3)
    search.fit(X)
    # The data were drawn from 3 well-separated components: both criteria pick 3.
    assert search.best_params_ == {"n_components": 3}
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_feature_names_are_kept_and_checked(tmp_path, data):
    frame = pd.DataFrame(data, columns=["height", "weight", "age"])
    model = daskem.GaussianMixture(2, random_state=0).fit(frame)
    assert list(model.feature_names_in_) == ["height", "weight", "age"] and model.n_features_in_ == 3
    with pytest.raises(InputError, match="The feature names should match those that were passed during fit"):
        model.predict(frame[["weight", "height", "age"]])
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        unnamed = model.predict(data)
    np.testing.assert_array_equal(model.predict(frame), unnamed)
    model.save(tmp_path / "model.zarr")
    assert list(daskem.load(tmp_path / "model.zarr").feature_names_in_) == ["height", "weight", "age"]
    # A refit on unnamed rows forgets the names.
    assert not hasattr(model.fit(data), "feature_names_in_")


def test_max_iter_zero_keeps_the_start_and_saves(tmp_path, data):
    means = data[[0, 300, 599]]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # asking for the start alone is not a failure
        model = daskem.GaussianMixture(3, max_iter=0, means_init=means, random_state=0).fit(data)
    np.testing.assert_array_equal(model.means_, means)
    assert model.n_iter_ == 0 and model.lower_bound_ == -np.inf and not model.converged_
    model.save(tmp_path / "start.zarr")
    np.testing.assert_array_equal(daskem.load(tmp_path / "start.zarr").means_, means)


def test_warm_start_detects_convergence_across_fits(data):
    """One iteration per fit: the change is measured from the last fit's lower bound."""
    model = daskem.GaussianMixture(3, max_iter=1, warm_start=True, random_state=0, tol=1e-6)
    bounds = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(200):
            bounds.append(model.fit(data).lower_bound_)
            if model.converged_:
                break
    assert model.converged_ and np.all(np.diff(bounds) >= -reg_covar_dip(model))
    assert abs(bounds[-1] - bounds[-2]) < 1e-6


def test_output_files_follow_conventions(tmp_path, data):
    """Consolidated metadata (xarray opens them without a warning), a feature coordinate, and
    CF-style long_name and units on every variable of the model and score files."""
    model = daskem.GaussianMixture(2, random_state=0).fit(pd.DataFrame(data, columns=["height", "weight", "age"]))
    model.save(tmp_path / "model.zarr")
    write_dataset(model.score_dataset(data), tmp_path / "scores.zarr", "scores")  # as `daskem predict` does
    for name in ("model.zarr", "scores.zarr"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # xarray warns when it finds no consolidated metadata
            stored = xr.open_zarr(tmp_path / name)
        for variable in stored.data_vars:
            assert {"long_name", "units"} <= set(stored[variable].attrs), (name, variable)
    assert stored["log_likelihood"].attrs["units"] == "nat"
    model_file = xr.open_zarr(tmp_path / "model.zarr")
    assert list(model_file["feature"].values) == ["height", "weight", "age"]
    assert list(model_file["component"].values) == [0, 1]


def test_pandas_nullable_dtypes_are_numbers(data):
    frame = pd.DataFrame(data, columns=["a", "b", "c"]).astype({"a": "Float64", "b": "Float64"})
    model = daskem.GaussianMixture(2, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.means_, daskem.GaussianMixture(2, random_state=0).fit(data).means_)
    frame.loc[5, "a"] = pd.NA  # a missing value: fitted as one, or named as one, not as "dtype object"
    assert daskem.GaussianMixture(2, random_state=0).fit(frame).n_missing_values_ == 1
    with pytest.raises(InputError, match="NaN"):
        daskem.GaussianMixture(2, random_state=0, missing="error").fit(frame)


def test_dask_dataframes_stay_lazy(data):
    """A Dask DataFrame is fitted partition by partition and scored lazily, its names kept."""
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_pandas(pd.DataFrame(data, columns=["a", "b", "c"]), npartitions=3)
    inits = {"means_init": data[[0, 300, 599]], "random_state": 0}
    model = daskem.GaussianMixture(3, **inits).fit(frame)
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    # The same EM on the same rows in other chunks: the sums differ only in their order.
    reference = daskem.GaussianMixture(3, **inits).fit(data)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=0, atol=1e-10 * np.abs(data).max())
    labels = model.predict(frame)
    assert isinstance(labels, da.Array) and labels.chunks[0] == tuple(frame.map_partitions(len).compute())
    np.testing.assert_array_equal(labels.compute(), model.predict(pd.DataFrame(data, columns=["a", "b", "c"])))
    with pytest.raises(InputError, match=r"column\(s\) \['name'\] are not numeric"):
        daskem.GaussianMixture(2).fit(frame.assign(name="x"))
