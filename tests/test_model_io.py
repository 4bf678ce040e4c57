"""Model files (layer 4): exact round trips, atomic writes, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import daskem
from daskem.exceptions import InputError, InputNotFoundError, OutputExistsError

from conftest import make_mixture_data


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
