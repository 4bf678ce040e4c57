"""Passes over sequences laid end to end in row chunks: a hidden Markov model's E-step out of core.

The rows are the steps of sequences one after another (:class:`Sequences`
says where each begins).  A chunk holds whole sequences and pieces of
sequences that it shares with the chunks beside it.  A pass is one Dask graph:

- each chunk's whole sequences are one task (forward–backward of each, their
  statistics summed), as a mixture's chunk is;
- a sequence split over chunks runs as two chains of tasks, one per piece:
  the forward chain carries each piece's last forward message (K numbers) to
  the next piece, and the backward chain, in reverse, carries each piece's
  first backward message to the piece before.  Each task of a chain reads its
  piece's rows itself, when it runs (:class:`Reader`), and a backward task
  runs the forward recursion over its piece once more from the incoming
  message, so what waits between tasks is K numbers per piece — never rows
  read ahead of a chain, nor a chunk's forward messages: memory does not grow
  with a sequence's length, and the arithmetic is the whole sequence's, step
  for step;
- the statistics of all tasks are added over a fixed tree, as a mixture's are.

Chunks are first moved to sequence boundaries wherever a sequence is no
longer than a chunk (:meth:`Sequences.aligned_chunks`), so only sequences
longer than a chunk are split.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import dask
import dask.array as da
import numpy as np
from dask.core import flatten
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from daskem.engine.passes import DEFAULT_SPLIT_EVERY, Shared, sum_batches
from daskem.exceptions import InputError
from daskem.families.hmm import HiddenMarkovFamily, HMMParams, HMMStatistics

#: One candidate model of a pass: its family and parameters.
HMMCandidate = tuple[HiddenMarkovFamily, HMMParams]


class Piece(NamedTuple):
    """Rows ``[start, stop)`` of sequence ``sequence`` (global row indices) that one chunk holds; ``opens``
    and ``closes`` say whether they begin and end it."""

    start: int
    stop: int
    sequence: int
    opens: bool
    closes: bool


@dataclass(frozen=True)
class Sequences:
    """Where the sequences laid end to end in the rows begin: ``starts`` (s + 1,) int64, the first row of
    each sequence and then the number of rows."""

    starts: np.ndarray

    @classmethod
    def of(cls, lengths: Any, n_rows: int) -> Sequences:
        """The sequences of ``lengths`` (s,) positive integers summing to ``n_rows``; one sequence of every
        row where ``lengths`` is None.  Bad lengths raise an :class:`InputError` that says what is wrong."""
        if lengths is None:
            return cls(np.array([0, n_rows], dtype=np.int64))
        values = np.asarray(lengths)
        if values.ndim != 1 or values.size == 0:
            raise InputError(f"lengths must be a 1-D array of sequence lengths, got shape {values.shape}")
        if values.dtype.kind not in "iuf" or (values.dtype.kind == "f" and not np.all(values == np.round(values))):
            raise InputError(f"lengths must be whole numbers of steps, got {values.dtype} values like "
                             f"{values.flat[0]!r}")
        bad = np.flatnonzero(~(values >= 1))
        if bad.size:
            raise InputError(f"lengths[{bad[0]}] is {values[bad[0]].item()!r}: each sequence has at least one step")
        values = values.astype(np.int64)
        total = int(values.sum())
        if total != n_rows:
            raise InputError(f"lengths sum to {total} steps, but the data have {n_rows} rows: "
                             "each row is one step of one sequence")
        return cls(np.concatenate([[0], np.cumsum(values)]).astype(np.int64))

    @classmethod
    def of_ids(cls, ids: Any, n_rows: int) -> Sequences:
        """The sequences of ``ids`` (n_rows,), one id per row (NumPy or Dask; integers, or whole numbers in
        floats): each run of rows with one id is a sequence.  An id that comes back after another's rows, a NaN
        or a wrong shape raise an :class:`InputError` that says what is wrong."""
        ids = ids if isinstance(ids, da.Array) else da.from_array(np.asarray(ids))
        if ids.shape != (n_rows,):
            raise InputError(f"sequence_ids must have shape ({n_rows},), one id per row, got {ids.shape}")
        if ids.dtype.kind not in "iuf":
            raise InputError(f"sequence_ids must be numbers, got dtype {ids.dtype}")
        holes = da.isnan(ids) if ids.dtype.kind == "f" else da.zeros(n_rows, dtype=bool, chunks=ids.chunks)
        changes, any_hole, first_hole = dask.compute(da.flatnonzero(ids[1:] != ids[:-1]), holes.any(),
                                                     holes.argmax())
        if any_hole:
            raise InputError(f"sequence_ids holds NaN at row {int(first_hole)}: give every row a sequence")
        starts = np.concatenate([[0], changes + 1, [n_rows]]).astype(np.int64)
        first_ids = np.asarray(ids[starts[:-1]].compute())
        order = np.argsort(first_ids, kind="stable")
        again = np.flatnonzero(first_ids[order][1:] == first_ids[order][:-1])
        if again.size:
            first, later = sorted(order[again[0] : again[0] + 2])
            raise InputError(f"sequence id {first_ids[first].item()!r} has rows {starts[first]} and {starts[later]} "
                             "with other sequences' rows between: each sequence's steps must be contiguous rows "
                             "(sort the rows by sequence, then by time)")
        return cls(starts)

    @property
    def lengths(self) -> np.ndarray:
        """Each sequence's number of steps (s,)."""
        return np.diff(self.starts)

    def pieces(self, start: int, stop: int) -> list[Piece]:
        """The pieces of sequences within rows ``[start, stop)``, in order."""
        first = int(np.searchsorted(self.starts, start, side="right")) - 1
        pieces = []
        for sequence in range(first, len(self.starts) - 1):
            begin, end = int(self.starts[sequence]), int(self.starts[sequence + 1])
            if begin >= stop:
                break
            pieces.append(Piece(max(begin, start), min(end, stop), sequence, begin >= start, end <= stop))
        return pieces

    def aligned_chunks(self, chunks: Sequence[int]) -> tuple[int, ...]:
        """Row chunks (sizes) like ``chunks`` with each boundary that falls inside a sequence no longer than
        the largest chunk moved to the nearer end of that sequence, so that it is not split."""
        limit = max(chunks)
        bounds = [0]
        n_rows = int(sum(chunks))
        for boundary in np.cumsum(chunks)[:-1]:
            sequence = int(np.searchsorted(self.starts, boundary, side="right")) - 1
            begin, end = int(self.starts[sequence]), int(self.starts[sequence + 1])
            if begin != boundary and end - begin <= limit:
                boundary = begin if boundary - begin <= end - boundary and begin > bounds[-1] else end
            if bounds[-1] < boundary < n_rows:
                bounds.append(int(boundary))
        bounds.append(n_rows)
        return tuple(int(size) for size in np.diff(bounds))


