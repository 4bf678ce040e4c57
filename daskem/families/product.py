"""Families whose components are products over features of a distribution set by its mean.

For Bernoulli and Poisson components (and any exponential family of one
parameter per feature), ``log α_k + log p_k(x)`` is linear in x:

    log α_k + log p_k(x) = x · a_k + b_k + c(x)

with ``a_k`` (d,) and ``b_k`` from the parameters and ``c(x)`` from the row
alone.  So a block's log densities are one matrix product ``X A + b`` (b, K),
and its statistics are ``N_k = Σ w r`` and ``S_k = Σ w r x``, another product
``Rᵀ X`` (K, d).  The M-step is "mean of the sufficient statistic":
``α_k = N_k / Σ N``, ``m_kj = S_kj / N_k``, kept off the edges of the
parameter space by the family's floor.  A family supplies ``a``, ``b``, ``c``,
its domain check and its floor (:class:`ProductFamily`).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from daskem.exceptions import DomainError
from daskem.families.base import Family, MixtureStatistics
from daskem.kernels import fused
from daskem.kernels.checks import check_weights
from daskem.kernels.estep import normalise

#: Bytes of a block's (K, b) log densities: a cache-sized block.
BLOCK_BYTES = 2**20
#: Added to each component's responsibility sum, so that an empty component divides by a
#: tiny number rather than by zero (as the Gaussian M-step does).
NK_FLOOR = 10.0 * np.finfo(np.float64).eps


@dataclass(frozen=True, eq=False)
class MeanParams:
    """Parameters of a mixture of product components: weights (K,) summing to 1, and
    means (K, d) — each feature's success probability or rate under each component."""

    weights: np.ndarray
    means: np.ndarray

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]


@dataclass(frozen=True, eq=False)
class MeanStatistics(MixtureStatistics):
    """Summed statistics of some rows under one candidate's :class:`MeanParams`.

    ``log_likelihood`` ``Σ w log p(x)`` (nats), ``weight_sum`` ``Σ w``,
    ``n_samples`` rows, ``nk`` (K,) ``Σ w r``, ``s1`` (K, d) ``Σ w r x``, and
    the K rows of positive weight the parameters explain worst (their
    log-likelihoods, global indices and values).
    """

    log_likelihood: float
    weight_sum: float
    n_samples: int
    nk: np.ndarray
    s1: np.ndarray
    worst_log_prob: np.ndarray
    worst_index: np.ndarray
    worst_rows: np.ndarray

    def __add__(self, other: MeanStatistics) -> MeanStatistics:
        worst_log_prob, worst_index, worst_rows = self.worst_of_both(other)
        return MeanStatistics(
            self.log_likelihood + other.log_likelihood, self.weight_sum + other.weight_sum,
            self.n_samples + other.n_samples, self.nk + other.nk, self.s1 + other.s1,
            worst_log_prob, worst_index, worst_rows,
        )


class ProductFamily(Family):
    """A family of product components set by their means (see the module's docstring).

    Subclasses give :meth:`natural`, :meth:`row_terms`, :meth:`check_rows` and
    :meth:`floor`.
    """

    #: The family's name, as the command line and model files spell it.
    name: str

    @abstractmethod
    def natural(self, params: MeanParams) -> tuple[np.ndarray, np.ndarray]:
        """``A`` (d, K) and ``b`` (K,) with ``log α_k + log p_k(x) = x·A[:, k] + b_k + c(x)``."""

    @abstractmethod
    def row_terms(self, X: np.ndarray) -> np.ndarray | None:
        """``c(x)`` (n,) of each row, or None where it is 0."""

    @abstractmethod
    def check_rows(self, X: np.ndarray, first_row: int) -> None:
        """Raise :class:`~daskem.exceptions.InputError` naming the first value outside the family's domain."""

    @abstractmethod
    def floor(self, means: np.ndarray) -> np.ndarray:
        """The means (K, d) of an M-step, kept off the edges where the log density is infinite."""

    def chunk_statistics(
        self, X: np.ndarray, params: MeanParams, first_row: int, sample_weight: np.ndarray | None
    ) -> MeanStatistics:
        """The E-step of a chunk, block by block: log densities ``X A + b``, their log-sum-exp,
        and the moments ``Rᵀ X``; all in float64."""
        X = np.asarray(X, dtype=np.float64)
        self.check_rows(X, first_row)
        if sample_weight is not None:
            sample_weight = check_weights(sample_weight, len(X), first_row)
        natural, offsets = self.natural(params)
        natural_t, offsets = np.ascontiguousarray(natural.T), offsets[:, np.newaxis]
        k = params.n_components
        nk, s1 = np.zeros(k), np.zeros((k, X.shape[1]))
        log_prob_norm = np.empty(len(X))
        step = max(1, BLOCK_BYTES // (8 * k))
        for start in range(0, len(X), step):
            rows = slice(start, start + step)
            # (K, b): components first, so that the log-sum-exp runs over whole rows of b values
            log_prob_norm[rows], resp = normalise(natural_t @ X[rows].T + offsets)
            if sample_weight is not None:
                resp *= sample_weight[rows]
            nk += resp.sum(axis=1)
            s1 += resp @ X[rows]
        terms = self.row_terms(X)  # the same for every component: it moves log p(x), not r
        if terms is not None:
            log_prob_norm += terms
        weights = np.empty(0) if sample_weight is None else sample_weight
        worst = fused.worst_rows(log_prob_norm, weights, k)
        return MeanStatistics(
            float(log_prob_norm.sum() if sample_weight is None else sample_weight @ log_prob_norm),
            float(len(X) if sample_weight is None else sample_weight.sum()), len(X), nk, s1,
            log_prob_norm[worst], worst + first_row, X[worst],
        )

    def e_step(self, X: np.ndarray, params: MeanParams, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=np.float64)
        self.check_rows(X, first_row)
        natural, offsets = self.natural(params)
        log_prob = X @ natural + offsets  # (n, K)
        log_prob_norm = normalise(log_prob.T)[0]
        log_resp = log_prob - log_prob_norm[:, np.newaxis]
        terms = self.row_terms(X)
        return log_prob_norm if terms is None else log_prob_norm + terms, log_resp

    def m_step(self, stats: MeanStatistics, may_reseed: np.ndarray) -> tuple[MeanParams, list[tuple[int, int]]]:
        """``α = N / Σ N``, means ``S / N`` within the floor; collapsed components that may
        restart take weight 1/K and the worst-explained rows (within the floor) as means."""
        nk = stats.nk + NK_FLOOR
        weights, means = nk / nk.sum(), stats.s1 / nk[:, np.newaxis]
        collapsed = stats.collapsed()
        collapsed = collapsed[may_reseed[collapsed]][: len(stats.worst_index)]
        if collapsed.size:
            means[collapsed] = stats.worst_rows[: collapsed.size]
            weights[collapsed] = 1.0 / len(weights)
            weights = weights / weights.sum()
        restarts = list(zip(collapsed.tolist(), stats.worst_index[: collapsed.size].tolist()))
        return MeanParams(weights, self.floor(means)), restarts


def raise_outside(X: np.ndarray, index: int, first_row: int, domain: str) -> None:
    """Raise :class:`DomainError` for the value at flat ``index`` of X (n, d) (−1: none), naming its row
    and feature; ``domain`` says what the family takes."""
    if index >= 0:
        row, feature = divmod(index, X.shape[1])
        raise DomainError(f"row {first_row + row}, feature {feature} holds {float(X[row, feature])!r}; {domain}")
