"""Missingness patterns (numba): rows grouped by pattern, and the factors of each pattern's precision blocks.

:func:`pattern_order` sorts a chunk's rows by pattern; in that order, a
block's rows of one pattern form runs (:func:`_block_runs`), and
:func:`factorise_block` factorises the q × q missing block ``P_mm`` of every
component's precision once per run, the block's runs of one q side by side.
:func:`add_run_covariances` adds each run's conditional covariance
``P_mm⁻¹`` to the second moments.  The pass that uses them is
:mod:`daskem.kernels.fused_missing`.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np

from daskem.kernels.fused import _FASTMATH

#: A missingness pattern of up to this many features is its own bucket in :func:`pattern_order`.
PATTERN_BITS = 16


@numba.njit(nogil=True, error_model="numpy", cache=True)
def pattern_order(X: np.ndarray, order: np.ndarray, n_missing: np.ndarray, patterns: np.ndarray) -> None:
    """Rows of X (n, d), NaN where missing, in an order that puts rows of one missingness pattern together.

    Writes ``order`` (n,) int64, the rows sorted by bucket, and (n,) int64
    ``n_missing``, each row's count of NaN, and ``patterns``, its bucket, both
    in that order (read in order, they cost no cache misses).  A row's bucket
    is the XOR of one :data:`PATTERN_BITS`-bit code per missing feature, bit j
    for the first 16 features: up to 16 features a bucket is the pattern
    itself; beyond, two patterns may share one, which costs
    :func:`~daskem.kernels.fused_missing.missing_statistics` a factorisation more, never a wrong answer (it
    compares whole patterns).  A counting sort: linear in n, where sorting
    packed patterns cost 11 ms per 50,000 × 16 rows, more than the E-step of a
    complete chunk.
    """
    n_rows, n_features = X.shape
    bucket, count = np.empty(n_rows, np.int64), np.empty(n_rows, np.int64)
    starts = np.zeros((1 << PATTERN_BITS) + 1, np.int64)
    for i in range(n_rows):
        key, missing = 0, 0
        for j in range(n_features):
            if np.isnan(X[i, j]):
                key ^= (1 << j) if j < PATTERN_BITS else ((j * 2654435761) >> 13) & ((1 << PATTERN_BITS) - 1)
                missing += 1
        bucket[i], count[i] = key, missing
        starts[key + 1] += 1
    for key in range(1 << PATTERN_BITS):
        starts[key + 1] += starts[key]
    for i in range(n_rows):
        place = starts[bucket[i]]
        order[place], n_missing[place], patterns[place] = i, count[i], bucket[i]
        starts[bucket[i]] += 1


#: Columns of the table of a block's runs (see :func:`_block_runs`).
RUN_START, RUN_STOP, RUN_Q, RUN_GROUP, RUN_WHERE = 0, 1, 2, 3, 4


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _block_runs(X, order, start, b, n_missing, patterns, runs, counts):  # noqa: ANN001, ANN202 (numba types)
    """The runs of a block's rows ``order[start : start + b]`` that miss one pattern, in ``runs``: first
    row, last row + 1, q, its place among the block's runs with that q (``counts[q]`` of them), then
    the features missing.  Returns how many runs; rows with none or all values missing are in none.
    Up to :data:`PATTERN_BITS` features the rows' buckets (see :func:`pattern_order`) are their
    patterns; beyond, rows of one bucket are compared value by value."""
    n_features = X.shape[1]
    exact = n_features <= PATTERN_BITS
    found = 0
    counts[:] = 0
    for r in range(b):
        q, pattern = n_missing[start + r], patterns[start + r]
        if q == 0 or q == n_features:
            continue
        if (found and runs[found - 1, RUN_STOP] == r and pattern == patterns[start + runs[found - 1, RUN_START]]
                and (exact or _same_pattern(X[order[start + r]], q, runs[found - 1]))):
            runs[found - 1, RUN_STOP] = r + 1
            continue
        runs[found, RUN_START], runs[found, RUN_STOP], runs[found, RUN_Q] = r, r + 1, q
        runs[found, RUN_GROUP] = counts[q]
        counts[q] += 1
        a = 0
        for j in range(n_features):
            if (pattern >> j) & 1 if exact else np.isnan(X[order[start + r], j]):
                runs[found, RUN_WHERE + a] = j
                a += 1
        found += 1
    return found


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _same_pattern(row, q, run):  # noqa: ANN001, ANN202 (numba types)
    """Whether ``row`` (d,), missing q values, misses the features of ``run`` (a row of the runs' table)."""
    if q != run[RUN_Q]:
        return False
    for a in range(q):
        if not np.isnan(row[run[RUN_WHERE + a]]):
            return False
    return True


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _grown(buffer, size):  # noqa: ANN001, ANN202 (numba types)
    """``buffer``, or a new one twice as large where it holds fewer than ``size`` values."""
    return buffer if buffer.shape[0] >= size else np.empty(max(size, 2 * buffer.shape[0]))


#: A block's runs (see :func:`_block_runs`) and their factors (see :func:`_factorise_runs`), buffers
#: reused from block to block and grown as needed: the runs' table, how many runs there are of each
#: q, where each q's factors start in the (q, q, ·) and (q, ·) arrays, L and L⁻¹, ``P_mm⁻¹``, the
#: reciprocals of the factors' diagonals, log det P_mm, scratch, the runs in group order.
Factors = namedtuple(
    "Factors", "runs counts sq_offset vector_offset cholesky inverses reciprocals log_dets work members"
)


@numba.njit(nogil=True, error_model="numpy", cache=True)
def factors_workspace(block_rows, n_features, n_components):  # noqa: ANN001, ANN202 (numba types)
    """:class:`Factors` buffers for blocks of up to ``block_rows`` rows, allocated once per chunk."""
    return Factors(
        np.empty((block_rows, RUN_WHERE + n_features), np.int64), np.zeros(n_features + 1, np.int64),
        np.zeros(n_features + 1, np.int64), np.zeros(n_features + 1, np.int64),
        np.empty(block_rows * n_components), np.empty(block_rows * n_components),
        np.empty(block_rows * n_components), np.empty(block_rows * n_components),
        np.empty(block_rows * n_components), np.empty(block_rows, np.int64),
    )


@numba.njit(nogil=True, error_model="numpy", cache=True)
def factorise_block(X, order, start, b, n_missing, patterns, precisions_t, factors):  # noqa: ANN001, ANN202
    """Find the runs of the block's rows ``order[start : start + b]`` (X, n_missing and patterns as in
    :func:`pattern_order`) and factorise their ``P_mm`` (``precisions_t`` (d, d, K), ``P_k[j, l]`` at
    ``[j, l, k]``).  Returns how many runs, and ``factors`` (:class:`Factors`) with buffers grown."""
    n_features, n_components = X.shape[1], precisions_t.shape[2]
    found = _block_runs(X, order, start, b, n_missing, patterns, factors.runs, factors.counts)
    counts, sq_offset, vector_offset = factors.counts, factors.sq_offset, factors.vector_offset
    for q in range(1, n_features):  # every run's factors, the runs of one q side by side
        sq_offset[q + 1] = sq_offset[q] + q * q * counts[q] * n_components
        vector_offset[q + 1] = vector_offset[q] + q * counts[q] * n_components
    grown = Factors(
        factors.runs, counts, sq_offset, vector_offset, _grown(factors.cholesky, sq_offset[n_features]),
        _grown(factors.inverses, sq_offset[n_features]), _grown(factors.reciprocals, vector_offset[n_features]),
        _grown(factors.log_dets, vector_offset[n_features]), _grown(factors.work, vector_offset[n_features]),
        factors.members,
    )
    _factorise_runs(precisions_t, grown.runs, found, counts, sq_offset, vector_offset, grown.cholesky, grown.inverses,
                    grown.reciprocals, grown.log_dets, grown.work, grown.members)
    return found, grown


#: Diagonal entries multiplied together before their product's log is taken (:func:`_factorise_runs`):
#: a factor's diagonal entries lie within 1e±38 unless a variance is beyond 1e±76.
_LOG_EVERY = 8


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _factorise_runs(precisions_t, runs, found, counts, sq_offset, vector_offset, factors, inverses, reciprocals,
                    log_dets, work, members):  # noqa: ANN001, ANN202 (numba types)
    """Factorise ``P_mm`` of every run (see :func:`_block_runs`) and component, the runs of one q
    side by side, so that every loop runs over all of them (loops over K alone cost ~4 ns each,
    whatever K: a pattern's factorisation took 0.4–2 µs).

    For the runs with q missing, in entry ``[a, c, g·K + k]`` of (q, q, counts[q]·K) arrays at
    ``sq_offset[q]`` (run g, component k): ``factors`` holds the Cholesky factor L of P_mm (lower
    triangle) and L⁻¹ (upper, transposed), ``inverses`` P_mm⁻¹; (q, counts[q]·K) ``reciprocals``
    the reciprocals of L's diagonal and (counts[q]·K,) ``log_dets`` log det P_mm, at
    ``vector_offset[q]``.  ``work`` is scratch.
    """
    n_components = precisions_t.shape[2]
    first = np.zeros(precisions_t.shape[0] + 1, np.int64)  # the runs of each q in group order, by q
    for q in range(1, precisions_t.shape[0]):
        first[q + 1] = first[q] + counts[q]
    for run in range(found):
        members[first[runs[run, RUN_Q]] + runs[run, RUN_GROUP]] = run
    for q in range(1, precisions_t.shape[0]):
        n = counts[q] * n_components
        if n == 0:
            continue
        chol = factors[sq_offset[q] : sq_offset[q] + q * q * n].reshape(q, q, n)
        for a in range(q):  # P_mm of every run, entry by entry, so that each is written in one sweep
            for c in range(a + 1):
                out = chol[a, c]
                for g in range(counts[q]):
                    run = members[first[q] + g]
                    row, column = runs[run, RUN_WHERE + a], runs[run, RUN_WHERE + c]
                    for k in range(n_components):
                        out[g * n_components + k] = precisions_t[row, column, k]
        inverse = inverses[sq_offset[q] : sq_offset[q] + q * q * n].reshape(q, q, n)
        reciprocal = reciprocals[vector_offset[q] : vector_offset[q] + q * n].reshape(q, n)
        log_det, product = log_dets[vector_offset[q] : vector_offset[q] + n], work[:n]
        log_det[:] = 0.0
        product[:] = 1.0
        for a in range(q):
            for c in range(a + 1):
                lac = chol[a, c]
                for t in range(c):
                    lat, lct = chol[a, t], chol[c, t]
                    for e in range(n):
                        lac[e] -= lat[e] * lct[e]
                if a == c:
                    ra = reciprocal[a]
                    for e in range(n):
                        root = math.sqrt(lac[e])
                        lac[e], ra[e] = root, 1.0 / root
                        product[e] *= root
                    if a % _LOG_EVERY == _LOG_EVERY - 1 or a == q - 1:
                        for e in range(n):
                            log_det[e] += 2.0 * math.log(product[e])
                            product[e] = 1.0
                else:
                    rc = reciprocal[c]
                    for e in range(n):
                        lac[e] *= rc[e]
        for c in range(q):  # L⁻¹ (lower), column by column, into the strict upper triangle, transposed
            for a in range(c + 1, q):
                out, lac, rc, ra = chol[c, a], chol[a, c], reciprocal[c], reciprocal[a]
                for e in range(n):
                    out[e] = lac[e] * rc[e]
                for t in range(c + 1, a):
                    lat, mtc = chol[a, t], chol[c, t]
                    for e in range(n):
                        out[e] += lat[e] * mtc[e]
                for e in range(n):
                    out[e] *= -ra[e]
        for a in range(q):  # P_mm⁻¹ = L⁻ᵀ L⁻¹: entry (a, c) sums L⁻¹_ta L⁻¹_tc over t ≥ max(a, c)
            for c in range(a + 1):
                out, ra, mac = inverse[a, c], reciprocal[a], reciprocal[c] if a == c else chol[c, a]
                for e in range(n):
                    out[e] = ra[e] * mac[e]
                for t in range(a + 1, q):
                    mta, mtc = chol[a, t], chol[c, t]
                    for e in range(n):
                        out[e] += mta[e] * mtc[e]
                inverse[c, a] = out


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def add_run_covariances(runs, found, counts, sq_offset, inverses, resp, totals, conditional):  # noqa: ANN001, ANN202
    """Add ``(Σ_{rows of the run} w r_k) P_mm⁻¹`` of each of a block's runs (see :func:`_block_runs`,
    :func:`_factorise_runs`; ``resp`` (K, b)) to the lower triangle of the missing block of
    ``conditional`` (d, d, K), every component at once; ``totals`` (K,) is scratch."""
    n_components = resp.shape[0]
    # Entries by component: indexed by k alone, the loops over k load whole vectors (an index
    # that might be negative, wrapped as NumPy's are, made them gathers).
    by_component = inverses[: inverses.shape[0] // n_components * n_components].reshape(-1, n_components)
    for run in range(found):
        q, group = runs[run, RUN_Q], runs[run, RUN_GROUP]
        totals[:] = 0.0
        for r in range(runs[run, RUN_START], runs[run, RUN_STOP]):
            for k in range(n_components):
                totals[k] += resp[k, r]
        for a in range(q):
            row = runs[run, RUN_WHERE + a]
            for c in range(a + 1):
                entry = sq_offset[q] // n_components + (a * q + c) * counts[q] + group
                column = runs[run, RUN_WHERE + c]
                for k in range(n_components):
                    conditional[row, column, k] += totals[k] * by_component[entry, k]
