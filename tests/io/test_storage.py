"""Inputs and outputs on object storage (fsspec URLs), against a real S3-compatible server.

The server is moto's (``moto[s3]`` with flask, from the test install), started here on
127.0.0.1 with a port of its own; s3fs reaches it through ``AWS_ENDPOINT_URL``, as it would
reach any S3-compatible store.  ``memory://`` serves the tests that break a copy halfway.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import daskem
from daskem.app.cli import main
from daskem.io.storage import INCOMPLETE_MARKER, commit_order, location
from tests.helpers import make_mixture_data, s3_server, write_zarr

pytest.importorskip("s3fs", reason="s3fs is part of the test install")
pytest.importorskip("moto.server", reason="moto is part of the test install")

BUCKET = "daskem-test"
FIT = ["-v", "X", "-k", "3", "--max-iter", "20"]


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 holding one empty bucket; yields an s3fs file system on it."""
    with s3_server(BUCKET) as fs:
        yield fs


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return make_mixture_data(n_samples=3000, n_features=3, n_components=3, seed=8, separation=4.0)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory, data) -> Path:
    return write_zarr(tmp_path_factory.mktemp("local") / "data.zarr", data, chunk_rows=1000)


@pytest.fixture(scope="module")
def s3_store(s3, local_store) -> str:
    s3.put(str(local_store), f"{BUCKET}/data.zarr", recursive=True)
    return f"s3://{BUCKET}/data.zarr"


def run(*arguments: str) -> dict:
    result = CliRunner().invoke(main, ["--json", *arguments])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def fails(*arguments: str) -> str:
    result = CliRunner().invoke(main, ["--quiet", *arguments])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    return result.stderr


def test_every_command_reads_and_writes_s3_and_gets_the_local_bits(s3, s3_store, local_store, tmp_path):
    run("fit", str(local_store), *FIT, "--out", str(tmp_path / "local.zarr"))
    url = f"s3://{BUCKET}/every"
    run("fit", s3_store, *FIT, "--out", f"{url}/model.zarr", "--checkpoint", f"{url}/checkpoint")
    run("predict", f"{url}/model.zarr", s3_store, "-v", "X", "--out", f"{url}/scores.zarr")
    run("select", s3_store, "-v", "X", "--n-components", "2-3", "--max-iter", "10", "--out", f"{url}/selection")
    run("plot", "convergence", f"{url}/model.zarr", "--out", f"{url}/convergence.png")
    run("plot", "selection", f"{url}/selection", "--out", f"{url}/selection.png")
    info = run("info", f"{url}/model.zarr")
    assert info["model"]["n_components"] == 3
    run("generate", f"{url}/generated.zarr", "--n-samples", "2000", "--n-features", "2", "--n-components", "2")
    assert daskem.load(f"{url}/generated.truth.zarr").n_components == 2
    with xr.open_zarr(f"{url}/generated.zarr") as generated:
        assert generated["X"].shape == (2000, 2)

    local, remote = daskem.load(tmp_path / "local.zarr"), daskem.load(f"{url}/model.zarr")
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(local, name))  # the same bits
    with xr.open_zarr(f"{url}/scores.zarr") as scores:  # consolidated: opens without a warning
        assert scores.sizes["sample"] == 3000
        np.testing.assert_array_equal(scores["label"].values,
                                      np.asarray(local.predict(str(local_store), variable="X")))
    listed = sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{BUCKET}/every"))
    assert listed == ["checkpoint", "convergence.png", "generated.truth.zarr", "generated.zarr", "model.zarr",
                      "scores.zarr", "selection", "selection.png"]
    in_checkpoint = sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{BUCKET}/every/checkpoint"))
    assert in_checkpoint[0] == ".daskem-checkpoint.json" and in_checkpoint[1] == "LATEST" and len(in_checkpoint) == 3
    assert s3.cat(f"{BUCKET}/every/convergence.png")[:4] == b"\x89PNG"
    assert sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{BUCKET}/every/selection")) == ["best.zarr", "table.csv"]
    assert not any(INCOMPLETE_MARKER in p or ".tmp-" in p for p in s3.find(BUCKET))  # nothing left behind


