"""Job files: validated before work, run once, resumed after a crash, outputs atomic."""

from __future__ import annotations

import datetime
import json
import logging
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.app.jobs import JobError, load_job, run_job
from daskem.exceptions import InputError
from tests.helpers import make_mixture_data, write_zarr

ROOT = Path(__file__).parents[2]


@pytest.fixture
def folder(tmp_path) -> Path:
    X = make_mixture_data(n_samples=3000, n_features=3, n_components=3, seed=4, separation=4.0)
    write_zarr(tmp_path / "data.zarr", X, chunk_rows=1000)
    return tmp_path


def job_file(folder: Path, text: str) -> Path:
    (folder / "job.yaml").write_text(text)
    return folder / "job.yaml"


FIT_JOB = """
data: {path: data.zarr, variable: X}
fit: {n_components: 3, tol: 0, max_iter: 8, chunk_rows: 1000}
checkpoint: runs/{date}/checkpoint
outputs:
  model: runs/{date}/model.zarr
  scores: runs/{date}/scores.zarr
  report: runs/{date}/report.json
"""


def test_a_fit_job_runs_once_then_is_done(folder):
    path = job_file(folder, FIT_JOB)
    with pytest.warns(daskem.ConvergenceWarning):
        report = run_job(path, date="2026-01-02")
    night = folder / "runs" / "2026-01-02"
    assert report["status"] == "done" and [s["command"] for s in report["stages"]] == ["fit", "predict"]
    saved = json.loads((night / "report.json").read_text())
    assert saved["stages"][0]["model"]["n_iter"] == 8
    # what ran, with which settings, from when to when (times with their UTC offset)
    assert saved["daskem_version"] == daskem.__version__ and saved["settings"]["fit"]["n_components"] == 3
    started, finished = (datetime.datetime.fromisoformat(saved[key]) for key in ("started", "finished"))
    assert started.tzinfo is not None and finished.tzinfo is not None and started <= finished
    model = daskem.load(night / "model.zarr")
    scores = xr.open_zarr(night / "scores.zarr", consolidated=False)
    X = np.asarray(__import__("zarr").open_group(folder / "data.zarr")["X"][:])
    np.testing.assert_array_equal(scores["label"].values, model.predict(X))
    assert not (night / "checkpoint").exists()  # removed once the job is done
    again = run_job(path, date="2026-01-02")
    assert again["status"] == "already done"
    with pytest.warns(daskem.ConvergenceWarning):
        assert run_job(path, date="2026-01-02", force=True)["status"] == "done"


def test_a_crashed_job_resumes_and_ends_bitwise_as_an_uninterrupted_one(folder, monkeypatch):
    path = job_file(folder, FIT_JOB)
    import daskem.engine.em

    real_run_em = daskem.engine.em.run_em

    def crash_after_four(*args, on_iteration=None, **kwargs):
        def save_then_crash(state):
            on_iteration(state)
            if state.iteration == 4:
                raise KeyboardInterrupt  # the driver dies
        return real_run_em(*args, on_iteration=save_then_crash, **kwargs)

    monkeypatch.setattr(daskem.estimators.fitting, "run_em", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        run_job(path, date="2026-01-03")
    night = folder / "runs" / "2026-01-03"
    assert (night / "checkpoint" / "LATEST").exists() and not (night / "report.json").exists()
    assert not (night / "model.zarr").exists()
    monkeypatch.undo()
    with pytest.warns(daskem.ConvergenceWarning):
        run_job(path, date="2026-01-03")
    with pytest.warns(daskem.ConvergenceWarning):
        run_job(path, date="2026-01-04")  # the same job, never interrupted
    resumed = daskem.load(night / "model.zarr")
    straight = daskem.load(folder / "runs" / "2026-01-04" / "model.zarr")
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(straight, name))


def test_a_select_job_writes_the_table_and_scores_with_the_best_model(folder):
    path = job_file(folder, """
data: {path: data.zarr, variable: X}
select: {n_components: 1-4, covariance_types: [full, diag]}
outputs: {selection: out/selection, scores: out/scores.zarr, report: out/report.json}
""")
    report = run_job(path)
    assert [s["command"] for s in report["stages"]] == ["select", "predict"]
    assert (folder / "out" / "selection" / "table.csv").exists()
    assert report["stages"][0]["best"]["n_components"] == 3
    assert xr.open_zarr(folder / "out" / "scores.zarr", consolidated=False).sizes["sample"] == 3000


