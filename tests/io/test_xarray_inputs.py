"""xarray inputs: rows and features chosen by dimension name, images stacked into rows and
scored back onto their own dimensions, coordinates kept."""

from __future__ import annotations

import json
import warnings

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.exceptions import InputError

CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 6.0, 0.0], [0.0, 6.0, 6.0]])


@pytest.fixture(scope="module")
def image() -> tuple[xr.DataArray, np.ndarray]:
    """A 40 × 30 image of 3 bands whose pixels come from 3 classes, and the class of each pixel."""
    rng = np.random.default_rng(5)
    classes = rng.integers(3, size=(40, 30))
    values = CENTRES[classes] + rng.normal(scale=0.7, size=(40, 30, 3))
    array = xr.DataArray(da.from_array(values, chunks=(10, 30, 3)), dims=("y", "x", "band"),
                         coords={"y": 1000.0 - 10 * np.arange(40), "x": 500.0 + 5 * np.arange(30),
                                 "band": ["red", "green", "nir"]}, name="image")
    return array, classes


def test_an_image_without_sample_dim_is_refused_with_the_call_to_make(image):
    with pytest.raises(InputError, match=r"say sample_dim=\('y', 'x'\) \(--sample-dim y,x\)"):
        daskem.GaussianMixture(3).fit(image[0])


def test_an_image_is_fitted_pixel_by_pixel_and_scored_back_into_a_label_map(image):
    array, classes = image
    model = daskem.GaussianMixture(3, sample_dim=("y", "x"), random_state=0).fit(array)
    # The same rows, in the same order and chunks, as NumPy: the same bits.
    rows = array.values.reshape(-1, 3)
    reference = daskem.GaussianMixture(3, random_state=0, chunk_rows=300).fit(rows)
    np.testing.assert_array_equal(model.means_, reference.means_)
    np.testing.assert_array_equal(model.covariances_, reference.covariances_)
    assert list(model.feature_names_in_) == ["red", "green", "nir"]  # the band coordinate

    scores = model.score_dataset(array)
    assert scores["label"].dims == ("y", "x") and scores["responsibility"].dims == ("y", "x", "component")
    np.testing.assert_array_equal(scores["y"].values, array["y"].values)
    np.testing.assert_array_equal(scores["x"].values, array["x"].values)
    labels = scores["label"].values
    np.testing.assert_array_equal(labels.ravel(), reference.predict(rows))
    # Each class is one component (up to naming): the map is the classes, relabelled.
    assert all(len(np.unique(labels[classes == c])) == 1 for c in range(3))
    np.testing.assert_allclose(scores["log_likelihood"].values.ravel(), reference.score_samples(rows),
                               rtol=1e-12)


def test_weights_over_the_image_are_stacked_like_its_pixels(image):
    array, _ = image
    weights = xr.DataArray(np.linspace(0.5, 2.0, 1200).reshape(40, 30), dims=("y", "x"))
    model = daskem.GaussianMixture(3, sample_dim=("y", "x"), random_state=0).fit(array, sample_weight=weights)
    reference = daskem.GaussianMixture(3, random_state=0, chunk_rows=300).fit(
        array.values.reshape(-1, 3), sample_weight=weights.values.ravel())
    np.testing.assert_array_equal(model.means_, reference.means_)
    ds = xr.Dataset({"image": array, "w": weights})
    by_name = daskem.GaussianMixture(3, sample_dim=("y", "x"), random_state=0).fit(
        ds, variable="image", sample_weight="w")
    np.testing.assert_array_equal(by_name.means_, reference.means_)


@pytest.mark.parametrize(("dims", "settings"), [
    (("band", "time"), {}),                              # band is a feature dimension by its name
    (("wavelength", "time"), {"sample_dim": "time"}),    # the features are the other one
    (("wavelength", "time"), {"feature_dim": "wavelength"}),
])
def test_the_rows_are_the_dimension_named_so_whatever_the_order(dims, settings):
    values = np.random.default_rng(1).normal(size=(3, 2000))
    array = xr.DataArray(values, dims=dims, coords={dims[0]: ["a", "b", "c"]})
    model = daskem.GaussianMixture(2, random_state=0, **settings).fit(array)
    assert model.n_features_in_ == 3 and list(model.feature_names_in_) == ["a", "b", "c"]
    reference = daskem.GaussianMixture(2, random_state=0).fit(values.T)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    assert model.predict(array).shape == (2000,)