class Methods(NamedTuple):
    """The family methods (their names: see :class:`~daskem.families.hmm.HiddenMarkovFamily`) a kind of pass
    runs: ``whole(X, params, first_row, lengths)`` over a chunk's whole sequences,
    ``forward(X, params, first_row, incoming)`` the message a piece passes to the next, and
    ``backward(X, params, first_row, incoming, after)`` a piece's result and the message it passes back."""

    whole: str
    forward: str
    backward: str


#: The E-step's statistics; the posteriors of every step; the most probable path of states.
STATISTICS = Methods("sequences_statistics", "forward_message", "piece_statistics")
POSTERIORS = Methods("sequences_posteriors", "forward_message", "posteriors")
VITERBI = Methods("sequences_viterbi", "viterbi_forward", "viterbi_piece")


class Reader:
    """The rows of the data as tasks of a chain read them: a slice of the lazy array computed on the spot, on the
    synchronous scheduler, inside the task.  A chain's reads are then made as it reaches them; read by tasks of the
    graph, the chunks of a long sequence would be read ahead by idle workers and wait in memory for the chain."""

    __slots__ = ("rows",)

    def __init__(self, rows: da.Array) -> None:
        self.rows = rows

    def read(self, piece: Piece) -> np.ndarray:
        """The rows (n, d) float64 of ``piece``."""
        return np.asarray(self.rows[piece.start : piece.stop].compute(scheduler="sync"), dtype=np.float64)


