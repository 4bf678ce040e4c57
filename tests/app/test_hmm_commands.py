"""Hidden Markov models from the command line: daskem hmm, decode and info, and what they refuse."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from tests.helpers import snapshot, write_zarr

LENGTHS = [400, 700, 100]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """1,200 steps of a sticky 3-state HMM in a Zarr group, with their lengths and one sequence id per row."""
    rng = np.random.default_rng(4)
    transmat = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    states = [0]
    for _ in range(sum(LENGTHS) - 1):
        states.append(rng.choice(3, p=transmat[states[-1]]))
    X = np.array([[0.0, 0.0], [4.0, 4.0], [-4.0, 4.0]])[states] + rng.normal(size=(len(states), 2))
    store = write_zarr(tmp_path_factory.mktemp("hmm") / "steps.zarr", X, chunk_rows=256)
    group = zarr.open_group(store, mode="r+")
    group.create_array("lengths", data=np.array(LENGTHS), chunks=(3,))
    group.create_array("ids", data=np.repeat([5, 1, 9], LENGTHS), chunks=(256,))
    return store, X


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def test_hmm_fits_the_model_python_fits_and_decode_writes_its_states(data, tmp_path):
    store, X = data
    out = tmp_path / "model.zarr"
    result = run("hmm", store, "-v", "X", "--lengths", "lengths", "-k", 3, "--covariance-type", "diag",
                 "--max-iter", 20, "--out", out)
    assert result.exit_code == 0, result.output
    assert "3 hidden states, Gaussian emissions (diag covariance)" in result.stdout
    assert "transition probabilities" in result.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        python = daskem.GaussianHMM(3, covariance_type="diag", max_iter=20, random_state=0).fit(
            str(store), "lengths", variable="X")
    saved = daskem.load(out)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_array_equal(getattr(saved, name), getattr(python, name))
    states = tmp_path / "states.zarr"
    result = run("decode", out, store, "-v", "X", "--sequence-ids", "ids", "--out", states)
    assert result.exit_code == 0, result.output
    with xr.open_zarr(states) as decoded:
        np.testing.assert_array_equal(decoded["state"].values, python.predict(X, LENGTHS))
        np.testing.assert_allclose(decoded["posterior"].values, python.predict_proba(X, LENGTHS), rtol=0, atol=1e-12)
    info = run("--json", "info", out)
    assert json.loads(info.stdout)["model"]["transmat"] == saved.transmat_.tolist()


@pytest.mark.parametrize(("args", "message"), [
    (["--lengths", "ids"], "lengths sum to"),
    (["--min-rate", "0.5"], "min_rate do(es) not apply to a hidden Markov model with gaussian emissions"),
    (["--emission", "poisson"], "counts"),
    (["--lengths", "lengths", "--sequence-ids", "ids"], "give lengths or sequence_ids, not both"),
])
def test_bad_runs_are_refused_in_one_line(data, args, message):
    store, _ = data
    result = run("hmm", store, "-v", "X", "-k", 3, *args)
    assert result.exit_code == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_mixture_command_refuses_an_hmm_and_decode_refuses_a_mixture(data, tmp_path):
    store, _ = data
    run("hmm", store, "-v", "X", "-k", 2, "--max-iter", 3, "--out", tmp_path / "hmm.zarr")
    run("fit", store, "-v", "X", "-k", 2, "--max-iter", 3, "--out", tmp_path / "mixture.zarr")
    result = run("predict", tmp_path / "hmm.zarr", store, "-v", "X", "--out", tmp_path / "scores.zarr")
    assert result.exit_code == 1 and "holds a hidden Markov model (GaussianHMM)" in result.stderr
    result = run("decode", tmp_path / "mixture.zarr", store, "-v", "X", "--out", tmp_path / "states.zarr")
    assert result.exit_code == 1 and "holds a mixture, not a hidden Markov model" in result.stderr
    assert not (tmp_path / "scores.zarr").exists() and not (tmp_path / "states.zarr").exists()


def test_hmm_never_writes_into_its_data(data):
    """--out at the data's own store, or inside it: refused before any work, the store untouched."""
    store, _ = data
    before = snapshot(store)
    for out in (store, store / "model.zarr"):
        result = run("hmm", store, "-v", "X", "-k", 2, "--max-iter", 2, "--out", out, "--overwrite")
        assert result.exit_code == 1, result.output
    assert snapshot(store) == before


