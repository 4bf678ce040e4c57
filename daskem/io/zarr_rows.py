"""Zarr arrays read as row chunks: opening them, reading their chunk files, and chunks absent from a store.

A Zarr array (or the array ``variable`` of a group) becomes a Dask array
chunked along rows only, whose read errors name the stored chunks and rows
they hold; stored chunks that are absent are counted and said before any pass.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from typing import Any

import dask.array as da
import google_crc32c
import numpy as np
import zarr
import zarr.storage
from zarr.abc.store import Store
from zarr.codecs import BytesCodec, Crc32cCodec
from zarr.codecs.bytes import Endian
from zarr.core.sync import sync

from daskem.exceptions import AbsentChunksWarning, CorruptDataError, InputError, InputNotFoundError
from daskem.io import chunk_index
from daskem.io.storage import is_url, missing_bucket
from daskem.io.storage import location as storage_location
from daskem.redaction import redact

#: Target size of a row chunk, counted as float64 values whatever the stored dtype
#: (the kernels' cost is per row, so float32 rows get as many rows per chunk, not twice
#: as many: 400,000 float32 rows in 2 uneven chunks kept one of two cores idle half the
#: time).  The kernels work in cache-sized blocks, so a chunk only needs to be large
#: enough that per-task overhead is negligible; smaller chunks spread a moderate data
#: set over all cores (see docs/design.md).
DEFAULT_CHUNK_BYTES = 16 * 2**20
_VALUE_BYTES = 8
#: Chunks a data set is cut into at least, where its stored chunks allow: one per core of
#: this machine, and 4.  200,000 × 8 rows had made one chunk for two cores (diag, K=256:
#: 0.34 → 0.26 s per iteration with 4); 8 chunks of 400,000 × 16 rows were slower than
#: 4 on two cores (0.115 against 0.094–0.106 s), each task having its fixed costs.
MIN_CHUNKS = max(4, os.cpu_count() or 1)

PathLike = str | os.PathLike


def is_path(X: Any) -> bool:
    """Whether X names a store (a path or URL) rather than holding data."""
    return isinstance(X, (str, os.PathLike))


def open_zarr_array(path: PathLike, variable: str | None = None) -> zarr.Array:
    """Open the Zarr array at ``path`` (a group plus ``variable``, or an array store).

    ``variable`` may name an array inside a subgroup as ``group/array``.

    Raises
    ------
    InputNotFoundError
        Nothing is stored at ``path`` (naming a missing bucket), or the group
        holds no array ``variable`` (listing the arrays it holds, at any depth).
    InputError
        ``path`` is not a Zarr store, or is a group and no ``variable`` is given.
    """
    location = os.fspath(path) if not hasattr(path, "fs") else str(path)
    url = storage_location(location) if is_url(location) else None  # StorageError: an unknown scheme, …
    if url is None and not os.path.exists(location):
        raise InputNotFoundError(f"no such file or directory: {location!r}")
    try:
        node = zarr.open(location, mode="r")
    except Exception as error:  # zarr raises several types for "not a store"
        missing = missing_bucket(url) if url is not None else None  # asked only to explain the failure
        if missing:
            raise InputNotFoundError(f"cannot read {location!r}: {missing}") from None
        raise InputError(f"{location!r} is not a readable Zarr store ({error})") from None
    if isinstance(node, zarr.Array):
        return node
    if variable is not None:
        try:
            found = node[variable.strip("/")] if variable.strip("/") else None
        except (KeyError, ValueError):  # ValueError: a name Zarr refuses ('..', '.', a NUL)
            found = None
        if isinstance(found, zarr.Array):
            return found
    arrays = sorted(name for name, member in node.members(max_depth=None) if isinstance(member, zarr.Array))
    if variable is None:
        if len(arrays) == 1:
            return node[arrays[0]]
        raise InputError(
            f"{location!r} is a Zarr group holding {_listing(arrays)}; "
            "say which array to fit with variable= (--variable on the command line)"
        )
    raise InputNotFoundError(
        f"variable {variable!r} not found in {location!r}; it holds {_listing(arrays)}"
        + ("" if "/" in variable or not any("/" in name for name in arrays) else
           " (name an array inside a subgroup as group/array)")
    )


class ZarrRows:
    """A Zarr array as Dask reads it, whose read errors name the store chunks and rows.

    Rows of a plain local store — uncompressed (a CRC32C checksum allowed),
    unfiltered, unsharded, little endian, each chunk spanning every feature —
    are read from the chunk files straight into the block (see
    :class:`_PlainChunks`); anything else, and any chunk file that is not the
    size it must be or fails its checksum, goes through Zarr, whose error
    names the rows of the damaged chunk.
    """

    def __init__(self, array: zarr.Array, location: str) -> None:
        self.array, self.location = array, location
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.plain = _PlainChunks.of(array, location)

    def __getitem__(self, key: Any) -> np.ndarray:
        if self.plain is not None:
            rows = self.plain.read(key)
            if rows is not None:
                return rows
        try:
            return self.array[key]
        except Exception as error:
            raise CorruptDataError(self._damage(key, error)) from None

    def _damage(self, key: Any, error: Exception) -> str:
        """Which stored chunks of the rows ``key`` asked for cannot be read, by trying each."""
        first, last = _row_range(key[0] if isinstance(key, tuple) else key, self.shape[0])
        step = (self.array.shards or self.array.chunks)[0]
        damaged = []
        for chunk in range(first // step, last // step + 1):
            stop = min((chunk + 1) * step, self.shape[0])
            try:
                self.array[chunk * step : stop]
            except Exception:
                damaged.append(f"rows {chunk * step}–{stop - 1}")
        where = ", ".join(damaged) if damaged else f"rows {first}–{last}"
        return (
            f"cannot read {self.location}: the stored chunk(s) of {where} are damaged "
            f"({type(error).__name__}: {error}); rewrite the data"
        )


class _PlainChunks:
    """The chunk files of a plain Zarr 3 array in a local store, read without Zarr's codec pipeline.

    Zarr reads a chunk on its event-loop thread (one for the process), through
    its codecs, and copies it twice: 1.9 ms per 6.4 MB chunk, where reading the
    file takes 0.3 ms.  Every pass of a fit reads every row, so at 1,000,000 ×
    16 float32 rows the reads cost 25 ms of an 88 ms iteration.  Here a Dask
    thread reads each file into the block with one ``readinto``, in parallel
    with the other threads.  Chunks whose files are absent read as the fill
    value, as in Zarr.  A chunk written with a ``crc32c`` codec after its
    bytes (as ``daskem generate`` writes them) ends in the 4-byte little-endian
    CRC32C of its bytes, checked here as Zarr checks it, but once per file
    (and again when its inode or modification time changes) for each reader,
    that is for each fit: computing it takes 1.1 ms per 6.4 MB chunk, with
    the GIL held, 6 % of a pass over 400,000 × 16 float64 rows, K=8, which
    checking at every pass would pay at every iteration.
    """

    def __init__(self, array: zarr.Array, folder: str, trailer_bytes: int, location: str = "the data") -> None:
        self.array, self.folder, self.trailer_bytes, self.location = array, folder, trailer_bytes, location
        self.index = chunk_index.load(array) if trailer_bytes else None  # where each chunk belongs
        self.chunk_rows = array.chunks[0]
        self.row_bytes = array.dtype.itemsize * math.prod(array.shape[1:])
        self.checked: set[tuple[int, int, int]] = set()  # (chunk, inode, mtime) of files that passed

    @classmethod
    def of(cls, array: zarr.Array, location: str = "the data") -> _PlainChunks | None:
        """The plain reader of ``array`` (``location`` names it in messages), or None when its layout needs
        Zarr's own."""
        metadata = array.metadata
        codecs = getattr(metadata, "codecs", ())
        checksum = tuple(codecs[1:]) == (Crc32cCodec(),)
        plain = (
            metadata.zarr_format == 3 and isinstance(array.store, zarr.storage.LocalStore)
            and array.shards is None and len(codecs) == 1 + checksum and isinstance(codecs[0], BytesCodec)
            and codecs[0].endian in (None, Endian.little) and sys.byteorder == "little"
            and array.dtype.byteorder in ("<", "=", "|") and array.dtype.kind in "iuf"
            and tuple(array.chunks[1:]) == tuple(array.shape[1:]) and array.shape[0] > 0
        )
        if not plain:
            return None
        return cls(array, os.path.join(str(array.store.root), array.path), 4 * checksum, location)

    def read(self, key: Any) -> np.ndarray | None:
        """The rows ``key`` (a slice of rows, all features) selects, or None to leave them to Zarr."""
        rows, rest = (key[0], key[1:]) if isinstance(key, tuple) else (key, ())
        n = self.array.shape[0]
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            return None
        if any(not (isinstance(r, slice) and r.indices(size) == (0, size, 1))
               for r, size in zip(rest, self.array.shape[1:])):
            return None
        start, stop, _ = rows.indices(n)
        stop = max(start, stop)
        out = np.empty((stop - start, *self.array.shape[1:]), self.array.dtype)
        flat = out.reshape(-1).view(np.uint8)
        for chunk in range(start // self.chunk_rows, -(-stop // self.chunk_rows)):
            first, last = max(start, chunk * self.chunk_rows), min(stop, (chunk + 1) * self.chunk_rows)
            target = flat[(first - start) * self.row_bytes:(last - start) * self.row_bytes]
            if not self._read_chunk(chunk, first - chunk * self.chunk_rows, target, out[first - start:last - start]):
                return None
        return out

    def _read_chunk(self, chunk: int, skip: int, target: np.ndarray, rows: np.ndarray) -> bool:
        """Rows ``skip …`` of stored chunk ``chunk`` into ``target`` (bytes) — or the fill value into
        ``rows`` when the file is absent; False when the file is not a whole plain chunk or fails
        its checksum."""
        key = self.array.metadata.encode_chunk_key((chunk, *[0] * (self.array.ndim - 1)))
        try:
            file = open(os.path.join(self.folder, *key.split("/")), "rb", buffering=0)
        except FileNotFoundError:
            rows[...] = self.array.metadata.fill_value
            return True
        size = self.chunk_rows * self.row_bytes
        with file:
            stat = os.fstat(file.fileno())
            if stat.st_size != size + self.trailer_bytes:
                return False  # damaged, or not what the metadata says: Zarr's read names the problem
            identity = (chunk, stat.st_ino, stat.st_mtime_ns)
            if not self.trailer_bytes or identity in self.checked:
                file.seek(skip * self.row_bytes)
                return file.readinto(target) == len(target)
            # The checksum covers the whole chunk: the rows before and after those asked for, then the trailer.
            head = np.empty(skip * self.row_bytes, np.uint8)
            tail = np.empty(size + self.trailer_bytes - len(head) - len(target), np.uint8)
            if any(file.readinto(part) != len(part) for part in (head, target, tail)):
                return False
        crc = google_crc32c.extend(google_crc32c.extend(google_crc32c.value(head), target), tail[:-4])
        if crc != int.from_bytes(tail[-4:], "little"):
            return False  # Zarr's read names the damaged chunk
        other = self.index.misplaced(chunk, crc) if self.index is not None else None
        if other is not None:  # whole, but another chunk's: Zarr's read would take it
            raise CorruptDataError(
                f"cannot read {self.location}: the stored chunk of {self._rows(chunk)} holds {self._rows(other)} "
                "(its checksum is theirs, as daskem recorded it when it wrote them): chunk files were swapped or "
                "copied over; rewrite the data"
            )
        self.checked.add(identity)
        return True

    def _rows(self, chunk: int) -> str:
        """``rows 100–199``: the rows of stored chunk ``chunk``."""
        first = chunk * self.chunk_rows
        return f"rows {first}–{min(first + self.chunk_rows, self.array.shape[0]) - 1}"


def _row_range(index: Any, n_rows: int) -> tuple[int, int]:
    """First and last row an index along the rows selects (a slice, an integer or integers)."""
    if isinstance(index, slice):
        start, stop, _ = index.indices(n_rows)
        return start, max(start, stop - 1)
    rows = np.asarray(index) % n_rows
    return int(rows.min()), int(rows.max())


def open_rows(path: PathLike, variable: str | None = None, rows_per_chunk: int | None = None) -> da.Array:
    """The Zarr array at ``path`` (``variable`` of a group) as a Dask array.

    A stored chunk that is absent reads as the array's fill value, as Zarr
    reads it (Zarr does not store chunks that equal the fill value, such as
    blocks of zeros; :func:`check_stored_chunks` counts and says them); a
    chunk that cannot be decoded is an error naming its rows (see
    :class:`ZarrRows`).  ``rows_per_chunk`` defaults to the stored
    chunks along the first axis, merged up to about
    :data:`DEFAULT_CHUNK_BYTES` for 2-D arrays while that leaves at least
    :data:`MIN_CHUNKS` chunks.
    """
    stored = open_zarr_array(path, variable)
    location = f"{os.fspath(path)!r}" + (f" (array {variable!r})" if variable else "")
    store_rows = (stored.shards or stored.chunks)[0]
    if rows_per_chunk is None:
        rows_per_chunk = store_rows
        if stored.ndim == 2:
            rows_per_chunk = merged_rows(store_rows, n_features=stored.shape[1], n_rows=stored.shape[0])
    return da.from_array(ZarrRows(stored, location), chunks=(rows_per_chunk, *stored.shape[1:]), asarray=True)


#: Most runs of absent chunks a message names.
_MAX_RUNS = 5


def check_stored_chunks(X: Any, variable: str | None = None, sample_weight: Any = None, *,
                        strict: bool = False) -> int:
    """How many stored chunks of the Zarr arrays that are read from X are absent (0 unless X is a Zarr path).

    The arrays are ``variable`` and, when ``sample_weight`` names one, the
    weights.  Zarr reads an absent chunk as the array's fill value (it does
    not store chunks equal to it), so absent chunks are not an error; each
    array that lacks some is said in an :class:`AbsentChunksWarning`
    ("N of M chunks of X are not stored …; they read as the fill value F").
    Each array's store is listed once (see :func:`absent_chunks`).

    Raises
    ------
    CorruptDataError
        With ``strict``, when a chunk is absent: naming how many and which rows.
    """
    if not is_path(X):
        return 0
    absent = 0
    for name in [variable, *([sample_weight] if isinstance(sample_weight, str) else [])]:
        absent += _said_absent_chunks(X, open_zarr_array(X, name), strict)
    return absent


def absent_chunks(array: zarr.Array) -> tuple[list[tuple[int, ...]], int]:
    """The grid positions of the stored chunks of ``array`` (its shards, when sharded) that are absent
    from its store, in order, and how many it has, from one listing of the store."""
    stored = sync(_listed_keys(array.store, f"{array.path}/" if array.path else ""))
    keys = chunk_index.stored_keys(array)
    return [position for position, key in keys if key not in stored], len(keys)


async def _listed_keys(store: Store, prefix: str) -> set[str]:
    return {key async for key in store.list_prefix(prefix)}


def _said_absent_chunks(path: PathLike, array: zarr.Array, strict: bool) -> int:
    """:func:`absent_chunks` of ``array`` (of the store at ``path``) counted, and warned of or refused."""
    absent, n_chunks = absent_chunks(array)
    if not absent:
        return 0
    where = f"{os.fspath(path)!r}" + (f" (array {array.path!r})" if array.path else "")
    unit = "shards" if array.shards else "chunks"
    said = f"{len(absent)} of {n_chunks} {unit} of {where} are not stored ({_absent_runs(array, absent)})"
    fill = np.asarray(array.fill_value).item()
    fill_text = "NaN (missing values)" if isinstance(fill, float) and math.isnan(fill) else repr(fill)
    if len(absent) == n_chunks:  # no data at all: a pass would read nothing but the fill value, at any size
        raise CorruptDataError(f"none of the {n_chunks} {unit} of {where} is stored: it holds nothing but its fill "
                               f"value {fill_text}; check the path, or finish copying or writing the data")
    if strict:
        raise CorruptDataError(f"{said}; strict_chunks refuses them: restore the missing {unit}, or leave out "
                               f"strict_chunks (--strict-chunks) to read them as the fill value {fill_text}")
    warnings.warn(redact(f"{said}; they read as the fill value {fill_text}"), AbsentChunksWarning,
                  stacklevel=5)  # the caller of fit, select or predict
    return len(absent)


def _absent_runs(array: zarr.Array, absent: list[tuple[int, ...]]) -> str:
    """The rows (the indices along the first axis) of the absent chunks at ``absent``, consecutive chunks
    merged, with their ranges along the other axes where those are cut into several chunks:
    ``rows 100–299, 500–599`` or ``rows 0–99 (features 2–3); rows 300–399 (features 0–1)``."""
    step = array.shards or array.chunks
    names = (["rows", "features"] if array.ndim <= 2 else
             [name or f"axis {axis}" for axis, name in enumerate(getattr(array.metadata, "dimension_names", None)
                                                                   or [None] * array.ndim)])
    split = [axis for axis in range(1, array.ndim) if step[axis] < array.shape[axis]]

    def extent(axis: int, first: int, last: int) -> str:
        low, high = first * step[axis], min((last + 1) * step[axis], array.shape[axis]) - 1
        return f"{low}–{high}" if high > low else f"{low}"

    runs: list[list[Any]] = []  # [first chunk, last chunk, positions along the split axes]
    open_runs: dict[tuple[int, ...], list[Any]] = {}
    for position in absent:  # in order: by the first axis
        others = tuple(position[axis] for axis in split)
        run = open_runs.get(others)
        if run is not None and run[1] == position[0] - 1:
            run[1] = position[0]
        else:
            open_runs[others] = run = [position[0], position[0], others]
            runs.append(run)
    more = f" and {len(runs) - _MAX_RUNS} more" if len(runs) > _MAX_RUNS else ""
    if not split:
        return f"{names[0]} " + ", ".join(extent(0, first, last) for first, last, _ in runs[:_MAX_RUNS]) + more
    return "; ".join(f"{names[0]} {extent(0, first, last)} ("
                     + ", ".join(f"{names[axis]} {extent(axis, p, p)}" for axis, p in zip(split, others)) + ")"
                     for first, last, others in runs[:_MAX_RUNS]) + more


#: Most array names a message lists.
_MAX_LISTED = 20


def _listing(names: list[str]) -> str:
    """``the arrays 'a', 'sub/b'`` (the first :data:`_MAX_LISTED` of ``names``), or ``no arrays``."""
    if not names:
        return "no arrays"
    more = f" and {len(names) - _MAX_LISTED} more" if len(names) > _MAX_LISTED else ""
    return "the arrays " + ", ".join(repr(n) for n in names[:_MAX_LISTED]) + more


def merged_rows(store_rows: int, n_features: int, n_rows: int) -> int:
    """Rows per Dask chunk: whole stored chunks of ``store_rows``, up to about
    :data:`DEFAULT_CHUNK_BYTES` (as float64) while at least :data:`MIN_CHUNKS` remain."""
    by_size = DEFAULT_CHUNK_BYTES // (store_rows * n_features * _VALUE_BYTES)
    by_count = -(-n_rows // store_rows) // MIN_CHUNKS
    return store_rows * max(1, min(by_size, by_count))