def _whole(method: str, rows: np.ndarray, first_row: int, pieces: list[Piece], shared: Shared) -> tuple:
    """Each candidate's result of a chunk's whole sequences ``pieces``."""
    X = np.asarray(rows[pieces[0].start - first_row : pieces[-1].stop - first_row], dtype=np.float64)
    lengths = np.array([piece.stop - piece.start for piece in pieces])
    return tuple(getattr(family, method)(X, params, pieces[0].start, lengths) for family, params in shared.value)


def _forward(method: str, reader: Reader, piece: Piece, incoming: tuple | None, shared: Shared) -> tuple:
    """Each candidate's message at the end of a piece (from the piece before's)."""
    X = reader.read(piece)
    return tuple(getattr(family, method)(X, params, piece.start, None if incoming is None else incoming[i])
                 for i, (family, params) in enumerate(shared.value))


def _backward(method: str, reader: Reader, piece: Piece, incoming: tuple | None, after: tuple | None,
              shared: Shared) -> tuple[tuple, tuple]:
    """Each candidate's result of a piece, and its message to the piece before."""
    X = reader.read(piece)
    results = [getattr(family, method)(X, params, piece.start, None if incoming is None else incoming[i],
                                       None if after is None else after[1][i])
               for i, (family, params) in enumerate(shared.value)]
    return tuple(result for result, _ in results), tuple(before for _, before in results)


def _first(result: tuple) -> Any:
    return result[0]


def _chunk(parts: Sequence[tuple]) -> tuple[np.ndarray, float]:
    """The first candidate's (array, number) results of a chunk's tasks: the arrays end to end, the numbers
    added."""
    return np.concatenate([part[0][0] for part in parts]), sum(part[0][1] for part in parts)


def _total(chunks: Sequence[tuple[np.ndarray, float]]) -> float:
    return float(sum(number for _, number in chunks))


