"""Hostile and careless inputs (issue 22): paths read from files never escape their folder, a kill
leaves nothing a user must clean, and every message says what was wrong and what to do."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr
from click.testing import CliRunner

import daskem

pytestmark = pytest.mark.filterwarnings("ignore:Consolidated metadata:UserWarning")
from daskem.app.cli import main
from daskem.exceptions import DomainError, InputError, InputNotFoundError, ModelFileError
from daskem.io.checkpoints import CheckpointError
from tests.helpers import make_mixture_data, snapshot, write_zarr


def fails(*arguments: str) -> str:
    """Run the command line; it must fail with one line of its own (never the catch-all for bugs)."""
    result = CliRunner().invoke(main, ["--quiet", *arguments])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "a bug in daskem" not in result.stderr
    return result.stderr


@pytest.fixture
def data(tmp_path) -> Path:
    X = make_mixture_data(n_samples=600, n_features=2, n_components=2, seed=3, separation=4.0)
    return write_zarr(tmp_path / "data.zarr", X, chunk_rows=200)


FIT = ["-v", "X", "-k", "2", "--max-iter", "3", "--tol", "0"]


# ----------------------------------------------------------- paths read from files


@pytest.fixture
def checkpointed(tmp_path, data) -> tuple[Path, Path]:
    """A finished fit's checkpoint folder, and a store elsewhere that a tampered LATEST could name."""
    folder = tmp_path / "checkpoint"
    result = CliRunner().invoke(main, ["--quiet", "fit", str(data), *FIT, "--checkpoint", str(folder)])
    assert result.exit_code == 0, result.output
    victim = tmp_path / "victim.zarr"
    CliRunner().invoke(main, ["--quiet", "fit", str(data), *FIT, "--checkpoint", str(tmp_path / "other")])
    (tmp_path / "other" / (tmp_path / "other" / "LATEST").read_text().strip()).rename(victim)
    return folder, victim


@pytest.mark.parametrize("tamper", ["dotdot", "absolute", "link", "link-inside", "garbage", "latest-link", "huge"])
def test_a_checkpoint_latest_never_leads_out_of_its_folder(checkpointed, data, tamper):
    folder, victim = checkpointed
    latest = folder / "LATEST"
    name = latest.read_text().strip()
    if tamper == "dotdot":
        latest.write_text("../victim.zarr\n")
    elif tamper == "absolute":
        latest.write_text(f"{victim}\n")
    elif tamper == "link":
        os.rename(folder / name, folder / "gone")
        os.symlink(victim, folder / name)
    elif tamper == "link-inside":
        group = next(p for p in (folder / name).iterdir() if p.is_dir())
        os.rename(group, folder / "gone")
        os.symlink(victim / group.name, group)
    elif tamper == "latest-link":  # a LATEST that is a link is not even read: its target may be anything
        private = victim.parent / "private.txt"
        private.write_text("iteration-000001.zarr\n")
        latest.unlink()
        os.symlink(private, latest)
    elif tamper == "huge":  # read no further than a name could reach
        latest.write_bytes(b"x" * 2**20)
    else:
        latest.write_text("iteration-1.zarr; rm -rf /\n")
    before = snapshot(victim.parent / "victim.zarr")
    message = fails("fit", str(data), *FIT, "--checkpoint", str(folder))
    assert "daskem follows nothing out of a checkpoint folder" in message and "LATEST" in message
    assert snapshot(victim) == before
    with pytest.raises(CheckpointError, match="follows nothing out"):
        daskem.GaussianMixture(2, max_iter=3, tol=0).fit(str(data), variable="X", checkpoint=folder)


def test_a_selection_table_that_is_a_link_out_of_its_folder_is_refused(tmp_path, data):
    selection = tmp_path / "selection"
    result = CliRunner().invoke(main, ["--quiet", "select", str(data), "-v", "X", "-k", "1-2", "--max-iter", "3",
                                       "--out", str(selection)])
    assert result.exit_code == 0, result.output
    secret = tmp_path / "elsewhere.csv"
    secret.write_text("n_components,bic\n1,2\n")
    (selection / "table.csv").unlink()
    os.symlink(secret, selection / "table.csv")
    message = fails("plot", "selection", str(selection), "--out", str(tmp_path / "s.png"))
    assert "symbolic link" in message and not (tmp_path / "s.png").exists()


