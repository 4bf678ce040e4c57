"""k-means on an in-memory sample (pure NumPy), used to initialise EM.

Shapes use ``n`` rows, ``d`` features and ``K`` centres; all float64.
"""

from __future__ import annotations

import numpy as np


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (n, K) between rows X (n, d) and centres (K, d)."""
    distances = (
        np.einsum("ij,ij->i", X, X)[:, np.newaxis]
        - 2.0 * X @ centers.T
        + np.einsum("ij,ij->i", centers, centers)[np.newaxis, :]
    )
    return np.maximum(distances, 0.0)


def kmeans_plusplus(X: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Each new centre is the best of ``2 + ⌊log K⌋`` candidates drawn with
    probability proportional to the squared distance to the nearest centre,
    as in scikit-learn.

    Parameters
    ----------
    X : (n, d) float64 sample rows, n >= n_clusters.

    Returns
    -------
    (K, d) float64 centres, each a row of X.
    """
    n_samples = X.shape[0]
    n_trials = 2 + int(np.log(n_clusters))
    centers = np.empty((n_clusters, X.shape[1]))
    centers[0] = X[rng.integers(n_samples)]
    closest = squared_distances(X, centers[:1])[:, 0]
    for c in range(1, n_clusters):
        total = closest.sum()
        if total <= 0.0:  # fewer distinct rows than clusters: any row will do
            candidates = rng.integers(n_samples, size=n_trials)
        else:
            cumulative = np.cumsum(closest)
            candidates = np.searchsorted(cumulative, rng.uniform(size=n_trials) * total)
            candidates = np.minimum(candidates, n_samples - 1)
        candidate_closest = np.minimum(closest[:, np.newaxis], squared_distances(X, X[candidates]))
        best = int(np.argmin(candidate_closest.sum(axis=0)))
        centers[c] = X[candidates[best]]
        closest = candidate_closest[:, best]
    return centers


def lloyd(
    X: np.ndarray, centers: np.ndarray, max_iter: int, tol: float = 1e-4
) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd iterations from the given centres.

    Stops after ``max_iter`` steps or when no centre moves by more than
    ``tol`` times the mean per-feature variance of X (squared).  A centre that
    loses all its rows keeps its place.

    Returns
    -------
    centers : (K, d) float64.
    labels : (n,) int64 index of each row's nearest centre.
    inertia : float, sum of squared distances of the rows to their centres.
    """
    threshold = tol * float(np.mean(np.var(X, axis=0)))
    centers = centers.copy()
    distances = squared_distances(X, centers)
    labels = np.argmin(distances, axis=1)
    for _ in range(max_iter):
        counts = np.bincount(labels, minlength=len(centers))
        sums = np.zeros_like(centers)
        np.add.at(sums, labels, X)
        occupied = counts > 0
        new_centers = centers.copy()
        new_centers[occupied] = sums[occupied] / counts[occupied, np.newaxis]
        shift = float(((new_centers - centers) ** 2).sum(axis=1).max())
        centers = new_centers
        distances = squared_distances(X, centers)
        labels = np.argmin(distances, axis=1)
        if shift <= threshold:
            break
    inertia = float(distances[np.arange(len(X)), labels].sum())
    return centers, labels, inertia