@pytest.fixture
def few_rows(tmp_path) -> Path:
    X = make_mixture_data(n_samples=400, n_features=2, n_components=3, seed=6, separation=4.0)
    return write_zarr(tmp_path / "data.zarr", X, chunk_rows=100)


def test_a_fit_job_with_acceleration_none_fits_as_the_command_line_does(few_rows):
    folder = few_rows.parent
    path = job_file(folder, """
data: {path: data.zarr, variable: X}
fit: {n_components: 3, acceleration: none}
outputs: {model: job.zarr, report: report.json}
""")
    report = run_job(path)
    assert report["settings"]["fit"]["acceleration"] == "none" and report["stages"][0]["acceleration"] == "none"
    for acceleration in ("none", "squarem"):
        result = CliRunner().invoke(main, ["fit", str(few_rows), "-v", "X", "-k", "3", "--acceleration", acceleration,
                                           "--out", str(folder / f"{acceleration}.zarr")])
        assert result.exit_code == 0, result.output
    job, textbook, accelerated = (daskem.load(folder / name) for name in ("job.zarr", "none.zarr", "squarem.zarr"))
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(job, name), getattr(textbook, name))
    assert not np.array_equal(job.history_, accelerated.history_)
    assert load_job(job_file(folder, "data: {path: data.zarr}\nfit: {n_components: 3}\n"
                                     "outputs: {model: m.zarr, report: r.json}\n")).fit.acceleration == "squarem"


def test_a_select_job_passes_acceleration_to_its_candidates(few_rows):
    folder = few_rows.parent
    path = job_file(folder, """
data: {path: data.zarr, variable: X}
select: {n_components: [3], acceleration: none}
outputs: {selection: selection, report: report.json}
""")
    report = run_job(path)
    assert report["settings"]["select"]["acceleration"] == "none"
    alone = daskem.GaussianMixture(3, acceleration="none", random_state=0).fit(str(few_rows), variable="X")
    np.testing.assert_array_equal(daskem.load(folder / "selection" / "best.zarr").history_, alone.history_)
    accelerated = daskem.GaussianMixture(3, random_state=0).fit(str(few_rows), variable="X")
    assert not np.array_equal(alone.history_, accelerated.history_)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("data: {path: data.zarr}\nfit: {n_components: 2}\noutputs: {model: m.zarr, report: r.json}\nextra: 1\n",
         "unknown key 'extra'"),
        ("data: {path: data.zarr}\nfit: {n_components: two}\noutputs: {model: m.zarr, report: r.json}\n",
         "fit.n_components: Input should be a valid integer"),
        ("data: {path: data.zarr}\nfit: {n_components: 2, covariance_type: banded}\n"
         "outputs: {model: m.zarr, report: r.json}\n", "fit.covariance_type: Input should be 'full'"),
        ("data: {path: nothing.zarr}\nfit: {n_components: 2}\noutputs: {model: m.zarr, report: r.json}\n",
         "data.path '{folder}/nothing.zarr' does not exist"),
        ("data: {path: data.zarr}\noutputs: {model: m.zarr, report: r.json}\n", "give exactly one of fit, select and hmm"),
        ("data: {path: data.zarr}\nfit: {n_components: 2}\noutputs: {report: r.json}\n", "a fit job needs outputs.model"),
        ("data: {path: data.zarr}\nfit: {n_components: 2}\noutputs: {model: m.zarr}\n", "outputs.report: Field required"),
        ("data: {path: data.zarr}\nselect: {n_components: 1-x}\noutputs: {selection: s, report: r.json}\n",
         "n_components '1-x' is not a list like 3, 1-10"),
        ("data: {path: data.zarr}\nfit: {n_components: 2, acceleration: fast}\n"
         "outputs: {model: m.zarr, report: r.json}\n", "fit.acceleration: Input should be 'squarem' or 'none'"),
        ("data: {path: data.zarr}\nselect: {n_components: 1-3, acceleration: off}\n"
         "outputs: {selection: s, report: r.json}\n", "select.acceleration: Input should be 'squarem' or 'none'"),
        ("data: {path: data.zarr}\nfit: {n_components: 2}\ncluster: nowhere.yaml\n"
         "outputs: {model: m.zarr, report: r.json}\n", "cannot read cluster config"),
        ("data: [", "is not valid YAML"),
        ("- 1\n", "must be a mapping"),
        ("data: {path: data.zarr}\nselect: {n_components: 1-1000000000}\noutputs: {selection: s, report: r.json}\n",
         "holds more than 1000 integers"),
        # 634 bytes of aliases that would expand to 10¹⁰ values
        ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
         + "".join(f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                   for p, c in zip("abcdefgh", "bcdefghi"))
         + "data: {path: data.zarr}\nfit: {n_components: 2}\noutputs: {model: m.zarr, report: r.json}\n",
         "holds more than 100,000 values once its aliases are expanded"),
        ("a: &a [*a]\n", "once its aliases are expanded"),
        ("[" * 100_000, "nested too deeply"),
        ("# " + "x" * 2**21 + "\n", "bytes; daskem reads at most"),
    ],
    ids=lambda value: " ".join(value[:60].split()),
)
def test_bad_job_files_are_refused_before_any_work(folder, text, message):
    path = job_file(folder, text)
    with pytest.raises(JobError, match=__import__("re").escape(message.format(folder=folder))):
        load_job(path)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert sorted(p.name for p in folder.iterdir()) == ["data.zarr", "job.yaml"]  # nothing written


