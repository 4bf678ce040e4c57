"""Compiled (numba) scans over in-memory rows, outside the E-step's block loop.

- k-means++ seeding's costs (:func:`seeding_costs`, :func:`lower_closest`), used by
  :mod:`daskem.kernels.kmeans`;
- the discrete families' domain checks (:func:`first_not_binary`, :func:`first_not_count`,
  :data:`MAX_COUNT`) and the Poisson family's ``Σ_j log x_ij!`` (:func:`log_factorial_sums`).

Each is one pass over the rows with no temporaries, where NumPy's expressions made several.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from daskem.kernels.fused import _FASTMATH


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
