"""The contract between the EM engine and a component family.

A mixture's E-step needs only each component's log density; its M-step for
the weights is always ``α_k = N_k / N``; everything else — the statistics a
chunk returns, the M-step of the components' own parameters, how a collapsed
component restarts, what to check on the data — belongs to the family.  The
engine (:mod:`daskem.engine`) runs EM through this contract alone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Protocol

import numpy as np

#: A family's parameters for one candidate mixture (for Gaussians a
#: :class:`~daskem.kernels.gaussian.GaussianParams`); opaque to the engine.
Params = Any


class Statistics(Protocol):
    """Summed statistics of some rows under one candidate's parameters.

    Statistics of disjoint chunks add (``+``, associative and commutative,
    given the same parameters) to those of their union, so any reduction tree
    gives the same sums.
    """

    #: ``Σ_i w_i log p(x_i)`` (nats) and ``Σ_i w_i`` over the rows summed.
    log_likelihood: float
    weight_sum: float

    def __add__(self, other: Any) -> Any: ...

    @property
    def mean_log_likelihood(self) -> float:
        """Log-likelihood per unit of weight (per row when unweighted), in nats."""

    def collapsed(self) -> np.ndarray:
        """Indices of the components holding less responsibility than one average row."""


class MixtureStatistics:
    """What every family's statistics share, for a dataclass with the fields
    ``log_likelihood``, ``weight_sum``, ``n_samples``, ``nk`` (K,) and the K
    worst-explained rows ``worst_log_prob``, ``worst_index``, ``worst_rows``."""

    @property
    def mean_log_likelihood(self) -> float:
        """Log-likelihood per unit of weight (per row when unweighted), in nats."""
        return self.log_likelihood / self.weight_sum

    def collapsed(self) -> np.ndarray:
        """Components holding less responsibility than one average row: their indices."""
        return np.flatnonzero(self.nk < self.weight_sum / self.n_samples)

    def worst_of_both(self, other: MixtureStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The K rows of both that the parameters explain worst (ties: the earlier row):
        their log-likelihoods, indices and values."""
        log_prob = np.concatenate([self.worst_log_prob, other.worst_log_prob])
        index = np.concatenate([self.worst_index, other.worst_index])
        keep = np.lexsort((index, log_prob))[: len(self.nk)]
        return log_prob[keep], index[keep], np.concatenate([self.worst_rows, other.worst_rows])[keep]


class Family(ABC):
    """A component family: what EM needs to fit mixtures of it."""

    @abstractmethod
    def chunk_statistics(
        self, X: np.ndarray, params: Params, first_row: int, sample_weight: np.ndarray | None
    ) -> Statistics:
        """The E-step of one chunk: its statistics under ``params``.

        ``X`` (n, d) holds the rows in the dtype the pass reads them in (float64,
        or float32 for the float32 path), ``first_row`` is the index of its first
        row in the data, ``sample_weight`` (n,) its weights or None for ones.
        """

    @abstractmethod
    def m_step(self, stats: Statistics, may_reseed: np.ndarray) -> tuple[Params, list[tuple[int, int]]]:
        """New parameters from summed statistics.

        Collapsed components (see :meth:`Statistics.collapsed`) that
        ``may_reseed`` ((K,) booleans) allows restart; returns the parameters
        and (component, row) for each restart.
        """

    @abstractmethod
    def e_step(self, X: np.ndarray, params: Params, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores of rows X (n, d) (any real dtype; ``first_row`` names them in errors): ``log p(x_i)``
        (n,) in nats and the log responsibilities (n, K), float64."""

    def check_first_pass(self, stats: Statistics) -> None:
        """Refuse data the family cannot fit, from the first pass's statistics (nothing by default)."""
