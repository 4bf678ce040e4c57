"""Gaussian mixtures (full, tied, diag and spherical covariances) as a :class:`~daskem.families.base.Family`.

The kernels stay specialised for speed (:mod:`daskem.kernels.estep`); this
module puts them behind the family interface.
"""

from __future__ import annotations

import numpy as np

from daskem.families.base import Family
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

    def check_first_pass(self, stats: GaussianStats) -> None:
        """Refuse data that no Gaussian mixture density exists for (see :meth:`GaussianStats.check_spread`)."""
        stats.check_spread(self.reg_covar)
