"""Layer 2: sufficient statistics of a Gaussian mixture, a value type with ``+``.

A chunk of rows becomes a :class:`GaussianStats`; statistics of disjoint chunks
add up (associatively and commutatively) to the statistics of their union, so
any reduction tree gives the same sums.  The M-step only needs the total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daskem.kernels.gaussian import GaussianParams, chunk_statistics, m_step


@dataclass(frozen=True, eq=False)
class GaussianStats:
    """Summed statistics of some rows under the parameters of one iteration.

    Attributes
    ----------
    log_likelihood : float, ``Σ_i log p(x_i | Θ)`` in nats.
    n_samples : float, number of rows summed.
    nk : (K,) ``Σ_i r_ik``.
    s1 : (K, d) ``Σ_i r_ik (x_i − c_k)``.
    s2 : (K, d, d) ``Σ_i r_ik (x_i − c_k)(x_i − c_k)ᵀ``.
    reference : (K, d) the points ``c_k`` the moments are taken about (the
        means of the parameters that produced the statistics).
    """

    log_likelihood: float
    n_samples: float
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    reference: np.ndarray

    @classmethod
    def from_chunk(cls, X: np.ndarray, params: GaussianParams, first_row: int = 0) -> GaussianStats:
        """Statistics of one chunk of rows X (n, d) under ``params`` (the E-step)."""
        return cls(*chunk_statistics(X, params, first_row), reference=params.means)

    def __add__(self, other: GaussianStats) -> GaussianStats:
        if other.reference is not self.reference and not np.array_equal(
            other.reference, self.reference
        ):
            raise ValueError("cannot add statistics taken about different reference points")
        return GaussianStats(
            log_likelihood=self.log_likelihood + other.log_likelihood,
            n_samples=self.n_samples + other.n_samples,
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            reference=self.reference,
        )

    @property
    def mean_log_likelihood(self) -> float:
        """Log-likelihood per row, in nats."""
        return self.log_likelihood / self.n_samples

    def m_step(self, reg_covar: float) -> GaussianParams:
        """New parameters from these statistics (the M-step)."""
        return m_step(self.nk, self.s1, self.s2, self.reference, reg_covar)


def sum_stats(parts: list[GaussianStats]) -> GaussianStats:
    """Add statistics left to right (a fixed order, so the result is reproducible)."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total