def test_an_hmm_job_fits_decodes_and_resumes_nothing_once_done(data, tmp_path):
    """A job file with hmm: fits, decodes into outputs.scores, writes its report; run again, it is done; its
    sequences come from data.sequence_ids; a fit job with data.lengths, or row weights with hmm, are refused."""
    store, X = data
    job = tmp_path / "job.yaml"
    job.write_text(f"data: {{path: {store}, variable: X, sequence_ids: ids}}\n"
                   "hmm: {n_components: 3, emission: gaussian, covariance_type: diag, max_iter: 20}\n"
                   "checkpoint: run/checkpoint\n"
                   "outputs: {model: run/hmm.zarr, scores: run/states.zarr, report: run/report.json}\n")
    result = run("run", job)
    assert result.exit_code == 0, result.output
    model = daskem.load(tmp_path / "run" / "hmm.zarr")
    with xr.open_zarr(tmp_path / "run" / "states.zarr") as decoded:
        np.testing.assert_array_equal(decoded["state"].values, model.predict(str(store), "lengths", variable="X"))
    assert not (tmp_path / "run" / "checkpoint").exists()
    assert "already done" in run("run", job).stdout
    for body, message in [
        ("data: {path: %s, variable: X, lengths: lengths}\nfit: {n_components: 3}\n", "use them with hmm"),
        ("data: {path: %s, variable: X, sample_weight: w}\nhmm: {n_components: 3}\n", "takes no row weights"),
        ("data: {path: %s, variable: X}\nhmm: {n_components: 3, min_rate: 0.5}\n", "min_rate do(es) not apply"),
    ]:
        job.write_text(body % store + "outputs: {model: other/m.zarr, report: other/report.json}\n")
        result = run("run", job)
        assert result.exit_code == 1 and message in result.stderr, result.output


def test_the_hmm_picture_shows_the_decoded_window_and_the_transitions(data, tmp_path):
    """The line is the window's values of the feature; each state's points are the steps decoded to it; the
    posteriors are stacked below; the heat map is the transition matrix.  The command writes a PNG of it."""
    pytest.importorskip("matplotlib")
    from daskem.app import plots

    store, X = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = daskem.GaussianHMM(3, max_iter=10, random_state=0).fit(str(store), "lengths", variable="X")
    figure = plots.hmm(model, str(store), "lengths", variable="X", start=350, steps=200, feature=1)
    top, bottom, right = figure.axes[:3]
    window = slice(350, 550)
    np.testing.assert_array_equal(top.lines[0].get_ydata(), X[window, 1])
    states = model.predict(str(store), "lengths", variable="X")[window]
    for state, points in enumerate(top.collections):
        np.testing.assert_array_equal(points.get_offsets()[:, 0], np.arange(350, 550)[states == state])
    assert len(bottom.collections) == 3
    np.testing.assert_array_equal(right.images[0].get_array(), model.transmat_)
    model.save(tmp_path / "hmm.zarr")
    out = tmp_path / "hmm.png"
    result = run("plot", "hmm", tmp_path / "hmm.zarr", store, "-v", "X", "--lengths", "lengths", "--out", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = run("plot", "hmm", tmp_path / "hmm.zarr", store, "-v", "X", "--feature", 5, "--out", tmp_path / "x.png")
    assert result.exit_code == 1 and "feature 5 is out of range for 2 features" in result.stderr