def test_an_s3_output_is_replaced_only_by_its_own_kind_and_only_when_asked(s3, s3_store):
    url = f"s3://{BUCKET}/replace/model.zarr"
    run("fit", s3_store, *FIT, "--out", url)
    assert "exists; pass overwrite=True (--overwrite)" in fails("fit", s3_store, *FIT, "--out", url)
    run("fit", s3_store, *FIT[:2], "-k", "2", "--out", url, "--overwrite")
    assert daskem.load(url).n_components == 2
    s3.pipe(f"{BUCKET}/replace/notes.txt", b"the user's notes")
    stderr = fails("fit", s3_store, *FIT, "--out", f"s3://{BUCKET}/replace/notes.txt", "--overwrite")
    assert "is a file that is not a daskem output" in stderr
    assert s3.cat(f"{BUCKET}/replace/notes.txt") == b"the user's notes"
    s3.pipe(f"{BUCKET}/replace/notes/keep.txt", b"the user's other notes")  # a "folder" of the user's
    stderr = fails("fit", s3_store, *FIT, "--out", f"s3://{BUCKET}/replace/notes", "--overwrite")
    assert "is a folder that is not a daskem output" in stderr
    assert s3.cat(f"{BUCKET}/replace/notes/keep.txt") == b"the user's other notes"
    assert "is the input" in fails("fit", s3_store, *FIT, "--out", s3_store, "--overwrite")
    assert "holds the input" in fails("fit", s3_store, *FIT, "--out", f"s3://{BUCKET}", "--overwrite")


def test_a_job_runs_entirely_on_s3(s3, s3_store, tmp_path):
    job = tmp_path / "job.yaml"
    night = f"s3://{BUCKET}/jobs/{{date}}"
    job.write_text(f"data: {{path: '{s3_store}', variable: X}}\n"
                   "fit: {n_components: 3, max_iter: 20}\n"
                   f"checkpoint: '{night}/checkpoint'\n"
                   "outputs:\n"
                   f"  model: '{night}/model.zarr'\n"
                   f"  scores: '{night}/scores.zarr'\n"
                   f"  report: '{night}/report.json'\n")
    first = run("run", str(job), "--date", "2026-03-01")
    assert first["status"] == "done"
    report = json.loads(s3.cat(f"{BUCKET}/jobs/2026-03-01/report.json"))
    assert report["status"] == "done" and report["outputs"]["outputs.model"].startswith("s3://")
    assert sorted(p.rsplit("/", 1)[-1] for p in s3.ls(f"{BUCKET}/jobs/2026-03-01")) == [
        "model.zarr", "report.json", "scores.zarr"]  # the checkpoint and the ledger are gone
    assert run("run", str(job), "--date", "2026-03-01")["status"] == "already done"


def test_a_missing_bucket_is_refused_and_created_by_no_one(s3, s3_store):
    stderr = fails("fit", s3_store, *FIT, "--out", "s3://no-such-bucket/model.zarr")
    assert "the bucket 'no-such-bucket' does not exist" in stderr
    assert "no-such-bucket" not in [b.rstrip("/") for b in s3.ls("")]
    for command in (["fit", "s3://no-such-bucket/data.zarr", *FIT], ["score", "s3://no-such-bucket/m.zarr",
                                                                     s3_store, "-v", "X"]):
        stderr = fails(*command)  # an input too is named for what is missing: its bucket
        assert "the bucket 'no-such-bucket' does not exist" in stderr, stderr


@pytest.mark.parametrize("url", ["foo://bucket/model.zarr", "s3:/bucket/model.zarr"])
def test_an_unknown_scheme_is_refused_and_nothing_is_written_locally(tmp_path, monkeypatch, local_store, url):
    monkeypatch.chdir(tmp_path)
    stderr = fails("fit", str(local_store), *FIT, "--out", url)
    if url.startswith("foo"):
        assert "unknown URL scheme foo://" in stderr
    else:  # a URL missing a slash reads as a local path whose folder does not exist
        assert "does not exist; daskem creates no folders" in stderr
    assert list(tmp_path.iterdir()) == []


