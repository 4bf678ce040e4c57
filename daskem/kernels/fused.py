"""Compiled loops (numba) for the work between a block's matrix products.

Each kernel's chunk is one call (:func:`expanded_statistics`,
:func:`whitened_statistics`) that runs the block loop, calls BLAS itself and
releases the GIL once, so that Dask's threads run side by side: a Python loop
over blocks took and released the GIL a dozen times per block, and two
threads ran no faster than one.  Blocks are held transposed — terms or
whitened differences (·, b), responsibilities (K, b) — so that every loop
runs over b contiguous values and vectorises whatever d and K are (row-major
loops over only d values ran 2× slower at d = 8).

Terms, whitened differences and per-block products are in the rows' dtype
(float32 or float64), and so are the expanded kernel's responsibilities
(their log-sum-exp in float32 took half the time of float64's, and the
float32 products that follow had them in float32 anyway); every running sum
is float64.

``fastmath`` allows reassociating sums (so that they vectorise) and fused
multiply-adds, nothing else, and ``error_model="numpy"`` makes division by
zero give infinity or NaN as in NumPy: NaN and infinity still propagate, so
rows that are not finite still give a NaN log-likelihood for the callers to
report.
The compiled code is fixed for a machine, so results stay bitwise
reproducible there whatever the scheduler.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

_FASTMATH = {"reassoc", "contract"}
#: Below this, :func:`_exp` gives 0: ``exp`` would be subnormal (< 2.2e-308), and a
#: responsibility that small is below :data:`RESPONSIBILITY_FLOOR` anyway.
_EXP_FLOOR = -708.0
#: ``ln 2`` split so that ``n · _LN2_HIGH`` is exact for the n that occur (|n| < 1100).
_LN2_HIGH, _LN2_LOW = 6.93147180369123816490e-01, 1.90821492927058770002e-10
#: Taylor coefficients ``1/j!`` of ``exp`` from j = 13 down to 0, for |r| ≤ ½ ln 2: the
#: first term left out, r¹⁴/14!, is below 5e-18 of the result.
_EXP_COEFFICIENTS = tuple(1.0 / math.factorial(j) for j in range(13, -1, -1))
#: The same for float32 (:func:`_exp32`): 0 at and below −87 (exp(−87.3) is float32's least
#: normal number); ``ln 2`` split as in Cephes' ``expf``; the first term left out, r⁸/8!, is
#: below 6e-9 of the result, a tenth of float32's rounding.
_EXP32_FLOOR = np.float32(-87.0)
_LN2_HIGH32, _LN2_LOW32 = np.float32(0.693359375), np.float32(-2.12194440e-4)
_INV_LN2_32 = np.float32(1.0 / math.log(2.0))
_EXP32_COEFFICIENTS = tuple(np.float32(1.0 / math.factorial(j)) for j in range(7, -1, -1))

#: Responsibilities below these count as 0 in :func:`whitened_statistics`, per dtype of the whitened
#: differences.  Rows far from a component give it responsibilities of 1e-300 and less;
#: their products with y are subnormal, which x86 processors handle a hundred times
#: slower: on generated data they made a chunk's moments 3× slower.  What is dropped is
#: below 1e-290 (float64) or 1e-30 (float32) of one row's weight, far below the rounding
#: of any sum.
RESPONSIBILITY_FLOOR = {np.float64: 1e-290, np.float32: 1e-30}


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def whitened_log_prob(
    X: np.ndarray, centre: np.ndarray, whitening: np.ndarray, offsets: np.ndarray, block_rows: int, out: np.ndarray
) -> None:
    """``log α_k + log p_k(x_i)`` of every component and row of X.

    Parameters
    ----------
    X : (n, d) rows, float32 or float64.
    centre : (d,) the point ``c`` the whitening is taken about, X's dtype.
    whitening : (K·d, d+1) ``[U_1 … U_K; −δ_1 U_1 … −δ_K U_K]ᵀ``, X's dtype
        (see :class:`daskem.kernels.block_kernels.WhitenedKernel`).
    offsets : (K,) float64, ``log α_k + log|U_k| − d/2·log 2π``.
    block_rows : rows per block.
    out : (K, n) float64, written.
    """
    n_features = X.shape[1]
    augmented, whitened = _buffers(X, whitening, block_rows)
    for start in range(0, X.shape[0], block_rows):
        stop = min(start + block_rows, X.shape[0])
        yt = _whiten(X, start, stop, centre, whitening, augmented, whitened)
        _log_densities(yt, offsets, n_features, out[:, start:stop])


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def whitened_statistics(
    X: np.ndarray,
    centre: np.ndarray,
    whitening: np.ndarray,
    offsets: np.ndarray,
    weights: np.ndarray,
    floor: float,
    block_rows: int,
    log_prob_norm: np.ndarray,
    nk: np.ndarray,
    s1: np.ndarray,
    t: np.ndarray,
) -> None:
    """E-step of a chunk and its moments in whitened coordinates, block by block.

    Parameters
    ----------
    X, centre, whitening, offsets, block_rows : as in :func:`whitened_log_prob`.
    weights : (n,) float64 sample weights, or an empty array for ones.
    floor : responsibilities below this count as 0 (see :data:`RESPONSIBILITY_FLOOR`).
    log_prob_norm : (n,) float64, written: ``log p(x_i)`` in nats (NaN for rows
        that are not finite).
    nk : (K,) float64, incremented by ``Σ_i w_i r_ik``.
    s1 : (K·d,) float64, incremented by ``Σ_i w_i r_ik y_ik``.
    t : (K, d, d) float64, incremented by ``Σ_i w_i r_ik y_ik y_ikᵀ``.
    """
    n_components, n_features = offsets.shape[0], X.shape[1]
    augmented, whitened = _buffers(X, whitening, block_rows)
    weighted_buffer = np.empty_like(whitened)
    resp_buffer = np.empty(n_components * block_rows)
    moments = np.empty((n_features, n_features), X.dtype)
    for start in range(0, X.shape[0], block_rows):
        stop = min(start + block_rows, X.shape[0])
        b = stop - start
        yt = _whiten(X, start, stop, centre, whitening, augmented, whitened)
        resp = resp_buffer[: n_components * b].reshape(n_components, b)
        _log_densities(yt, offsets, n_features, resp)
        _normalise(resp, weights, start, floor, log_prob_norm[start:stop])
        weighted = weighted_buffer[: yt.size].reshape(yt.shape)
        _weigh(yt, resp, n_features, weighted, nk, s1)
        y3 = yt.reshape(n_components, n_features, b)
        w3 = weighted.reshape(n_components, n_features, b)
        for k in range(n_components):
            np.dot(y3[k], w3[k].T, moments)
            t[k] += moments


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def expanded_log_prob(
    X: np.ndarray, centre: np.ndarray, pairs: np.ndarray, coefficients: np.ndarray, block_rows: int, out: np.ndarray
) -> None:
    """``log α_k + log p_k(x_i)`` of every component and row of X, from its expanded terms.

    Parameters
    ----------
    X : (n, d) rows, float32 or float64.
    centre : (d,) the point ``c`` the terms are taken about, X's dtype.
    pairs : (2, P) int64, the features ``(j, l)`` of each product term ``x̃_j x̃_l``.
    coefficients : (K, P + d + 1) each component's weights of the terms
        ``[x̃_j x̃_l …, x̃_1 … x̃_d, 1]``, X's dtype (see
        :class:`daskem.kernels.block_kernels.ExpandedKernel`).
    block_rows : rows per block.
    out : (K, n) float64, written.
    """
    n_components = coefficients.shape[0]
    terms_buffer = np.empty(coefficients.shape[1] * block_rows, X.dtype)
    log_prob_buffer = np.empty(n_components * block_rows, X.dtype)
    low, high = np.empty(X.shape[1], X.dtype), np.empty(X.shape[1], X.dtype)  # not needed here
    for start in range(0, X.shape[0], block_rows):
        stop = min(start + block_rows, X.shape[0])
        terms = _expand(X, start, stop, centre, pairs, terms_buffer, low, high)
        log_prob = log_prob_buffer[: n_components * (stop - start)].reshape(n_components, stop - start)
        np.dot(coefficients, terms, log_prob)
        out[:, start:stop] = log_prob


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def expanded_statistics(
    X: np.ndarray,
    centre: np.ndarray,
    pairs: np.ndarray,
    coefficients: np.ndarray,
    weights: np.ndarray,
    floor: float,
    block_rows: int,
    log_prob_norm: np.ndarray,
    totals: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> None:
    """E-step of a chunk and the weighted sums of its expanded terms, block by block.

    Per block, two matrix products: the terms T (P + d + 1, b) give the log
    densities ``A T`` (K, b); after the log-sum-exp, ``R Tᵀ`` (K, P + d + 1)
    gives every component's ``Σ r x̃_j x̃_l``, ``Σ r x̃_j`` and ``Σ r``.

    Parameters
    ----------
    X, centre, pairs, coefficients, block_rows : as in :func:`expanded_log_prob`.
    weights, floor, log_prob_norm : as in :func:`whitened_statistics`.
    totals : (K, P + d + 1) float64, incremented by ``Σ_i w_i r_ik t_i``.
    low, high : (d,) in X's dtype, lowered and raised to each column's least and
        greatest value (as :func:`column_ranges`, in the pass that reads the rows anyway).
    """
    n_components, n_terms = coefficients.shape
    terms_buffer = np.empty(n_terms * block_rows, X.dtype)
    product_buffer = np.empty(n_components * block_rows, X.dtype)
    resp_buffer = np.empty(n_components * block_rows, X.dtype)
    sums, sums_t = np.empty((n_components, n_terms), X.dtype), np.empty((n_terms, n_components), X.dtype)
    for start in range(0, X.shape[0], block_rows):
        stop = min(start + block_rows, X.shape[0])
        b = stop - start
        terms = _expand(X, start, stop, centre, pairs, terms_buffer, low, high)
        log_prob = product_buffer[: n_components * b].reshape(n_components, b)
        np.dot(coefficients, terms, log_prob)
        resp = resp_buffer[: n_components * b].reshape(n_components, b)
        resp[:] = log_prob
        _normalise(resp, weights, start, floor, log_prob_norm[start:stop])
        if n_components < n_terms:
            # Few components: BLAS runs T Rᵀ 2.3× faster from a row-major Rᵀ (b, K) (K=8, d=16)
            resp_t = product_buffer[: n_components * b].reshape(b, n_components)
            for k in range(n_components):
                resp_t[:, k] = resp[k]
            np.dot(terms, resp_t, sums_t)
            totals += sums_t.T
        else:
            # Many: R Tᵀ as it is, 1.3× faster than transposing R first (K=256, d=8)
            np.dot(_in_dtype_of(resp, log_prob), terms.T, sums)
            totals += sums


def _in_dtype_of(values: np.ndarray, buffer: np.ndarray) -> np.ndarray:
    """``values``, or a copy of them in ``buffer`` (same shape) where its dtype differs."""
    if values.dtype == buffer.dtype:
        return values
    buffer[:] = values
    return buffer


@overload(_in_dtype_of, jit_options={"nogil": True, "cache": True})
def _in_dtype_of_compiled(values, buffer):  # noqa: ANN001, ANN202 (numba types)
    if values.dtype == buffer.dtype:
        return lambda values, buffer: values

    def copy(values, buffer):  # noqa: ANN001, ANN202
        buffer[:] = values
        return buffer

    return copy


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _expand(
    X: np.ndarray, start: int, stop: int, centre: np.ndarray, pairs: np.ndarray, buffer: np.ndarray,
    low: np.ndarray, high: np.ndarray,
) -> np.ndarray:
    """The terms ``[x̃_j x̃_l …, x̃, 1]`` (P + d + 1, b) of rows start … stop − 1, ``x̃ = x − c``, in ``buffer``;
    ``low`` and ``high`` (d,) take in the rows' least and greatest values."""
    n_pairs, n_features, b = pairs.shape[1], X.shape[1], stop - start
    terms = buffer[: (n_pairs + n_features + 1) * b].reshape(n_pairs + n_features + 1, b)
    for i in range(start, stop):
        for j in range(n_features):
            value = X[i, j]
            low[j] = min(low[j], value)
            high[j] = max(high[j], value)
            terms[n_pairs + j, i - start] = value - centre[j]
    for p in range(n_pairs):
        first, second = terms[n_pairs + pairs[0, p]], terms[n_pairs + pairs[1, p]]
        for i in range(b):
            terms[p, i] = first[i] * second[i]
    terms[n_pairs + n_features] = 1.0
    return terms


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _buffers(X: np.ndarray, whitening: np.ndarray, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat buffers for a block's ``[x − c, 1]`` and Yᵀ, allocated once per chunk.

    Distributed's workers set ``MALLOC_TRIM_THRESHOLD_``, which keeps every
    allocation above 128 KiB an ``mmap`` of fresh pages: allocated per block,
    these made a chunk 2.5× slower in a worker than in the driver.
    """
    return (np.empty(block_rows * (X.shape[1] + 1), X.dtype), np.empty(whitening.shape[0] * block_rows, X.dtype))


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _whiten(
    X: np.ndarray, start: int, stop: int, centre: np.ndarray, whitening: np.ndarray,
    augmented_buffer: np.ndarray, whitened_buffer: np.ndarray,
) -> np.ndarray:
    """Yᵀ (K·d, b) of rows start … stop − 1, in ``whitened_buffer``: one matrix product with ``[x − c, 1]ᵀ``."""
    n_features, b = X.shape[1], stop - start
    augmented = augmented_buffer[: b * (n_features + 1)].reshape(b, n_features + 1)
    for i in range(start, stop):
        for j in range(n_features):
            augmented[i - start, j] = X[i, j] - centre[j]
        augmented[i - start, n_features] = 1.0
    yt = whitened_buffer[: whitening.shape[0] * b].reshape(whitening.shape[0], b)
    np.dot(whitening, augmented.T, yt)
    return yt


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _log_densities(yt: np.ndarray, offsets: np.ndarray, n_features: int, out: np.ndarray) -> None:
    """``out[k, i] = offsets_k − ½‖y_ik‖²`` (K, b) float64 from Yᵀ (K·d, b)."""
    n_rows = yt.shape[1]
    for k in range(offsets.shape[0]):
        out[k, :] = 0.0
        for j in range(k * n_features, (k + 1) * n_features):
            for i in range(n_rows):
                out[k, i] += np.float64(yt[j, i] * yt[j, i])
        for i in range(n_rows):
            out[k, i] = offsets[k] - 0.5 * out[k, i]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _normalise(
    log_prob: np.ndarray, weights: np.ndarray, first: int, floor: float, log_prob_norm: np.ndarray
) -> None:
    """Log-sum-exp over components, in place: ``log_prob`` (K, b) becomes the
    responsibilities times the rows' weights (``weights[first + i]``, or 1 when
    ``weights`` is empty), 0 below ``floor``; ``log_prob_norm`` (b,) gets
    ``log p(x_i)``.  In ``log_prob``'s dtype: float32 blocks of the float32
    path (whose log densities come from a float32 product, so no digit is lost
    that they hold) take half the time of float64.

    A NaN in a row makes its ``log p`` NaN (the peak skips it, its exp does not).
    """
    n_components, n_rows = log_prob.shape
    peak = np.full(n_rows, -np.inf, log_prob.dtype)
    for k in range(n_components):
        for i in range(n_rows):
            if log_prob[k, i] > peak[i]:
                peak[i] = log_prob[k, i]
    total = np.zeros(n_rows, log_prob.dtype)
    for k in range(n_components):
        for i in range(n_rows):
            log_prob[k, i] = _exp_of(log_prob[k, i] - peak[i])
            total[i] += log_prob[k, i]
    for i in range(n_rows):
        log_prob_norm[i] = np.log(total[i]) + peak[i]
        total[i] = (weights[first + i] if weights.shape[0] else 1.0) / total[i]
    for k in range(n_components):
        for i in range(n_rows):
            r = log_prob[k, i] * total[i]
            log_prob[k, i] = r if r >= floor else 0.0


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _exp(x: float) -> float:
    """``exp(x)`` within 1 ulp for x ≤ 0, 0 at and below :data:`_EXP_FLOOR`; NaN stays NaN.

    No calls and no branches, so that loops over it vectorise: the C library's
    ``exp`` took 4 ns a value and was a fifth of a chunk's time, this 0.7 ns.
    ``exp(x) = 2ⁿ exp(r)`` with ``n = round(x / ln 2)``, ``|r| ≤ ½ ln 2``, ``exp(r)``
    by its Taylor polynomial (Horner) and ``2ⁿ`` built from its exponent bits.
    """
    clamped = max(x, _EXP_FLOOR)
    n = np.floor(clamped * (1.0 / _LN2_HIGH) + 0.5)  # the reciprocal's rounding only moves r within range
    r = (clamped - n * _LN2_HIGH) - n * _LN2_LOW
    p = 0.0
    for c in _EXP_COEFFICIENTS:
        p = p * r + c
    power = np.int64((np.int64(n) + 1023) << 52).view(np.float64)
    return 0.0 if x <= _EXP_FLOOR else p * power


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _exp32(x: np.float32) -> np.float32:
    """:func:`_exp` in float32, for x ≤ 0: within 2 ulp, 0 at and below :data:`_EXP32_FLOOR`."""
    clamped = max(x, _EXP32_FLOOR)
    n = np.floor(clamped * _INV_LN2_32 + np.float32(0.5))
    r = (clamped - n * _LN2_HIGH32) - n * _LN2_LOW32
    p = np.float32(0.0)
    for c in _EXP32_COEFFICIENTS:
        p = p * r + c
    power = np.int32((np.int32(n) + 127) << 23).view(np.float32)
    return np.float32(0.0) if x <= _EXP32_FLOOR else p * power


def _exp_of(x: float) -> float:
    """``exp`` in the precision of ``x``: :func:`_exp32` for float32, :func:`_exp` otherwise (compiled only)."""
    raise NotImplementedError("compiled code only")


@overload(_exp_of, jit_options={"nogil": True, "cache": True})
def _exp_of_compiled(x):  # noqa: ANN001, ANN202 (numba types)
    if isinstance(x, numba.types.Float) and x.bitwidth == 32:
        return lambda x: _exp32(x)
    return lambda x: _exp(x)


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _weigh(
    yt: np.ndarray, resp: np.ndarray, n_features: int, weighted: np.ndarray, nk: np.ndarray, s1: np.ndarray
) -> None:
    """``weighted`` (K·d, b) ← ``r_ik y_ik`` in yt's dtype; adds ``Σ_i r_ik`` to nk and ``Σ_i r_ik y_ik`` to s1."""
    n_rows = yt.shape[1]
    for k in range(resp.shape[0]):
        total = 0.0
        for i in range(n_rows):
            total += resp[k, i]
        nk[k] += total
        for j in range(k * n_features, (k + 1) * n_features):
            row_sum = 0.0
            for i in range(n_rows):
                product = yt.dtype.type(resp[k, i]) * yt[j, i]
                weighted[j, i] = product
                row_sum += np.float64(product)
            s1[j] += row_sum


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def seeding_costs(
    rows_t: np.ndarray, candidates: np.ndarray, closest: np.ndarray, weights: np.ndarray, costs: np.ndarray
) -> None:
    """k-means++'s cost ``Σ_i w_i min(D²_i, ‖x_i − c_t‖²)`` of adding each candidate centre.

    Parameters
    ----------
    rows_t : (d, n) the rows, transposed (so that every loop runs over n values).
    candidates : (T, d) candidate centres, in the rows' coordinates.
    closest : (n,) each row's squared distance to its nearest centre so far.
    weights : (n,) row weights.
    costs : (T,) written.
    """
    distances = np.empty(rows_t.shape[1], rows_t.dtype)
    for t in range(candidates.shape[0]):
        _squared_distances(rows_t, candidates[t], distances)
        cost = 0.0
        for i in range(distances.shape[0]):
            cost += weights[i] * min(closest[i], distances[i])
        costs[t] = cost


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def lower_closest(rows_t: np.ndarray, center: np.ndarray, closest: np.ndarray) -> None:
    """``closest`` (n,) ← ``min(closest, ‖x_i − center‖²)``; rows_t as in :func:`seeding_costs`."""
    distances = np.empty(rows_t.shape[1], rows_t.dtype)
    _squared_distances(rows_t, center, distances)
    for i in range(closest.shape[0]):
        closest[i] = min(closest[i], distances[i])


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _squared_distances(rows_t: np.ndarray, center: np.ndarray, out: np.ndarray) -> None:
    """``out`` (n,) ← ``‖x_i − center‖²`` of the rows ``rows_t`` (d, n), one feature at a time."""
    out[:] = 0.0
    for j in range(rows_t.shape[0]):
        for i in range(rows_t.shape[1]):
            difference = rows_t[j, i] - center[j]
            out[i] += difference * difference


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def column_ranges(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least and greatest value of each column of X (n, d), n ≥ 1, as float64 (d,) arrays.

    One pass over the rows: NumPy's ``X.min(axis=0)`` runs inner loops of d
    values and took 6.5 ms per 100,000 × 16 rows, this about 1 ms.  Rows
    that are not finite are reported from their log-likelihood before the
    ranges are used, so how NaN falls here does not matter.
    """
    low, high = X[0].copy(), X[0].copy()
    for i in range(1, X.shape[0]):
        for j in range(X.shape[1]):
            low[j] = min(low[j], X[i, j])
            high[j] = max(high[j], X[i, j])
    return low.astype(np.float64), high.astype(np.float64)


@numba.njit(nogil=True, error_model="numpy", cache=True)
def worst_rows(log_prob_norm: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` rows of positive weight with least log-likelihood, worst first.

    Ties go to the earlier row.  ``weights`` (n,) float64, or an empty array
    for ones.  One comparison per row, where sorting a partition cost 25 ns per
    row; NaN rows are reported before this is used.
    """
    values = np.full(count, np.inf)
    rows = np.full(count, -1)
    found = 0
    for i in range(log_prob_norm.shape[0]):
        if weights.shape[0] and not weights[i] > 0.0:
            continue
        value = log_prob_norm[i]
        if found == count and not value < values[count - 1]:
            continue
        place = min(found, count - 1)
        while place > 0 and value < values[place - 1]:
            values[place], rows[place] = values[place - 1], rows[place - 1]
            place -= 1
        values[place], rows[place] = value, i
        found = min(found + 1, count)
    return rows[:found]


@numba.njit(nogil=True, error_model="numpy", cache=True)
def first_not_binary(X: np.ndarray) -> int:
    """Flat index of the first value of X (n, d) that is neither 0 nor 1 (NaN included), −1 if none.

    One pass and no temporaries: NumPy's two comparisons, their ``&`` and ``any``
    took 1.1–1.3 ms per 100,000 × 16 values.
    """
    n_features = X.shape[1]
    for i in range(X.shape[0]):
        bad = False
        for j in range(n_features):  # no branch per value: 0s and 1s at random mispredict one
            bad |= (X[i, j] != 0.0) & (X[i, j] != 1.0)
        if bad:
            for j in range(n_features):
                if X[i, j] != 0.0 and X[i, j] != 1.0:
                    return i * n_features + j
    return -1


#: Largest count a Poisson mixture takes: 2**53, beyond which float64 holds no longer every whole number.
MAX_COUNT = 2.0**53


@numba.njit(nogil=True, error_model="numpy", cache=True)
def first_not_count(X: np.ndarray) -> int:
    """Flat index of the first value of X (n, d) that is not a whole number in [0, ``MAX_COUNT``], −1 if none."""
    n_features = X.shape[1]
    for i in range(X.shape[0]):
        good = True
        for j in range(n_features):  # no branch per value, as in first_not_binary
            good &= (X[i, j] >= 0.0) & (X[i, j] <= MAX_COUNT) & (X[i, j] == np.floor(X[i, j]))
        if not good:
            for j in range(n_features):
                value = X[i, j]
                if not (value >= 0.0 and value <= MAX_COUNT and value == np.floor(value)):
                    return i * n_features + j
    return -1


@numba.njit(nogil=True, error_model="numpy", cache=True)
def log_factorial_sums(X: np.ndarray, table: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = Σ_j log x_ij!`` for whole numbers X (n, d) ≥ 0: from ``table`` (``log k!`` for
    k < len(table)), from ``lgamma`` above."""
    for i in range(X.shape[0]):
        total = 0.0
        for j in range(X.shape[1]):
            value = X[i, j]
            total += table[int(value)] if value < table.shape[0] else math.lgamma(value + 1.0)
        out[i] = total


@intrinsic
def _prefetch_row(typingctx, array, row):  # noqa: ANN001, ANN202 (numba typing)
    """Ask the processor to start loading row ``row`` of a 2-D array into its caches (nothing is read).

    LLVM's ``prefetch`` intrinsic: a hint, which changes no result.
    """

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context, builder, view.data, cgutils.unpack_tuple(builder, view.shape),
            cgutils.unpack_tuple(builder, view.strides), array_type.layout,
            [args[1], context.get_constant(types.intp, 0)], wraparound=False,
        )
        if getattr(pointer.type, "is_opaque", False):  # llvmlite with opaque pointers
            name = "llvm.prefetch.p0"
        else:
            pointer, name = builder.bitcast(pointer, ir.IntType(8).as_pointer()), "llvm.prefetch.p0i8"
        flag = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [pointer.type, flag, flag, flag]), name
        )
        builder.call(prefetch, [pointer, flag(0), flag(3), flag(1)])  # read, keep in every cache level, data
        return context.get_dummy_value()

    return types.none(array, types.intp), codegen


#: How many rows ahead :func:`missing_e_step` asks for the rows it reads in pattern order.
_PREFETCH_ROWS = 16

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
    :func:`missing_e_step` a factorisation more, never a wrong answer (it
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


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def missing_e_step(  # noqa: PLR0913 (one compiled call per chunk)
    X: np.ndarray,
    order: np.ndarray,
    n_missing: np.ndarray,
    patterns: np.ndarray,
    centre: np.ndarray,
    products: np.ndarray,
    masked: bool,
    shifted: np.ndarray,
    precisions_t: np.ndarray,
    moment_offsets: np.ndarray,
    log_weights: np.ndarray,
    offsets: np.ndarray,
    weights: np.ndarray,
    floor: float,
    block_rows: int,
    log_prob_norm: np.ndarray,
    log_prob: np.ndarray,
    imputed: np.ndarray,
    means: np.ndarray,
    nk: np.ndarray,
    s1: np.ndarray,
    t: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> None:
    """The E-step of rows with missing values (see :mod:`daskem.kernels.missing`), block by block.

    Rows are taken in ``order`` (from :func:`pattern_order`), so that each run
    of rows with one pattern factorises the q × q missing block of every
    component's precision once (:func:`_factorise_runs`, a block's runs of
    one q side by side).  ``P_k e_k`` of every row and component is one
    matrix product with the block's terms, ``e_k = x̃ − (μ_k − c)`` with
    ``x̃ = x − c`` and 0 where missing: with ``masked`` the terms are
    ``[x̃, o]`` (o = 1 where observed) and ``e_k`` is 0 where missing, else
    ``[x̃, 1]``, half the product, and ``e_k`` holds ``c − μ_k`` there.
    Either way ``Q = eᵀ P e − gᵀ P_mm⁻¹ g`` with ``g = (P e)_m`` (the Schur
    complement does not depend on what fills the holes) and
    ``x̂_m − μ_m = e_m − P_mm⁻¹ g``; the fill's terms cancel in Q, so
    unmasked loses about ``Σ_j P_jj (μ_j − c_j)²`` ulps (see
    :data:`daskem.kernels.missing.MAX_FILL_AMPLIFICATION`).  One pass over
    the block's rows, :data:`_PRODUCT_ROWS` at a time, takes each row's
    quadratic forms and then its missing coordinates' conditional means from
    its run's ``P_mm⁻¹`` (:func:`_condition_row`); the responsibilities, each
    run's conditional covariance and the moments (K products, as in
    :func:`whitened_statistics`) follow per block.  Every row's count of
    missing values and pattern is read in order, and the rows themselves are
    asked for ahead (:func:`_prefetch_row`): in pattern order they lie all
    over the chunk, and waiting for them took a tenth of the pass.

    Parameters
    ----------
    X : (n, d) rows, float32 or float64, NaN where missing.
    order, n_missing, patterns : (n,) int64 from :func:`pattern_order`.
    centre : (d,) float64, the point ``c``.
    products : (2d, K·d) float64, column ``k·d + l`` ``[P_k[:, l]; −(μ_k − c) ∘ P_k[:, l]]``
        (masked), or (d + 1, K·d) ``[P_k[:, l]; −(P_k (μ_k − c))_l]``.
    masked : which of the two.
    shifted : (K, d) ``μ_k − c``.
    precisions_t : (d, d, K) float64, the precisions ``P_k[j, l]`` at ``[j, l, k]``.
    moment_offsets : (K, d) ``μ_k − r_k``, with ``r_k`` the points the moments are taken about.
    log_weights, offsets : (K,) ``log α_k`` and ``log α_k + ½ log det P_k − d/2 log 2π``.
    weights : (n,) float64 row weights in ``order`` (0 for rows with nothing observed).
    floor : responsibilities below this count as 0 (see :data:`RESPONSIBILITY_FLOOR`).
    block_rows : rows per block.
    log_prob_norm : (n,) float64, written: ``log p(x_o)`` (0 for rows with nothing observed).
    log_prob : (K, n) float64, written with ``log α_k + log p_k(x_o)`` (``log α_k`` for rows
        with nothing observed) unless empty.
    imputed : (n, d) float64, written unless empty: the rows, each missing value replaced by
        ``Σ_k r_k (μ_kj + x̂_kj − r_kj)`` — with ``moment_offsets`` 0, its conditional
        expectation under the mixture (``Σ_k α_k μ_kj`` where nothing is observed).
    means : (K, d) float64, the ``μ_k``.
    nk, s1, t : (K,), (K, d), (K, d, d) float64, incremented (when neither output above is
        asked for) by ``Σ w r``, ``Σ w r (x̂_k − r_k)`` and ``Σ w r ((x̂_k − r_k)(x̂_k − r_k)ᵀ + C_k)``:
        x̂_k the row completed by component k's conditional mean, C_k its conditional covariance.
    low, high : (d,) float64, lowered and raised to each column's least and greatest observed value.
    """
    n_rows, n_features = X.shape
    n_components, n_terms = offsets.shape[0], products.shape[0]
    terms_buffer = np.empty(n_terms * block_rows)
    products_buffer = np.empty(n_components * n_features * _PRODUCT_ROWS)
    centred_buffer = np.empty(n_components * n_features * block_rows)
    weighted_buffer = np.empty_like(centred_buffer)
    lp_buffer = np.empty(n_components * block_rows)
    norm = np.empty(block_rows)
    moment = np.empty((n_features, n_features))
    gathered, first = np.empty(n_features), np.empty(n_features)
    # The block's runs of rows with one pattern (see _block_runs), how many there are of each q,
    # and their factors (see _factorise_runs), grown as needed.
    runs = np.empty((block_rows, _RUN_WHERE + n_features), np.int64)
    counts = np.zeros(n_features + 1, np.int64)
    sq_offset, vector_offset = np.zeros(n_features + 1, np.int64), np.zeros(n_features + 1, np.int64)
    factors, inverses = np.empty(block_rows * n_components), np.empty(block_rows * n_components)
    reciprocals, log_dets = np.empty(block_rows * n_components), np.empty(block_rows * n_components)
    work = np.empty(block_rows * n_components)
    totals, members = np.empty(n_components), np.empty(block_rows, np.int64)
    conditional = np.zeros((n_features, n_features, n_components))  # Σ w r C, component last
    moment_shift = moment_offsets - shifted  # e + μ_k − r_k = x̃ + c − r_k where observed (unmasked)
    for start in range(0, n_rows, block_rows):
        b = min(block_rows, n_rows - start)
        terms = terms_buffer[: n_terms * b].reshape(b, n_terms)
        for r in range(b):
            if start + r + _PREFETCH_ROWS < n_rows:  # rows in pattern order are all over the chunk
                _prefetch_row(X, order[start + r + _PREFETCH_ROWS])
            i = order[start + r]
            for j in range(n_features):
                value = np.float64(X[i, j])
                seen = value == value
                terms[r, j] = value - centre[j] if seen else 0.0
                low[j], high[j] = min(low[j], value), max(high[j], value)
                if masked:
                    terms[r, n_features + j] = 1.0 if seen else 0.0
            if not masked:
                terms[r, n_features] = 1.0
        centred = centred_buffer[: n_components * b * n_features].reshape(n_components, b, n_features)
        lp = lp_buffer[: n_components * b].reshape(n_components, b)
        runs_found = _block_runs(X, order, start, b, n_missing, patterns, runs, counts)
        for q in range(1, n_features):  # every run's factors, the runs of one q side by side
            sq_offset[q + 1] = sq_offset[q] + q * q * counts[q] * n_components
            vector_offset[q + 1] = vector_offset[q] + q * counts[q] * n_components
        factors = _grown(factors, sq_offset[n_features])
        inverses = _grown(inverses, sq_offset[n_features])
        reciprocals = _grown(reciprocals, vector_offset[n_features])
        log_dets = _grown(log_dets, vector_offset[n_features])
        work = _grown(work, vector_offset[n_features])
        _factorise_runs(precisions_t, runs, runs_found, counts, sq_offset, vector_offset, factors, inverses,
                        reciprocals, log_dets, work, members)
        run = 0
        for r in range(b):  # each row's work while its products are in the first-level cache
            if r % _PRODUCT_ROWS == 0:  # the products of the next rows, just before they are used
                rows = min(_PRODUCT_ROWS, b - r)
                pe = products_buffer[: rows * n_components * n_features].reshape(rows, n_components * n_features)
                np.dot(terms_buffer[r * n_terms : (r + rows) * n_terms].reshape(rows, n_terms), products, pe)
            pr = r % _PRODUCT_ROWS  # the row's products
            if n_missing[start + r] == n_features:  # nothing observed: p = 1, responsibilities α, nothing learnt
                for k in range(n_components):
                    lp[k, r] = log_weights[k]
                    centred[k, r] = 0.0
                continue
            for k in range(n_components):  # eᵀ P e, then e + μ_k − r_k: apart, each loop vectorises
                base, total = k * n_features, 0.0
                if masked:
                    for j in range(n_features):
                        total += (terms[r, j] - shifted[k, j] * terms[r, n_features + j]) * pe[pr, base + j]
                else:
                    for j in range(n_features):
                        total += (terms[r, j] - shifted[k, j]) * pe[pr, base + j]
                lp[k, r] = offsets[k] - 0.5 * total
            for k in range(n_components):
                if masked:
                    for j in range(n_features):
                        centred[k, r, j] = terms[r, j] - shifted[k, j] * terms[r, n_features + j] + moment_offsets[k, j]
                else:
                    for j in range(n_features):
                        centred[k, r, j] = terms[r, j] + moment_shift[k, j]
            if n_missing[start + r] == 0:
                continue
            while runs[run, _RUN_STOP] <= r:  # the row's run: runs are in row order
                run += 1
            q, group = runs[run, _RUN_Q], runs[run, _RUN_GROUP]
            factors_at = (sq_offset[q] + group * n_components, counts[q] * n_components,
                          vector_offset[q] + group * n_components)
            if q == 1:  # one call per literal q up to 8, so that each is compiled for its q (loops unrolled)
                _condition_row(1, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 2:
                _condition_row(2, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 3:
                _condition_row(3, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 4:
                _condition_row(4, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 5:
                _condition_row(5, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 6:
                _condition_row(6, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 7:
                _condition_row(7, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            elif q == 8:
                _condition_row(8, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
            else:
                _condition_row(q, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        for r in range(b):
            for k in range(log_prob.shape[0]):
                log_prob[k, order[start + r]] = lp[k, r]
        _normalise(lp, weights, start, floor, norm[:b])
        for r in range(b):
            i = order[start + r]
            log_prob_norm[i] = 0.0 if n_missing[start + r] == n_features else norm[r]
            if imputed.shape[0]:
                empty = n_missing[start + r] == n_features
                _impute_row(X[i], empty, log_weights, means, lp[:, r], centred[:, r], imputed[i])
        if imputed.shape[0] or log_prob.shape[0]:
            continue
        _add_run_covariances(runs, runs_found, counts, sq_offset, inverses, lp, totals, conditional)
        weighted = weighted_buffer[: centred.size].reshape(centred.shape)
        for k in range(n_components):  # running sums through memory in this loop cost as much as all of it
            nk[k] += np.sum(lp[k])
            for r in range(b):
                for j in range(n_features):
                    weighted[k, r, j] = lp[k, r] * centred[k, r, j]
            np.dot(lp[k], centred[k], first)
            s1[k] += first
            np.dot(centred[k].T, weighted[k], moment)
            t[k] += moment
    for k in range(n_components):  # the lower triangle of Σ w r C (features missing in ascending order), mirrored
        for j in range(n_features):
            for m in range(j):
                t[k, j, m] += conditional[j, m, k]
                t[k, m, j] += conditional[j, m, k]
            t[k, j, j] += conditional[j, j, k]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _condition_row(q, r, pe, runs, run, factors_at, inverses, log_dets, gathered, lp, centred):  # noqa: ANN001, ANN202
    """Condition row r of a block on its observed values (see :func:`missing_e_step`), every component.

    ``q`` values are missing, those of ``runs[run]`` (see :func:`_block_runs`); ``pe`` (b, K·d) holds
    ``P_k e_k``; ``factors_at`` is where the run's factors are in ``inverses`` and ``log_dets`` (see
    :func:`_factorise_runs`): its first entry, the step from one entry of a factor to the next, its
    first log det.  ``lp`` (K, b) less ``½ (gᵀ P_mm⁻¹ g − log det P_mm + q log 2π)`` and ``centred``
    (K, b, d) less ``P_mm⁻¹ g`` at the missing features.  ``gathered`` (≥ q,) is scratch.
    """
    n_components, n_features = centred.shape[0], centred.shape[2]
    base, stride, vector = factors_at
    correction = q * math.log(2.0 * math.pi)
    for k in range(n_components):  # one component at a time: loops over K alone cost ~4 ns each
        for a in range(q):
            gathered[a] = pe[k * n_features + runs[run, _RUN_WHERE + a]]
        total = log_dets[vector + k] - correction
        for a in range(q):  # Q = eᵀ P e − gᵀ P_mm⁻¹ g; x̂_m − μ_m = e_m − P_mm⁻¹ g
            solved = 0.0
            for c in range(q):
                solved += inverses[base + (a * q + c) * stride + k] * gathered[c]
            total -= gathered[a] * solved
            centred[k, r, runs[run, _RUN_WHERE + a]] -= solved
        lp[k, r] -= 0.5 * total


#: Rows whose products ``P_k e_k`` :func:`missing_e_step` takes at once, just before their rows' work:
#: OpenBLAS leaves a product this small (128 × K·d) in the cache, where a block's (512 rows) took
#: half as long again to read back as to compute.
_PRODUCT_ROWS = 128

#: Columns of the table of a block's runs (see :func:`_block_runs`).
_RUN_START, _RUN_STOP, _RUN_Q, _RUN_GROUP, _RUN_WHERE = 0, 1, 2, 3, 4


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
        if (found and runs[found - 1, _RUN_STOP] == r and pattern == patterns[start + runs[found - 1, _RUN_START]]
                and (exact or _same_pattern(X[order[start + r]], q, runs[found - 1]))):
            runs[found - 1, _RUN_STOP] = r + 1
            continue
        runs[found, _RUN_START], runs[found, _RUN_STOP], runs[found, _RUN_Q] = r, r + 1, q
        runs[found, _RUN_GROUP] = counts[q]
        counts[q] += 1
        a = 0
        for j in range(n_features):
            if (pattern >> j) & 1 if exact else np.isnan(X[order[start + r], j]):
                runs[found, _RUN_WHERE + a] = j
                a += 1
        found += 1
    return found


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _same_pattern(row, q, run):  # noqa: ANN001, ANN202 (numba types)
    """Whether ``row`` (d,), missing q values, misses the features of ``run`` (a row of the runs' table)."""
    if q != run[_RUN_Q]:
        return False
    for a in range(q):
        if not np.isnan(row[run[_RUN_WHERE + a]]):
            return False
    return True


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _grown(buffer, size):  # noqa: ANN001, ANN202 (numba types)
    """``buffer``, or a new one twice as large where it holds fewer than ``size`` values."""
    return buffer if buffer.shape[0] >= size else np.empty(max(size, 2 * buffer.shape[0]))


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
        members[first[runs[run, _RUN_Q]] + runs[run, _RUN_GROUP]] = run
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
                    row, column = runs[run, _RUN_WHERE + a], runs[run, _RUN_WHERE + c]
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
def _add_run_covariances(runs, found, counts, sq_offset, inverses, resp, totals, conditional):  # noqa: ANN001, ANN202
    """Add ``(Σ_{rows of the run} w r_k) P_mm⁻¹`` of each of a block's runs (see :func:`_block_runs`,
    :func:`_factorise_runs`; ``resp`` (K, b)) to the lower triangle of the missing block of
    ``conditional`` (d, d, K), every component at once; ``totals`` (K,) is scratch."""
    n_components = resp.shape[0]
    # Entries by component: indexed by k alone, the loops over k load whole vectors (an index
    # that might be negative, wrapped as NumPy's are, made them gathers).
    by_component = inverses[: inverses.shape[0] // n_components * n_components].reshape(-1, n_components)
    for run in range(found):
        q, group = runs[run, _RUN_Q], runs[run, _RUN_GROUP]
        totals[:] = 0.0
        for r in range(runs[run, _RUN_START], runs[run, _RUN_STOP]):
            for k in range(n_components):
                totals[k] += resp[k, r]
        for a in range(q):
            row = runs[run, _RUN_WHERE + a]
            for c in range(a + 1):
                entry = sq_offset[q] // n_components + (a * q + c) * counts[q] + group
                column = runs[run, _RUN_WHERE + c]
                for k in range(n_components):
                    conditional[row, column, k] += totals[k] * by_component[entry, k]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _impute_row(row, empty, log_weights, means, resp, centred, out):  # noqa: ANN001, ANN202 (numba types)
    """``out`` (d,) ← the row, each missing value replaced by ``Σ_k r_k (μ_kj + centred[k, j])`` (``resp`` (K,)
    the responsibilities, ``centred`` (K, d) ``x̂_k − μ_k``), or by ``Σ_k α_k μ_kj`` where nothing is observed."""
    n_features = row.shape[0]
    for j in range(n_features):
        out[j] = row[j]
        if np.isnan(row[j]):
            out[j] = 0.0
            for k in range(means.shape[0]):
                if empty:
                    out[j] += math.exp(log_weights[k]) * means[k, j]
                else:
                    out[j] += resp[k] * (means[k, j] + centred[k, j])
