"""Checkpoints: a killed fit resumes and ends bitwise as an uninterrupted one."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import zarr

import daskem
from daskem.checkpoint import CheckpointError

from conftest import make_mixture_data, write_zarr


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=3000, n_features=3, n_components=3, seed=1, separation=1.0)


def model(**settings) -> daskem.GaussianMixture:
    return daskem.GaussianMixture(3, random_state=0, tol=0, max_iter=12, chunk_rows=1000, **settings)


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
    with pytest.warns(daskem.ConvergenceWarning):
        uninterrupted = model(n_init=n_init).fit(data)
    with pytest.raises(Crash):
        model(n_init=n_init).fit(data, checkpoint=tmp_path, callbacks=[crash_at(5)])
    assert (tmp_path / "LATEST").read_text().strip() == "iteration-000004.zarr"
    iterations = []
    with pytest.warns(daskem.ConvergenceWarning):
        resumed = model(n_init=n_init).fit(data, checkpoint=tmp_path, callbacks=[iterations.append])
    assert min(info.iteration for info in iterations) == 5  # it did not start over
    assert_bitwise_equal(resumed, uninterrupted)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LATEST", "iteration-000012.zarr"]


def test_a_finished_checkpoint_needs_no_pass(tmp_path, data):
    with pytest.warns(daskem.ConvergenceWarning):
        first = model().fit(data, checkpoint=tmp_path)
    seen = []
    with pytest.warns(daskem.ConvergenceWarning):
        again = model().fit(data, checkpoint=tmp_path, callbacks=[seen.append])
    assert seen == []
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


def test_a_killed_cli_fit_resumes_bitwise(tmp_path):
    X = make_mixture_data(n_samples=300_000, n_features=6, n_components=4, seed=2, separation=1.0)
    store = write_zarr(tmp_path / "data.zarr", X, chunk_rows=50_000)
    daskem_cli = [sys.executable, "-m", "daskem", "fit", str(store), "-v", "X", "-k", "4", "--tol", "0",
                  "--max-iter", "25", "--seed", "3"]
    checkpoint = tmp_path / "checkpoint"
    command = [*daskem_cli, "--checkpoint", str(checkpoint), "--out", str(tmp_path / "resumed.zarr")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not _iteration(checkpoint) >= 3:
            assert process.poll() is None, "the fit ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        process.kill()
    killed_at = _iteration(checkpoint)
    assert 3 <= killed_at < 25 and not (tmp_path / "resumed.zarr").exists()
    subprocess.run(command, check=True, capture_output=True)
    subprocess.run([*daskem_cli, "--out", str(tmp_path / "straight.zarr")], check=True, capture_output=True)
    resumed, straight = daskem.load(tmp_path / "resumed.zarr"), daskem.load(tmp_path / "straight.zarr")
    assert_bitwise_equal(resumed, straight)
    assert resumed.n_iter_ == 25


def _iteration(folder: Path) -> int:
    try:
        name = (folder / "LATEST").read_text().strip()
        return int(zarr.open_group(folder / name, mode="r").attrs["iteration"])
    except (FileNotFoundError, ValueError, KeyError):
        return -1


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
