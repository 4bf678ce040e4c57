"""One pass for the data's weighted mean and covariance (what a prior left to the data needs).

The sums are taken chunk by chunk about each chunk's mean and combined over
the pass's fixed tree (see :mod:`daskem.kernels.moments`), so they are exact
far from the origin and do not depend on the order tasks finish in.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence

import numpy as np

from daskem.engine.passes import DEFAULT_SPLIT_EVERY, Blocks, compute_one_thread_blas, map_reduce
from daskem.kernels.checks import check_weights, raise_non_finite
from daskem.kernels.moments import Moments, chunk_moments


def data_moments(data: Blocks, full: bool, hint: str = "", split_every: int = DEFAULT_SPLIT_EVERY) -> Moments:
    """One pass: the weighted mean and scatter of all the rows (the full matrix when ``full``, else its
    diagonal), exact far from the origin (see :mod:`daskem.kernels.moments`).  Refuses NaN and infinite values,
    naming the first row, with ``hint`` (what else the user may do)."""
    (moments,) = compute_one_thread_blas(map_reduce(data, _chunk_moments, _sum_moments, full, hint,
                                                    split_every=split_every))
    return moments


def _chunk_moments(rows: np.ndarray, weights: np.ndarray | None, first_row: int, full: bool, hint: str) -> Moments:
    raise_non_finite(rows, first_row, "while computing the data's mean and covariance", hint)
    return chunk_moments(rows, None if weights is None else check_weights(weights, len(rows), first_row), full)


def _sum_moments(parts: Sequence[Moments]) -> Moments:
    return functools.reduce(operator.add, parts)