def example_job(tmp_path: Path, name: str, n_samples: int) -> Path:
    """A copy of ``workflows/<name>`` beside the cluster configs and demo data it names; its path."""
    (tmp_path / "workflows").mkdir()
    shutil.copy(ROOT / "workflows" / name, tmp_path / "workflows" / name)
    shutil.copytree(ROOT / "cluster_configs", tmp_path / "cluster_configs")
    X = make_mixture_data(n_samples=n_samples, n_features=3, n_components=8, seed=5, separation=8.0)
    write_zarr(tmp_path / "demo-data" / "data.zarr", X, chunk_rows=1000)
    return tmp_path / "workflows" / name


def test_the_example_job_and_cron_line_work_as_documented(tmp_path):
    example_job(tmp_path, "job.example.yaml", 4000).rename(tmp_path / "workflows" / "job.yaml")
    result = CliRunner().invoke(main, ["--json", "run", str(tmp_path / "workflows" / "job.yaml"), "--date", "2026-11-26"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "done"
    night = tmp_path / "workflows" / "runs" / "2026-11-26"
    assert sorted(p.name for p in night.iterdir()) == ["model.zarr", "report.json", "scores.zarr"]
    cron = (ROOT / "workflows" / "crontab.example").read_text()
    assert "daskem --json run workflows/job.example.yaml" in cron


@pytest.fixture(scope="module")
def prefect_flow():
    """workflows/prefect_flow.py, loaded as a module, with a local Prefect test server (one per module:
    it takes seconds to start)."""
    pytest.importorskip("prefect", reason="the workflows extra is part of the test install")
    import importlib.util

    from prefect.testing.utilities import prefect_test_harness

    spec = importlib.util.spec_from_file_location("prefect_flow", ROOT / "workflows" / "prefect_flow.py")
    flow_module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(flow_module)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # this machine has no network
        with prefect_test_harness():
            yield flow_module


def test_a_forced_run_that_crashes_is_resumed_by_the_next_run_not_taken_for_done(folder, monkeypatch):
    from daskem.app import commands
    from daskem.io.checkpoints import Checkpoint

    path = job_file(folder, FIT_JOB)
    with pytest.warns(daskem.ConvergenceWarning):
        run_job(path, date="2026-01-05")
    real_load, resumed = Checkpoint.load, []
    monkeypatch.setattr(Checkpoint, "load", lambda self: resumed.append(real_load(self) is not None)
                        or real_load(self))
    monkeypatch.setattr(commands, "predict", lambda *a, **k: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.warns(daskem.ConvergenceWarning), pytest.raises(OSError, match="disk gone"):
        run_job(path, date="2026-01-05", force=True)  # the new model is written, then scoring fails
    report = folder / "runs" / "2026-01-05" / "report.json"
    assert not report.exists()  # the old report no longer describes the outputs
    monkeypatch.undo()
    monkeypatch.setattr(Checkpoint, "load", lambda self: resumed.append(real_load(self) is not None)
                        or real_load(self))
    assert run_job(path, date="2026-01-05")["status"] == "done" and report.exists()
    assert resumed == [False, True]


def test_the_prefect_flow_runs_a_job_locally_and_logs_to_prefect(folder, prefect_flow, caplog):
    path = job_file(folder, FIT_JOB.replace("tol: 0", "tol: 0.001"))
    prefect_logger, handlers = logging.getLogger("prefect.task_runs"), list(logging.getLogger("daskem").handlers)
    prefect_logger.addHandler(caplog.handler)
    try:
        report = prefect_flow.daskem_job(str(path), date="2026-02-01")
        again = prefect_flow.daskem_job(str(path), date="2026-02-01")
    finally:
        prefect_logger.removeHandler(caplog.handler)
    assert report["status"] == "done" and again["status"] == "already done"
    assert (folder / "runs" / "2026-02-01" / "model.zarr").exists()
    daskem_lines = [r.getMessage() for r in caplog.records if r.name == "prefect.task_runs"]
    assert any("iteration" in line for line in daskem_lines), daskem_lines  # daskem's own lines, in Prefect's log
    assert logging.getLogger("daskem").handlers == handlers  # and nothing left attached afterwards


def test_a_retry_of_a_forced_prefect_run_resumes_from_its_checkpoint(folder, prefect_flow, monkeypatch):
    from daskem.app import commands
    from daskem.io.checkpoints import Checkpoint

    path = job_file(folder, FIT_JOB)
    assert prefect_flow.daskem_job(str(path), date="2026-02-02")["status"] == "done"
    real_predict, real_load, resumed = commands.predict, Checkpoint.load, []

    def crash_once(*args, **kwargs):  # the fit and its checkpoint are written; scoring fails
        monkeypatch.setattr(commands, "predict", real_predict)
        raise OSError("worker lost")

    def load(self):
        state = real_load(self)
        resumed.append(state is not None)
        return state

    monkeypatch.setattr(commands, "predict", crash_once)
    monkeypatch.setattr(Checkpoint, "load", load)
    monkeypatch.setattr(prefect_flow, "run_daskem_job", prefect_flow.run_daskem_job.with_options(retry_delay_seconds=0))
    report = prefect_flow.daskem_job(str(path), force=True, date="2026-02-02")
    assert report["status"] == "done"
    assert resumed == [False, True]  # the forced try starts afresh; its retry resumes, it does not start over


def test_the_prefect_flow_takes_its_parameters_on_the_command_line(folder, prefect_flow, monkeypatch):
    path = job_file(folder, FIT_JOB)
    result = CliRunner().invoke(prefect_flow._main, [str(path), "--date", "2026-02-03"])
    assert result.exit_code == 0, result.output
    assert (folder / "runs" / "2026-02-03" / "report.json").exists()
    calls = []
    real_run_job = prefect_flow.run_job
    monkeypatch.setattr(prefect_flow, "run_job", lambda *a, **k: calls.append(a) or real_run_job(*a, **k))
    result = CliRunner().invoke(prefect_flow._main, [str(path), "--date", "tomorrow"])
    assert result.exit_code != 0 and "is not a date" in str(result.exception)
    assert len(calls) == 1  # an error in what was asked is not retried


@pytest.mark.parametrize("date", ["yesterday", "2026-13-01", "20260102", "2026-01-02/../..", ""])
def test_a_date_that_is_not_one_is_refused_before_any_work(folder, date):
    path = job_file(folder, FIT_JOB)
    with pytest.raises(JobError, match="is not a date: give it as YYYY-MM-DD"):
        run_job(path, date=date)
    assert not (folder / "runs").exists()


@pytest.mark.skipif(shutil.which("flock") is None or shutil.which("bash") is None, reason="needs flock and bash")
def test_the_cron_line_prints_only_a_failure_for_cron_to_mail(tmp_path):
    """The crontab's command, as cron's shell runs it: silent when the run succeeds (nothing to
    mail), the end of the log when it fails (mailed to MAILTO)."""
    line = next(line for line in (ROOT / "workflows" / "crontab.example").read_text().splitlines()
                if line.startswith("30 2 "))
    command = line.split(maxsplit=5)[5].replace("\\%", "%")  # cron turns \\% into %
    command = command.replace("cd /srv/daskem", f"cd {shlex.quote(str(tmp_path))}")
    command = command.replace(".venv/bin/daskem", f"{shlex.quote(sys.executable)} -m daskem")
    command = command.replace("/tmp/daskem-nightly.lock", shlex.quote(str(tmp_path / "lock")))
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "job.example.yaml").write_text(
        "data: {path: nothing.zarr, variable: X}\\nfit: {n_components: 2}\\noutputs: {model: m.zarr, report: r.json}\\n")
    failed = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert failed.returncode == 0 and "nothing.zarr" in failed.stdout  # the error, for cron to mail
    write_zarr(tmp_path / "workflows" / "data.zarr", make_mixture_data(n_samples=500, seed=1), chunk_rows=250)
    (tmp_path / "workflows" / "job.example.yaml").write_text(
        "data: {path: data.zarr, variable: X}\nfit: {n_components: 2}\noutputs: {model: m.zarr, report: r.json}\n")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "" and (tmp_path / "workflows" / "r.json").exists()


def _undeclared(document, schema, where="") -> list[str]:
    """Keys of ``document`` that ``schema`` (an OpenAPI v3 structural schema) does not declare.

    Kubernetes drops such keys without a word when it stores the object, so a misspelt
    field would silently do nothing.
    """
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(document, dict) and schema.get("type") == "object":
        properties, extra = schema.get("properties"), schema.get("additionalProperties")
        if properties is None:  # a map (labels, resources) or an object Kubernetes checks itself (metadata)
            return [] if extra is None else [p for key, value in document.items()
                                             for p in _undeclared(value, extra, f"{where}.{key}")]
        return [p for key, value in document.items()
                for p in ([f"{where}.{key}"] if key not in properties
                          else _undeclared(value, properties[key], f"{where}.{key}"))]
    if isinstance(document, list) and "items" in schema:
        return [p for i, item in enumerate(document) for p in _undeclared(item, schema["items"], f"{where}[{i}]")]
    return []


def test_the_kubernetes_manifest_is_a_valid_daskjob_whose_runner_fails_for_good():
    pytest.importorskip("dask_kubernetes", reason="the kubernetes extra is part of the test install")
    import importlib.resources

    import jsonschema
    import yaml

    crds = importlib.resources.files("dask_kubernetes") / "operator/deployment/helm/dask-kubernetes-operator/crds"
    crd = yaml.safe_load((crds / "daskjob.yaml").read_text())
    manifest = yaml.safe_load((ROOT / "workflows" / "daskjob.yaml").read_text())
    versions = {f"{crd['spec']['group']}/{v['name']}": v for v in crd["spec"]["versions"] if v["served"]}
    assert manifest["kind"] == crd["spec"]["names"]["kind"] and manifest["apiVersion"] in versions
    schema = versions[manifest["apiVersion"]]["schema"]["openAPIV3Schema"]
    jsonschema.Draft7Validator(schema).validate(manifest)
    assert _undeclared(manifest["spec"], schema["properties"]["spec"], ".spec") == []
    runner = manifest["spec"]["job"]["spec"]
    # A runner that restarted in place would never reach phase Failed, and the operator
    # tears the cluster down only when it does.
    assert runner["restartPolicy"] == "Never"
    assert runner["containers"][0]["args"][:2] == ["daskem", "--json"] and "run" in runner["containers"][0]["args"]
    name = manifest["metadata"]["name"]
    text = (ROOT / "workflows" / "daskjob.yaml").read_text()
    assert f"kubectl logs -f pod/{name}-runner" in text and "job/" not in text


def test_the_schema_check_finds_a_misspelt_field():
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"restartPolicy": {}}}}}
    assert _undeclared({"spec": {"restartPolicy": "Never", "restartPolicyy": "Never"}}, schema) == [
        ".spec.restartPolicyy"]


