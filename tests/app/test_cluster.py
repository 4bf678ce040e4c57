"""Cluster configs, a real scheduler and workers, TLS, determinism and worker loss."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.app.cluster import KINDS, ClusterConfigError, LocalProcesses, connect, load_config
from tests.helpers import make_mixture_data, write_zarr

CONFIGS = Path(__file__).parents[2] / "cluster_configs"
DASK = str(Path(sys.executable).parent / "dask")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=4000, n_features=3, n_components=3, seed=3, separation=1.5)


@pytest.fixture(scope="module")
def store(tmp_path_factory, data) -> str:
    return str(write_zarr(tmp_path_factory.mktemp("cluster") / "data.zarr", data, chunk_rows=500))


def fit_model(store, **settings):
    model = daskem.GaussianMixture(3, random_state=0, chunk_rows=500, tol=0, max_iter=8, **settings)
    with pytest.warns(daskem.ConvergenceWarning):
        return model.fit(store, variable="X")


def assert_bitwise_equal(a, b):
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# ------------------------------------------------------------- config files


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_is_valid_and_commented(path):
    assert path.read_text().lstrip().startswith("#")  # explained for a new user
    if path.name == "tls.example.yaml":  # its certificate paths are placeholders
        with pytest.raises(ClusterConfigError, match="tls.ca_file: Path does not point to a file"):
            load_config(path)
    else:
        assert load_config(path).kind in KINDS


def test_every_kind_has_a_shipped_config():
    shipped = {yaml.safe_load(p.read_text())["kind"] for p in CONFIGS.glob("*.yaml")}
    assert shipped == set(KINDS)


def write(tmp_path, text, name="cluster.yaml"):
    (tmp_path / name).write_text(text)
    return tmp_path / name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: local-processes\nn_wrokers: 2\n", "unknown key 'n_wrokers'"),
        ("kind: local-processes\nn_workers: two\n", "n_workers: Input should be a valid integer"),
        ("kind: local-processes\nn_workers: -1\n", "n_workers: Input should be greater than 0"),
        ("kind: subprocess.Popen\nargs: [rm, -rf, /]\n", "kind must be one of 'local-threads'"),
        ("class: distributed.LocalCluster\n", "a 'kind' key is needed"),
        ("kind: [", "is not valid YAML"),
        ("- kind: local-threads\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("kind: existing-scheduler\naddress: tcp://a:1\nscheduler_file: /etc/hostname\n", "give at most one of address"),
        ("kind: slurm\ncores: four\n", "cores: Input should be a valid integer"),
        ("kind: slurm\nadapt: {minimum: 1, maximum: 4}\n", "adapt.maximum_jobs: Field required; unknown key .adapt.minimum."),
        ("kind: local-threads\n!!python/object/apply:os.system [echo hi]: 1\n", "is not valid YAML"),
    ],
)
def test_bad_configs_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(ClusterConfigError, match=message):
        load_config(write(tmp_path, text))


def test_unreadable_config(tmp_path):
    with pytest.raises(ClusterConfigError, match="cannot read cluster config"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(("name", "package", "extra"), [
    ("slurm.yaml", "dask-jobqueue", "hpc"),
    ("pbs.yaml", "dask-jobqueue", "hpc"),
    ("kubernetes.yaml", "dask-kubernetes", "kubernetes"),
    ("gateway.yaml", "dask-gateway", "gateway"),
])
def test_a_missing_optional_package_names_its_extra(monkeypatch, name, package, extra):
    import importlib

    real_import = importlib.import_module

    def without_optional_packages(module, *args):
        if module.split(".")[0] in ("dask_jobqueue", "dask_kubernetes", "dask_gateway"):
            raise ImportError(f"No module named {module!r}")
        return real_import(module, *args)

    monkeypatch.setattr(importlib, "import_module", without_optional_packages)
    with pytest.raises(ClusterConfigError, match=rf"needs the package {package}: .*daskem\[{extra}\]"):
        with connect(load_config(CONFIGS / name)):
            pass


def test_jobqueue_settings_reach_the_job_script_and_the_site_config_fills_the_rest(tmp_path):
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is part of the test install")
    config = load_config(write(tmp_path, "kind: slurm\ncores: 2\nmemory: 4GiB\ninterface: lo\n"
                                         "job_script_prologue: [source /opt/env/bin/activate]\n"
                                         "worker_extra_args: [--lifetime, 55m]\n"))
    site = {"jobqueue.slurm.walltime": "12:34:00", "jobqueue.slurm.queue": "site-queue"}
    with dask.config.set(site):
        cluster = importlib.import_module("dask_jobqueue").SLURMCluster(**config.cluster_options())
        with cluster:
            script = cluster.job_script()
    assert "source /opt/env/bin/activate" in script
    assert "--lifetime 55m" in script and "--interface lo" in script
    # What the config leaves out comes from the site's jobqueue.yaml, not from a default of ours.
    assert "#SBATCH -t 12:34:00" in script and "#SBATCH -p site-queue" in script
    assert set(config.cluster_options()) == {"cores", "memory", "interface", "job_script_prologue",
                                             "worker_extra_args"}


@pytest.mark.parametrize(("text", "call"), [
    ("kind: slurm\njobs: 3\n", ("scale", {"jobs": 3})),
    ("kind: pbs\nadapt: {minimum_jobs: 1, maximum_jobs: 8}\n", ("adapt", {"minimum_jobs": 1, "maximum_jobs": 8})),
    ("kind: kubernetes\nimage: i\nn_workers: 5\n", ("scale", {"n": 5})),
    ("kind: kubernetes\nimage: i\nadapt: {minimum: 1, maximum: 9}\n", ("adapt", {"minimum": 1, "maximum": 9})),
])
def test_clusters_are_sized_in_the_units_of_their_library(tmp_path, monkeypatch, text, call):
    import daskem.app.cluster

    calls = []

    class Recording:
        def __init__(self, **options):
            pass

        def scale(self, n=None, jobs=None):
            calls.append(("scale", {"jobs": jobs} if jobs is not None else {"n": n}))

        def adapt(self, **bounds):
            calls.append(("adapt", bounds))

    monkeypatch.setattr(daskem.app.cluster, "_allowed_class", lambda kind: Recording)
    daskem.app.cluster._start_remote(load_config(write(tmp_path, text)))
    assert calls == [call]


def test_cli_bad_config_is_one_line(tmp_path, store):
    result = CliRunner().invoke(main, ["fit", store, "-v", "X", "-k", "2", "--cluster",
                                       str(write(tmp_path, "kind: nowhere\n"))])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "kind must be one of" in result.stderr


# ------------------------------------------------------------- real clusters


def test_fit_through_a_scheduler_and_workers_started_by_hand(tmp_path, store, monkeypatch):
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    processes = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                   "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        _wait_for(scheduler_file.exists, "the scheduler file")
        for _ in range(2):
            processes.append(subprocess.Popen(
                [DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "1GiB"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        address = json.loads(scheduler_file.read_text())["address"]
        # The shipped file as it is: no address of its own, so it takes DASK_SCHEDULER_ADDRESS.
        config = CONFIGS / "existing-scheduler.yaml"
        assert "\naddress:" not in config.read_text()
        monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", address)
        with connect(load_config(config)) as client:
            client.wait_for_workers(2, timeout=60)
        out = tmp_path / "model.zarr"
        result = CliRunner().invoke(main, ["fit", store, "-v", "X", "-k", "3", "--chunk-rows", "500",
                                           "--tol", "0", "--max-iter", "8", "--cluster", str(config),
                                           "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert f"running on {address}" in result.stderr
        # without bokeh a hint, not a link to a page that says "Dask needs bokeh"
        has_bokeh = importlib.util.find_spec("bokeh") is not None
        assert ("dashboard: http" if has_bokeh else "dashboard: needs bokeh: pip install 'daskem[dashboard]'") \
            in result.stderr
        assert_bitwise_equal(daskem.load(out), fit_model(store))
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def _wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout} s for {what}")
        time.sleep(0.1)


def test_tls_cluster_fits_and_refuses_a_client_without_a_certificate(tmp_path, store):
    trustme = pytest.importorskip("trustme")
    from distributed import Client
    from distributed.security import Security

    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    authority.cert_pem.write_to_path(tmp_path / "ca.pem")
    certificate.private_key_and_cert_chain_pem.write_to_path(tmp_path / "node.pem")
    config = write(tmp_path, f"""kind: local-processes
