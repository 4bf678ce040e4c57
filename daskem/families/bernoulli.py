"""Mixtures of Bernoulli components: binary features (0 or 1), one success probability
per feature and component (see :mod:`daskem.families.product`).

``log p_k(x) = Σ_j x_j log p_kj + (1 − x_j) log(1 − p_kj)``, so ``a_k = logit p_k``
and ``b_k = log α_k + Σ_j log(1 − p_kj)``.  Probabilities stay within
``[min_probability, 1 − min_probability]``, so that a feature a component never
(or always) sees does not make the log-likelihood of another row −inf.
"""

from __future__ import annotations

import numpy as np

from daskem.families.base import MISSING
from daskem.families.product import MeanParams, ProductFamily, raise_outside
from daskem.kernels import scans
from daskem.settings import Setting

#: The floor of the probabilities: every one stays within ``[min_probability, 1 − min_probability]``.
MIN_PROBABILITY = Setting("min_probability", 1e-10, "Every probability is kept within [p, 1 - p].", float,
                          gt=0, lt=0.5)


class BernoulliFamily(ProductFamily):
    """Bernoulli components; ``min_probability`` in (0, ½) bounds every probability away from 0 and 1."""

    name = "bernoulli"
    means_are = "success probabilities"
    means_range = (0.0, 1.0)

    SETTINGS = (MIN_PROBABILITY, MISSING)

    min_probability: float

    def natural(self, params: MeanParams) -> tuple[np.ndarray, np.ndarray]:
        p = params.means
        return (np.log(p) - np.log1p(-p)).T, np.log1p(-p).T

    def row_terms(self, X: np.ndarray) -> None:
        return None

    def check_rows(self, X: np.ndarray, first_row: int, rows: np.ndarray | None = None) -> None:
        raise_outside(X, scans.first_not_binary(X), first_row, "a Bernoulli mixture takes 0 or 1 only (mark an "
                      "unknown value as NaN, a missing value)", rows)

    def floor(self, means: np.ndarray) -> np.ndarray:
        return np.clip(means, self.min_probability, 1.0 - self.min_probability)

    def variance(self, means: np.ndarray) -> np.ndarray:
        return means * (1.0 - means)

    def random_means(self, n_components: int, n_features: int, rng: np.random.Generator) -> np.ndarray:
        """From Beta(½, ½): most near 0 or 1; kept within [0.02, 0.98]."""
        return np.clip(rng.beta(0.5, 0.5, size=(n_components, n_features)), 0.02, 0.98)

    def draw(self, means: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return (rng.random((n_samples, len(means))) < means).astype(np.float64)
