"""Where each stored chunk of an array belongs — the CRC32C that ends each chunk file, by position.

A checksum (Zarr's ``crc32c`` codec) proves that a chunk's bytes are the
ones written, not that the chunk sits where it was written: two chunk files
swapped, or one copied over another, still pass it.  So after writing a
store, daskem records beside each array whose chunks daskem reads straight
from their files (uncompressed, then ``crc32c``: the rows of ``daskem
generate``) the CRC32C that ends each stored chunk file, in the order of the
chunk grid (:data:`INDEX`, which Zarr ignores).  A reader that finds a chunk
file ending with the CRC32C of another position refuses it
(:class:`daskem.io.zarr_rows.ZarrRows`).  A file that ends with no recorded
CRC32C was rewritten since (Zarr arrays may be edited in place): that is no
evidence of a swap, and it is read.  An index recorded for another shape or
chunking (a copy made otherwise) is ignored.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr
from zarr.abc.store import SuffixByteRequest
from zarr.codecs import BytesCodec, Crc32cCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

#: The file, beside an array's ``zarr.json``, that holds the index.
INDEX = "daskem-chunks.json"
FORMAT = "daskem.chunk-index/1"
#: Chunk files whose trailers are read at once while recording.
_CONCURRENT_READS = 64


def indexed(array: zarr.Array) -> bool:
    """Whether daskem indexes ``array``: Zarr 3, unsharded, its codecs bytes then ``crc32c``."""
    codecs = getattr(array.metadata, "codecs", ())
    return (array.metadata.zarr_format == 3 and array.shards is None and len(codecs) == 2
            and isinstance(codecs[0], BytesCodec) and codecs[1] == Crc32cCodec())


def record(store: str) -> None:
    """Write the index of every array of the Zarr group at ``store`` (a path or URL) that :func:`indexed`."""
    group = zarr.open_group(store, mode="r+")
    for _, array in group.members(max_depth=None):
        if isinstance(array, zarr.Array) and indexed(array):
            sync(_record(array))


def stored_keys(array: zarr.Array) -> list[tuple[tuple[int, ...], str]]:
    """The grid position and store key of every object that holds a chunk (a shard, when sharded) of
    ``array``, in the order of the grid (C order)."""
    prefix = f"{array.path}/" if array.path else ""
    return [(position, prefix + array.metadata.encode_chunk_key(position))
            for position in np.ndindex(*_grid(array))]


async def _record(array: zarr.Array) -> None:
    prefix = f"{array.path}/" if array.path else ""
    keys = [key for _, key in stored_keys(array)]
    limit = asyncio.Semaphore(_CONCURRENT_READS)

    async def trailer(key: str) -> int | None:
        async with limit:
            found = await array.store.get(key, default_buffer_prototype(), SuffixByteRequest(4))
        return None if found is None else int.from_bytes(found.to_bytes(), "little")

    crcs = await asyncio.gather(*(trailer(key) for key in keys))
    document = {"format": FORMAT, "shape": list(array.shape), "chunks": list(array.chunks), "crc32c": crcs}
    buffer = default_buffer_prototype().buffer.from_bytes(json.dumps(document).encode())
    await array.store.set(prefix + INDEX, buffer)


@dataclass(frozen=True)
class ChunkIndex:
    """The CRC32C recorded for each chunk of an array (flat grid position → CRC32C, and back)."""

    crc32c: tuple[int | None, ...]
    positions: dict[int, int]

    def misplaced(self, position: int, trailer: int) -> int | None:
        """The position whose chunk the file at ``position``, ending with ``trailer``, holds instead of its
        own, or None when it holds its own (or one rewritten since, that belongs nowhere else)."""
        if self.crc32c[position] in (None, trailer):
            return None
        return self.positions.get(trailer)


def load(array: zarr.Array) -> ChunkIndex | None:
    """The index recorded for ``array`` by :func:`record`, or None when there is none for its present shape
    and chunking (never recorded, damaged, or made for another array)."""
    prefix = f"{array.path}/" if array.path else ""
    try:
        found = sync(array.store.get(prefix + INDEX, default_buffer_prototype()))
        document: Any = json.loads(found.to_bytes()) if found is not None else None
    except (OSError, ValueError):
        return None
    grid = _grid(array)
    if not (isinstance(document, dict) and document.get("format") == FORMAT
            and document.get("shape") == list(array.shape) and document.get("chunks") == list(array.chunks)
            and isinstance(document.get("crc32c"), list) and len(document["crc32c"]) == int(np.prod(grid))
            and all(c is None or isinstance(c, int) for c in document["crc32c"])):
        return None
    crcs = tuple(document["crc32c"])
    counts: dict[int, int] = {}
    for crc in crcs:
        if crc is not None:
            counts[crc] = counts.get(crc, 0) + 1
    # A CRC32C that several chunks share (equal chunks) names no single place.
    positions = {crc: i for i, crc in enumerate(crcs) if crc is not None and counts[crc] == 1}
    return ChunkIndex(crcs, positions)


def _grid(array: zarr.Array) -> tuple[int, ...]:
    """How many stored objects (shards, when sharded, else chunks) ``array`` has along each axis."""
    return tuple(-(-size // step) for size, step in zip(array.shape, array.shards or array.chunks))
