"""Conjugate priors of product components: Beta–Bernoulli and Gamma–Poisson, for variational EM.

Each feature j of component k has one parameter with a conjugate prior —
Beta(a₀, b₀) on a Bernoulli probability, Gamma(shape a₀, rate b₀) on a Poisson
rate — and its variational posterior is of the same kind, a pair of arrays
``(a, b)`` (K, d), set by a pass's sums (see :mod:`daskem.families.product`):
``s1`` (K, d) ``Σ w r x`` over observed values and ``counts`` (K, d) ``Σ w r``
over the same values (``N_k`` less the responsibility of missing values):

- Beta–Bernoulli: ``a = a₀ + s1``, ``b = b₀ + counts − s1``; the E-step's
  coefficients ``E[log p] − E[log(1 − p)] = ψ(a) − ψ(b)`` and
  ``E[log(1 − p)] = ψ(b) − ψ(a + b)``; the mean ``a / (a + b)``.
- Gamma–Poisson: ``a = a₀ + s1``, ``b = b₀ + counts``; the coefficients
  ``E[log λ] = ψ(a) − log b`` and ``−E[λ] = −a / b``; the mean ``a / b``.

So ``E_q[log p_k(x)] = Σ_j x_j A[j, k] + B[j, k] + c(x)`` as for the point
families, with ``A``, ``B`` (d, K) the expected coefficients.  Each also gives
``KL(q ‖ prior)`` summed over its elements, for the evidence lower bound.
Pure NumPy and SciPy; everything is float64.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, gammaln

from daskem.kernels.variational import beta_divergence


class Conjugate:
    """A conjugate prior of one parameter per feature and component (see the module's docstring)."""

    @staticmethod
    def posterior(s1: np.ndarray, counts: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        """The posterior ``(a, b)`` (K, d) of sums ``s1`` and ``counts`` (K, d) under the prior ``(a0, b0)``."""
        raise NotImplementedError

    @staticmethod
    def sums(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`posterior` undone: ``s1`` and ``counts`` (K, d)."""
        raise NotImplementedError

    @staticmethod
    def expected_natural(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The expected coefficients ``E[A]``, ``E[B]`` (K, d) of ``log p(x) = x A + B + c(x)``."""
        raise NotImplementedError

    @staticmethod
    def mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The posterior mean of each parameter (K, d): a probability or a rate."""
        raise NotImplementedError

    @staticmethod
    def divergence(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> float:
        """``Σ KL(q ‖ prior)`` (nats) over every component and feature."""
        raise NotImplementedError


class BetaBernoulli(Conjugate):
    """A Beta(a₀, b₀) prior on each success probability: ``a`` and ``b`` count successes and failures, the
    prior's among them."""

    @staticmethod
    def posterior(s1: np.ndarray, counts: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        # failures are counts − s1 ≥ 0 but for rounding (s1 sums the same responsibilities where x = 1)
        return a0 + s1, b0 + np.maximum(counts - s1, 0.0)

    @staticmethod
    def sums(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        s1 = a - a0
        return s1, s1 + (b - b0)

    @staticmethod
    def expected_natural(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        digamma_b = digamma(b)
        return digamma(a) - digamma_b, digamma_b - digamma(a + b)

    @staticmethod
    def mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / (a + b)

    @staticmethod
    def divergence(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> float:
        return beta_divergence(a, b, a0, b0)


class GammaPoisson(Conjugate):
    """A Gamma(shape a₀, rate b₀) prior on each rate: as if a₀ events had been seen in b₀ rows; ``a`` and
    ``b`` are the events and rows, the prior's among them."""

    @staticmethod
    def posterior(s1: np.ndarray, counts: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        return a0 + s1, b0 + np.maximum(counts, 0.0)

    @staticmethod
    def sums(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> tuple[np.ndarray, np.ndarray]:
        return a - a0, b - b0

    @staticmethod
    def expected_natural(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return digamma(a) - np.log(b), -a / b

    @staticmethod
    def mean(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a / b

    @staticmethod
    def divergence(a: np.ndarray, b: np.ndarray, a0: float, b0: float) -> float:
        return float(np.sum((a - a0) * digamma(a) - gammaln(a) + gammaln(a0) + a0 * (np.log(b) - np.log(b0))
                            + a * (b0 - b) / b))
