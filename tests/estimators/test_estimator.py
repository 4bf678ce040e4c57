"""The estimator (layer 5) and its input adapters (layer 4): accepted inputs,
return types, and a clear error for every kind of bad input."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr

import daskem
from daskem.exceptions import InputError, InputNotFoundError, NonFiniteDataError, NotFittedError
from daskem.kernels import block_kernels, estep
from daskem.kernels.gaussian import GaussianParams
from tests.helpers import initial_parameters, make_mixture_data, reg_covar_dip, write_zarr


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=900, n_features=3, n_components=3, seed=2, separation=4.0)


@pytest.fixture(scope="module")
def fitted(data) -> daskem.GaussianMixture:
    return daskem.GaussianMixture(3, random_state=0).fit(data)


@pytest.fixture
def store(tmp_path, data) -> str:
    return str(write_zarr(tmp_path / "data.zarr", data, chunk_rows=200))


def as_inputs(data, store):
    dataset = xr.Dataset({"X": (("sample", "feature"), data), "other": ("sample", data[:, 0])})
    return {
        "numpy": (data, {}),
        "list": (data.tolist(), {}),
        "dask": (da.from_array(data, chunks=(250, 3)), {}),
        "dataarray": (dataset["X"], {}),
        "dataarray-dask": (dataset["X"].chunk({"sample": 300}), {}),
        "dataset": (dataset, {"variable": "X"}),
        "zarr-group": (store, {"variable": "X"}),
        "zarr-array": (store + "/X", {}),
    }


@pytest.mark.parametrize(
    "kind", ["numpy", "list", "dask", "dataarray", "dataarray-dask", "dataset", "zarr-group", "zarr-array"]
)
def test_every_input_kind_gives_the_same_fit(data, store, fitted, kind):
    X, kwargs = as_inputs(data, store)[kind]
    model = daskem.GaussianMixture(3, random_state=0).fit(X, **kwargs)
    np.testing.assert_allclose(model.means_, fitted.means_, rtol=1e-10)
    np.testing.assert_allclose(model.covariances_, fitted.covariances_, rtol=1e-10)
    labels = model.predict(X, **kwargs)
    lazy = isinstance(X, (da.Array, str)) or kind == "dataarray-dask"
    assert isinstance(labels, da.Array) is lazy
    np.testing.assert_array_equal(np.asarray(labels), fitted.predict(data))


def test_fit_returns_self_and_fitted_attributes(data):
    model = daskem.GaussianMixture(3, random_state=0)
    assert model.fit(data) is model
    assert model.weights_.shape == (3,) and model.means_.shape == (3, 3)
    assert model.covariances_.shape == model.precisions_.shape == model.precisions_cholesky_.shape == (3, 3, 3)
    np.testing.assert_allclose(model.precisions_ @ model.covariances_, np.broadcast_to(np.eye(3), (3, 3, 3)), atol=1e-10)
    assert model.converged_ is True and model.n_iter_ == len(model.history_) >= 2
    assert model.n_features_in_ == 3
    assert np.all(np.diff(model.history_) >= -reg_covar_dip(model))


def test_small_store_chunks_are_merged_into_larger_dask_chunks(tmp_path, store):
    from daskem.io.inputs import as_row_chunked
    from daskem.io.zarr_rows import MIN_CHUNKS

    # 200 stored chunks of 100 rows: merged, but into no fewer than MIN_CHUNKS chunks (one per
    # core), well below the size target.
    many = write_zarr(tmp_path / "many.zarr", make_mixture_data(n_samples=20_000, n_features=3), chunk_rows=100)
    merged = 100 * (200 // MIN_CHUNKS)
    expected = (merged,) * (20_000 // merged) + ((20_000 % merged,) if 20_000 % merged else ())
    assert as_row_chunked(str(many), "X").chunks == (expected, (3,))
    assert len(expected) >= MIN_CHUNKS
    assert as_row_chunked(store, "X").chunks == ((200,) * 4 + (100,), (3,))  # too few to merge
    assert as_row_chunked(store, "X", chunk_rows=400).chunks == ((400, 400, 100), (3,))


def test_lazy_predictions_have_the_row_chunks_of_the_input(store, data):
    fitted = daskem.GaussianMixture(3, random_state=0, chunk_rows=200).fit(data)
    proba = fitted.predict_proba(store, variable="X")
    scores = fitted.score_samples(store, variable="X")
    assert proba.chunks == ((200,) * 4 + (100,), (3,))
    assert scores.chunks == ((200,) * 4 + (100,),)
    np.testing.assert_allclose(proba.compute(), fitted.predict_proba(data), rtol=1e-12)
    np.testing.assert_allclose(scores.compute(), fitted.score_samples(data), rtol=1e-12)
    np.testing.assert_allclose(fitted.score(store, variable="X"), fitted.score(data), rtol=1e-12)
    np.testing.assert_allclose(fitted.bic(store, variable="X"), fitted.bic(data), rtol=1e-12)


def test_fit_predict_equals_fit_then_predict(data, fitted):
    labels = daskem.GaussianMixture(3, random_state=0).fit_predict(data)
    np.testing.assert_array_equal(labels, fitted.predict(data))


def test_random_state_makes_fits_reproducible(data):
    first = daskem.GaussianMixture(3, random_state=7).fit(data)
    again = daskem.GaussianMixture(3, random_state=7).fit(data)
    np.testing.assert_array_equal(first.means_, again.means_)
    np.testing.assert_array_equal(first.history_, again.history_)


def test_finds_the_true_components(tmp_path):
    from daskem.app.generate import generate

    truth = generate(tmp_path / "d.zarr", n_samples=20_000, n_features=5, n_components=4, seed=3, chunk_rows=3000)
    model = daskem.GaussianMixture(4, random_state=0).fit(str(tmp_path / "d.zarr"), variable="X")
    order = [int(np.argmin(((model.means_ - m) ** 2).sum(axis=1))) for m in truth.means]
    assert sorted(order) == [0, 1, 2, 3]
    np.testing.assert_allclose(model.means_[order], truth.means, atol=0.1)
    np.testing.assert_allclose(model.weights_[order], truth.weights, atol=0.02)
    np.testing.assert_allclose(model.covariances_[order], truth.covariances, atol=0.15)


def test_explicit_initial_parameters_are_honoured(data):
    inits = initial_parameters(data, 3)
    with pytest.warns(daskem.ConvergenceWarning):
        model = daskem.GaussianMixture(3, max_iter=1, tol=0, **inits).fit(data)
    resp = np.exp(estep.e_step(data, GaussianParams.from_precisions(
        inits["weights_init"], inits["means_init"], inits["precisions_init"]))[1])
    expected = (resp.T @ data) / resp.sum(axis=0)[:, None]  # one M-step from the given start
    np.testing.assert_allclose(model.means_, expected, rtol=1e-10)


def test_partial_initial_parameters_override_the_estimate(data):
    from daskem.engine.initialization import InitSpec, initial_params
    from daskem.families.gaussian import GaussianFamily

    means = initial_parameters(data, 3)["means_init"]

    def init(**given):
        (params,) = initial_params(da.from_array(data), None, [InitSpec(3, GaussianFamily(), given=given)],
                                   rng=np.random.default_rng(0))
        return params

    estimated, overridden = init(), init(means_init=means)
    np.testing.assert_array_equal(overridden.means, means)
    np.testing.assert_array_equal(overridden.weights, estimated.weights)
    np.testing.assert_array_equal(overridden.covariances, estimated.covariances)
    assert not np.allclose(estimated.means, means)


def test_sample_draws_from_the_fitted_model(fitted):
    X, y = fitted.sample(5000)
    assert X.shape == (5000, 3) and y.shape == (5000,)
    np.testing.assert_allclose(np.bincount(y, minlength=3) / 5000, fitted.weights_, atol=0.03)
    again, _ = fitted.sample(5000)
    np.testing.assert_array_equal(X, again)  # random_state fixes the draw


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_components": 0}, "n_components must be an integer >= 1"),
        ({"n_components": 2.5}, "n_components must be an integer"),
        ({"covariance_type": "banded"}, "covariance_type='banded' is not supported"),
        ({"n_init": 0}, "n_init must be an integer >= 1"),
        ({"tol": -1.0}, "tol must be a finite number >= 0"),
        ({"reg_covar": float("nan")}, "reg_covar must be a finite number"),
        ({"max_iter": -1}, "max_iter must be an integer >= 0"),
        ({"init_params": "magic"}, "init_params='magic' is not supported"),
        ({"random_state": "seed"}, "random_state must be None, an integer"),
        ({"split_every": 1}, "split_every must be an integer >= 2"),
        ({"weights_init": [0.5, 0.6, -0.1]}, "weights_init must be non-negative and sum to 1"),
        ({"means_init": np.zeros((2, 3))}, r"means_init must have shape \(3, 3\)"),
        ({"precisions_init": np.ones((3, 3, 3)) + np.arange(3)}, "precisions_init must hold symmetric"),
    ],
)
def test_bad_settings_are_refused_before_any_work(data, settings, message):
    settings = {"n_components": 3, **settings}
    with pytest.raises(InputError, match=message):
        daskem.GaussianMixture(**settings).fit(data)


def test_too_few_rows(data):
    with pytest.raises(InputError, match="the data have 2 rows, fewer than n_components=3"):
        daskem.GaussianMixture(3).fit(data[:2])


@pytest.mark.parametrize("shape", [(10,), (2, 5, 3)])
def test_wrong_number_of_dimensions(shape):
    with pytest.raises(InputError, match=f"expected a 2-D array.*{len(shape)}-D"):
        daskem.GaussianMixture(1).fit(np.zeros(shape))


@pytest.mark.parametrize(("values", "message"), [
    (np.array([["a", "b"]] * 3), "expected numeric"),
    (np.array([[True, False]] * 3), "expected numeric"),
    (np.ones((3, 2), complex), "Complex data not supported"),
    (np.array([[1.0, {"a": 1}]] * 3, dtype=object), "could not be converted to a number"),
])
def test_non_numeric_data(values, message):
    with pytest.raises(InputError, match=message):
        daskem.GaussianMixture(1).fit(values)


def test_objects_holding_numbers_are_numbers(data):
    """An object array of numbers fits as float64 (scikit-learn's check_dtype_object)."""
    model = daskem.GaussianMixture(2, random_state=0).fit(data.astype(object))
    np.testing.assert_array_equal(model.means_, daskem.GaussianMixture(2, random_state=0).fit(data).means_)


def test_sparse_input_is_refused_by_name():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    with pytest.raises(InputError, match="sparse input .* is not supported"):
        daskem.GaussianMixture(1).fit(scipy_sparse.csr_matrix(np.eye(5)))


def test_missing_path(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such file or directory"):
        daskem.GaussianMixture(1).fit(str(tmp_path / "nothing.zarr"), variable="X")


def test_path_that_is_not_zarr(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="not a readable Zarr store"):
        daskem.GaussianMixture(1).fit(str(tmp_path / "notes.txt"))


def test_missing_variable_lists_what_exists(store):
    with pytest.raises(InputNotFoundError, match=r"variable 'Y' not found .* it holds the arrays 'X'"):
        daskem.GaussianMixture(1).fit(store, variable="Y")


def test_group_with_several_arrays_needs_a_variable(tmp_path, data):
    path = write_zarr(tmp_path / "two.zarr", data, 100)
    zarr.open_group(path, mode="a").create_array("Z", data=data, chunks=(100, 3))
    with pytest.raises(InputError, match="holding the arrays 'X', 'Z'; say which"):
        daskem.GaussianMixture(1).fit(str(path))


def test_dataset_needs_an_existing_variable(data):
    ds = xr.Dataset({"X": (("s", "f"), data), "Y": (("s", "f"), data)})
    with pytest.raises(InputNotFoundError, match=r"holds the variables \['X', 'Y'\]; say which"):
        daskem.GaussianMixture(1).fit(ds)
    # with one variable there is nothing to say, as with a Zarr group holding one array
    assert daskem.GaussianMixture(1).fit(ds[["X"]]).n_features_in_ == data.shape[1]
    with pytest.raises(InputNotFoundError, match="'Q' is not one of them"):
        daskem.GaussianMixture(1).fit(ds, variable="Q")


def test_nan_found_during_the_pass_names_its_row(tmp_path, data):
    bad = data.copy()
    bad[450, 2] = np.nan
    path = str(write_zarr(tmp_path / "bad.zarr", bad, chunk_rows=200))
    inits = initial_parameters(data, 3)
    with pytest.raises(NonFiniteDataError, match=r"first at row 450 \(1 value\(s\) in 1 row\(s\) among rows 400–599\)"):
        daskem.GaussianMixture(3, chunk_rows=200, missing="error", **inits).fit(path, variable="X")
    with pytest.raises(NonFiniteDataError, match=r"first at row 450 .*while initialising with k-means\|\|"):
        daskem.GaussianMixture(3, chunk_rows=200, init_params="k-means||", missing="error").fit(path, variable="X")


def test_feature_mismatch_at_predict(fitted, data):
    with pytest.raises(InputError, match="X has 2 features, but GaussianMixture is expecting 3 features"):
        fitted.predict(data[:, :2])
    with pytest.raises(InputError, match="X has 2 features"):
        fitted.predict_proba(da.from_array(data[:, :2]))


def test_nan_at_predict(fitted, data):
    bad = data.copy()
    bad[5, 0] = np.inf
    with pytest.raises(NonFiniteDataError, match="NaN or infinite"):
        fitted.predict(bad)


def test_unknown_chunk_sizes(data):
    X = da.from_array(data, chunks=100)
    X = X[X[:, 0] > -100]  # boolean indexing leaves the row chunk sizes unknown
    with pytest.raises(InputError, match="compute_chunk_sizes"):
        daskem.GaussianMixture(1).fit(X)


def test_feature_chunks_are_merged(data):
    X = da.from_array(data, chunks=(300, 1))
    model = daskem.GaussianMixture(3, random_state=0).fit(X)
    assert model.means_.shape == (3, 3)


def test_not_fitted():
    model = daskem.GaussianMixture(2)
    assert not hasattr(model, "means_")
    with pytest.raises(NotFittedError, match="not fitted yet"):
        model.predict(np.zeros((3, 2)))


def test_repr_shows_changed_settings():
    assert repr(daskem.GaussianMixture(4, tol=1e-5)) == "GaussianMixture(n_components=4, tol=1e-05)"


def test_verbose_progress_changes_nothing_but_the_output(data, caplog):
    """verbose=2 adds Dask's progress bar (for passes over a second) to the log lines."""
    quiet = daskem.GaussianMixture(2, random_state=0).fit(data)
    with caplog.at_level("INFO", logger="daskem"):
        loud = daskem.GaussianMixture(2, random_state=0, verbose=2).fit(data)
    np.testing.assert_array_equal(quiet.means_, loud.means_)
    assert any(record.getMessage().startswith("iteration    1") for record in caplog.records)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_a_fit_with_a_component_on_a_few_far_rows_matches_the_exact_kernel(data, monkeypatch, covariance_type):
    """A component left on a few rows far off (variances near reg_covar) sends only itself to the
    exact differences (block_kernels.SplitKernel): the fit equals one with every component on them."""
    rng = np.random.default_rng(3)
    X = np.vstack([data, data[:4] * 1e-6 + 40.0])  # four rows far from the rest, nearly equal
    means = np.vstack([data[rng.choice(len(data), 3, replace=False)], X[-1:]])
    variances = np.array([1.0, 1.0, 1.0, 1e-9])
    precisions = {"full": (1 / variances)[:, None, None] * np.eye(3),
                  "diag": np.repeat((1 / variances)[:, None], 3, axis=1)}
    start = dict(weights_init=np.full(4, 0.25), means_init=means, precisions_init=precisions[covariance_type])
    kinds = []
    choose = block_kernels.kernel_for
    monkeypatch.setattr(estep, "kernel_for", lambda params, dtype=np.float64: kinds.append(type(choose(params, dtype)))
                        or choose(params, dtype))
    split = daskem.GaussianMixture(4, covariance_type=covariance_type, max_iter=5, tol=0, chunk_rows=300,
                                   **start).fit(X)
    assert kinds[0] is block_kernels.SplitKernel
    monkeypatch.setattr(estep, "kernel_for", lambda params, dtype=np.float64: block_kernels.DifferencesKernel(params, dtype))
    exact = daskem.GaussianMixture(4, covariance_type=covariance_type, max_iter=5, tol=0, chunk_rows=300,
                                   **start).fit(X)
    # The near components' expanded terms lose at most 1e4 ulps a row: 1e-10 of each array's scale.
    for name in ("weights_", "means_", "covariances_"):
        ours, theirs = getattr(split, name), getattr(exact, name)
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10 * np.abs(theirs).max(), err_msg=name)
    np.testing.assert_allclose(split.lower_bound_, exact.lower_bound_, rtol=1e-12)
