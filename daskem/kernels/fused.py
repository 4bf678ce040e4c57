"""Compiled loops (numba) for the elementwise work between a block's matrix products.

A block's whitened differences are held transposed, ``yt`` (K·d, b): row
``k·d + j`` holds feature j of ``y_ik = (x_i − μ_k) U_k`` for the block's b
rows.  Every loop here then runs over b contiguous values, which vectorise
whatever d and K are; NumPy would need a pass over memory per step (square,
sum over each component's d rows, scale by the responsibilities, sum), and
row-major loops over only d values ran 2× slower at d = 8.  A chunk is one
call (:func:`whitened_statistics` runs the block loop and calls BLAS itself)
that releases the GIL once, so that Dask's threads run side by side: a
Python loop over blocks took and released the GIL a dozen times per block,
and two threads ran no faster than one.

Arithmetic on ``yt`` is in its dtype (float32 or float64); squared norms,
responsibilities and every running sum are float64.

``fastmath`` allows reassociating sums (so that they vectorise) and fused
multiply-adds, nothing else, and ``error_model="numpy"`` makes division by
zero give infinity or NaN as in NumPy: NaN and infinity still propagate, so
rows that are not finite still give a NaN log-likelihood for the callers to
report.
The compiled code is fixed for a machine, so results stay bitwise
reproducible there whatever the scheduler.
"""

from __future__ import annotations

import numba
import numpy as np

_FASTMATH = {"reassoc", "contract"}
#: Below this, ``exp`` is exactly 0 in float64.
_EXP_UNDERFLOW = -745.2

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
        (see :class:`daskem.kernels.estep._WhitenedKernel`).
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
    ``log p(x_i)``.

    A NaN in a row makes its ``log p`` NaN (the peak skips it, its exp does not).
    """
    n_components, n_rows = log_prob.shape
    peak = np.full(n_rows, -np.inf)
    for k in range(n_components):
        for i in range(n_rows):
            if log_prob[k, i] > peak[i]:
                peak[i] = log_prob[k, i]
    total = np.zeros(n_rows)
    for k in range(n_components):
        for i in range(n_rows):
            gap = log_prob[k, i] - peak[i]
            # exp underflows to exactly 0 below −745.2: skip the call (components far from a row)
            log_prob[k, i] = 0.0 if gap <= _EXP_UNDERFLOW else np.exp(gap)
            total[i] += log_prob[k, i]
    for i in range(n_rows):
        log_prob_norm[i] = np.log(total[i]) + peak[i]
        total[i] = (weights[first + i] if weights.shape[0] else 1.0) / total[i]
    for k in range(n_components):
        for i in range(n_rows):
            r = log_prob[k, i] * total[i]
            log_prob[k, i] = r if r >= floor else 0.0


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