UPDATE_JOB = """
data: {path: "data/{date}.zarr", variable: X}
fit: {n_components: 3, chunk_rows: 100, update: true, previous: "runs/{yesterday}/model.zarr"}
outputs: {model: "runs/{date}/model.zarr", report: "runs/{date}/report.json"}
"""


def test_an_update_job_learns_from_each_nights_data_as_partial_fit_does(tmp_path):
    dates = ["2026-03-01", "2026-03-02", "2026-03-03"]
    X = make_mixture_data(n_samples=900, n_features=3, n_components=3, seed=4, separation=4.0)
    for i, date in enumerate(dates):
        write_zarr(tmp_path / "data" / f"{date}.zarr", X[300 * i : 300 * (i + 1)], chunk_rows=100)
    path = job_file(tmp_path, UPDATE_JOB)
    reports = [run_job(path, date=date) for date in dates]
    first, *later = (report["stages"][0] for report in reports)
    assert first["previous"] is None and first["learnt"] and first["n_batches"] == 1  # no model yet: a fit starts it
    assert [stage["previous"] for stage in later] == [str(tmp_path / "runs" / date / "model.zarr")
                                                      for date in dates[:2]]
    streamed = daskem.GaussianMixture(3, chunk_rows=100, random_state=0)  # the job's settings (its seed is 0)
    for date in dates:
        streamed.partial_fit(str(tmp_path / "data" / f"{date}.zarr"), variable="X")
    updated = daskem.load(tmp_path / "runs" / dates[-1] / "model.zarr")
    assert updated.n_batches_ == 3
    for name in ("weights_", "means_", "covariances_"):  # each night in a new process: bitwise the same
        np.testing.assert_array_equal(getattr(updated, name), getattr(streamed, name))
    with xr.open_zarr(tmp_path / "runs" / dates[-1] / "model.zarr") as ds:
        assert ds.attrs["absorbed"].split() == [stage["fingerprint"] for stage in (first, *later)]