def test_a_job_report_names_only_the_jobs_own_outputs_and_tampering_is_named(tmp_path, data):
    (tmp_path / "job.yaml").write_text(textwrap.dedent(f"""
        data: {{path: {data}, variable: X}}
        fit: {{n_components: 2, max_iter: 3}}
        outputs: {{model: model.zarr, report: report.json}}
    """))
    assert CliRunner().invoke(main, ["--quiet", "run", str(tmp_path / "job.yaml")]).exit_code == 0
    (tmp_path / "report.json").write_text("{ edited by hand")
    message = fails("run", "--force", str(tmp_path / "job.yaml"))
    assert "report.json" in message and "damaged or edited" in message and "overwrite: true" in message
    assert "--overwrite" not in message
    (tmp_path / "report.json").unlink()
    assert "does not exist" in fails("run", str(tmp_path / "job.yaml"))


# ----------------------------------------------------------- a kill leaves nothing to clean

HOLDER = textwrap.dedent("""
    import sys, time
    from daskem.io.outputs import atomic_path
    with atomic_path(sys.argv[1], "model", overwrite=True) as temporary:
        temporary.mkdir()
        (temporary / "zarr.json").write_text("{}")
        print("ready", flush=True)
        time.sleep(60)
""")


def _killed_while_writing(path: Path) -> None:
    """Start a process that writes ``path``, and SIGKILL it halfway."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    holder.send_signal(signal.SIGKILL)
    holder.wait()


def test_a_killed_write_leaves_leftovers_that_info_names_and_the_next_command_removes(tmp_path, data):
    model = tmp_path / "model.zarr"
    assert CliRunner().invoke(main, ["--quiet", "fit", str(data), *FIT, "--out", str(model)]).exit_code == 0
    _killed_while_writing(model)
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".model.zarr"))
    assert len(left) == 2 and left[0] == ".model.zarr.lock" and left[1].startswith(".model.zarr.tmp-")
    shown = CliRunner().invoke(main, ["info", str(model)])
    assert shown.exit_code == 0, shown.output
    assert "a stale lock" in shown.stdout and "the temporary of an interrupted write" in shown.stdout
    assert len(json.loads(CliRunner().invoke(main, ["--json", "info", str(model)]).stdout)["leftovers"]) == 2
    result = CliRunner().invoke(main, ["fit", str(data), *FIT, "--out", str(model), "--overwrite"])
    assert result.exit_code == 0, result.output
    cleaned = [line for line in result.stderr.splitlines() if "cleaned up after an interrupted write" in line]
    assert len(cleaned) == 1 and "removed a stale lock of process" in cleaned[0]
    assert "removed 1 temporary file(s)" in cleaned[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.zarr")]


def test_a_first_write_killed_is_explained_where_the_output_is_missing(tmp_path):
    model = tmp_path / "model.zarr"
    _killed_while_writing(model)
    message = fails("info", str(model))
    assert "no such file or directory" in message and "the temporary of an interrupted write" in message


# ----------------------------------------------------------- messages that say what to do


@pytest.fixture
def model_file(tmp_path) -> Path:
    X = np.random.default_rng(0).random((200, 3))  # means inside [0, 1]: a Bernoulli relabel would pass
    daskem.GaussianMixture(2, max_iter=3, random_state=0).fit(X).save(tmp_path / "model.zarr")
    return tmp_path / "model.zarr"


def _set_attributes(store: Path, **attributes: str) -> None:
    group = zarr.open_group(store, mode="r+")
    group.attrs.update(attributes)
    zarr.consolidate_metadata(store)


def test_a_model_file_whose_family_attribute_was_changed_is_refused_by_name(model_file):
    _set_attributes(model_file, family="bernoulli")
    with pytest.raises(ModelFileError, match="family is 'bernoulli' but its attribute model is "
                                             "'daskem.GaussianMixture'"):
        daskem.load(model_file)
    assert "disagree" in fails("info", str(model_file))


def test_a_model_file_relabelled_as_another_family_is_refused_by_its_arrays(model_file, tmp_path):
    _set_attributes(model_file, family="bernoulli", model="daskem.BernoulliMixture")
    with pytest.raises(ModelFileError, match="holds covariances, which a Bernoulli model does not have"):
        daskem.load(model_file)
    binary = write_zarr(tmp_path / "binary.zarr", np.eye(3)[[0, 1, 2, 0]], chunk_rows=4)
    assert "does not match its arrays" in fails("score", str(model_file), str(binary), "-v", "X")


def test_a_huge_poisson_count_is_refused_by_row_and_feature_with_count_advice(tmp_path):
    X = np.random.default_rng(1).poisson(3.0, size=(500, 3)).astype(np.float64)
    X[123, 2] = 1e300
    with pytest.raises(DomainError) as caught:
        daskem.PoissonMixture(2, max_iter=3).fit(X)
    message = str(caught.value)
    assert "row 123, feature 2 holds 1e+300" in message and "counts" in message and "NaN" in message
    assert "standardise" not in message
    store = write_zarr(tmp_path / "counts.zarr", X, chunk_rows=100)
    assert "row 123, feature 2" in fails("fit", str(store), "-v", "X", "-k", "2", "--family", "poisson")


def test_a_count_outside_the_sample_is_named_by_the_first_pass(tmp_path):
    X = np.random.default_rng(2).poisson(3.0, size=(400, 2)).astype(np.float64)
    X[7, 1] = 2.0**60
    with pytest.raises(DomainError, match="row 7, feature 1"):
        daskem.PoissonMixture(2, max_iter=3, init_params="random").fit(X)


def test_repeated_dimension_names_are_refused_by_name(tmp_path):
    image = xr.Dataset({"cube": (("y", "x", "band"), np.random.default_rng(0).random((4, 5, 3)))})
    image.to_zarr(tmp_path / "image.zarr", zarr_format=3)
    with pytest.raises(InputError, match="sample_dim names 'y' more than once"):
        daskem.GaussianMixture(2, sample_dim=("y", "y")).fit(image, variable="cube")
    assert "more than once" in fails("fit", str(tmp_path / "image.zarr"), "-v", "cube", "-k", "2",
                                     "--sample-dim", "y,y")
    with pytest.raises(InputError, match=r"sample_dim must be None, a dimension name or a sequence of them, like \('y', 'x'\), got 5"):
        daskem.GaussianMixture(2, sample_dim=5).fit(image, variable="cube")


def test_an_array_inside_a_subgroup_is_found_and_a_wrong_name_lists_the_nested_arrays(tmp_path):
    X = make_mixture_data(n_samples=300, n_features=2, n_components=2, seed=1, separation=4.0)
    group = zarr.open_group(tmp_path / "nested.zarr", mode="w")
    group.create_array("w", data=np.ones(300))
    group.create_group("sub").create_array("X", data=X, chunks=(100, 2))
    result = CliRunner().invoke(main, ["--quiet", "--json", "fit", str(tmp_path / "nested.zarr"), "-v", "sub/X",
                                       "-k", "2", "--max-iter", "3"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data"]["rows"] == 300
    message = fails("fit", str(tmp_path / "nested.zarr"), "-v", "X", "-k", "2")
    assert "'sub/X'" in message and "group/array" in message
    with pytest.raises(InputNotFoundError, match="it holds the arrays 'sub/X', 'w'"):
        daskem.GaussianMixture(2).fit(str(tmp_path / "nested.zarr"), variable="sub/Y")
    write_zarr(tmp_path / "beside.zarr", X, chunk_rows=100, name="Y")
    for name in ("../beside.zarr/Y", "./w", "w\x00"):  # nothing outside the group, and no error from inside Zarr
        assert "not found" in fails("fit", str(tmp_path / "nested.zarr"), "-v", name, "-k", "2")


# ----------------------------------------------------------- found by trying (issue 22, item 7)


def test_an_array_with_no_chunk_stored_is_refused_before_a_pass_whatever_it_declares(tmp_path):
    group = zarr.open_group(tmp_path / "empty.zarr", mode="w")
    group.create_array("X", shape=(10**12, 3), chunks=(10**6, 3), dtype="f8")  # 24 TB of fill value, declared
    message = fails("fit", str(tmp_path / "empty.zarr"), "-v", "X", "-k", "2")
    assert "none of the 1000000 chunks" in message and "nothing but its fill value 0.0" in message


def test_an_object_store_url_without_a_bucket_is_refused_before_any_request(data):
    pytest.importorskip("s3fs", reason="s3fs is part of the test install")
    assert "names no bucket" in fails("fit", str(data), *FIT, "--out", "s3://")


def test_another_file_given_where_a_model_belongs_is_named_for_what_it_is(tmp_path, data):
    scores = tmp_path / "scores.zarr"
    model = tmp_path / "model.zarr"
    assert CliRunner().invoke(main, ["--quiet", "fit", str(data), *FIT, "--out", str(model)]).exit_code == 0
    assert CliRunner().invoke(main, ["--quiet", "predict", str(model), str(data), "-v", "X", "--out",
                                     str(scores)]).exit_code == 0
    assert "is a daskem scores output, not a daskem model file" in fails("info", str(scores))
    assert "it is a Zarr store not written by daskem" in fails("score", str(data), str(data), "-v", "X")
    assert "it is a folder that is not a daskem output" in fails("info", str(tmp_path))


@pytest.mark.parametrize("family", ["bernoulli", "poisson"])
def test_a_model_relabelled_whole_is_refused_when_its_values_leave_the_familys_domain(tmp_path, family):
    X = make_mixture_data(n_samples=300, n_features=2, n_components=2, seed=4)  # means below 0
    daskem.GaussianMixture(2, max_iter=3, random_state=0).fit(X).save(tmp_path / "model.zarr")
    group = zarr.open_group(tmp_path / "model.zarr", mode="r+")
    del group["covariances"]
    for name in ("covariance_type", "reg_covar"):
        group.attrs.pop(name, None)
    _set_attributes(tmp_path / "model.zarr", family=family, model=f"daskem.{family.capitalize()}Mixture")
    with pytest.raises(ModelFileError, match="relabelled from another family"):
        daskem.load(tmp_path / "model.zarr")


@pytest.mark.parametrize("group, attribute, value", [
    ("", "iteration", "abc"), ("", "iteration", -5), ("", "n_runs", "x"), ("", "settings", "nope"),
    ("run-0000", "previous", float("nan")), ("last-pass", "mean_log_likelihood", "zz"),
])
def test_a_checkpoint_with_a_tampered_value_is_refused_in_one_line(tmp_path, group, attribute, value):
    X = make_mixture_data(n_samples=600, n_features=2, n_components=2, seed=3)
    folder = tmp_path / "checkpoint"
    model = daskem.GaussianMixture(2, max_iter=2, tol=0, random_state=0)
    with pytest.warns(daskem.ConvergenceWarning):
        model.fit(X, checkpoint=folder)
    store = folder / (folder / "LATEST").read_text().strip()
    if attribute == "previous":  # a variable of the run, not an attribute
        zarr.open_group(store / group, mode="r+")[attribute][...] = value
    else:
        zarr.open_group(store / group, mode="r+").attrs[attribute] = value
    with pytest.raises(CheckpointError, match="use another --checkpoint folder"):
        daskem.GaussianMixture(2, max_iter=2, tol=0, random_state=0).fit(X, checkpoint=folder)


def test_a_cluster_config_given_as_a_url_in_a_job_file_is_named(tmp_path, data):
    (tmp_path / "job.yaml").write_text(textwrap.dedent(f"""
        data: {{path: {data}, variable: X}}
        fit: {{n_components: 2}}
        cluster: memory://configs/cluster.yaml
        outputs: {{model: model.zarr, report: report.json}}
    """))
    assert "is a URL; a cluster config is a local YAML file" in fails("run", str(tmp_path / "job.yaml"))


def test_a_warning_raised_by_two_stages_of_one_command_is_said_once(tmp_path, data):
    (data / "X" / "c" / "1" / "0").unlink()  # an absent chunk: the fit and the scoring of a job both read it
    (tmp_path / "job.yaml").write_text(textwrap.dedent(f"""
        data: {{path: {data}, variable: X}}
        fit: {{n_components: 2, max_iter: 3}}
        outputs: {{model: model.zarr, scores: scores.zarr, report: report.json}}
    """))
    result = CliRunner().invoke(main, ["--quiet", "run", str(tmp_path / "job.yaml")])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("chunks of") == 1, result.stderr
