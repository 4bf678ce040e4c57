"""No command, job or API call can destroy its inputs or anything that is not its own output.

Each test tries the destructive case itself and checks, byte for byte, that the data survive.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.app.jobs import run_job
from daskem.exceptions import OutputExistsError
from daskem.io.existing import output_kind
from daskem.io.outputs import Output, OutputBusyError, OutputError, reserved
from tests.helpers import make_mixture_data, snapshot, write_zarr

pytest.importorskip("matplotlib", reason="matplotlib is part of the test install")


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return make_mixture_data(n_samples=2000, n_features=3, n_components=2, seed=3, separation=4.0)


@pytest.fixture
def project(tmp_path, X) -> Path:
    """A user's folder: data, a fitted model, a selection, notes, and a subfolder to work from."""
    write_zarr(tmp_path / "data.zarr", X, chunk_rows=500)
    model = daskem.GaussianMixture(2, random_state=0).fit(X)
    model.save(tmp_path / "model.zarr")
    daskem.select(X, [1, 2], ["diag"], random_state=0).save(tmp_path / "selection")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("the user's notes")
    (tmp_path / "here").mkdir()
    return tmp_path


def run(folder: Path, *arguments: str) -> tuple[int, str]:
    """Run the CLI in ``folder``; return the exit code and stderr."""
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(main, list(arguments))
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stderr


# Commands pointed at their inputs, at folders holding them, and at unrelated folders, with --overwrite.
DESTRUCTIVE = {
    "fit --out the data": (["fit", "data.zarr", "-k", "2", "--out", "data.zarr"], "is the input"),
    "fit --out the folder of the data": (["fit", "data.zarr", "-k", "2", "--out", "."], "holds the input"),
    "fit --out another model's folder of notes": (["fit", "data.zarr", "-k", "2", "--out", "notes"],
                                                  "not a daskem model"),
    "fit --out a selection": (["fit", "data.zarr", "-k", "2", "--out", "selection"],
                              "is a daskem selection, not a daskem model"),
    "predict --out the data": (["predict", "model.zarr", "data.zarr", "--out", "data.zarr"], "is the input"),
    "predict --out the model": (["predict", "model.zarr", "data.zarr", "--out", "model.zarr"], "is the input"),
    "predict --out into the model": (["predict", "model.zarr", "data.zarr", "--out", "model.zarr/s.zarr"],
                                     "is inside the input"),
    "select --out the folder above": (["select", "data.zarr", "-k", "1-2", "--out", "."], "holds the input"),
    "plot --out the data": (["plot", "convergence", "model.zarr", "--out", "data.zarr"],
                            "not a daskem picture"),
    "plot --out into the selection": (["plot", "selection", "selection", "--out", "selection/table.csv"],
                                      "is inside the input"),
    "generate over the user's data": (["generate", "data.zarr", "--n-samples", "100"], "not a daskem data"),
    "generate over a model": (["generate", "model.zarr", "--n-samples", "100"], "is a daskem model, not"),
}


@pytest.mark.parametrize("case", list(DESTRUCTIVE))
def test_commands_never_destroy_inputs_or_foreign_folders(project, case):
    arguments, message = DESTRUCTIVE[case]
    before = snapshot(project)
    code, stderr = run(project, *arguments, "--overwrite")
    assert code == 1 and message in stderr and stderr.count("\n") == 1, stderr
    assert snapshot(project) == before


def test_select_from_inside_the_data_folder_cannot_take_it(project):
    before = snapshot(project)
    code, stderr = run(project / "here", "select", "../data.zarr", "-k", "1-2", "--out", "..", "--overwrite")
    assert code == 1 and "holds the input" in stderr
    assert snapshot(project) == before


def test_a_link_to_the_input_is_the_input(project):
    (project / "link.zarr").symlink_to(project / "data.zarr")
    before = snapshot(project)
    code, stderr = run(project, "fit", "data.zarr", "-k", "2", "--out", "link.zarr", "--overwrite")
    assert code == 1 and "is the input" in stderr
    assert snapshot(project) == before


