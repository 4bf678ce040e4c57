"""Gaussian mixtures (full, tied, diag and spherical covariances) as a :class:`~daskem.families.base.Family`.

The kernels stay specialised for speed (:mod:`daskem.kernels.estep`); this
module puts them behind the family interface.
"""

from __future__ import annotations

import numpy as np

from daskem.families.base import Family
from daskem.kernels import estep
from daskem.kernels.checks import raise_non_finite_log_likelihood
from daskem.kernels.gaussian import GaussianParams
from daskem.stats import GaussianStats


class GaussianFamily(Family):
    """Gaussian components; ``reg_covar`` (≥ 0) is added to every variance in the M-step."""

    def __init__(self, reg_covar: float) -> None:
        self.reg_covar = reg_covar

    def chunk_statistics(
        self, X: np.ndarray, params: GaussianParams, first_row: int, sample_weight: np.ndarray | None
    ) -> GaussianStats:
        return GaussianStats.from_chunk(X, params, first_row, sample_weight)

    def m_step(self, stats: GaussianStats, may_reseed: np.ndarray) -> tuple[GaussianParams, list[tuple[int, int]]]:
        return stats.m_step(self.reg_covar, may_reseed)

    def e_step(self, X: np.ndarray, params: GaussianParams, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        log_prob_norm, log_resp = estep.e_step(X, params)
        if not np.isfinite(log_prob_norm).all():
            raise_non_finite_log_likelihood(np.asarray(X, dtype=np.float64), log_prob_norm, first_row,
                                            "while scoring")
        return log_prob_norm, log_resp

    def check_first_pass(self, stats: GaussianStats) -> None:
        """Refuse data that no Gaussian mixture density exists for (see :meth:`GaussianStats.check_spread`)."""
        stats.check_spread(self.reg_covar)
