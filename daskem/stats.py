"""Layer 2: sufficient statistics of a Gaussian mixture, a value type with ``+``.

A chunk of rows becomes a :class:`GaussianStats`; statistics of disjoint chunks
add up (associatively and commutatively) to the statistics of their union, so
any reduction tree gives the same sums.  The M-step only needs the total.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daskem.families.base import MixtureStatistics
from daskem.kernels.checks import check_ranges
from daskem.kernels.estep import ChunkStatistics, chunk_statistics
from daskem.kernels.gaussian import GaussianParams, m_step_arrays, reseed


@dataclass(frozen=True, eq=False)
class GaussianStats(ChunkStatistics, MixtureStatistics):
    """Summed statistics of some rows under the parameters of one iteration.

    The sums of :class:`~daskem.kernels.estep.ChunkStatistics` —
    log-likelihood, weight sum, row count, ``nk``, ``s1``, ``s2`` about the
    ``reference`` points of the pass, the K worst-explained rows and the range
    of each feature — plus:

    Attributes
    ----------
    covariance_type : the covariance type of the parameters that produced them.
    """

    covariance_type: str

    @classmethod
    def from_chunk(
        cls,
        X: np.ndarray,
        params: GaussianParams,
        first_row: int = 0,
        sample_weight: np.ndarray | None = None,
        missing: bool = False,
    ) -> GaussianStats:
        """Statistics of one chunk of rows X (n, d) under ``params`` (the E-step); ``missing``: whether NaN
        marks a missing value."""
        chunk = chunk_statistics(X, params, first_row, sample_weight, missing)
        return cls(**vars(chunk), covariance_type=params.covariance_type)

    def __add__(self, other: GaussianStats) -> GaussianStats:
        if other.reference is not self.reference and not np.array_equal(other.reference, self.reference):
            raise ValueError("cannot add statistics taken about different reference points")
        worst_log_prob, worst_index, worst_rows = self.worst_of_both(other)
        return GaussianStats(
            log_likelihood=self.log_likelihood + other.log_likelihood,
            weight_sum=self.weight_sum + other.weight_sum,
            n_samples=self.n_samples + other.n_samples,
            nk=self.nk + other.nk,
            s1=self.s1 + other.s1,
            s2=self.s2 + other.s2,
            reference=self.reference,
            covariance_type=self.covariance_type,
            worst_log_prob=worst_log_prob,
            worst_index=worst_index,
            worst_rows=worst_rows,
            minimum=np.minimum(self.minimum, other.minimum),
            maximum=np.maximum(self.maximum, other.maximum),
            missing=self.missing_of_both(other),
        )

    def check_spread(self, reg_covar: float) -> None:
        """Refuse data that no mixture density exists for, from the range of each feature.

        See :func:`daskem.kernels.checks.check_ranges` (constant features,
        identical rows, values float64 cannot square; a warning where
        ``reg_covar`` swamps a feature).
        """
        check_ranges(self.minimum, self.maximum, self.n_samples, reg_covar)

    def m_step(
        self, reg_covar: float, may_reseed: np.ndarray | None = None
    ) -> tuple[GaussianParams, list[tuple[int, int]]]:
        """New parameters from these statistics (the M-step).

        Collapsed components (see :meth:`collapsed`) that ``may_reseed`` (a
        (K,) boolean mask; all when None) allows restart at the rows the
        current parameters explain worst (see
        :func:`daskem.kernels.gaussian.reseed`).

        Returns
        -------
        params : the new parameters.
        reseeded : (component, row index) of each restarted component.
        """
        weights, means, covariances = m_step_arrays(
            self.nk, self.s1, self.s2, self.reference, reg_covar, self.covariance_type
        )
        collapsed = self.collapsed()
        if may_reseed is not None:
            collapsed = collapsed[may_reseed[collapsed]]
        collapsed = collapsed[: len(self.worst_index)]
        if collapsed.size:
            weights, means, covariances = reseed(
                weights, means, covariances, self.covariance_type, collapsed,
                self.worst_rows[: collapsed.size],
            )
        params = GaussianParams.from_covariances(weights, means, covariances, self.covariance_type)
        return params, list(zip(collapsed.tolist(), self.worst_index[: collapsed.size].tolist()))