def test_an_update_job_on_its_own_model_learns_from_each_data_set_once(tmp_path):
    rows = make_mixture_data(n_samples=600, n_features=3, n_components=3, seed=5, separation=4.0)
    write_zarr(tmp_path / "data.zarr", rows[:300], chunk_rows=100)
    path = job_file(tmp_path, "data: {path: data.zarr, variable: X}\n"
                              "fit: {n_components: 3, update: true, previous: model.zarr}\n"
                              "outputs: {model: model.zarr, report: 'runs/{date}/report.json'}\n")
    assert run_job(path, date="2026-04-01")["stages"][0]["learnt"]
    before = daskem.load(tmp_path / "model.zarr")
    again = run_job(path, date="2026-04-02")["stages"][0]  # the same data: absorbed already
    assert not again["learnt"] and again["n_batches"] == 1
    after = daskem.load(tmp_path / "model.zarr")
    np.testing.assert_array_equal(after.means_, before.means_)
    np.testing.assert_array_equal(after.covariances_, before.covariances_)
    write_zarr(tmp_path / "data.zarr", rows[300:], chunk_rows=100)  # new data under the same name
    assert run_job(path, date="2026-04-03")["stages"][0]["learnt"]
    assert daskem.load(tmp_path / "model.zarr").n_batches_ == 2


