"""The command line: generate → fit → info, and one-line errors."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    result = CliRunner().invoke(
        main,
        ["generate", str(folder / "data.zarr"), "--n-samples", "6000", "--n-features", "3",
         "--n-components", "3", "--seed", "1", "--chunk-rows", "1000"],
    )
    assert result.exit_code == 0, result.output
    return folder


def test_generate_writes_chunked_rows_and_the_truth(generated):
    group = zarr.open_group(generated / "data.zarr", mode="r")
    assert group["X"].shape == (6000, 3) and group["X"].chunks == (1000, 3)
    assert group["labels"].shape == (6000,)
    truth = daskem.load(generated / "data.truth.zarr")
    assert truth.means_.shape == (3, 3)
    labels = group["labels"][:]
    np.testing.assert_allclose(np.bincount(labels) / 6000, truth.weights_, atol=0.03)


def test_generate_is_reproducible(generated, tmp_path):
    CliRunner().invoke(main, ["generate", str(tmp_path / "again.zarr"), "--n-samples", "6000",
                              "--n-features", "3", "--n-components", "3", "--seed", "1", "--chunk-rows", "1000"])
    np.testing.assert_array_equal(zarr.open_group(tmp_path / "again.zarr")["X"][:],
                                  zarr.open_group(generated / "data.zarr")["X"][:])


def test_fit_logs_each_iteration_and_prints_a_summary(generated):
    out = generated / "model.zarr"
    result = CliRunner().invoke(
        main, ["fit", str(generated / "data.zarr"), "--variable", "X", "-k", "3", "--out", str(out), "--overwrite"]
    )
    assert result.exit_code == 0, result.output
    model = daskem.load(out)
    iteration_lines = [line for line in result.stderr.splitlines() if line.startswith("iteration")]
    assert len(iteration_lines) == model.n_iter_
    assert "mean log-likelihood" in iteration_lines[0] and iteration_lines[0].endswith(" s")
    assert f"iterations      {model.n_iter_} (converged" in result.stdout
    assert "rows/s" in result.stdout and str(out) in result.stdout
    truth = daskem.load(generated / "data.truth.zarr")
    order = [int(np.argmin(((model.means_ - m) ** 2).sum(axis=1))) for m in truth.means_]
    np.testing.assert_allclose(model.means_[order], truth.means_, atol=0.1)


def test_info_prints_a_saved_model(generated):
    CliRunner().invoke(main, ["fit", str(generated / "data.zarr"), "-v", "X", "-k", "3",
                              "--out", str(generated / "info.zarr"), "--overwrite"])
    result = CliRunner().invoke(main, ["info", str(generated / "info.zarr")])
    assert result.exit_code == 0, result.output
    assert "3 components, full covariance, 3 features" in result.stdout
    assert f"daskem version  {daskem.__version__}" in result.stdout


def test_quiet_fit_prints_no_iteration_lines(generated):
    result = CliRunner().invoke(main, ["--quiet", "fit", str(generated / "data.zarr"), "-v", "X", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "iteration " not in result.stderr and "log-likelihood" in result.stdout


def test_convergence_warning_is_one_line(generated):
    result = CliRunner().invoke(main, ["fit", str(generated / "data.zarr"), "-v", "X", "-k", "3", "--max-iter", "1"])
    assert result.exit_code == 0
    assert "warning: EM did not converge in 1 iterations" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["fit", "{folder}/missing.zarr", "-k", "2"], "no such file or directory"),
        (["fit", "{folder}/data.zarr", "-k", "2"], "say which array to fit"),
        (["fit", "{folder}/data.zarr", "-v", "nope", "-k", "2"], "variable 'nope' not found"),
        (["fit", "{folder}/data.zarr", "-v", "labels", "-k", "2"], "expected a 2-D array"),
        (["fit", "{folder}/data.zarr", "-v", "X", "-k", "2", "--out", "{folder}/data.zarr"], "is the input"),
        (["fit", "{folder}/data.zarr", "-v", "X", "-k", "2", "--out", "{folder}/data.truth.zarr"],
         "(--overwrite) to replace it"),
        (["info", "{folder}/data.zarr"], "not a daskem model file"),
        (["generate", "{folder}/data.zarr", "--n-samples", "10"], "exists; pass overwrite=True"),
    ],
)
def test_bad_input_gives_a_one_line_error(generated, arguments, message):
    result = CliRunner().invoke(main, [a.format(folder=generated) for a in arguments])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1  # one line, no traceback


BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", [[sys.executable, "-m", "daskem"], [str(BIN / "daskem")], [str(BIN / "dask"), "em"]])
def test_entry_points(command):
    result = subprocess.run([*command, "--version"], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"daskem, version {daskem.__version__}"


def test_json_output_is_one_document(generated):
    import json

    result = CliRunner().invoke(main, ["--json", "fit", str(generated / "data.zarr"), "-v", "X", "-k", "3"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["command"] == "fit" and report["model"]["n_components"] == 3
    assert report["data"]["rows"] == 6000 and report["passes"] == report["model"]["n_iter"]
    assert "iteration" not in result.stderr  # --json implies no progress lines


@pytest.mark.parametrize(("level", "shown"), [("debug", True), ("info", True), ("warning", False)])
def test_log_level(generated, level, shown):
    result = CliRunner().invoke(main, ["--log-level", level, "fit", str(generated / "data.zarr"), "-v", "X", "-k", "2"])
    assert result.exit_code == 0
    assert ("iteration    1  mean log-likelihood" in result.stderr) is shown


def test_progress_bar_on_the_local_scheduler(generated, monkeypatch):
    import dask.diagnostics

    class Immediate(dask.diagnostics.ProgressBar):  # show the bar however short the pass
        def __init__(self, minimum=0, **kwargs):
            super().__init__(minimum=0, **kwargs)

    monkeypatch.setattr(dask.diagnostics, "ProgressBar", Immediate)
    result = CliRunner().invoke(main, ["fit", str(generated / "data.zarr"), "-v", "X", "-k", "2", "--max-iter", "2"])
    assert "% Completed" in result.stderr
    quiet = CliRunner().invoke(main, ["--quiet", "fit", str(generated / "data.zarr"), "-v", "X", "-k", "2",
                                      "--max-iter", "2"])
    assert "% Completed" not in quiet.stderr


def test_the_library_only_logs_through_its_logger():
    import daskem

    package = Path(daskem.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if p.name != "cli.py" and re.search(r"(?<![\w.])print\(|sys\.stdout", p.read_text())]
    assert offenders == []


@pytest.fixture(scope="module")
def few_rows(tmp_path_factory):
    from tests.helpers import make_mixture_data, write_zarr

    X = make_mixture_data(n_samples=400, n_features=2, n_components=3, seed=6, separation=4.0)
    return write_zarr(tmp_path_factory.mktemp("acceleration") / "data.zarr", X, chunk_rows=100)


@pytest.fixture(scope="module")
def estimator_fits(few_rows):
    """The fits of GaussianMixture (the command line's seed 0) on ``few_rows``: textbook and by default."""
    fits = {"none": daskem.GaussianMixture(3, acceleration="none", random_state=0),
            "squarem": daskem.GaussianMixture(3, random_state=0)}
    fits = {name: model.fit(str(few_rows), variable="X") for name, model in fits.items()}
    assert not np.array_equal(fits["none"].history_, fits["squarem"].history_)  # the setting shows on this data
    return fits


@pytest.mark.parametrize("acceleration", ["none", "squarem", None])
def test_fit_acceleration_fits_as_the_estimator_does(few_rows, estimator_fits, tmp_path, acceleration):
    import json

    out = tmp_path / "model.zarr"
    option = [] if acceleration is None else ["--acceleration", acceleration]
    result = CliRunner().invoke(main, ["--json", "fit", str(few_rows), "-v", "X", "-k", "3", *option,
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = acceleration or "squarem"  # the default
    assert json.loads(result.stdout)["acceleration"] == expected
    model, alone = daskem.load(out), estimator_fits[expected]
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(model, name), getattr(alone, name))


@pytest.mark.parametrize("command", [["fit", "-k", "3"], ["select", "-k", "2,3"]])
def test_acceleration_option_refuses_other_values_and_is_documented(few_rows, command):
    result = CliRunner().invoke(main, [command[0], str(few_rows), "-v", "X", *command[1:], "--acceleration", "fast"])
    assert result.exit_code == 2 and result.stdout == ""
    assert "Invalid value for '--acceleration': 'fast' is not one of 'squarem', 'none'." in result.stderr
    helped = CliRunner().invoke(main, [command[0], "--help"], terminal_width=200)
    lines = helped.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if "--acceleration" in line)
    line = " ".join([lines[first], *itertools.takewhile(lambda text: not text.lstrip().startswith("-"),
                                                        lines[first + 1:])])  # the option's help, wrapped
    line = " ".join(line.split())
    assert "[squarem|none]" in line and "[default: squarem]" in line
    assert ("squarem: accelerated EM (fewer passes); none: textbook EM, one EM step per pass, for step-by-step "
            "comparison with scikit-learn") in line
