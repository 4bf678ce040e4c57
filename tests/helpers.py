"""Helpers the tests share: small mixtures, Zarr stores, initial parameters, an S3 server, snapshots of a
folder and an array that counts its reads."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr


def make_mixture_data(
    n_samples: int = 600,
    n_features: int = 3,
    n_components: int = 3,
    seed: int = 0,
    shift: float = 0.0,
    separation: float = 3.0,
) -> np.ndarray:
    """Rows (n, d) float64 from a random mixture with overlapping components."""
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=separation, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    factors = rng.normal(size=(n_components, n_features, n_features)) / np.sqrt(n_features)
    factors += 0.5 * np.eye(n_features)
    noise = rng.standard_normal((n_samples, n_features))
    return np.einsum("ij,ikj->ik", noise, factors[labels]) + means[labels] + shift


def initial_parameters(
    X: np.ndarray, n_components: int, seed: int = 1, covariance_type: str = "full"
) -> dict[str, np.ndarray]:
    """weights_init, means_init and precisions_init that leave EM work to do."""
    rng = np.random.default_rng(seed)
    n_features = X.shape[1]
    means = X[rng.choice(len(X), n_components, replace=False)]
    precision = 1.0 / X.var(axis=0).mean()
    precisions = {
        "full": np.repeat(np.eye(n_features)[np.newaxis] * precision, n_components, axis=0),
        "tied": np.eye(n_features) * precision,
        "diag": np.full((n_components, n_features), precision),
        "spherical": np.full(n_components, precision),
    }[covariance_type]
    return {
        "weights_init": np.full(n_components, 1.0 / n_components),
        "means_init": means,
        "precisions_init": precisions,
    }


def reg_covar_dip(model: Any) -> float:
    """How far a fitted GaussianMixture's mean log-likelihood may fall from one pass to the next.

    With ``reg_covar`` = ε > 0 an M-step's covariance S + εI maximises Q − (ε/2) Σ_k n_k tr(Σ_k⁻¹), not Q, so
    EM raises the log-likelihood only up to that penalty's change: a pass may lower it by as much as
    (ε/2) Σ_k w_k tr(Σ_k⁻¹) (the traces of the precisions it leaves).  Bounded here with the fit's last
    precisions, twice over (the passes that dip are near the end, their precisions near the last), plus
    rounding (1e-12 of the log-likelihood).  With ε = 0 EM never lowers it (scikit-learn's own monotonicity
    test sets reg_covar=0 for this reason).
    """
    P, d = np.asarray(model.precisions_), model.means_.shape[1]
    traces = {"full": lambda: np.trace(P, axis1=1, axis2=2), "tied": lambda: np.trace(P),
              "diag": lambda: P.sum(axis=1), "spherical": lambda: P * d}[model.covariance_type]()
    return model.reg_covar * float(np.max(traces)) + 1e-12 * float(np.abs(model.history_).max())


def write_zarr(path: Path, X: np.ndarray, chunk_rows: int, name: str = "X") -> Path:
    """Write X as array ``name`` of a Zarr group at ``path``, chunked by rows."""
    group = zarr.open_group(path, mode="w")
    group.create_array(name, data=X, chunks=(chunk_rows, X.shape[1]))
    return path


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[Any]:
    """An S3 server (moto's) on 127.0.0.1 holding one empty ``bucket``, reached through the environment
    (``AWS_ENDPOINT_URL``) as any S3-compatible store is; yields an s3fs file system on it."""
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    environment = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in environment.items():
                patch.setenv(name, value)
            s3fs.S3FileSystem.clear_instance_cache()
            fs = s3fs.S3FileSystem()
            fs.mkdir(bucket)
            yield fs
            s3fs.S3FileSystem.clear_instance_cache()
    finally:
        server.stop()


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder below ``folder`` with its bytes (None for folders): equal snapshots mean
    nothing was written, changed or deleted there."""
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in sorted(folder.rglob("*"))}


class CountingArray:
    """An array-like that counts how many times each row chunk is read."""

    def __init__(self, X: np.ndarray, chunk_rows: int) -> None:
        self.X, self.chunk_rows = X, chunk_rows
        self.shape, self.dtype, self.ndim = X.shape, X.dtype, X.ndim
        self.reads: dict[int, int] = {}
        self._lock = threading.Lock()

    def __getitem__(self, key):
        rows = key[0]
        if rows.stop is not None and rows.stop <= (rows.start or 0):
            return self.X[key]  # an empty read that Dask makes to learn the dtype
        with self._lock:
            self.reads[rows.start // self.chunk_rows] = self.reads.get(rows.start // self.chunk_rows, 0) + 1
        return self.X[key]
