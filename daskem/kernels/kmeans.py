"""k-means pieces used to initialise EM (NumPy, and compiled loops from :mod:`~daskem.kernels.scans`).

Shapes use ``n`` rows, ``d`` features and ``K`` centres; all float64.  Every
function takes optional non-negative row weights ``w`` (n,), None for ones.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from daskem.kernels import scans


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, K) between rows X (n, d) and centres (K, d).

    Expanded as ‖x‖² − 2 x·c + ‖c‖² (one matrix product) about the centres'
    mean, so that data far from the origin do not cancel to noise.  A row
    with missing values (NaN) is measured over its observed coordinates,
    scaled by d / (their number): the partial distance (0 when nothing is
    observed).
    """
    reference = centers.mean(axis=0)
    X, centers = X - reference, centers - reference
    gaps = np.isnan(X)
    if not gaps.any():
        distances = (
            np.einsum("ij,ij->i", X, X)[:, np.newaxis]
            - 2.0 * X @ centers.T
            + np.einsum("ij,ij->i", centers, centers)[np.newaxis, :]
        )
        return np.maximum(distances, 0.0)
    X, seen = np.where(gaps, 0.0, X), ~gaps
    distances = np.einsum("ij,ij->i", X, X)[:, np.newaxis] - 2.0 * X @ centers.T + seen @ (centers**2).T
    observed = seen.sum(axis=1)
    return np.maximum(distances, 0.0) * (X.shape[1] / np.maximum(observed, 1))[:, np.newaxis]


#: Rows × centres per block of :meth:`_Rows.nearest`: the (n, K) distances of a whole
#: sample (50,000 × 256 = 100 MB) made three passes through memory per Lloyd step
#: (50 ms); blocks of 1 MB stay in cache.
NEAREST_BLOCK_VALUES = 2**17
#: Threads that share Lloyd's nearest centres (K=256 on 50,000 × 8 rows: 9 → 6–7 ms a
#: step on two cores, BLAS on one thread each).
LLOYD_THREADS = os.cpu_count() or 1


