"""Mixtures of Bernoulli components: binary features (0 or 1), one success probability
per feature and component (see :mod:`daskem.families.product`).

``log p_k(x) = Σ_j x_j log p_kj + (1 − x_j) log(1 − p_kj)``, so ``a_k = logit p_k``
and ``b_k = log α_k + Σ_j log(1 − p_kj)``.  Probabilities stay within
``[min_probability, 1 − min_probability]``, so that a feature a component never
(or always) sees does not make the log-likelihood of another row −inf.
"""

from __future__ import annotations

import numpy as np

from daskem.exceptions import InputError
from daskem.families.base import MISSING, check_missing
from daskem.families.product import MeanParams, ProductFamily, raise_outside
from daskem.kernels import fused

#: The default floor of the probabilities.
MIN_PROBABILITY = 1e-10


class BernoulliFamily(ProductFamily):
    """Bernoulli components; ``min_probability`` in (0, ½) bounds every probability away from 0 and 1."""

    name = "bernoulli"
    means_are = "success probabilities"
    means_range = (0.0, 1.0)

    def __init__(self, min_probability: float = MIN_PROBABILITY, missing: str = MISSING[0]) -> None:
        if not (isinstance(min_probability, (int, float, np.floating)) and 0 < min_probability < 0.5):
            raise InputError(f"min_probability must be a number in (0, 0.5), got {min_probability!r}")
        check_missing(missing)
        self.min_probability = min_probability
        self.missing = missing

    def natural(self, params: MeanParams) -> tuple[np.ndarray, np.ndarray]:
        p = params.means
        return (np.log(p) - np.log1p(-p)).T, np.log1p(-p).T

    def row_terms(self, X: np.ndarray) -> None:
        return None

    def check_rows(self, X: np.ndarray, first_row: int, rows: np.ndarray | None = None) -> None:
        raise_outside(X, fused.first_not_binary(X), first_row, "a Bernoulli mixture takes 0 or 1 only (mark an "
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
