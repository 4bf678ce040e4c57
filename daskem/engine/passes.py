"""One pass over the rows — the map over row chunks and the tree reduction.

A pass builds one Dask graph: a function mapped over the row chunks, once per
chunk, and a tree reduction of its results with a fixed fan-in (so the sums do
not depend on the order tasks finish in), computed on whatever scheduler is
active (local threads by default, a ``distributed.Client`` when one exists).
The E-step of a pass is :func:`_batch_statistics` (every candidate's
statistics of one chunk, one read), its reduction :func:`sum_batches`.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from threadpoolctl import threadpool_limits

from daskem.families.base import Family, Params, Statistics

#: Fan-in of the reduction tree.
DEFAULT_SPLIT_EVERY = 8


@dataclass(frozen=True)
class Blocks:
    """The row chunks of a data set as lazy blocks, with their weights and first rows."""

    rows: list[Delayed]
    weights: list[Delayed | None]
    first_rows: list[int]
    #: The dtype chunk functions get the rows in: float64, or float32 for float32 data
    #: fitted in float32 arithmetic (see :func:`daskem.kernels.block_kernels.compute_dtype`).
    dtype: type = np.float64

    @classmethod
    def of(cls, X: da.Array, sample_weight: da.Array | None = None, *, float32: bool = False) -> Blocks:
        """Blocks of an (N, d) array chunked along rows only, and of (N,) weights.

        With ``float32``, float32 rows are handed over as they are; anything
        else is converted to float64.
        """
        if X.ndim != 2 or X.numblocks[1] != 1:
            raise ValueError("expected a 2-D array chunked along rows only")
        rows = list(X.to_delayed().ravel())
        if sample_weight is None:
            weights: list[Delayed | None] = [None] * len(rows)
        else:
            weights = list(sample_weight.rechunk((X.chunks[0],)).to_delayed().ravel())
        first_rows = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
        return cls(rows, weights, first_rows, np.float32 if float32 and X.dtype == np.float32 else np.float64)


def one_blas_thread() -> threadpool_limits:
    """A context in which BLAS runs one thread per task.

    The kernels' matrix products are small (d × d), so BLAS threads only
    oversubscribe the cores that Dask already keeps busy: limiting them makes
    a local fit about twice as fast.  (Distributed workers already run with
    one BLAS thread.)
    """
    return threadpool_limits(limits=1, user_api="blas")


def progress_bar(show: bool) -> contextlib.AbstractContextManager:
    """Dask's progress bar on stderr, for each computation longer than a second (local scheduler), when
    ``show``; else nothing.  ``dt`` is also how long the end of every pass waits for the bar's thread:
    it is kept short."""
    if not show:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0, dt=0.05, out=sys.stderr)


def compute_one_thread_blas(*graphs: Delayed) -> tuple:
    """Compute lazy values on the active scheduler, within :func:`one_blas_thread`."""
    with one_blas_thread():
        return dask.compute(*graphs)


def map_reduce(
    data: Blocks, chunk_fn: Callable, combine: Callable, *shared: Any, split_every: int = DEFAULT_SPLIT_EVERY
) -> Delayed:
    """One lazy pass over the data: ``chunk_fn`` per chunk, ``combine`` over a fixed tree.

    ``chunk_fn(rows, weights, first_row, *shared)`` gets each chunk's rows
    (n, d) in ``data.dtype``, its weights (n,) or None, and the index of its
    first row; ``shared`` is shipped once to all tasks.
    """
    return pass_template(data, chunk_fn, combine, split_every)(shared)


class Shared:
    """What every task of a pass shares (its parameters), held so that Dask ships it as one opaque value."""

    __slots__ = ("value",)

    def __init__(self, value: tuple) -> None:
        self.value = value


def pass_template(
    data: Blocks, chunk_fn: Callable, combine: Callable, split_every: int = DEFAULT_SPLIT_EVERY
) -> Callable[[tuple], Delayed]:
    """Passes of :func:`map_reduce` over ``data``: a function of what their tasks share.

    Building a pass's graph with ``dask.delayed`` — merging every chunk's
    graph and hashing the arguments into keys — took 3.7 ms of a 23 ms pass
    (diag, K=8, 400,000 × 8), with every core idle.  Here the graph of the
    rows is materialised once, and each pass adds its tasks to it as plain
    tasks under keys of its own (a distributed scheduler must never take one
    pass's results for another's).
    """
    rows_graph: dict = {}
    for block in [*data.rows, *(w for w in data.weights if w is not None)]:
        rows_graph.update(block.__dask_graph__())

    def with_shared(shared: tuple) -> Delayed:
        token = uuid.uuid4().hex
        graph = dict(rows_graph)
        shared_key = f"daskem-shared-{token}"
        graph[shared_key] = Shared(tuple(shared))
        keys = []
        for i, (rows, weights, first_row) in enumerate(zip(data.rows, data.weights, data.first_rows)):
            keys.append((f"daskem-chunk-{token}", i))
            graph[keys[-1]] = (_apply, chunk_fn, rows.key, None if weights is None else weights.key, first_row,
                               data.dtype, shared_key)
        level = 0
        while len(keys) > 1:  # a fixed tree: groups of split_every, level by level, in order
            groups = [keys[i : i + split_every] for i in range(0, len(keys), split_every)]
            keys = [(f"daskem-combine-{token}", level, j) for j in range(len(groups))]
            graph.update({key: (combine, group) for key, group in zip(keys, groups)})
            level += 1
        return Delayed(keys[0], graph)

    return with_shared


def _apply(
    chunk_fn: Callable, rows: np.ndarray, weights: np.ndarray | None, first_row: int, dtype: type, shared: Shared
) -> Any:
    return chunk_fn(np.asarray(rows, dtype=dtype), weights, first_row, *shared.value)


#: One candidate mixture of a pass: its family and its parameters.
Candidate = tuple[Family, Params]


def _batch_statistics(
    rows: np.ndarray, weights: np.ndarray | None, first_row: int, candidates: Sequence[Candidate]
) -> tuple[Statistics, ...]:
    """The E-step: one chunk's statistics under every candidate (one read of the chunk)."""
    return tuple(family.chunk_statistics(rows, params, first_row, weights) for family, params in candidates)


def sum_batches(parts: Sequence[tuple[Statistics, ...]]) -> tuple[Statistics, ...]:
    """The reduction: add batches of statistics element by element, left to right (a fixed order)."""
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part))
    return total


def statistics_pass(
    data: Blocks, split_every: int = DEFAULT_SPLIT_EVERY
) -> Callable[[Sequence[Candidate]], Delayed]:
    """Lazy passes over ``data``: E-step statistics of every chunk under every candidate given.

    Each pass gives a lazy tuple with one family :class:`~daskem.families.base.Statistics` per candidate.
    """
    template = pass_template(data, _batch_statistics, sum_batches, split_every)
    return lambda candidates: template((tuple(candidates),))