n_workers: 1
dashboard_address: null
tls:
  ca_file: {tmp_path / 'ca.pem'}
  cert_file: {tmp_path / 'node.pem'}
""")
    with connect(load_config(config)) as client:
        assert client.scheduler.address.startswith("tls://")
        with pytest.warns(daskem.ConvergenceWarning):
            model = daskem.GaussianMixture(3, random_state=0, chunk_rows=500, tol=0, max_iter=8).fit(store, variable="X")
        # A client whose certificate the cluster's CA did not sign is refused at the handshake ...
        stranger = trustme.CA().issue_cert("127.0.0.1")
        stranger.private_key_and_cert_chain_pem.write_to_path(tmp_path / "stranger.pem")
        untrusted = Security(tls_ca_file=str(tmp_path / "ca.pem"), tls_client_cert=str(tmp_path / "stranger.pem"),
                             require_encryption=True)
        with pytest.raises((OSError, TimeoutError)):
            Client(client.scheduler.address, security=untrusted, timeout="3s")
        # ... and so is one that trusts the CA but shows no certificate of its own.
        host, port = client.scheduler.address.removeprefix("tls://").rsplit(":", 1)
        context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname=host) as connection:
                # the server's alert (certificate required) or, if it hangs up first, an EOF
                with pytest.raises((ssl.SSLError, ConnectionError)):
                    connection.sendall(b"hello")
                    connection.recv(16)
    assert_bitwise_equal(model, fit_model(store))


@pytest.mark.parametrize("where", ["sync", "threads", "1 worker", "2 workers"])
def test_same_bits_on_every_scheduler(store, where):
    reference = fit_model(store)
    if where in ("sync", "threads"):
        with dask.config.set(scheduler=where):
            other = fit_model(store)
    else:
        config = LocalProcesses(kind="local-processes", n_workers=int(where[0]), dashboard_address=None)
        with connect(config):
            other = fit_model(store)
    assert_bitwise_equal(other, reference)


def test_losing_a_worker_mid_fit_changes_nothing(store):
    config = LocalProcesses(kind="local-processes", n_workers=2, dashboard_address=None)
    killed = threading.Event()
    with connect(config) as client:
        undisturbed = fit_model(store)

        def kill_one(info):
            if info.iteration == 3 and not killed.is_set():
                victim = sorted(client.scheduler_info()["workers"])[0]
                pid = client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
                killed.set()

        model = daskem.GaussianMixture(3, random_state=0, chunk_rows=500, tol=0, max_iter=8)
        with pytest.warns(daskem.ConvergenceWarning):
            model.fit(store, variable="X", callbacks=[kill_one])
        assert killed.is_set()
    assert_bitwise_equal(model, undisturbed)
