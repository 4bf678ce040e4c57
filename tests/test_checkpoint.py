"""Checkpoints: a killed fit resumes bitwise; a resume on other data or settings is refused;
checkpoint folders never take the user's files with them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import daskem
from daskem import engine
from daskem.checkpoint import CheckpointError, comparable_seed, remove_checkpoints
from daskem.cli import main
from daskem.exceptions import DataChangedError, InputError
from daskem.model_io import ModelFileError
from daskem.outputs import CHECKPOINT_MARKER, OutputError, OutputWriteError

from conftest import make_mixture_data, snapshot, write_zarr


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=3000, n_features=3, n_components=3, seed=1, separation=1.0)


def model(**settings) -> daskem.GaussianMixture:
    return daskem.GaussianMixture(3, **{"random_state": 0, "tol": 0, "max_iter": 12, "chunk_rows": 1000, **settings})


def crash_at(iteration):
    def callback(info):
        if info.iteration == iteration:
            raise Crash
    return callback


def assert_bitwise_equal(a, b):
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.n_iter_, a.converged_, a.lower_bound_) == (b.n_iter_, b.converged_, b.lower_bound_)


@pytest.mark.parametrize("n_init", [1, 3])
def test_resume_after_a_crash_is_bitwise_identical(tmp_path, data, n_init):
    folder = tmp_path / "checkpoint"
    with pytest.warns(daskem.ConvergenceWarning):
        uninterrupted = model(n_init=n_init).fit(data)
    with pytest.raises(Crash):
        model(n_init=n_init).fit(data, checkpoint=folder, callbacks=[crash_at(5)])
    assert (folder / "LATEST").read_text().strip() == "iteration-000004.zarr"
    iterations = []
    with pytest.warns(daskem.ConvergenceWarning):
        resumed = model(n_init=n_init).fit(data, checkpoint=folder, callbacks=[iterations.append])
    assert min(info.iteration for info in iterations) == 5  # it did not start over
    assert_bitwise_equal(resumed, uninterrupted)
    assert sorted(p.name for p in folder.iterdir()) == [CHECKPOINT_MARKER, "LATEST", "iteration-000012.zarr"]


def test_a_finished_checkpoint_needs_only_the_pass_that_checks_the_data(tmp_path, data, monkeypatch):
    with pytest.warns(daskem.ConvergenceWarning):
        first = model().fit(data, checkpoint=tmp_path)
    passes = []
    real = engine.statistics_pass

    def counted(*args, **kwargs):
        make_pass = real(*args, **kwargs)
        return lambda params: passes.append(1) or make_pass(params)

    monkeypatch.setattr(engine, "statistics_pass", counted)
    seen = []
    with pytest.warns(daskem.ConvergenceWarning):
        again = model().fit(data, checkpoint=tmp_path, callbacks=[seen.append])
    assert seen == [] and len(passes) == 1
    assert_bitwise_equal(again, first)


def test_resuming_with_other_settings_or_data_is_refused(tmp_path, data):
    with pytest.raises(Crash):
        model().fit(data, checkpoint=tmp_path, callbacks=[crash_at(3)])
    other_tol = daskem.GaussianMixture(3, random_state=0, tol=1e-3, max_iter=12, chunk_rows=1000)
    with pytest.raises(CheckpointError, match=r"other settings \(tol 0 → 0\.001\)"):
        other_tol.fit(data, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match="written for other data"):
        model().fit(data + 1.0, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match=r"other settings \(covariance_type 'full' → 'diag'\)"):
        model(covariance_type="diag").fit(data, checkpoint=tmp_path)
    with pytest.raises(CheckpointError, match=r"other settings \(random_state 0 → 7\)"):
        model(random_state=np.int64(7)).fit(data, checkpoint=tmp_path)


@pytest.mark.parametrize("finished", [False, True])
def test_a_change_in_the_middle_of_the_data_is_caught_on_resume(tmp_path, data, finished):
    """The fingerprint reads only the ends; the first pass after resuming checks the rest."""
    with pytest.raises(Crash) if not finished else pytest.warns(daskem.ConvergenceWarning):
        model().fit(data, checkpoint=tmp_path, callbacks=[] if finished else [crash_at(4)])
    changed = data.copy()
    changed[1500] += 0.5  # one row in the middle: same shape, same first and last rows
    with pytest.raises(DataChangedError, match="not those the checkpoint was written for"):
        model().fit(changed, checkpoint=tmp_path)


def test_numpy_integer_seeds_are_compared_by_value():
    assert comparable_seed(np.int64(3)) == 3 and comparable_seed(np.uint8(3)) == 3
    assert comparable_seed(np.random.default_rng(3)) == "a Generator"
    assert comparable_seed(None) is None


def test_warm_start_continues_and_does_not_mistake_the_last_checkpoint_for_itself(tmp_path, data):
    folder = tmp_path / "checkpoint"
    with pytest.warns(daskem.ConvergenceWarning):
        gm = model(max_iter=3).fit(data, checkpoint=folder)
    gm.warm_start = True
    with pytest.raises(CheckpointError, match=r"other settings \(warm_start_from None → '[0-9a-f]+'\)"):
        gm.fit(data, checkpoint=folder)
    where_it_stood = gm.score(data)
    with pytest.warns(daskem.ConvergenceWarning):
        gm.fit(data, checkpoint=tmp_path / "warm")
    # It started from the last fit's parameters: its first log-likelihood is theirs (the same sum,
    # taken chunk by chunk rather than at once: rounding of 3000 float64 terms, far below 1e-12).
    assert gm.n_iter_ == 3
    np.testing.assert_allclose(gm.history_[0], where_it_stood, rtol=1e-12)
    gm.n_components = 4
    with pytest.raises(InputError, match="warm_start continues the last fit .3 full components.*set warm_start=False"):
        gm.fit(data)


def test_select_takes_numpy_integers_with_a_checkpoint(tmp_path, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        selection = daskem.select(data, np.arange(1, 3), ["diag"], random_state=np.int64(0), max_iter=5,
                                  checkpoint=tmp_path / "checkpoint")
    assert list(selection.table["n_components"]) in ([1, 2], [2, 1])


def test_a_checkpoint_holding_a_nan_mean_is_named(tmp_path, data):
    folder = tmp_path / "checkpoint"
    with pytest.raises(Crash):
        model().fit(data, checkpoint=folder, callbacks=[crash_at(3)])
    store = folder / (folder / "LATEST").read_text().strip()
    zarr.open_group(store / "run-0000", mode="r+")["means"][1, 2] = np.nan
    with pytest.raises(ModelFileError, match=r"the checkpoint .*: means hold 1 NaN or infinite value"):
        model().fit(data, checkpoint=folder)


def test_a_full_disk_while_checkpointing_is_one_clear_error_and_leaves_no_temporary(tmp_path, data, monkeypatch):
    folder = tmp_path / "checkpoint"
    with pytest.raises(Crash):
        model().fit(data, checkpoint=folder, callbacks=[crash_at(3)])
    before = snapshot(folder)

    def full(self, target, *args, **kwargs):
        Path(target).mkdir(exist_ok=True)
        (Path(target) / "partial").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(xr.Dataset, "to_zarr", full)
    with pytest.raises(OutputWriteError, match="cannot write the checkpoint in .*: No space left on device"):
        model().fit(data, checkpoint=folder)
    assert snapshot(folder) == before  # the last good checkpoint is untouched, no temporary left


# ------------------------------------------------------ checkpoint folders


@pytest.fixture
def store(tmp_path, data) -> Path:
    return write_zarr(tmp_path / "project" / "data.zarr", data, chunk_rows=1000)


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("project/data.zarr", "is the input"),
        ("project", "holds the input"),
        (".", "holds the input"),
        ("project/data.zarr/checkpoint", "is inside the input"),
        ("notes", "is a folder that is not a daskem output; checkpoints go only into a new folder, an empty"),
        ("notes.txt", "is a file that is not a daskem output"),
    ],
)
def test_a_checkpoint_folder_never_takes_user_files(tmp_path, store, where, message):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "notes.txt").write_text("mine")
    before = snapshot(tmp_path)
    with pytest.raises(OutputError, match=message):
        model().fit(str(store), variable="X", checkpoint=tmp_path / where)
    assert snapshot(tmp_path) == before


def test_removing_checkpoints_deletes_only_what_daskem_wrote(tmp_path, data):
    made, adopted = tmp_path / "made", tmp_path / "adopted"
    adopted.mkdir()
    for folder in (made, adopted):
        with pytest.raises(Crash):
            model().fit(data, checkpoint=folder, callbacks=[crash_at(2)])
    (made / ".iteration-000002.zarr.tmp-0123456789ab").mkdir()  # a save killed half-way
    (made / ".LATEST.tmp-0123456789ab").write_text("iteration-000002.zarr\n")
    with pytest.raises(Crash):
        model().fit(data, checkpoint=made, callbacks=[crash_at(3)])  # the next save cleans them
    assert sorted(p.name for p in made.iterdir()) == [CHECKPOINT_MARKER, "LATEST", "iteration-000002.zarr"]
    (made / ".iteration-000003.zarr.tmp-0123456789ab").mkdir()
    remove_checkpoints(made)
    remove_checkpoints(adopted)
    assert not made.exists()  # daskem created it
    assert adopted.is_dir() and list(adopted.iterdir()) == []  # the user's folder stays
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "LATEST").write_text("not daskem's")
    remove_checkpoints(tmp_path / "other")  # no marker: not a checkpoint folder
    assert (tmp_path / "other" / "LATEST").read_text() == "not daskem's"


# ---------------------------------------------------------- killed drivers

KILLER = textwrap.dedent("""
    import os, signal, sys
    import daskem.checkpoint as checkpoint, daskem.outputs as outputs
    from daskem.cli import main

    where, at = sys.argv[1], int(sys.argv[2])
    save, publish = checkpoint.Checkpoint.save, checkpoint.publish

    def kill():
        os.kill(os.getpid(), signal.SIGKILL)

    def save_then_die(self, state):
        save(self, state)
        if where == "after-save" and state.iteration == at:
            kill()

    def die_between_renames(source, target, kind):
        publish(source, target, kind)
        if where == "before-latest" and target.name == f"iteration-{at:06d}.zarr":
            kill()  # the new store is in place, LATEST still names the previous one

    checkpoint.Checkpoint.save = save_then_die
    checkpoint.publish = die_between_renames
    main(sys.argv[3:], prog_name="daskem")
