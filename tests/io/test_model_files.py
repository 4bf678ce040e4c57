"""Model files (layer 4): exact round trips, atomic writes, clear refusals."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.exceptions import DaskemError, InputError, InputNotFoundError, OutputExistsError
from tests.helpers import make_mixture_data, write_zarr


@pytest.fixture(scope="module")
def model() -> daskem.GaussianMixture:
    X = make_mixture_data(n_samples=500, n_features=3, n_components=2, seed=5)
    return daskem.GaussianMixture(2, random_state=0, tol=1e-6).fit(X)


def test_dataset_layout(model):
    ds = model.to_dataset()
    assert ds["weights"].dims == ("component",)
    assert ds["means"].dims == ("component", "feature")
    assert ds["covariances"].dims == ("component", "feature", "feature2")
    assert ds["history"].dims == ("iteration",) and ds.sizes["iteration"] == model.n_iter_
    assert ds.attrs["covariance_type"] == "full"
    assert ds.attrs["n_iter"] == model.n_iter_ and ds.attrs["converged"] == 1
    assert ds.attrs["lower_bound"] == model.lower_bound_
    assert ds.attrs["daskem_version"] == daskem.__version__


@pytest.mark.parametrize("name", ["model.zarr", "model.nc"])
def test_save_and_load_round_trip_exactly(tmp_path, model, name):
    model.save(tmp_path / name)
    loaded = daskem.load(tmp_path / name)
    xr.testing.assert_identical(loaded.to_dataset(), model.to_dataset())
    for attribute in ("weights_", "means_", "covariances_", "precisions_cholesky_", "history_"):
        np.testing.assert_array_equal(getattr(loaded, attribute), getattr(model, attribute))
    assert (loaded.n_iter_, loaded.converged_, loaded.lower_bound_) == (model.n_iter_, model.converged_, model.lower_bound_)
    X = make_mixture_data(n_samples=50, n_features=3, seed=9)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left behind


def test_existing_output_is_kept_unless_overwrite(tmp_path, model):
    path = tmp_path / "model.zarr"
    model.save(path)
    with pytest.raises(OutputExistsError, match="exists; pass overwrite=True"):
        model.save(path)
    model.save(path, overwrite=True)
    np.testing.assert_array_equal(daskem.load(path).means_, model.means_)


@pytest.mark.parametrize("name", ["model.zarr", "model.nc"])
def test_failed_write_leaves_nothing_half_written(tmp_path, model, monkeypatch, name):
    path = tmp_path / name
    model.save(path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))

    def broken_write(self, target, *args, **kwargs):
        target = Path(target)  # the Zarr writer is given a string (it may be a URL)
        (target / "partial").mkdir(parents=True) if name.endswith("zarr") else target.write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr" if name.endswith("zarr") else "to_netcdf", broken_write)
    with pytest.raises(OSError, match="disk full"):
        model.save(path, overwrite=True)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    monkeypatch.undo()
    np.testing.assert_array_equal(daskem.load(path).means_, model.means_)


def test_load_refuses_what_is_not_a_model(tmp_path):
    with pytest.raises(InputNotFoundError, match="no such file"):
        daskem.load(tmp_path / "missing.zarr")
    xr.Dataset({"x": ("a", [1.0])}).to_zarr(tmp_path / "other.zarr", consolidated=False)
    with pytest.raises(InputError, match="not a daskem model file"):
        daskem.load(tmp_path / "other.zarr")


# ------------------------------------------------ hand-edited and hostile files


def edit_attribute(name, value):
    def edit(path):
        group = zarr.open_group(path, mode="r+")
        group.attrs[name] = value
    return edit


def edit_values(variable, change):
    def edit(path):
        array = zarr.open_group(path, mode="r+")[variable]
        array[...] = change(array[...])
    return edit


def replace_array(variable, values, dims):
    def edit(path):
        group = zarr.open_group(path, mode="r+")
        del group[variable]
        group.create_array(variable, data=values, dimension_names=dims)
    return edit


def huge(path):
    """A few kilobytes that declare 10⁹ components (no chunk is stored: all fill values)."""
    group = zarr.open_group(path, mode="r+")
    for name, shape, dims in (("weights", (10**9,), ("component",)), ("component", (10**9,), ("component",)),
                              ("means", (10**9, 3), ("component", "feature")),
                              ("covariances", (10**9, 3, 3), ("component", "feature", "feature2"))):
        del group[name]
        group.create_array(name, shape=shape, dtype="float64", chunks=(10**6, *shape[1:]), dimension_names=dims)


def asymmetric(covariances):
    covariances = covariances.copy()
    covariances[1, 0, 2] += 0.1
    return covariances


HOSTILE = {
    "negative weights": (edit_values("weights", lambda w: w * np.array([-1.0, 3.0]) / 2), "must be non-negative"),
    "unnormalised weights": (edit_values("weights", lambda w: w * 2), "sum to 1; they sum to 2"),
    "a NaN mean": (edit_values("means", lambda m: np.where(m == m[0, 0], np.nan, m)), "means hold 1 NaN"),
    "an infinite variance": (edit_values("covariances", lambda c: np.where(c == c[0, 0, 0], np.inf, c)),
                             "covariances hold 1 NaN or infinite"),
    "covariance_type contradicting the shapes": (edit_attribute("covariance_type", "diag"),
                                                 "covariances has dimensions ('component', 'feature', 'feature2'), "
                                                 "but a 'diag' model has"),
    "an unknown covariance_type": (edit_attribute("covariance_type", "banded"),
                                   "covariance_type='banded' is not supported"),
    "a non-symmetric covariance": (edit_values("covariances", asymmetric), "component 1 is not symmetric"),
    "a covariance that is not positive definite": (edit_values("covariances", lambda c: -c),
                                                   "the covariance of component 0 is not positive definite"),
    "weights and means of different lengths": (replace_array("weights", np.full(3, 1 / 3), ["component"]),
                                               "cannot read"),
    "10⁹ components in a small file": (huge, "declares arrays of 14,000,000,0"),
    "a newer format": (edit_attribute("format_version", 2), "written by a newer daskem (format 2"),
    "n_iter that is not a number": (edit_attribute("n_iter", "abc"), "attribute n_iter is 'abc', not an integer"),
    "n_iter that contradicts the history": (edit_attribute("n_iter", 1), "n_iter is 1 but the history has"),
    "not a model": (edit_attribute("model", "something else"), "is not a daskem model file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_damaged_or_hand_edited_model_files_are_refused_by_every_command(tmp_path, model, case):
    edit, message = HOSTILE[case]
    path = tmp_path / "model.zarr"
    model.save(path)
    edit(path)
    with pytest.raises(DaskemError, match=re.escape(message)):
        daskem.load(path)
    X = make_mixture_data(n_samples=50, n_features=3, seed=9)
    data = write_zarr(tmp_path / "data.zarr", X, chunk_rows=50)
    for command in (["info", str(path)], ["score", str(path), str(data)],
                    ["predict", str(path), str(data), "--out", str(tmp_path / "scores.zarr")]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1 and result.stdout == "", (command, result.output)
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1 and message in result.stderr
    assert not (tmp_path / "scores.zarr").exists()


def test_files_from_before_the_format_version_still_load(tmp_path, model):
    path = tmp_path / "model.zarr"
    model.save(path)
    group = zarr.open_group(path, mode="r+")
    del group.attrs["format_version"]
    del group.attrs["daskem_output"]
    np.testing.assert_array_equal(daskem.load(path).means_, model.means_)
