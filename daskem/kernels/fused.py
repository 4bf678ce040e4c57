"""Compiled loops (numba) for the elementwise work between a block's matrix products.

NumPy would make one pass over a block's (b, K·d) whitened differences for
each step — square, sum over each component's d columns, log-sum-exp over
components, scale by the responsibilities — each with inner loops of only d
or K values.  These loops do it in one pass, row by row, while the row is in
cache, and release the GIL so that Dask's threads run them side by side.

Shapes: ``b`` rows, ``K`` components, ``d`` features; ``y`` holds, for row i
and component k, the whitened difference ``y_ik = (x_i − μ_k) U_k`` in
columns ``k·d … k·d + d − 1``.  Arithmetic on ``y`` is in its dtype (float32
or float64); log-densities, their log-sum-exp and all running sums are
float64.

``fastmath`` allows reassociating sums (so that they vectorise) and fused
multiply-adds, nothing else: NaN and infinity still propagate, so rows that
are not finite still give a NaN log-likelihood for the callers to report.
The compiled code is fixed for a machine, so results stay bitwise
reproducible there whatever the scheduler.
"""

from __future__ import annotations

import numba
import numpy as np

_FASTMATH = {"reassoc", "contract"}

#: Responsibilities below these count as 0 in :func:`responsibilities`, per dtype of the
#: whitened differences.  Rows far from a component give it responsibilities of 1e-300
#: and less; their products with y are subnormal, which x86 processors handle a hundred
#: times slower: on generated data they made a chunk's moments 3× slower.  What is
#: dropped is below 1e-290 (float64) or 1e-30 (float32) of one row's weight, far below
#: the rounding of any sum.
RESPONSIBILITY_FLOOR = {np.float64: 1e-290, np.float32: 1e-30}


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def _row_log_prob(y: np.ndarray, i: int, offsets: np.ndarray, n_features: int, out: np.ndarray) -> float:
    """``out[k] = offsets[k] − ½‖y_ik‖²`` for row i; returns the largest."""
    peak = -np.inf
    for k in range(offsets.shape[0]):
        total = y.dtype.type(0.0)
        for j in range(n_features):  # (a loop over k·d … k·d + d − 1 would not vectorise: 3× slower)
            value = y[i, k * n_features + j]
            total += value * value
        out[k] = offsets[k] - 0.5 * np.float64(total)
        if out[k] > peak:
            peak = out[k]
    return peak


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def log_prob(y: np.ndarray, offsets: np.ndarray, n_features: int, out: np.ndarray) -> None:
    """``log α_k + log p_k(x_i)`` of every row and component.

    Parameters
    ----------
    y : (b, K·d) whitened differences.
    offsets : (K,) float64, ``log α_k + log|U_k| − d/2·log 2π``.
    n_features : d.
    out : (K, b) float64, written.
    """
    row = np.empty(offsets.shape[0])
    for i in range(y.shape[0]):
        _row_log_prob(y, i, offsets, n_features, row)
        for k in range(offsets.shape[0]):
            out[k, i] = row[k]


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def responsibilities(
    y: np.ndarray,
    offsets: np.ndarray,
    n_features: int,
    weights: np.ndarray,
    floor: float,
    weighted: np.ndarray,
    log_prob_norm: np.ndarray,
    nk: np.ndarray,
    s1: np.ndarray,
) -> None:
    """E-step of a block and the parts of its moments that are not matrix products.

    Parameters
    ----------
    y : (b, K·d) whitened differences.
    offsets : (K,) float64, ``log α_k + log|U_k| − d/2·log 2π``.
    n_features : d.
    weights : (b,) float64 sample weights, or an empty array for ones.
    floor : responsibilities below this count as 0, so that no product with
        them is subnormal (see :data:`RESPONSIBILITY_FLOOR`).
    weighted : (b, K·d) of y's dtype, written: ``w_i r_ik y_ik``.
    log_prob_norm : (b,) float64, written: ``log p(x_i)`` in nats (NaN for rows
        that are not finite).
    nk : (K,) float64, incremented by ``Σ_i w_i r_ik``.
    s1 : (K·d,) float64, incremented by ``Σ_i w_i r_ik y_ik``.
    """
    n_components = offsets.shape[0]
    scaled = np.empty(n_components)
    for i in range(y.shape[0]):
        peak = _row_log_prob(y, i, offsets, n_features, scaled)
        total = 0.0
        for k in range(n_components):
            scaled[k] = np.exp(scaled[k] - peak)
            total += scaled[k]
        log_prob_norm[i] = np.log(total) + peak
        weight = weights[i] if weights.shape[0] else 1.0
        for k in range(n_components):
            r = scaled[k] / total * weight
            if r < floor:
                r = 0.0
            nk[k] += r
            r_y = y.dtype.type(r)
            for j in range(n_features):
                column = k * n_features + j
                product = r_y * y[i, column]
                weighted[i, column] = product
                s1[column] += product


@numba.njit(nogil=True, fastmath=_FASTMATH, cache=True)
def column_ranges(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least and greatest value of each column of X (n, d), n ≥ 1, as float64 (d,) arrays.

    One pass over the rows: NumPy's ``X.min(axis=0)`` runs inner loops of d
    values and took 6.5 ms per 100,000 × 16 rows, this 0.9 ms.  Rows that
    are not finite are reported from their log-likelihood before the ranges
    are used, so how NaN falls here does not matter.
    """
    low = X[0].astype(np.float64)
    high = low.copy()
    for i in range(1, X.shape[0]):
        for j in range(X.shape[1]):
            value = np.float64(X[i, j])
            low[j] = min(low[j], value)
            high[j] = max(high[j], value)
    return low, high