def test_an_update_job_refuses_a_previous_model_of_other_settings_and_a_checkpoint(tmp_path):
    write_zarr(tmp_path / "data.zarr", make_mixture_data(n_samples=300, seed=6), chunk_rows=100)
    daskem.GaussianMixture(2, random_state=0).fit(str(tmp_path / "data.zarr"), variable="X").save(
        tmp_path / "old.zarr")
    path = job_file(tmp_path, "data: {path: data.zarr, variable: X}\n"
                              "fit: {n_components: 3, update: true, previous: old.zarr}\n"
                              "outputs: {model: new.zarr, report: r.json}\n")
    with pytest.raises(InputError, match=r"n_components 2 \(the job asks for 3\)"):
        run_job(path)
    assert not (tmp_path / "new.zarr").exists()
    path = job_file(tmp_path, "data: {path: data.zarr, variable: X}\nfit: {n_components: 2, previous: old.zarr}\n"
                              "outputs: {model: new.zarr, report: r.json}\n")
    with pytest.raises(JobError, match="set update: true"):
        load_job(path)
    path = job_file(tmp_path, "data: {path: data.zarr, variable: X}\nfit: {n_components: 2, update: true}\n"
                              "checkpoint: c\noutputs: {model: new.zarr, report: r.json}\n")
    with pytest.raises(JobError, match="takes no checkpoint"):
        load_job(path)


