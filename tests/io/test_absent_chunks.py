"""Chunk files absent from a Zarr store: counted once per fit, said in a warning, refused when strict."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.app.jobs import run_job
from daskem.exceptions import AbsentChunksWarning, CorruptDataError
from daskem.io.zarr_rows import check_stored_chunks
from tests.helpers import make_mixture_data, write_zarr

SETTINGS = {"random_state": 0, "max_iter": 10, "tol": 0.0}  # tol 0: every fit makes max_iter passes
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return make_mixture_data(n_samples=600, n_features=3, n_components=2, seed=5, separation=5.0)


def store_lacking(folder: Path, X: np.ndarray, chunks: tuple[int, ...] = (1, 4), **options) -> str:
    """A group ``data.zarr`` of X in chunks of 100 rows whose chunk files of rows 100–199 and 400–499 are
    deleted (``chunks``: the row chunks deleted); ``options`` go to ``create_array``."""
    path = folder / "data.zarr"
    zarr.open_group(path, mode="w").create_array("X", data=X, chunks=(100, X.shape[1]), **options)
    for chunk in chunks:
        (path / "X" / "c" / str(chunk) / "0").unlink()
    return str(path)


def said(path: str, absent: str = "2 of 6 chunks", rows: str = "rows 100–199, 400–499", fill: str = "0.0") -> str:
    return f"{absent} of {path!r} (array 'X') are not stored ({rows}); they read as the fill value {fill}"


def absent_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, AbsentChunksWarning)]


def test_absent_chunks_are_said_once_counted_and_saved_in_the_model(tmp_path, X, monkeypatch):
    path = store_lacking(tmp_path, X)
    import daskem.io.inputs

    listings = []
    real = daskem.io.zarr_rows.absent_chunks
    monkeypatch.setattr(daskem.io.zarr_rows, "absent_chunks", lambda array: listings.append(array.path) or real(array))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = daskem.GaussianMixture(2, **SETTINGS).fit(path, variable="X")
    assert absent_warnings(caught) == [said(path)]
    assert listings == ["X"]  # one listing for the fit, however many passes
    assert model.n_iter_ == 10 and model.n_absent_chunks_ == 2
    model.save(tmp_path / "model.zarr")
    assert xr.open_zarr(tmp_path / "model.zarr").attrs["n_absent_chunks"] == 2
    assert daskem.load(tmp_path / "model.zarr").n_absent_chunks_ == 2


def test_a_complete_store_gives_no_warning_and_the_same_fit(tmp_path, X):
    path = str(write_zarr(tmp_path / "data.zarr", X, chunk_rows=100))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        strict = daskem.GaussianMixture(2, strict_chunks=True, **SETTINGS).fit(path, variable="X")
        model = daskem.GaussianMixture(2, **SETTINGS).fit(path, variable="X")
    assert absent_warnings(caught) == []
    assert model.n_absent_chunks_ == 0 and model.to_dataset().attrs["n_absent_chunks"] == 0
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(strict, name), getattr(model, name))


def test_with_a_nan_fill_value_absent_rows_are_missing_values(tmp_path, X):
    """Absent chunks of a store whose fill value is NaN read as rows with nothing observed: the fit is
    bitwise that of the same rows with NaN written explicitly, and counts them as missing."""
    path = store_lacking(tmp_path, X, fill_value=np.nan)
    holes = X.copy()
    holes[100:200] = holes[400:500] = np.nan
    written = str(write_zarr(tmp_path / "written.zarr", holes, chunk_rows=100))
    assert (Path(written) / "X" / "c" / "1" / "0").exists()  # NaN ≠ its fill value 0: stored
    with pytest.warns(AbsentChunksWarning) as caught:
        absent = daskem.GaussianMixture(2, **SETTINGS).fit(path, variable="X")
    assert absent_warnings(caught) == [said(path, fill="NaN (missing values)")]
    explicit = daskem.GaussianMixture(2, **SETTINGS).fit(written, variable="X")
    assert (absent.n_missing_values_, absent.n_incomplete_rows_, absent.n_empty_rows_) == (600, 200, 200)
    assert (explicit.n_missing_values_, explicit.n_empty_rows_, explicit.n_absent_chunks_) == (600, 200, 0)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(absent, name), getattr(explicit, name))


def test_strict_chunks_refuses_before_any_pass(tmp_path, X):
    path = store_lacking(tmp_path, X)
    refusal = ("2 of 6 chunks of .* are not stored \\(rows 100–199, 400–499\\); strict_chunks refuses them: "
               "restore the missing chunks, or leave out strict_chunks")
    for family in (daskem.GaussianMixture, daskem.BernoulliMixture, daskem.PoissonMixture):
        with pytest.raises(CorruptDataError, match=refusal):
            family(2, strict_chunks=True).fit(path, variable="X", callbacks=[pytest.fail])
    with pytest.raises(CorruptDataError, match=refusal):
        daskem.select(path, [1, 2], variable="X", strict_chunks=True)
    with pytest.raises(daskem.DaskemError, match="strict_chunks must be True or False"):
        daskem.GaussianMixture(2, strict_chunks="yes").fit(X)


def test_predict_and_score_say_or_refuse_absent_chunks(tmp_path, X):
    path = store_lacking(tmp_path, X)
    model = daskem.GaussianMixture(2, **SETTINGS).fit(X)
    with pytest.warns(AbsentChunksWarning, match="2 of 6 chunks"):
        labels = model.predict(path, variable="X").compute()
    assert len(labels) == 600
    model.set_params(strict_chunks=True)
    for method in (model.predict, model.score, model.score_dataset, model.impute):
        with pytest.raises(CorruptDataError, match="rows 100–199, 400–499"):
            method(path, variable="X")


def test_weights_from_the_same_group_are_listed_too(tmp_path, X):
    path = store_lacking(tmp_path, X, chunks=())
    zarr.open_group(path).create_array("w", data=np.ones(600), chunks=(200,))
    (Path(path) / "w" / "c" / "2").unlink()
    with pytest.warns(AbsentChunksWarning) as caught:
        model = daskem.GaussianMixture(2, **SETTINGS).fit(path, variable="X", sample_weight="w")
    assert absent_warnings(caught) == [f"1 of 3 chunks of {path!r} (array 'w') are not stored (rows 400–599); "
                                       "they read as the fill value 0.0"]
    assert model.n_absent_chunks_ == 1


def test_sharded_and_feature_split_stores_name_the_absent_shards_and_features(tmp_path, X):
    sharded = tmp_path / "sharded.zarr"
    zarr.open_group(sharded, mode="w").create_array("X", data=X, chunks=(50, 3), shards=(200, 3))
    (sharded / "X" / "c" / "1" / "0").unlink()
    with pytest.warns(AbsentChunksWarning) as caught:
        assert check_stored_chunks(str(sharded), "X") == 1
    assert absent_warnings(caught) == [said(str(sharded), "1 of 3 shards", "rows 200–399")]

    split = tmp_path / "split.zarr"
    wide = np.hstack([X, X + 1.0])
    zarr.open_group(split, mode="w").create_array("X", data=wide, chunks=(100, 3))
    for key in ("2/1", "3/1", "5/0"):
        (split / "X" / "c" / key).unlink()
    with pytest.raises(CorruptDataError, match=r"3 of 12 chunks .* \(rows 200–399 \(features 3–5\); "
                                               r"rows 500–599 \(features 0–2\)\)"):
        check_stored_chunks(str(split), "X", strict=True)


def test_the_command_line_says_or_refuses_and_reports(tmp_path, X):
    path = store_lacking(tmp_path, X)
    fit = ["fit", path, "-v", "X", "-k", "2", "--max-iter", "5"]
    result = CliRunner().invoke(main, ["--json", *fit, "--out", str(tmp_path / "model.zarr")])
    assert result.exit_code == 0, result.output
    assert f"warning: {said(path)}\n" in result.stderr
    assert json.loads(result.stdout)["data"]["absent_chunks"] == 2
    assert daskem.load(tmp_path / "model.zarr").n_absent_chunks_ == 2
    text = CliRunner().invoke(main, fit)
    assert "2 stored chunk(s) absent, read as the fill value" in text.stdout

    select = CliRunner().invoke(main, ["--json", "select", path, "-v", "X", "-k", "1-2", "--max-iter", "5"])
    assert select.exit_code == 0, select.output
    assert json.loads(select.stdout)["data"]["absent_chunks"] == 2
    assert said(path) in select.stderr

    for arguments in (fit, ["select", path, "-v", "X", "-k", "1-2"],
                      ["predict", str(tmp_path / "model.zarr"), path, "-v", "X", "--out", str(tmp_path / "s.zarr")],
                      ["impute", str(tmp_path / "model.zarr"), path, "-v", "X", "--out", str(tmp_path / "i.zarr")],
                      ["score", str(tmp_path / "model.zarr"), path, "-v", "X"]):
        refused = CliRunner().invoke(main, [*arguments, "--strict-chunks"])
        assert refused.exit_code == 1, (arguments, refused.output)
        assert refused.stderr.startswith("Error: 2 of 6 chunks of ") and refused.stderr.count("\n") == 1
        assert "(rows 100–199, 400–499); strict_chunks refuses them" in refused.stderr
    assert not (tmp_path / "s.zarr").exists() and not (tmp_path / "i.zarr").exists()


JOB = """
data: {path: data.zarr, variable: X}
fit: {n_components: 2, max_iter: 5, tol: 0, STRICT}
outputs: {model: model.zarr, scores: scores.zarr, report: report.json}
"""


def test_a_job_reports_absent_chunks_or_refuses_them_when_strict(tmp_path, X):
    store_lacking(tmp_path, X)
    job = tmp_path / "job.yaml"
    job.write_text(JOB.replace("STRICT", "strict_chunks: true"))
    refused = CliRunner().invoke(main, ["run", str(job)])
    assert refused.exit_code == 1 and "Error: 2 of 6 chunks of " in refused.stderr
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "model.zarr").exists()

    job.write_text(JOB.replace(", STRICT", ""))
    with pytest.warns(AbsentChunksWarning):
        report = run_job(job)
    assert report["stages"][0]["data"]["absent_chunks"] == 2
    assert json.loads((tmp_path / "report.json").read_text())["stages"][0]["data"]["absent_chunks"] == 2
    assert daskem.load(tmp_path / "model.zarr").n_absent_chunks_ == 2
