"""Checkpoints: a killed fit resumes bitwise; a resume on other data or settings is refused;
checkpoint folders never take the user's files with them."""

from __future__ import annotations

import dataclasses
import shutil
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
from daskem.app.cli import main
from daskem.engine import em as engine
from daskem.exceptions import DataChangedError, InputError
from daskem.families.gaussian import GaussianFamily
from daskem.io.checkpoints import Checkpoint, CheckpointError, comparable_seed, remove_checkpoints
from daskem.io.existing import CHECKPOINT_MARKER
from daskem.io.model_files import ModelFileError
from daskem.io.outputs import OutputError, OutputWriteError
from daskem.kernels.gaussian import GaussianParams
from tests.helpers import make_mixture_data, reg_covar_dip, snapshot, write_zarr


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
    import daskem.io.checkpoints as checkpoint, daskem.io.outputs as outputs
    from daskem.app.cli import main

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


# ------------------------------------------------------------ accelerated runs


def overlapping_squares(n_samples: int = 3000, seed: int = 0) -> np.ndarray:
    """Rows (n, 2) from 4 unit Gaussians one standard deviation apart: slow EM, which SQUAREM
    extrapolates, and whose steps it sometimes refuses."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    return rng.standard_normal((n_samples, 2)) + centres[rng.integers(4, size=n_samples)]


@pytest.mark.parametrize(("case", "n_components", "tol", "n_iter"), [("squares", 4, 0, 30), ("data", 3, 1e-4, 60)])
def test_an_accelerated_fit_resumes_bitwise_after_a_kill_at_every_pass(tmp_path, monkeypatch, data, case,
                                                                        n_components, tol, n_iter):
    """A kill right after the save of pass k (the KILLER's "after-save") leaves the folder as it stands
    then: a copy of it is taken for every k, and each copy resumed by a new fit.  With tol = 0 the fit
    runs to max_iter; with tol = 1e-4 it converges, after cycles found near the optimum (``near``)."""
    X = overlapping_squares() if case == "squares" else data

    def fit(**kwargs):
        gm = daskem.GaussianMixture(n_components, random_state=0, tol=tol, max_iter=n_iter,
                                    chunk_rows=1000)
        assert gm.acceleration == "squarem"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", daskem.ConvergenceWarning)
            return gm.fit(X, **kwargs)

    uninterrupted = fit()
    assert uninterrupted.converged_ == (tol > 0)  # converging: before max_iter
    assert uninterrupted.n_iter_ < n_iter if tol else uninterrupted.n_iter_ == n_iter
    n_iter = uninterrupted.n_iter_
    steps = np.diff(uninterrupted.history_)
    # it extrapolated, and refused a step (phase CHECK)
    assert (steps >= -reg_covar_dip(uninterrupted)).all() and (steps == 0).any()
    save = Checkpoint.save

    def save_and_copy(self, state):
        save(self, state)
        shutil.copytree(self.folder, tmp_path / f"killed-after-{state.iteration}")

    monkeypatch.setattr(Checkpoint, "save", save_and_copy)
    assert_bitwise_equal(fit(checkpoint=tmp_path / "checkpoint"), uninterrupted)
    monkeypatch.setattr(Checkpoint, "save", lambda self, state: None)  # the resumes need not write (time)
    stored = []
    for k in range(1, n_iter):
        folder = tmp_path / f"killed-after-{k}"
        store = folder / (folder / "LATEST").read_text().strip()
        assert store.name == f"iteration-{k:06d}.zarr"
        run = zarr.open_group(store / "run-0000", mode="r").attrs
        stored.append((run["phase"], run["near"]))
        assert (store / "run-0000-anchor").exists() == (run["phase"] != engine.START)
        seen = []
        resumed = fit(checkpoint=folder, callbacks=[seen.append])
        assert seen[0].iteration == k + 1, k  # it did not start over
        assert_bitwise_equal(resumed, uninterrupted)
    assert {engine.START, engine.SECOND, engine.CHECK} <= {phase for phase, _ in stored}
    assert any(near for _, near in stored) == (tol > 0)


def small_gaussian(shift: float = 0.0) -> GaussianParams:
    return GaussianParams.from_covariances(np.array([0.25, 0.75]), np.array([[0.0, 1.0], [2.0, 3.0]]) + shift,
                                           np.array([np.eye(2), [[2.0, 0.5], [0.5, 1.0]]]))


def assert_same_params(a: GaussianParams, b: GaussianParams) -> None:
    for name in ("weights", "means", "covariances", "precisions_cholesky"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize(
    ("phase", "gap", "gap_from"),
    [(engine.SECOND, np.nan, np.nan), (engine.CHECK, np.inf, -3.25), (engine.CHECK, 1e-7, -3.0),
     (engine.START, np.nan, -2.5)],
)
def test_a_run_state_mid_cycle_reads_back_as_written(tmp_path, phase, gap, gap_from):
    family = GaussianFamily()
    anchor = None if phase == engine.START else small_gaussian(0.5)
    run = engine.RunState(family, small_gaussian(), weight_sum=3000.0, previous=-3.5, history=[-4.0, -3.5, -3.5],
                          phase=phase, anchor=anchor, step=2.75, step_max=4.0, gap=gap, gap_from=gap_from, near=1)
    checkpoint = Checkpoint(tmp_path / "checkpoint", {"tol": 0}, "data")
    checkpoint.save(engine.EMState(3, [run], ((family, small_gaussian()), -3.5)))
    (loaded,) = checkpoint.load().runs
    assert (loaded.phase, loaded.step, loaded.step_max, loaded.near) == (phase, 2.75, 4.0, 1)
    assert loaded.history == [-4.0, -3.5, -3.5]
    np.testing.assert_array_equal([loaded.gap, loaded.gap_from], [gap, gap_from])  # NaN and inf too
    assert_same_params(loaded.params, run.params)
    if anchor is None:
        assert loaded.anchor is None
        assert not (tmp_path / "checkpoint" / "iteration-000003.zarr" / "run-0000-anchor").exists()
    else:
        assert_same_params(loaded.anchor, anchor)


def test_a_checkpoint_mid_cycle_without_its_anchor_or_of_format_2_is_refused(tmp_path):
    family = GaussianFamily()
    run = engine.RunState(family, small_gaussian(), history=[-4.0, -3.5], phase=engine.CHECK, anchor=small_gaussian(1))
    checkpoint = Checkpoint(tmp_path, {"tol": 0}, "data")
    checkpoint.save(engine.EMState(2, [run], ((family, small_gaussian()), -3.5)))
    store = zarr.open_group(tmp_path / "iteration-000002.zarr", mode="r+")
    store["run-0000"].attrs["anchor"] = 0
    with pytest.raises(CheckpointError, match="run-0000 stands in phase 2 of its SQUAREM cycle, without the anchor"):
        checkpoint.load()
    store.attrs["format"] = "daskem.io.checkpoints/2"  # written before runs recorded their cycle
    with pytest.raises(CheckpointError, match=r"format 'daskem.io.checkpoints/2', expected 'daskem.io.checkpoints/3'"):
        checkpoint.load()


def test_every_field_of_a_run_state_is_checkpointed():
    """A field added to RunState fails this until checkpoint.py saves it (and this list names it)."""
    saved = {"family", "params", "weight_sum", "previous", "converged", "history", "reseeded", "reseeds_left",
             "warned", "missing", "phase", "anchor", "step", "step_max", "gap", "gap_from", "near"}
    assert {field.name for field in dataclasses.fields(engine.RunState)} == saved
