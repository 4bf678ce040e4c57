"""Out-of-core scoring: labels, responsibilities and log-likelihood of every row."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from tests.helpers import CountingArray, make_mixture_data


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=1500, n_features=3, n_components=3, seed=2, separation=4.0)


@pytest.fixture(scope="module")
def fitted(data) -> daskem.GaussianMixture:
    return daskem.GaussianMixture(3, random_state=0).fit(data)


@pytest.fixture
def store(tmp_path, data) -> str:
    ds = xr.Dataset({"X": (("time", "feature"), data)}, coords={"time": np.arange(len(data)) * 10})
    ds.chunk({"time": 500}).to_zarr(tmp_path / "data.zarr", consolidated=False)
    return str(tmp_path / "data.zarr")


def test_score_dataset_reads_each_chunk_once_for_all_three(data, fitted):
    source = CountingArray(data, chunk_rows=500)
    scores = fitted.score_dataset(da.from_array(source, chunks=(500, 3), asarray=True))
    computed = scores.compute()
    assert source.reads == {0: 1, 1: 1, 2: 1}
    np.testing.assert_array_equal(computed["label"].values, fitted.predict(data))
    np.testing.assert_allclose(computed["responsibility"].values, fitted.predict_proba(data), rtol=1e-12)
    np.testing.assert_allclose(computed["log_likelihood"].values, fitted.score_samples(data), rtol=1e-12)


def test_cli_predict_writes_chunk_aligned_scores_with_the_row_coordinate(tmp_path, store, fitted, data):
    fitted.save(tmp_path / "model.zarr")
    out = tmp_path / "scores.zarr"
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "model.zarr"), store, "-v", "X",
                                       "--out", str(out), "--chunk-rows", "500"])
    assert result.exit_code == 0, result.output
    scores = xr.open_zarr(out, consolidated=False)
    assert scores["label"].dims == ("time",) and scores["responsibility"].dims == ("time", "component")
    np.testing.assert_array_equal(scores["time"].values, np.arange(len(data)) * 10)
    assert scores["label"].encoding["chunks"] == (500,)
    np.testing.assert_array_equal(scores["label"].values, fitted.predict(data))
    np.testing.assert_allclose(scores["log_likelihood"].values, fitted.score_samples(data), rtol=1e-12)


def test_cli_score_prints_the_mean_log_likelihood(tmp_path, store, fitted, data):
    fitted.save(tmp_path / "model.zarr")
    result = CliRunner().invoke(main, ["score", str(tmp_path / "model.zarr"), store, "-v", "X"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(float(result.stdout), fitted.score(data), rtol=1e-9)


def test_cli_predict_refuses_mismatched_features(tmp_path, store, data):
    daskem.GaussianMixture(2, random_state=0).fit(data[:, :2]).save(tmp_path / "model.zarr")
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "model.zarr"), store, "-v", "X",
                                       "--out", str(tmp_path / "s.zarr")])
    assert result.exit_code == 1 and "X has 3 features, but GaussianMixture is expecting 2 features" in result.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_rows_named_component_do_not_clash_with_the_components(tmp_path, fitted, data):
    xr.Dataset({"X": (("component", "feature"), data)}).to_zarr(tmp_path / "odd.zarr", consolidated=False)
    fitted.save(tmp_path / "model.zarr")
    out = tmp_path / "scores.zarr"
    result = CliRunner().invoke(main, ["predict", str(tmp_path / "model.zarr"), str(tmp_path / "odd.zarr"),
                                       "-v", "X", "--out", str(out)])
    assert result.exit_code == 0, result.output
    scores = xr.open_zarr(out, consolidated=False)
    assert scores["responsibility"].dims == ("sample", "component")
    np.testing.assert_array_equal(scores["label"].values, fitted.predict(data))