@dataclass(frozen=True)
class SequenceBlocks:
    """Row chunks of sequences laid end to end (see the module's notes): ``rows`` the data, ``graph`` the tasks
    that read them and ``keys`` each chunk's key there (for chunks' whole sequences), ``first_rows`` and
    ``sizes`` where each chunk begins and its rows."""

    rows: da.Array
    graph: dict
    keys: list[Any]
    first_rows: list[int]
    sizes: tuple[int, ...]
    sequences: Sequences

    @classmethod
    def of(cls, X: da.Array, sequences: Sequences) -> SequenceBlocks:
        """The rows of (N, d) ``X``, chunked along rows, with its chunks moved to sequence boundaries."""
        X = X.rechunk({0: sequences.aligned_chunks(X.chunks[0]), 1: -1})
        sizes = tuple(int(size) for size in X.chunks[0])
        first_rows = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        return cls(X, dict(X.__dask_graph__()), list(flatten(X.__dask_keys__())), first_rows, sizes, sequences)

    def _graph(self, methods: Methods, candidates: Sequence[HMMCandidate]) -> tuple[dict, list[list[Any]]]:
        """The tasks of a pass of ``methods``: the graph, and the keys of each chunk's results in row order
        (each a tuple over ``candidates``)."""
        token = uuid.uuid4().hex
        graph = dict(self.graph)
        shared, reader = f"daskem-shared-{token}", f"daskem-reader-{token}"
        graph[shared], graph[reader] = Shared(tuple(candidates)), Reader(self.rows)
        last_forward: dict[int, Any] = {}  # sequence → the forward key of its last piece so far
        split: dict[int, list[tuple[int, Piece, Any]]] = {}  # sequence → (chunk, piece, backward key) of its pieces
        chunk_keys: list[list[Any]] = []
        for c, (rows, first_row, size) in enumerate(zip(self.keys, self.first_rows, self.sizes)):
            keys: list[Any] = []
            whole: list[Piece] = []
            for piece in [*self.sequences.pieces(first_row, first_row + size), None]:
                if piece is not None and piece.opens and piece.closes:
                    whole.append(piece)
                    continue
                if whole:
                    keys.append(("daskem-whole", token, c, len(keys)))
                    graph[keys[-1]] = (_whole, methods.whole, rows, first_row, whole, shared)
                    whole = []
                if piece is None:
                    break
                backward = ("daskem-backward", token, c, len(keys))
                keys.append(("daskem-piece", token, c, len(keys)))
                graph[keys[-1]] = (_first, backward)
                split.setdefault(piece.sequence, []).append((c, piece, backward))
                if not piece.closes:
                    forward = ("daskem-forward", token, c, piece.sequence)
                    graph[forward] = (_forward, methods.forward, reader, piece, last_forward.get(piece.sequence),
                                      shared)
                    last_forward[piece.sequence] = forward
            chunk_keys.append(keys)
        for sequence, pieces in split.items():
            after = None
            for i in range(len(pieces) - 1, -1, -1):
                c, piece, backward = pieces[i]
                incoming = None if i == 0 else ("daskem-forward", token, pieces[i - 1][0], sequence)
                graph[backward] = (_backward, methods.backward, reader, piece, incoming, after, shared)
                after = backward
        return graph, chunk_keys

    def statistics(self, candidates: Sequence[HMMCandidate], split_every: int = DEFAULT_SPLIT_EVERY) -> Delayed:
        """A lazy pass: each candidate's :class:`~daskem.families.hmm.HMMStatistics` of every step, a tuple."""
        graph, chunk_keys = self._graph(STATISTICS, candidates)
        keys = [key for keys in chunk_keys for key in keys]
        token, level = uuid.uuid4().hex, 0
        while len(keys) > 1:  # a fixed tree, as the mixtures' passes (engine/passes.py)
            groups = [keys[i : i + split_every] for i in range(0, len(keys), split_every)]
            keys = [("daskem-combine", token, level, j) for j in range(len(groups))]
            graph.update({key: (sum_batches, group) for key, group in zip(keys, groups)})
            level += 1
        return Delayed(keys[0], graph)

    def per_step(self, methods: Methods, candidate: HMMCandidate, columns: int | None, dtype: type
                 ) -> tuple[da.Array, Delayed]:
        """One model's result for every step — (N, ``columns``), or (N,) when ``columns`` is None — as a lazy
        array chunked like the rows (after :meth:`Sequences.aligned_chunks`), and the sum of the number each
        piece gives with it (its log-likelihood for :data:`POSTERIORS`; for :data:`VITERBI`, the states and
        the log probability of the path)."""
        graph, chunk_keys = self._graph(methods, [candidate])
        token = uuid.uuid4().hex
        name, parts = f"daskem-steps-{token}", []
        for c, keys in enumerate(chunk_keys):
            parts.append(("daskem-chunk", token, c))
            graph[parts[-1]] = (_chunk, list(keys))
            graph[(name, c) if columns is None else (name, c, 0)] = (_first, parts[-1])
        total = ("daskem-total", token)
        graph[total] = (_total, parts)
        chunks = (self.sizes,) if columns is None else (self.sizes, (columns,))
        steps = da.Array(HighLevelGraph.from_collections(name, graph, dependencies=()), name, chunks=chunks,
                         dtype=dtype)
        return steps, Delayed(total, graph)


def statistics_pass(blocks: SequenceBlocks, split_every: int = DEFAULT_SPLIT_EVERY
                    ) -> Callable[[Sequence[HMMCandidate]], Delayed]:
    """Lazy passes over ``blocks`` (:meth:`SequenceBlocks.statistics`), as :func:`daskem.engine.em.run_em` takes."""
    return lambda candidates: blocks.statistics(candidates, split_every)


__all__ = ["POSTERIORS", "STATISTICS", "VITERBI", "HMMStatistics", "Methods", "Piece", "SequenceBlocks", "Sequences",
           "statistics_pass"]