def test_the_example_update_job_learns_each_night_and_twice_the_same_night_learns_once(tmp_path):
    job = str(example_job(tmp_path, "update.example.yaml", 2000))
    first = run_job(job, date="2026-11-26")["stages"][0]
    assert first["previous"] is None and first["learnt"]  # no model the night before: a fit starts one
    second = run_job(job, date="2026-11-27")["stages"][0]  # the same store again: absorbed already
    assert second["previous"].endswith("2026-11-26/model.zarr") and not second["learnt"]
    again = run_job(job, date="2026-11-27", force=True)["stages"][0]
    assert not again["learnt"] and again["n_batches"] == first["n_batches"] == 1
    assert "daskem --json run workflows/update.example.yaml" in (ROOT / "workflows" / "crontab.example").read_text()


@pytest.mark.parametrize("kill", ["before the model is written", "after the model, before the report"])
def test_an_update_job_killed_half_way_is_finished_by_the_next_run_learning_once(tmp_path, monkeypatch, kill):
    import daskem.app.jobs as jobs

    dates = ["2026-03-01", "2026-03-02"]
    X = make_mixture_data(n_samples=600, n_features=3, n_components=3, seed=4, separation=4.0)
    for i, date in enumerate(dates):
        write_zarr(tmp_path / "data" / f"{date}.zarr", X[300 * i : 300 * (i + 1)], chunk_rows=100)
    path = job_file(tmp_path, UPDATE_JOB)
    run_job(path, date=dates[0])
    if kill == "before the model is written":
        monkeypatch.setattr(daskem.estimators.streaming.Streaming, "partial_fit", _killed)
    else:
        real = jobs.atomic_path
        monkeypatch.setattr(jobs, "atomic_path", lambda *args, **kwargs: _killed() if kwargs.get(
            "label") == "outputs.report" else real(*args, **kwargs))
    with pytest.raises(KeyboardInterrupt):
        run_job(path, date=dates[1])
    monkeypatch.undo()
    night = tmp_path / "runs" / dates[1]
    assert not (night / "report.json").exists()
    assert (night / "model.zarr").exists() == (kill != "before the model is written")
    stage = run_job(path, date=dates[1])["stages"][0]
    assert stage["learnt"]  # from yesterday's model again, whatever the killed run left: the night counts once
    once = daskem.load(tmp_path / "runs" / dates[0] / "model.zarr")
    once.partial_fit(str(tmp_path / "data" / f"{dates[1]}.zarr"), variable="X")
    finished = daskem.load(night / "model.zarr")
    assert finished.n_batches_ == 2
    np.testing.assert_array_equal(finished.means_, once.means_)


def _killed(*args, **kwargs):
    raise KeyboardInterrupt  # the process dies here


def test_the_example_hmm_job_works_as_documented(tmp_path):
    job = example_job(tmp_path, "hmm.example.yaml", 3000)
    result = CliRunner().invoke(main, ["--json", "run", str(job), "--date", "2026-12-06"])
    assert result.exit_code == 0, result.output
    night = tmp_path / "workflows" / "runs" / "2026-12-06"
    assert sorted(p.name for p in night.iterdir()) == ["hmm-report.json", "hmm.zarr", "states.zarr"]
    assert type(daskem.load(night / "hmm.zarr")) is daskem.GaussianHMM
