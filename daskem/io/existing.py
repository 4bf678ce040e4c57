"""What is at a path already: which daskem output it is, and what interrupted writes left beside it.

Read-only: reading a model (:mod:`daskem.io.model_files`) asks here what a
path holds, and so does the write guard (:mod:`daskem.io.outputs`) before it
replaces anything.  Zarr and netCDF outputs carry their kind in the attribute
``daskem_output``; the others are recognised by their content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from daskem.io.storage import incomplete_kind, is_remote, location

#: What daskem writes.  Zarr and netCDF outputs carry their kind in the
#: attribute ``daskem_output``; the others are recognised by their content.
KINDS = ("model", "scores", "data", "selection", "report", "picture", "checkpoint")
KIND_ATTRIBUTE = "daskem_output"
#: The file that marks a folder as a daskem checkpoint folder.
CHECKPOINT_MARKER = ".daskem-checkpoint.json"
#: What a selection folder holds, exactly: its table of candidates and its best model.
SELECTION_TABLE, SELECTION_MODEL = "table.csv", "best.zarr"
SELECTION_FILES = frozenset({SELECTION_TABLE, SELECTION_MODEL})
#: Largest JSON file read to recognise a report.
_MAX_REPORT_BYTES = 16 * 2**20


def output_kind(path: Any) -> str | None:
    """Which kind of daskem output the existing ``path`` (a path, URL or UPath) is, or None if it is not one."""
    path = location(path)
    try:
        if path.is_dir():
            if (path / CHECKPOINT_MARKER).is_file():
                return "checkpoint"
            if (path / "zarr.json").is_file():
                return _kind_from_attributes(_zarr_attributes(path))
            names = {p.name for p in path.iterdir()}
            if names == SELECTION_FILES and output_kind(path / SELECTION_MODEL) == "model":
                return "selection"
            return None
        if path.is_file():
            with path.open("rb") as file:
                head = file.read(8)
            if head.startswith(b"\x89PNG"):
                return "picture"
            if head.startswith((b"CDF", b"\x89HDF")) and not is_remote(path):
                return _kind_from_attributes(_netcdf_attributes(path))
            if head.lstrip().startswith(b"{") and path.stat().st_size <= _MAX_REPORT_BYTES:
                report = json.loads(path.read_text())
                if isinstance(report, dict) and (
                    report.get(KIND_ATTRIBUTE) == "report" or {"status", "job", "stages"} <= report.keys()
                ):  # the second: reports written before they carried their kind
                    return "report"
                return None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return None


def _kind_from_attributes(attributes: dict) -> str | None:
    kind = attributes.get(KIND_ATTRIBUTE)
    if kind in KINDS:
        return kind
    # Model files written before outputs carried their kind.
    return "model" if str(attributes.get("model", "")).startswith("daskem.") else None


def _zarr_attributes(path: Path) -> dict:
    document = json.loads((path / "zarr.json").read_text())
    attributes = document.get("attributes", {}) if isinstance(document, dict) else {}
    return attributes if isinstance(attributes, dict) else {}


def _netcdf_attributes(path: Path) -> dict:
    import xarray as xr

    with xr.open_dataset(path) as ds:
        return dict(ds.attrs)


def describe(path: Any) -> str:
    """What the existing ``path`` is, in words: "a daskem model", "a Zarr store not written by daskem", …"""
    kind = output_kind(path)
    if kind is not None:
        return f"a daskem {kind}"
    interrupted = incomplete_kind(path) if is_remote(path) else None
    if interrupted is not None:
        return f"an incomplete daskem {interrupted} (an interrupted write)"
    if path.is_dir():
        if (path / "zarr.json").is_file() or (path / ".zgroup").is_file() or (path / ".zarray").is_file():
            return "a Zarr store not written by daskem"
        return "a folder that is not a daskem output"
    return "a file that is not a daskem output"


def is_checkpoint_folder(path: Any) -> bool:
    """Whether ``path`` is a folder daskem writes checkpoints into (marked, or new and empty)."""
    return path.is_dir() and (is_remote(path) or not path.is_symlink()) and (
        (path / CHECKPOINT_MARKER).is_file() or not any(path.iterdir())
    )


# ------------------------------------------------------------ interrupted writes


def lock_path(path: Path) -> Path:
    """The lock file of a local output (see :mod:`daskem.io.outputs`): ``.NAME.lock`` beside it."""
    return Path(os.path.realpath(path.parent)) / f".{path.name}.lock"


def lock_owner(lock: Path) -> str:
    """Who a lock file says holds it ("process PID on HOST"), as far as it can be read."""
    try:
        host, pid = lock.read_text().split()
    except (OSError, ValueError):
        return "a process"
    return f"process {pid} on {host}"


def lock_state(lock: Path) -> str:
    """What the lock file ``lock`` is: stale (its process, on this machine, is gone) or held, in words.

    Told from the process it names, never by taking the lock: a look must not make a starting writer
    find the lock busy.
    """
    owner = lock_owner(lock)
    try:
        host, pid = lock.read_text().split()
        if host != os.uname().nodename:
            return f"a lock of {owner}, another machine: whether it still runs cannot be told from here"
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return f"a stale lock ({owner} is gone; the next write of this path removes it)"
    except (OSError, ValueError):
        pass  # alive but not ours to signal (PermissionError), or unreadable
    return f"held by {owner}, which is writing this path now"


def leftover_paths(path: Any) -> tuple[list[Any], list[Path]]:
    """Temporary (``.NAME.tmp-…``) and set-aside (``.NAME.old-…``, local only) paths beside ``path``."""
    temporary, aside = f".{path.name}.tmp-", f".{path.name}.old-"
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return [], []
    if is_remote(path):
        return [p for p in entries if p.name.startswith(temporary)], []
    return ([p for p in entries if p.name.startswith(temporary)],
            sorted((p for p in entries if p.name.startswith(aside)), key=lambda p: p.lstat().st_mtime))


def leftovers(path: str | os.PathLike) -> list[str]:
    """What interrupted writes left beside ``path`` (lock, temporaries, a version moved aside), described."""
    path = location(path)
    temporary, aside = leftover_paths(path)
    found = [f"{str(p)!r}: the temporary of an interrupted write (the next write of this path removes it)"
             for p in temporary]
    found += [f"{str(p)!r}: the previous version, moved aside by an interrupted write (the next write of this "
              "path restores it if the path is gone, or removes it)" for p in aside]
    if not is_remote(path):
        lock = lock_path(path)
        if os.path.isfile(lock):
            found.append(f"{str(lock)!r}: {lock_state(lock)}")
    if is_remote(path) and incomplete_kind(path) is not None:
        found.append(f"{str(path)!r}: an incomplete {incomplete_kind(path)} (an interrupted write)")
    return found


def interrupted_write_note(path: Any) -> str:
    """A hint for a missing ``path``: what interrupted writes of it left, if anything (see :func:`leftovers`)."""
    _, aside = leftover_paths(location(path))
    if not aside:
        left = leftovers(path)
        return f"; beside it, {'; '.join(left)}" if left else ""
    return (f"; an interrupted write left its previous version in {str(aside[-1])!r}, which the next write "
            "of this path restores (or rename it back yourself)")