@pytest.mark.parametrize(("dims", "settings", "message"), [
    (("a", "b", "c"), {}, r"say which holds the features with feature_dim="),
    (("y", "x", "band"), {"sample_dim": ("y", "z")}, r"not 'z'"),
    (("y", "x", "band"), {"sample_dim": "y"}, r"must name each of them once"),
    (("y", "x", "band"), {"sample_dim": ("y", "x"), "feature_dim": "y"}, r"must name each of them once"),
])
def test_dimensions_whose_roles_cannot_be_told_are_refused(dims, settings, message):
    array = xr.DataArray(np.zeros((4, 5, 3)), dims=dims)
    with pytest.raises(InputError, match=message):
        daskem.GaussianMixture(2, **settings).fit(array)


def test_sample_dim_on_a_numpy_array_is_refused():
    with pytest.raises(InputError, match="name dimensions of xarray inputs"):
        daskem.GaussianMixture(2, sample_dim="time").fit(np.zeros((10, 2)))


def test_the_command_line_fits_an_image_in_zarr_and_writes_a_label_map(image, tmp_path):
    array, classes = image
    with warnings.catch_warnings():  # zarr: strings (the band names) have no Zarr 3 specification yet
        warnings.simplefilter("ignore")
        array.to_dataset().to_zarr(tmp_path / "image.zarr", zarr_format=3, consolidated=False)
    store, model, scores = (str(tmp_path / name) for name in ("image.zarr", "model.zarr", "scores.zarr"))
    runner = CliRunner()
    result = runner.invoke(main, ["--json", "fit", store, "-v", "image", "-k", "3", "--sample-dim", "y,x",
                                  "--out", model])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["rows"] == 1200
    result = runner.invoke(main, ["--json", "predict", model, store, "-v", "image", "--sample-dim", "y,x",
                                  "--out", scores])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 1200
    with xr.open_zarr(scores) as written:
        assert written["label"].dims == ("y", "x")
        np.testing.assert_array_equal(written["x"].values, array["x"].values)
        labels = written["label"].values
    assert all(len(np.unique(labels[classes == c])) == 1 for c in range(3))
    with xr.open_zarr(model) as fitted:
        assert list(fitted["feature"].values) == ["red", "green", "nir"]
    result = runner.invoke(main, ["fit", store, "-v", "image", "-k", "3"])
    assert result.exit_code == 1 and "got 3-D shape (40, 30, 3); for an image" in result.stderr
    assert "(--sample-dim y,x)" in result.stderr


def test_selection_and_a_job_take_the_dimensions_too(image, tmp_path):
    array, classes = image
    selection = daskem.select(array, [2, 3], sample_dim=("y", "x"), random_state=0)
    assert selection.best_.n_components == 3 and list(selection.best_.feature_names_in_) == ["red", "green", "nir"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zarr: string coordinates have no Zarr 3 specification yet
        array.to_dataset().to_zarr(tmp_path / "image.zarr", zarr_format=3, consolidated=False)
    result = CliRunner().invoke(main, ["--json", "select", str(tmp_path / "image.zarr"), "-v", "image", "-k", "2-3",
                                       "--sample-dim", "y,x"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["best"]["n_components"] == 3
    (tmp_path / "job.yaml").write_text(
        "data: {path: image.zarr, variable: image, sample_dim: [y, x]}\n"
        "fit: {n_components: 3}\n"
        "outputs: {model: model.zarr, scores: scores.zarr, report: report.json}\n")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "job.yaml")])
    assert result.exit_code == 0, result.output
    with xr.open_zarr(tmp_path / "scores.zarr") as scores:
        labels = scores["label"].values
        assert scores["label"].dims == ("y", "x")
    assert all(len(np.unique(labels[classes == c])) == 1 for c in range(3))