def test_a_missing_scheme_package_is_named_with_its_extra(monkeypatch):
    import importlib

    registry = importlib.import_module("fsspec.registry")
    monkeypatch.setitem(registry.known_implementations, "gs",
                        {"class": "not_installed_gcsfs.GCSFileSystem", "err": "Please install gcsfs"})
    monkeypatch.delitem(registry._registry, "gs", raising=False)
    with pytest.raises(daskem.DaskemError, match=r"gs:// URLs need a package .*pip install 'daskem\[gcs\]'"):
        location("gs://bucket/model.zarr")


def test_missing_local_folders_are_never_created(tmp_path, local_store):
    for command in (["fit", str(local_store), *FIT, "--out", str(tmp_path / "a" / "b" / "m.zarr")],
                    ["fit", str(local_store), *FIT, "--checkpoint", str(tmp_path / "a" / "ckpt")]):
        assert "does not exist; daskem creates no folders above its outputs" in fails(*command)
    run("fit", str(local_store), *FIT, "--out", str(tmp_path / "m.zarr"))
    stderr = fails("predict", str(tmp_path / "m.zarr"), str(local_store), "-v", "X",
                   "--out", str(tmp_path / "nonexistent" / "dir" / "s.zarr"))
    assert "the folder" in stderr and "does not exist" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


# ----------------------------------------------- a copy into place broken halfway


@pytest.fixture
def memory_store(local_store):
    """The data in an in-process memory:// store (only this process sees it: threads, not workers)."""
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/{os.urandom(6).hex()}"
    fs.put(str(local_store), f"{root}/data.zarr", recursive=True)
    yield fs, f"memory://{root}"
    fs.rm(root, recursive=True)


def test_a_copy_broken_halfway_is_never_taken_for_a_model_and_is_cleaned_by_the_next_write(
        memory_store, monkeypatch):
    fs, root = memory_store
    data, url = f"{root}/data.zarr", f"{root}/model.zarr"
    run("fit", data, *FIT, "--out", url)
    original = type(fs).copy

    def breaks_at_the_root_metadata(self, path1, path2, *args, **kwargs):
        if isinstance(path2, str) and path2.endswith("/model.zarr/zarr.json"):  # the model's root metadata
            raise OSError("connection reset")
        return original(self, path1, path2, *args, **kwargs)

    monkeypatch.setattr(type(fs), "copy", breaks_at_the_root_metadata)
    assert "connection reset" in fails("fit", data, *FIT[:2], "-k", "2", "--out", url, "--overwrite")
    assert fs.exists(f"{url}/{INCOMPLETE_MARKER}") and not fs.exists(f"{url}/zarr.json")
    assert "an interrupted write, not a whole output" in fails("info", url)
    monkeypatch.setattr(type(fs), "copy", original)
    result = CliRunner().invoke(main, ["fit", data, *FIT[:2], "-k", "2", "--out", url])
    assert result.exit_code == 0, result.output  # no --overwrite needed: it is not a model
    assert "removed the incomplete model" in result.stderr
    assert daskem.load(url).n_components == 2 and not fs.exists(f"{url}/{INCOMPLETE_MARKER}")


def test_the_root_metadata_is_copied_last():
    files = ["/s/zarr.json", "/s/X/zarr.json", "/s/X/c/0/0", "/s/labels/c/0", "/s/labels/zarr.json", "/s/t.csv"]
    order = commit_order(files, "/s")
    assert order[-1] == "/s/zarr.json"
    assert set(order[:3]) == {"/s/X/c/0/0", "/s/labels/c/0", "/s/t.csv"}  # data before any metadata


def test_workers_of_a_cluster_write_the_scores_to_s3(s3, s3_store, tmp_path):
    """On a LocalCluster the score chunks are written by worker processes, straight to the store."""
    config = tmp_path / "cluster.yaml"
    config.write_text("kind: local-processes\nn_workers: 2\nthreads_per_worker: 1\ndashboard_address: null\n")
    url = f"s3://{BUCKET}/cluster"
    run("fit", s3_store, *FIT, "--out", f"{url}/model.zarr", "--cluster", str(config))
    run("predict", f"{url}/model.zarr", s3_store, "-v", "X", "--out", f"{url}/scores.zarr", "--cluster", str(config))
    threads = daskem.load(f"{url}/model.zarr")
    with xr.open_zarr(f"{url}/scores.zarr") as scores:
        np.testing.assert_array_equal(scores["label"].values, np.asarray(threads.predict(s3_store, variable="X")))
