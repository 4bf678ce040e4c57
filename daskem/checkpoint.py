"""Layer 4: checkpoints of an EM run, so a killed driver can resume exactly.

After every iteration the whole :class:`~daskem.engine.EMState` — every run's
parameters, history, restarts and convergence — goes to a new Zarr store
``iteration-NNNNNN.zarr`` in the checkpoint folder (written under a temporary
name and renamed), then the small file ``LATEST`` is atomically replaced to
point at it, then older stores are removed.  A kill at any moment leaves
``LATEST`` naming a complete checkpoint.

Each checkpoint records the fit's settings and a fingerprint of the data; a
resume with other settings or other data is refused.  Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from daskem.engine import EMState, RunState
from daskem.exceptions import DaskemError
from daskem.kernels.gaussian import GaussianParams
from daskem.model_io import atomic_path, params_from_dataset, params_to_dataset

FORMAT = "daskem.checkpoint/1"
FINGERPRINT_ROWS = 64


class CheckpointError(DaskemError, ValueError):
    """A checkpoint does not belong to this fit, or cannot be read."""


def fingerprint(X: da.Array, sample_weight: da.Array | None = None) -> str:
    """A short digest of the data: shape, dtype, row chunks, and the first and last rows.

    Reads only ``FINGERPRINT_ROWS`` rows at each end (and their weights).
    """
    digest = hashlib.sha256(json.dumps([X.shape, str(X.dtype), X.chunks[0]]).encode())
    ends = [X[:FINGERPRINT_ROWS], X[-FINGERPRINT_ROWS:]]
    if sample_weight is not None:
        ends += [sample_weight[:FINGERPRINT_ROWS], sample_weight[-FINGERPRINT_ROWS:]]
    for part in dask.compute(*ends):
        digest.update(np.ascontiguousarray(part, dtype=np.float64).tobytes())
    return digest.hexdigest()[:32]


def comparable_seed(random_state: Any) -> int | str | None:
    """A ``random_state`` as checkpoint settings record it.

    A Generator's state cannot be compared: any Generator matches any other.
    """
    if random_state is None or (isinstance(random_state, int) and not isinstance(random_state, bool)):
        return random_state
    return "a Generator"


class Checkpoint:
    """The checkpoint folder of one fit.

    Parameters
    ----------
    folder : where checkpoints go (created if missing).
    settings : the settings that must match on resume (JSON-able values).
    data : the data's :func:`fingerprint`.
    """

    def __init__(self, folder: str | os.PathLike, settings: dict[str, Any], data: str) -> None:
        self.folder = Path(folder)
        self.settings = json.loads(json.dumps(settings))  # as it will read back
        self.data = data

    def load(self) -> EMState | None:
        """The state to resume from, or None when the folder holds no checkpoint.

        Raises
        ------
        CheckpointError
            If the checkpoint was written for other settings or other data.
        """
        latest = self.folder / "LATEST"
        if not latest.exists():
            return None
        path = self.folder / latest.read_text().strip()
        try:
            root = xr.open_zarr(path, consolidated=False)
            attrs = dict(root.attrs)
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"cannot read the checkpoint {str(path)!r} ({error})") from None
        if attrs.get("format") != FORMAT:
            raise CheckpointError(f"{str(path)!r} is not a daskem checkpoint")
        if attrs["data"] != self.data:
            raise CheckpointError(
                f"the checkpoint in {str(self.folder)!r} was written for other data; "
                "fit the same data, or use another --checkpoint folder"
            )
        saved = attrs["settings"]
        changed = [f"{key} {saved.get(key)!r} → {value!r}" for key, value in self.settings.items()
                   if saved.get(key) != value]
        if changed:
            raise CheckpointError(
                f"the checkpoint in {str(self.folder)!r} was written with other settings "
                f"({'; '.join(changed)}); use the same settings, or another --checkpoint folder"
            )
        runs = [_run_from_dataset(xr.open_zarr(path, group=f"run-{i:04d}", consolidated=False).load())
                for i in range(attrs["n_runs"])]
        return EMState(int(attrs["iteration"]), runs)

    def save(self, state: EMState) -> None:
        """Write ``state`` as the latest checkpoint, atomically, and drop older ones."""
        name = f"iteration-{state.iteration:06d}.zarr"
        with atomic_path(self.folder / name, overwrite=True) as temporary:
            root = xr.Dataset(attrs={"format": FORMAT, "iteration": state.iteration, "n_runs": len(state.runs),
                                     "settings": self.settings, "data": self.data})
            root.to_zarr(temporary, mode="w", zarr_format=3, consolidated=False)
            for i, run in enumerate(state.runs):
                _run_to_dataset(run).to_zarr(temporary, group=f"run-{i:04d}", mode="a", zarr_format=3,
                                             consolidated=False)
        with atomic_path(self.folder / "LATEST", overwrite=True) as temporary:
            temporary.write_text(name + "\n")
        for old in self.folder.glob("iteration-*.zarr"):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)


def _run_to_dataset(run: RunState) -> xr.Dataset:
    ds = params_to_dataset(run.params, np.asarray(run.history), {})
    reseeds_left = run.reseeds_left if run.reseeds_left is not None else np.full(run.params.n_components, -1)
    ds["reseeds_left"] = ("component", np.asarray(reseeds_left, dtype=np.int64))
    ds["reseeded"] = (("restart", "event"), np.asarray(run.reseeded, dtype=np.int64).reshape(-1, 3))
    ds["warned"] = ("warned", np.asarray(sorted(run.warned), dtype=np.int64))
    ds["previous"] = ((), np.float64(run.previous))  # may be -inf, which JSON attributes cannot hold
    ds.attrs |= {"weight_sum": run.weight_sum, "converged": int(run.converged)}
    return ds


def _run_from_dataset(ds: xr.Dataset) -> RunState:
    params: GaussianParams = params_from_dataset(ds)
    reseeds_left = ds["reseeds_left"].values
    return RunState(
        params=params,
        weight_sum=float(ds.attrs["weight_sum"]),
        previous=float(ds["previous"].values),
        converged=bool(ds.attrs["converged"]),
        history=ds["history"].values.tolist(),
        reseeded=[tuple(int(v) for v in row) for row in ds["reseeded"].values],
        reseeds_left=None if (reseeds_left < 0).all() else reseeds_left,
        warned={int(v) for v in ds["warned"].values},
    )
