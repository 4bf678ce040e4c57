"""Layer 3: initial parameters for EM.

The default, ``"k-means++"``, reads a bounded random sample of rows (never the
whole array at once), seeds k-means++ on it a few times, refines each seeding
with a few Lloyd steps, keeps the one with least inertia, and estimates weights, means and covariances from the resulting
hard assignment.  Parameters the user gives (``weights_init``, ``means_init``,
``precisions_init``) replace the estimated ones, as in scikit-learn; when all
three are given the data are not read at all.

New methods register a function ``(sample, n_components, rng) -> labels`` in
:data:`LABELLERS`.
"""

from __future__ import annotations

from collections.abc import Callable

import dask.array as da
import numpy as np

from daskem.kernels.gaussian import GaussianParams, m_step, weighted_moments
from daskem.kernels.kmeans import kmeans_plusplus, lloyd

#: Rows drawn from the data to initialise on.
DEFAULT_SAMPLE_ROWS = 50_000
#: Lloyd steps after each k-means++ seeding.
LLOYD_STEPS = 10
#: k-means++ seedings tried on the sample; the one with least inertia wins.
SEEDINGS = 4


def _kmeans_plusplus_labels(
    sample: np.ndarray, n_components: int, rng: np.random.Generator
) -> np.ndarray:
    """Best (least inertia) of a few k-means++ seedings, each refined by Lloyd steps."""
    best_labels, best_inertia = None, np.inf
    for _ in range(SEEDINGS):
        centers = kmeans_plusplus(sample, n_components, rng)
        _, labels, inertia = lloyd(sample, centers, max_iter=LLOYD_STEPS)
        if inertia < best_inertia:
            best_labels, best_inertia = labels, inertia
    return best_labels


#: Initialisation methods: each labels the rows of the sample with a component.
LABELLERS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "k-means++": _kmeans_plusplus_labels,
}


def draw_sample(X: da.Array, n_rows: int, rng: np.random.Generator) -> np.ndarray:
    """A uniform random sample of at most ``n_rows`` distinct rows, in row order.

    Reads chunk by chunk; only the sample is held in memory.

    Returns
    -------
    (min(n_rows, N), d) float64.
    """
    n_total = X.shape[0]
    if n_total <= n_rows:
        return np.asarray(X.compute(), dtype=np.float64)
    rows = np.sort(rng.choice(n_total, size=n_rows, replace=False))
    return np.asarray(X[rows].compute(), dtype=np.float64)


def initial_params(
    X: da.Array,
    n_components: int,
    *,
    init_params: str,
    reg_covar: float,
    rng: np.random.Generator,
    weights_init: np.ndarray | None = None,
    means_init: np.ndarray | None = None,
    precisions_init: np.ndarray | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
) -> GaussianParams:
    """Initial mixture parameters for the (N, d) rows of X.

    ``init_params`` names an entry of :data:`LABELLERS`; the given arrays, of
    shapes (K,), (K, d) and (K, d, d), override the estimated parameters.
    """
    if weights_init is not None and means_init is not None and precisions_init is not None:
        return GaussianParams.from_precisions(weights_init, means_init, precisions_init)
    sample = draw_sample(X, sample_rows, rng)
    labels = LABELLERS[init_params](sample, n_components, rng)
    resp = np.zeros((sample.shape[0], n_components))
    resp[np.arange(sample.shape[0]), labels] = 1.0
    # About the sample mean, so the moments stay accurate far from the origin.
    reference = np.repeat(sample.mean(axis=0, keepdims=True), n_components, axis=0)
    estimated = m_step(*weighted_moments(sample, resp, reference), reference, reg_covar)
    weights = estimated.weights if weights_init is None else weights_init
    means = estimated.means if means_init is None else means_init
    if precisions_init is None:
        return GaussianParams.from_covariances(weights, means, estimated.covariances)
    return GaussianParams.from_precisions(weights, means, precisions_init)