class _Rows:
    """Rows centred on their mean once, for repeated nearest centres.

    Lloyd computes distances from the same rows to new centres at every step;
    centring and the float32 copy are paid once.  ``pool`` shares each step
    among threads, each over its own rows.
    """

    def __init__(self, X: np.ndarray, pool: ThreadPoolExecutor) -> None:
        self.offset = X.mean(axis=0)
        self.X = X - self.offset
        self.X32 = self.X.astype(np.float32)
        self.pool = pool

    def nearest(self, centers: np.ndarray) -> np.ndarray:
        """Index (n,) of each row's nearest centre.

        In float32 (centred rows, so that far data do not cancel): Lloyd's
        assignments, not its sums, and the matrix products and minima took
        half the time of float64's (K=256 on 50,000 × 8 rows: 11 steps 0.28
        → 0.15 s).  ``‖x‖²`` does not change which centre is nearest, so it
        is left out.  The threads' labels do not depend on how the rows are
        split among them.
        """
        labels = np.empty(len(self.X), dtype=np.int64)
        centred = (centers - self.offset).astype(np.float32)
        scaled, norms = -2.0 * centred.T, np.einsum("ij,ij->i", centred, centred)
        step = max(1, NEAREST_BLOCK_VALUES // len(centers))

        def assign(start: int, stop: int) -> None:
            for first in range(start, stop, step):
                rows = slice(first, min(first + step, stop))
                partial = self.X32[rows] @ scaled
                partial += norms
                labels[rows] = np.argmin(partial, axis=1)

        bounds = np.linspace(0, len(self.X), LLOYD_THREADS + 1).astype(int).tolist()
        list(self.pool.map(assign, bounds[:-1], bounds[1:]))  # list(): raises what a thread raised
        return labels

    def distances(self, centers: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Squared distance (n,) of each row to its centre ``centers[labels]``, in float64."""
        return ((self.X - (centers - self.offset)[labels]) ** 2).sum(axis=1)


def _ones_if_none(weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if weights is None else weights


def kmeans_plusplus(
    X: np.ndarray, n_clusters: int, rng: np.random.Generator, weights: np.ndarray | None = None
) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Each new centre is the best of ``2 + ⌊log K⌋`` candidates drawn with
    probability proportional to ``w · D²`` (squared distance to the nearest
    centre), as in scikit-learn.  The candidates' costs are one compiled pass
    over the transposed rows per candidate (:func:`~daskem.kernels.scans.seeding_costs`):
    NumPy's (n, T) distances, minimum and weighted sum took 2.3 ms a centre on
    50,000 × 8 rows, this 0.8 in float64 and 0.4 in float32, which it uses:
    the rows are centred in float64 first and the distances are differences,
    so rounding moves a cost by about 1e-7 of itself, and a seeding is a
    random draw anyway.

    Returns
    -------
    (K, d) float64 centres, each a row of X.
    """
    n_samples = X.shape[0]
    weights = _ones_if_none(weights, n_samples)
    centred = (X - X.mean(axis=0)).astype(np.float32)  # centred in float64, so that far data do not cancel
    rows_t = np.ascontiguousarray(centred.T)
    n_trials = 2 + int(np.log(n_clusters))
    chosen = np.empty(n_clusters, dtype=np.int64)
    chosen[0] = _draw(weights, 1, rng)[0]
    closest = np.full(n_samples, np.inf)
    scans.lower_closest(rows_t, centred[chosen[0]], closest)
    costs = np.empty(n_trials)
    for c in range(1, n_clusters):
        candidates = _draw(weights * closest, n_trials, rng)
        scans.seeding_costs(rows_t, centred[candidates], closest, weights, costs)
        chosen[c] = candidates[int(np.argmin(costs))]
        scans.lower_closest(rows_t, centred[chosen[c]], closest)
    return X[chosen]


def _draw(mass: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` row indices drawn with probability proportional to ``mass`` (uniform if all zero)."""
    total = mass.sum()
    if total <= 0.0:  # every row sits on a centre already: any row will do
        return rng.integers(len(mass), size=count)
    return np.minimum(np.searchsorted(np.cumsum(mass), rng.uniform(size=count) * total), len(mass) - 1)


def lloyd(
    X: np.ndarray,
    centers: np.ndarray,
    max_iter: int,
    tol: float = 1e-4,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Weighted Lloyd iterations from the given centres.

    Stops after ``max_iter`` steps or when no centre moves by more than
    ``tol`` times the mean per-feature variance of X (squared), as in
    scikit-learn.  A centre that loses all its rows keeps its place.

    Returns
    -------
    centers : (K, d) float64.
    labels : (n,) int64 index of each row's nearest centre.
    inertia : float, ``Σ w · (squared distance to the nearest centre)``.
    """
    weights = _ones_if_none(weights, X.shape[0])
    with ThreadPoolExecutor(LLOYD_THREADS) as pool:
        return _lloyd(_Rows(X, pool), centers, max_iter, tol, weights)


def _lloyd(
    rows: _Rows, centers: np.ndarray, max_iter: int, tol: float, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    threshold = tol * float(np.mean(np.var(rows.X, axis=0)))
    centers = centers.copy()
    labels = rows.nearest(centers)
    for _ in range(max_iter):
        mass = np.bincount(labels, weights=weights, minlength=len(centers))
        weighted = rows.X * weights[:, np.newaxis]
        sums = np.stack([np.bincount(labels, weights=column, minlength=len(centers)) for column in weighted.T], 1)
        occupied = mass > 0
        new_centers = centers.copy()
        new_centers[occupied] = sums[occupied] / mass[occupied, np.newaxis] + rows.offset
        shift = float(((new_centers - centers) ** 2).sum(axis=1).max())
        centers = new_centers
        labels = rows.nearest(centers)
        if shift <= threshold:
            break
    return centers, labels, float(weights @ rows.distances(centers, labels))


def oversample(
    X: np.ndarray,
    centers: np.ndarray,
    cost: float,
    oversampling: float,
    rng: np.random.Generator,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """One k-means|| round on a chunk (Bahmani et al. 2012).

    Keeps each row independently with probability ``min(1, ℓ · w · D² / φ)``
    where D² is its squared distance to the nearest of ``centers``, ℓ is
    ``oversampling`` and φ is ``cost``, the data set's total ``Σ w · D²``.

    Returns
    -------
    kept : (m, d) the rows drawn.
    chunk_cost : float, this chunk's ``Σ w · D²`` to ``centers``.
    """
    closest = nearest_cost(X, centers, weights)
    probability = oversampling * closest / cost if cost > 0 else np.zeros_like(closest)
    kept = rng.uniform(size=len(X)) < probability
    return X[kept], float(closest.sum())


def nearest_cost(X: np.ndarray, centers: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``w · D²`` of each row: its weight times its squared distance to the nearest centre (n,)."""
    return squared_distances(X, centers).min(axis=1) * _ones_if_none(weights, X.shape[0])


def nearest_mass(X: np.ndarray, centers: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Total weight of the rows nearest to each centre: (K,)."""
    labels = np.argmin(squared_distances(X, centers), axis=1)
    return np.bincount(labels, weights=_ones_if_none(weights, X.shape[0]), minlength=len(centers))