def test_outputs_of_the_same_kind_are_replaced_only_with_overwrite(project, X):
    code, stderr = run(project, "fit", "data.zarr", "-k", "3", "--out", "model.zarr")
    assert code == 1 and "exists; pass overwrite=True (--overwrite) to replace it" in stderr
    assert daskem.load(project / "model.zarr").n_components == 2
    code, _ = run(project, "fit", "data.zarr", "-k", "3", "--out", "model.zarr", "--overwrite")
    assert code == 0 and daskem.load(project / "model.zarr").n_components == 3
    code, _ = run(project, "generate", "made.zarr", "--n-samples", "100")
    assert code == 0 and output_kind(project / "made.zarr") == "data"
    code, _ = run(project, "generate", "made.zarr", "--n-samples", "200", "--overwrite")  # daskem's own data
    assert code == 0 and xr.open_zarr(project / "made.zarr", consolidated=False).sizes["sample"] == 200


def test_output_kinds_are_recognised(project):
    (project / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    kinds = {name: output_kind(project / name) for name in
             ("data.zarr", "model.zarr", "selection", "notes", "notes/keep.txt", "p.png", "missing")}
    assert kinds == {"data.zarr": None, "model.zarr": "model", "selection": "selection", "notes": None,
                     "notes/keep.txt": None, "p.png": "picture", "missing": None}
    (project / "selection" / "mine.txt").write_text("the user added a file")
    assert output_kind(project / "selection") is None  # no longer only daskem's


# ----------------------------------------------------------------- job files

JOB = """
data: {{path: data.zarr}}
fit: {{n_components: 2, max_iter: 20}}
{extra}
outputs:
  model: {model}
  scores: {scores}
  report: out/report.json
"""


def job(project: Path, extra: str = "", model: str = "out/model.zarr", scores: str = "out/scores.zarr") -> Path:
    path = project / "job.yaml"
    path.write_text(JOB.format(extra=extra, model=model, scores=scores))
    return path


@pytest.mark.parametrize(
    ("extra", "model", "scores", "message"),
    [
        ("checkpoint: .", "out/model.zarr", "out/scores.zarr", "checkpoint '{p}' holds the input"),
        ("checkpoint: data.zarr", "out/model.zarr", "out/scores.zarr", "is the input"),
        ("checkpoint: notes", "out/model.zarr", "out/scores.zarr", "checkpoints go only into a new folder"),
        ("", "out/model.zarr", "data.zarr", "outputs.scores '{p}/data.zarr' is the input"),
        ("", "notes", "out/scores.zarr", "outputs.model '{p}/notes' exists and is a folder that is not"),
        ("overwrite: true", "notes", "out/scores.zarr", "not a daskem model"),
        ("", "job.yaml", "out/scores.zarr", "is the input"),
        ("", "model.zarr", "out/scores.zarr", "exists, and the job's report"),
        ("checkpoint: out", "out/model.zarr", "out/scores.zarr", "is inside checkpoint"),
    ],
)
def test_job_files_never_destroy_inputs_or_foreign_folders(project, extra, model, scores, message):
    path = job(project, extra, model, scores)
    before = snapshot(project)
    code, stderr = run(project, "run", str(path))
    assert code == 1 and message.format(p=project) in stderr and stderr.count("\n") == 1, stderr
    assert snapshot(project) == before


def test_a_job_replaces_an_existing_model_with_overwrite_true(project):
    path = job(project, "overwrite: true", model="model.zarr")
    assert run_job(path)["status"] == "done"
    assert daskem.load(project / "model.zarr").n_iter_ <= 20


def test_a_crashed_job_replaces_its_own_outputs_on_the_rerun(project, monkeypatch):
    path = job(project, "checkpoint: out/checkpoint")
    from daskem.app import commands

    real_predict = commands.predict

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # killed after the model was written, before the scores

    monkeypatch.setattr(commands, "predict", crash)
    with pytest.raises(KeyboardInterrupt):
        run_job(path)
    assert (project / "out" / "model.zarr").exists() and not (project / "out" / "report.json").exists()
    monkeypatch.setattr(commands, "predict", real_predict)
    report = run_job(path)  # no overwrite: true needed for the job's own model
    assert report["status"] == "done"
    assert sorted(p.name for p in (project / "out").iterdir()) == ["model.zarr", "report.json", "scores.zarr"]
    assert run_job(path, force=True)["status"] == "done"  # --force replaces the job's own outputs
    (project / "out" / "report.json").unlink()
    code, stderr = run(project, "run", str(path))  # not this job's any more: they are just existing models
    assert code == 1 and "report.json' does not exist" in stderr and "overwrite: true" in stderr


def test_a_failed_job_leaves_nothing_behind(project):
    path = project / "job.yaml"
    path.write_text("data: {path: data.zarr}\nfit: {n_components: 5000}\n"
                    "outputs: {model: new/deeper/model.zarr, report: new/report.json}\n")
    before = snapshot(project)
    code, stderr = run(project, "run", str(path))
    assert code == 1 and "fewer than n_components=5000" in stderr
    assert snapshot(project) == before


# ----------------------------------------------------------- one writer only


def test_a_second_writer_fails_at_once_while_the_first_writes(project):
    out = project / "new.zarr"
    with reserved([Output.of(out, "model", "--out")]):
        process = subprocess.run([sys.executable, "-m", "daskem", "fit", str(project / "data.zarr"), "-k", "2",
                                  "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert process.returncode == 1
        assert "is being written by another daskem process" in process.stderr
        errors = []
        thread = threading.Thread(target=lambda: _try_reserve(out, errors))
        thread.start()
        thread.join()
        assert "another thread of this process" in str(errors[0])
        with reserved([Output.of(out, "model")]):  # the same thread may nest
            pass
    assert not out.exists() and not list(project.glob(".new.zarr*"))  # the lock file is gone too


def _try_reserve(out: Path, errors: list) -> None:
    try:
        with reserved([Output.of(out, "model")]):
            pass
    except OutputBusyError as error:
        errors.append(error)


def test_two_fits_started_together_never_both_claim_the_output(project):
    out = project / "raced.zarr"
    command = [sys.executable, "-m", "daskem", "fit", str(project / "data.zarr"), "-k", "2", "--out", str(out)]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(stderr for code, stderr in results if code == 1)
    assert "being written by another daskem process" in loser or "exists; pass overwrite=True" in loser
    assert daskem.load(out).n_components == 2


# ---------------------------------------------------------------- leftovers


def test_leftovers_of_an_interrupted_write_are_cleaned_and_the_old_version_restored(project, caplog):
    model = daskem.load(project / "model.zarr")
    # A kill between the two renames of a replacement: the old model moved aside, the new one
    # complete under its temporary name, nothing at model.zarr.
    os.rename(project / "model.zarr", project / ".model.zarr.old-0123456789ab")
    (project / ".model.zarr.tmp-ba9876543210").mkdir()
    (project / ".model.zarr.tmp-ba9876543210" / "zarr.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="an interrupted write left its previous version in"):
        daskem.load(project / "model.zarr")
    with caplog.at_level(logging.WARNING, logger="daskem"), pytest.raises(OutputExistsError):
        model.save(project / "model.zarr")  # restored first, so it exists: overwrite is still needed
    assert "restored" in caplog.text and "removed 1 temporary file(s)" in caplog.text
    np.testing.assert_array_equal(daskem.load(project / "model.zarr").means_, model.means_)
    assert not list(project.glob(".model.zarr.*"))


def test_outputs_overlapping_each_other_are_refused(project):
    with pytest.raises(OutputError, match="holds --scores"):
        with reserved([Output.of(project / "a", "selection", "--out"),
                       Output.of(project / "a" / "b.zarr", "scores", "--scores")]):
            pass


@pytest.mark.parametrize("command", [["fit", "data.zarr", "-k", "2", "--out", "new.zarr"],
                                     ["predict", "model.zarr", "data.zarr", "--out", "new.zarr"]])
def test_a_full_disk_is_one_line_and_leaves_nothing(project, monkeypatch, command):
    def full(self, target, *args, **kwargs):
        Path(target).mkdir()
        (Path(target) / "partial").write_bytes(b"half a chunk")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", full)
    before = snapshot(project)
    code, stderr = run(project, "--quiet", *command)
    assert code == 1 and stderr.count("\n") == 1
    assert f"cannot write '{project / 'new.zarr'}': No space left on device" in stderr
    assert snapshot(project) == before
