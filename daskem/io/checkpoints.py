"""Checkpoints of an EM run, so a killed driver can resume exactly.

After every iteration the whole :class:`~daskem.engine.em.EMState` — every run's
parameters, history, restarts, convergence and place in its SQUAREM cycle
(with the cycle's second parameter set, its anchor), and the parameters the
last pass evaluated with their log-likelihood — goes to a new Zarr store
``iteration-NNNNNN.zarr`` in the checkpoint folder (written under a temporary
name and renamed), then the small file ``LATEST`` is atomically replaced to
point at it, then older stores are removed.  A kill at any moment leaves
``LATEST`` naming a complete checkpoint.

Only a new folder, an empty one, or one marked by an earlier checkpoint
(``.daskem-checkpoint.json``) is used, and :func:`remove_checkpoints` deletes
only what daskem wrote there — the folder itself only if daskem created it.

Each checkpoint records the fit's settings and a fingerprint of the data
(shape, dtype, chunks, first and last rows); a resume with other settings or
other data is refused.  A change elsewhere in the data is caught by the first
pass after resuming, which recomputes the log-likelihood of the last pass's
parameters (see :func:`daskem.engine.em.run_em`).  Nothing is pickled.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from daskem.engine.em import CHECK, SECOND, START, EMState, RunState
from daskem.exceptions import DaskemError
from daskem.families.base import Family, Params
from daskem.io.atomic import publish, remove_path, replace_text
from daskem.io.existing import CHECKPOINT_MARKER
from daskem.io.model_files import checksum_encoding, params_from_dataset, params_to_dataset
from daskem.io.outputs import Output, OutputWriteError, reserved
from daskem.io.storage import escape, is_remote, location
from daskem.settings import is_integer

#: 3: runs record their SQUAREM cycle (phase, anchor, step, step_max, gap, gap_from, near).  A format-2
#: checkpoint is refused rather than read with a fresh cycle: an accelerated run stopped mid-cycle
#: would resume from another point, and not end as the uninterrupted fit.
FORMAT = "daskem.io.checkpoints/3"
FINGERPRINT_ROWS = 64
#: Names daskem writes in a checkpoint folder besides LATEST and the marker: stores and temporaries.
_STORE = re.compile(r"iteration-\d{6}\.zarr")
#: The most of ``LATEST`` read (it holds one store's name).
_MAX_LATEST_BYTES = 64
_WRITTEN = re.compile(r"iteration-\d{6}\.zarr|\.iteration-\d{6}\.zarr\.tmp-[0-9a-f]{12}|\.LATEST\.tmp-[0-9a-f]{12}")
#: A run's SQUAREM cycle, but its phase, near count and anchor: 0-d float64 variables of the run's Dataset
#: (NaN and inf, which JSON attributes cannot hold, among their values; see :class:`~daskem.engine.em.RunState`).
_CYCLE_FLOATS = ("step", "step_max", "gap", "gap_from")


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


def params_digest(family: Family, params: Params) -> str:
    """A short digest of a family and its parameters (to record a warm start in checkpoint settings)."""
    digest = hashlib.sha256(json.dumps([family.name, family.settings()]).encode())
    for _, array in family.variables(params).values():
        digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return digest.hexdigest()[:16]


def comparable_seed(random_state: Any) -> int | str | None:
    """A ``random_state`` as checkpoint settings record it (NumPy integers as ints).

    A Generator's or RandomState's state cannot be compared: any matches any other.
    """
    if random_state is None:
        return None
    if is_integer(random_state):
        return int(random_state)
    return "a Generator"


class Checkpoint:
    """The checkpoint folder of one fit (reserved by :func:`checkpointing`).

    Parameters
    ----------
    folder : where checkpoints go (created if missing).
    settings : the settings that must match on resume (JSON-able values).
    data : the data's :func:`fingerprint`.
    """

    def __init__(self, folder: str | os.PathLike, settings: dict[str, Any], data: str) -> None:
        self.folder = location(folder)
        self.settings = json.loads(json.dumps(settings))  # as it will read back
        self.data = data

    def load(self) -> EMState | None:
        """The state to resume from, or None when the folder holds no checkpoint.

        Each run resumes with the family its parameters were stored with (the
        settings, checked here, fix them).

        Raises
        ------
        CheckpointError
            If the checkpoint was written for other settings or other data, or
            cannot be read.
        ModelFileError
            If the parameters it holds are damaged (naming what is wrong).
        """
        latest = self.folder / "LATEST"
        if not latest.exists():
            return None
        damaged = (f"the checkpoint folder {str(self.folder)!r} is damaged: ", "; daskem follows nothing out of a "
                   "checkpoint folder: use another --checkpoint folder")
        escapes = escape(self.folder, "LATEST")
        if escapes:
            raise CheckpointError(f"{damaged[0]}its LATEST: {escapes}{damaged[1]}")
        with latest.open("rb") as file:  # a name, at most: a LATEST of gigabytes is not read whole
            name = file.read(_MAX_LATEST_BYTES).decode(errors="replace").strip()
        escapes = escape(self.folder, name) or (
            None if _STORE.fullmatch(name) else "that is not a checkpoint store (iteration-NNNNNN.zarr)")
        if escapes:
            shown = name if len(name) <= 40 else name[:40] + "…"
            raise CheckpointError(f"{damaged[0]}its LATEST names {shown!r}, and {escapes}{damaged[1]}")
        path = self.folder / name
        try:
            attrs = dict(xr.open_zarr(str(path), consolidated=False).attrs)
        except (OSError, ValueError, KeyError) as error:
            raise CheckpointError(f"cannot read the checkpoint {str(path)!r} ({error})") from None
        if attrs.get("format") != FORMAT:
            raise CheckpointError(
                f"{str(path)!r} is not a checkpoint this daskem can resume (format {attrs.get('format')!r}, "
                f"expected {FORMAT!r}); resume it with the daskem that wrote it, or use another folder"
            )
        if attrs.get("data") != self.data:
            raise CheckpointError(
                f"the checkpoint in {str(self.folder)!r} was written for other data; "
                "fit the same data, or use another --checkpoint folder"
            )
        saved = attrs.get("settings", {})
        if not isinstance(saved, dict):
            raise CheckpointError(f"cannot read the checkpoint {str(path)!r} (its settings are {saved!r}, not a "
                                  "mapping); use another --checkpoint folder")
        changed = [f"{key} {saved.get(key)!r} → {value!r}" for key, value in self.settings.items()
                   if saved.get(key) != value]
        if changed:
            raise CheckpointError(
                f"the checkpoint in {str(self.folder)!r} was written with other settings "
                f"({'; '.join(changed)}); use the same settings, or another --checkpoint folder"
            )
        source = f"the checkpoint {str(path)!r}"
        try:
            iteration = _count(attrs["iteration"], "iteration")
            runs = [_run_from_store(path, f"run-{i:04d}", source) for i in range(_count(attrs["n_runs"], "n_runs"))]
            last = _group(path, "last-pass")
            last_pass = (params_from_dataset(last, source), _log_likelihood(last.attrs["mean_log_likelihood"]))
        except DaskemError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(f"cannot read {source} ({error}); use another --checkpoint folder") from None
        return EMState(iteration, runs, last_pass)

    def save(self, state: EMState) -> None:
        """Write ``state`` as the latest checkpoint, atomically, and drop older ones.

        Raises
        ------
        OutputWriteError
            If the checkpoint cannot be written (disk full, permissions).
        """
        name = f"iteration-{state.iteration:06d}.zarr"
        temporary = self.folder / f".{name}.tmp-{uuid.uuid4().hex[:12]}"
        try:
            self._mark()
            root = xr.Dataset(attrs={"format": FORMAT, "iteration": state.iteration, "n_runs": len(state.runs),
                                     "settings": self.settings, "data": self.data})
            root.to_zarr(str(temporary), mode="w-", zarr_format=3, consolidated=False)
            groups = {}
            for i, run in enumerate(state.runs):
                groups[f"run-{i:04d}"] = _run_to_dataset(run)
                if run.anchor is not None:
                    groups[f"run-{i:04d}-anchor"] = params_to_dataset(run.family, run.anchor, np.empty(0), {})
            if state.last_pass is not None:
                (family, params), mean_log_likelihood = state.last_pass
                groups["last-pass"] = params_to_dataset(family, params, np.empty(0),
                                                        {"mean_log_likelihood": mean_log_likelihood})
            for group, ds in groups.items():
                ds.to_zarr(str(temporary), group=group, mode="a", zarr_format=3, consolidated=False,
                           encoding=checksum_encoding(ds))
            publish(temporary, self.folder / name, "checkpoint")
            replace_text(self.folder / "LATEST", name + "\n")
        except OSError as error:
            raise OutputWriteError(f"cannot write the checkpoint in {str(self.folder)!r}: "
                              f"{error.strerror or error}") from None
        finally:
            remove_path(temporary)
        for old in _written(self.folder):  # older stores, and temporaries of a killed save
            if old.name not in (name, "LATEST", CHECKPOINT_MARKER):
                remove_path(old)

    def _mark(self) -> None:
        """Create the folder (or adopt an empty one) and mark it as a checkpoint folder."""
        marker = self.folder / CHECKPOINT_MARKER
        if marker.is_file():
            return
        created = not self.folder.exists()
        if not is_remote(self.folder):  # object stores have no folders: the marker makes it
            self.folder.mkdir(exist_ok=True)
        marker.write_text(json.dumps({"format": FORMAT, "created": created}) + "\n")



def remove_checkpoints(folder: str | os.PathLike) -> None:
    """Delete the checkpoints in ``folder``; the folder too if daskem created it and nothing else is in it.

    A folder without daskem's checkpoint marker is left alone.
    """
    folder = location(folder)
    marker = folder / CHECKPOINT_MARKER
    if not marker.is_file():
        return
    try:
        created = json.loads(marker.read_text()).get("created") is True
    except (OSError, ValueError, AttributeError):
        created = False
    for path in _written(folder):
        remove_path(path)
    if created and not is_remote(folder):
        try:
            folder.rmdir()
        except OSError:
            pass  # something else is in it: leave it


def _written(folder: Any) -> list[Any]:
    """What daskem writes in a checkpoint folder: stores, their temporaries, ``LATEST`` and the marker."""
    return [p for p in folder.iterdir() if p.name in ("LATEST", CHECKPOINT_MARKER) or _WRITTEN.fullmatch(p.name)]



@contextmanager
def checkpointing(
    folder: str | os.PathLike | None, settings: dict[str, Any], X: da.Array, sample_weight: da.Array | None,
    inputs: list[Any],
) -> Iterator[Checkpoint | None]:
    """The :class:`Checkpoint` of a fit, its folder reserved for the block (None without a folder).

    The folder must not be or hold any of ``inputs`` (see :mod:`daskem.io.outputs`).
    """
    if folder is None:
        yield None
        return
    with reserved([Output.of(folder, "checkpoint", "checkpoint")], inputs):
        yield Checkpoint(folder, settings, fingerprint(X, sample_weight))


def _group(path: Any, group: str) -> xr.Dataset:
    return xr.open_zarr(str(path), group=group, consolidated=False)


def _run_to_dataset(run: RunState) -> xr.Dataset:
    """The Dataset of a run, but for its anchor (its own group, see :meth:`Checkpoint.save`)."""
    ds = params_to_dataset(run.family, run.params, np.asarray(run.history), {})
    reseeds_left = run.reseeds_left if run.reseeds_left is not None else np.full(run.params.n_components, -1)
    ds["reseeds_left"] = ("component", np.asarray(reseeds_left, dtype=np.int64))
    ds["reseeded"] = (("restart", "event"), np.asarray(run.reseeded, dtype=np.int64).reshape(-1, 3))
    ds["warned"] = ("warned", np.asarray(sorted(run.warned), dtype=np.int64))
    ds["previous"] = ((), np.float64(run.previous))  # may be -inf, which JSON attributes cannot hold
    for name in _CYCLE_FLOATS:  # NaN and inf too
        ds[name] = ((), np.float64(getattr(run, name)))
    ds.attrs |= {"weight_sum": run.weight_sum, "converged": int(run.converged), "missing_counts": list(run.missing),
                 "phase": int(run.phase), "near": int(run.near), "anchor": int(run.anchor is not None)}
    return ds


def _count(value: Any, name: str) -> int:
    """``value`` (a checkpoint attribute called ``name``) as an integer >= 0; ValueError otherwise."""
    if not (is_integer(value) and value >= 0):
        raise ValueError(f"{name} is {value!r}, not an integer >= 0")
    return int(value)


def _log_likelihood(value: Any) -> float:
    """``value`` (a mean log-likelihood read from a checkpoint) as a float, finite or −inf; ValueError otherwise."""
    if not (isinstance(value, numbers.Real) and not isinstance(value, bool)) or np.isnan(value) or value == np.inf:
        raise ValueError(f"a mean log-likelihood is {value!r}, not a number (or -inf)")
    return float(value)


def _run_from_store(path: Any, group: str, source: str) -> RunState:
    """The run stored in ``group`` of the checkpoint at ``path``, with its anchor (group ``<group>-anchor``)."""
    ds = _group(path, group)
    run = _run_from_dataset(ds, source)
    if _count(ds.attrs["anchor"], "anchor"):
        run.anchor = params_from_dataset(_group(path, f"{group}-anchor"), source)[1]
    if run.phase != START and run.anchor is None:
        raise ValueError(f"{group} stands in phase {run.phase} of its SQUAREM cycle, without the anchor it needs")
    return run


def _cycle(ds: xr.Dataset) -> dict[str, Any]:
    """The SQUAREM cycle stored in a run's Dataset, its anchor aside; ValueError where it cannot be one."""
    cycle: dict[str, Any] = {name: float(ds[name].values.item()) for name in _CYCLE_FLOATS}
    cycle["phase"] = _count(ds.attrs["phase"], "phase")
    cycle["near"] = _count(ds.attrs["near"], "near")
    if cycle["phase"] not in (START, SECOND, CHECK):
        raise ValueError(f"phase is {cycle['phase']}, not {START}, {SECOND} or {CHECK}")
    for name in ("step", "step_max"):
        if not 1.0 <= cycle[name] < np.inf:
            raise ValueError(f"{name} is {cycle[name]!r}, not a number >= 1")
    if cycle["gap"] < 0 or cycle["gap_from"] == np.inf:  # NaN passes: not told yet
        raise ValueError(f"gap is {cycle['gap']!r} as of {cycle['gap_from']!r}, which cannot be")
    return cycle


def _run_from_dataset(ds: xr.Dataset, source: str) -> RunState:
    """The run stored in ``ds``, but for its anchor (see :func:`_run_from_store`)."""
    family, params = params_from_dataset(ds, source)
    reseeds_left = ds["reseeds_left"].values
    return RunState(
        family=family,
        params=params,
        weight_sum=float(ds.attrs["weight_sum"]),
        previous=_log_likelihood(ds["previous"].values.item()),
        converged=bool(ds.attrs["converged"]),
        history=ds["history"].values.tolist(),
        reseeded=[tuple(int(v) for v in row) for row in ds["reseeded"].values],
        reseeds_left=None if (reseeds_left < 0).all() else reseeds_left,
        warned={int(v) for v in ds["warned"].values},
        missing=tuple(int(v) for v in ds.attrs.get("missing_counts", (0, 0, 0))),
        **_cycle(ds),
    )
