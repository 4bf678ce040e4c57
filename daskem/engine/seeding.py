"""Clusterings of in-memory rows that a start is estimated from, and how a start reports its progress.

k-means++ seedings refined by Lloyd steps (the best of a few by inertia, or
each kept for judging), Lloyd to convergence, random responsibilities and
random rows: each labels the sampled rows, from which
:mod:`daskem.engine.initialization` estimates the start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from daskem.engine.passes import one_blas_thread
from daskem.kernels.kmeans import kmeans_plusplus, lloyd

logger = logging.getLogger("daskem")

#: Rows drawn from the data to initialise on.
DEFAULT_SAMPLE_ROWS = 50_000
#: Lloyd steps after each k-means++ seeding.
LLOYD_STEPS = 10
#: k-means++ seedings tried; the one with least inertia wins (but see ``JUDGED_MAX_COMPONENTS``).
SEEDINGS = 4
#: Rows × centres of a k-means++ seeding, at most (what K=64 costs on the default sample), and
#: the least rows a centre it may seed on.  On 50,000 sampled rows at K=256, seeding on 12,500
#: gave the same inertia after Lloyd's steps (medians of 6 seeds, clusters apart or overlapping),
#: 6,000 a worse one where clusters lay apart.
SEEDING_WORK = 64 * DEFAULT_SAMPLE_ROWS
SEEDING_ROWS_PER_CENTRE = 48


def seedings(n_components: int) -> int:
    """k-means++ seedings to try for K components: ``SEEDINGS`` up to K=64, fewer above.

    With many components one seeding already averages over many draws, and
    each costs O(n K² d) on the sample.
    """
    return max(1, min(SEEDINGS, 256 // n_components))


def _seeding_rows(n_rows: int, n_components: int, rng: np.random.Generator) -> np.ndarray | slice:
    """The rows (of ``n_rows``) that a k-means++ seeding of K centres draws from: all, or a random subset.

    A seeding costs O(n K log K d), where Lloyd's steps that follow cost O(n K d) each:
    at large K it is seeded on at most ``SEEDING_WORK / K`` rows (but never fewer
    than ``SEEDING_ROWS_PER_CENTRE`` a centre), as scikit-learn's MiniBatchKMeans
    seeds on a subset.  Lloyd's steps then use every row.
    """
    size = max(SEEDING_WORK // n_components, SEEDING_ROWS_PER_CENTRE * n_components)
    if size >= n_rows:
        return slice(None)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


class Progress:
    """Labelled progress of one initialisation: a log line per step, at INFO when it may take a while."""

    def __init__(self, label: str, steps: int, long: bool) -> None:
        self.label, self.steps, self.done = label, steps, 0
        self.level = logging.INFO if long else logging.DEBUG
        self.start = time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        logger.log(self.level, "%s: %s (step %d of %d, %.2f s)", self.label, what, self.done, self.steps,
                   time.perf_counter() - self.start)


def no_progress(what: str) -> None:
    """The step callback of an initialisation nobody watches."""


def best_kmeans_plusplus(
    X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, step: Callable[[str], None] = no_progress
) -> np.ndarray:
    """Labels (n,) of the best (least inertia) of :func:`seedings` k-means++ seedings refined by ``LLOYD_STEPS``.

    ``step`` is called after each seeding, with what was done.
    """
    found = []  # (inertia, labels) of each seeding
    count = seedings(k)
    for i in range(count):
        found.append(kmeans_plusplus_refined(X, w, k, rng)[1:])
        step(f"seeding {i + 1} of {count} and {LLOYD_STEPS} Lloyd steps")
    return min(found, key=lambda pair: pair[0])[1]


def kmeans_plusplus_refined(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, float, np.ndarray]:
    """One k-means++ seeding of rows X (n, d) refined by ``LLOYD_STEPS``: centres (K, d), inertia, labels (n,)."""
    seeds = _seeding_rows(len(X), k, rng)
    with one_blas_thread():  # Lloyd's threads each run their own products
        centres, labels, inertia = lloyd(X, kmeans_plusplus(X[seeds], k, rng, w[seeds]), LLOYD_STEPS, weights=w)
    return centres, inertia, labels


def _kmeans(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    with one_blas_thread():
        return lloyd(X, kmeans_plusplus(X, k, rng, w), max_iter=300, weights=w)[1]


def _random(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    resp = rng.uniform(size=(len(X), k))
    return resp / resp.sum(axis=1, keepdims=True)


def _random_from_data(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.full(len(X), -1)
    labels[rng.choice(len(X), size=k, replace=False, p=w / w.sum())] = np.arange(k)
    return labels


#: Sample-based methods: each assigns the sample rows to components, as labels (n,) (−1:
#: none) or, for "random", as responsibilities (n, K).
SAMPLE_METHODS: dict[str, Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "k-means++": best_kmeans_plusplus,
    "kmeans": _kmeans,
    "random": _random,
    "random_from_data": _random_from_data,
}
