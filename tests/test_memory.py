"""A small version of benchmarks/bench_memory.py: workers with a tight memory
limit fit data many times their chunk size without spilling or dying."""

from __future__ import annotations

import os

import numpy as np
import pytest

import daskem
from daskem.cluster import LocalProcesses, connect

from conftest import write_zarr


def test_tight_worker_memory_limit_is_respected(tmp_path):
    X = np.random.default_rng(0).normal(size=(400_000, 8))  # 26 MB in 16 chunks
    path = str(write_zarr(tmp_path / "data.zarr", X, chunk_rows=25_000))
    config = LocalProcesses(kind="local-processes", n_workers=2, memory_limit="400MiB", dashboard_address=None)
    with connect(config) as client:
        pids = client.run(os.getpid)
        with pytest.warns(daskem.ConvergenceWarning):
            daskem.GaussianMixture(4, tol=0, max_iter=3, random_state=0, chunk_rows=25_000).fit(path, variable="X")
        spilled = client.run(lambda dask_worker: dask_worker.data.spilled_total.disk)
        memory = [w["metrics"]["memory"] for w in client.scheduler_info()["workers"].values()]
        assert client.run(os.getpid) == pids  # no worker was killed and restarted
    assert set(spilled.values()) == {0}
    assert max(memory) < 400 * 2**20