""")


@pytest.mark.parametrize("where", ["after-save", "before-latest"])
def test_a_killed_cli_fit_resumes_bitwise(tmp_path, where):
    """SIGKILL at a chosen point of iteration 3 (no race with a poll), then the same command resumes."""
    X = make_mixture_data(n_samples=30_000, n_features=4, n_components=4, seed=2, separation=1.0)
    store = write_zarr(tmp_path / "data.zarr", X, chunk_rows=5_000)
    fit = ["fit", str(store), "-v", "X", "-k", "4", "--tol", "0", "--max-iter", "8", "--seed", "3"]
    checkpoint = tmp_path / "checkpoint"
    command = [*fit, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "resumed.zarr")]
    killed = subprocess.run([sys.executable, "-c", KILLER, where, "3", *command], capture_output=True)
    assert killed.returncode == -9, killed.stderr.decode()
    assert not (tmp_path / "resumed.zarr").exists()
    expected = 3 if where == "after-save" else 2
    assert (checkpoint / "LATEST").read_text().strip() == f"iteration-{expected:06d}.zarr"
    for arguments in (command, [*fit, "--out", str(tmp_path / "straight.zarr")]):  # resume; never interrupted
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, result.output
    resumed, straight = daskem.load(tmp_path / "resumed.zarr"), daskem.load(tmp_path / "straight.zarr")
    assert_bitwise_equal(resumed, straight)
    assert resumed.n_iter_ == 8
    assert sorted(p.name for p in checkpoint.iterdir()) == [CHECKPOINT_MARKER, "LATEST", "iteration-000008.zarr"]


def test_a_selection_resumes_after_a_crash(tmp_path, data):
    def run(**kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", daskem.ConvergenceWarning)  # some candidates need more than 30
            return daskem.select(data, [1, 2, 3], ["full", "diag"], random_state=0, tol=1e-6, max_iter=30,
                                 chunk_rows=1000, **kwargs)

    uninterrupted = run()
    with pytest.raises(Crash):
        run(checkpoint=tmp_path, callbacks=[crash_at(4)])
    seen = []
    resumed = run(checkpoint=tmp_path, callbacks=[seen.append])
    assert min(info.iteration for info in seen) == 4
    for a, b in zip(resumed.models, uninterrupted.models):
        assert_bitwise_equal(a, b)
    with pytest.raises(CheckpointError, match="other settings"):
        daskem.select(data, [1, 2], ["full", "diag"], random_state=0, tol=1e-6, max_iter=30, chunk_rows=1000,
                      checkpoint=tmp_path)
