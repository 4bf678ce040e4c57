"""Layer 3: the EM driver over a row-chunked Dask array.

Each iteration builds one Dask graph: the E-step kernel mapped over the row
chunks, a tree reduction of their statistics with a fixed fan-in, then one
``compute`` on whatever scheduler is active (local threads by default, a
``distributed.Client`` when one exists).  The M-step runs on the driver.  The
pass that computes the statistics for the next parameters also gives the
log-likelihood of the current ones, so each iteration reads the data once.

The engine knows nothing of files or command lines.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
from dask.delayed import Delayed
from threadpoolctl import threadpool_limits

from daskem.exceptions import ConvergenceWarning
from daskem.kernels.gaussian import GaussianParams
from daskem.stats import GaussianStats, sum_stats

DEFAULT_SPLIT_EVERY = 8

logger = logging.getLogger("daskem")


@dataclass(frozen=True, eq=False)
class IterationInfo:
    """What one EM iteration did, as passed to callbacks.

    ``mean_log_likelihood`` (nats per row) belongs to the parameters the
    iteration started from; ``params`` are the ones its M-step produced.
    """

    iteration: int
    mean_log_likelihood: float
    change: float
    seconds: float
    params: GaussianParams


@dataclass(frozen=True, eq=False)
class EMResult:
    """Outcome of :func:`run_em`.

    ``history`` (n_iter,) holds the mean log-likelihood per row (nats) at the
    start of each iteration; ``lower_bound`` is its last entry.
    """

    params: GaussianParams
    n_iter: int
    converged: bool
    history: np.ndarray

    @property
    def lower_bound(self) -> float:
        return float(self.history[-1])


def statistics_graph(
    blocks: Sequence[Delayed],
    first_rows: Sequence[int],
    params: GaussianParams,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> Delayed:
    """One lazy pass: E-step statistics of every block, tree-reduced in a fixed order.

    Parameters
    ----------
    blocks : lazy (n_b, d) row blocks, in row order.
    first_rows : index of each block's first row, for error messages.
    params : the parameters to evaluate, shipped once to all tasks.
    split_every : fan-in of the reduction tree (>= 2).
    """
    shared = dask.delayed(params, traverse=False)
    parts = [
        dask.delayed(GaussianStats.from_chunk, pure=True)(block, shared, first_row)
        for block, first_row in zip(blocks, first_rows)
    ]
    combine = dask.delayed(sum_stats, pure=True)
    while len(parts) > 1:
        parts = [combine(parts[i : i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def row_blocks(X: da.Array) -> tuple[list[Delayed], list[int]]:
    """The row blocks of a 2-D Dask array with one feature chunk, and their first rows."""
    if X.ndim != 2 or X.numblocks[1] != 1:
        raise ValueError("expected a 2-D array chunked along rows only")
    blocks = list(X.to_delayed().ravel())
    first_rows = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]).astype(int).tolist()
    return blocks, first_rows


def compute_one_thread_blas(graph: Delayed) -> object:
    """Compute ``graph`` on the active scheduler with one BLAS thread per task.

    The kernels' matrix products are small (d × d), so BLAS threads only
    oversubscribe the cores that Dask already keeps busy: limiting them makes
    a local fit about twice as fast.  (Distributed workers already run with
    one BLAS thread.)
    """
    with threadpool_limits(limits=1, user_api="blas"):
        (result,) = dask.compute(graph)
    return result


def run_em(
    X: da.Array,
    params: GaussianParams,
    *,
    tol: float,
    max_iter: int,
    reg_covar: float,
    split_every: int = DEFAULT_SPLIT_EVERY,
    callbacks: Sequence[Callable[[IterationInfo], None]] = (),
) -> EMResult:
    """Iterate EM from ``params`` until the mean log-likelihood converges.

    Parameters
    ----------
    X : (N, d) Dask array chunked along rows only.
    params : initial parameters.
    tol : stop when the change of mean log-likelihood per row (nats) between
        two iterations is below ``tol``.
    max_iter : at most this many iterations (E-step + M-step each); reaching
        it without converging warns with :class:`ConvergenceWarning`.
    reg_covar : added to the diagonal of every covariance in the M-step.
    callbacks : called after every iteration with an :class:`IterationInfo`.
    """
    blocks, first_rows = row_blocks(X)
    history: list[float] = []
    previous = -np.inf
    converged = False
    for iteration in range(1, max_iter + 1):
        start = time.perf_counter()
        stats = compute_one_thread_blas(statistics_graph(blocks, first_rows, params, split_every))
        params = stats.m_step(reg_covar)
        current = stats.mean_log_likelihood
        change = current - previous
        history.append(current)
        info = IterationInfo(iteration, current, change, time.perf_counter() - start, params)
        logger.info(
            "iteration %4d  mean log-likelihood %.8g  change %.3g  %.2f s",
            iteration, current, change, info.seconds,
        )
        for callback in callbacks:
            callback(info)
        previous = current
        if abs(change) < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"EM did not converge in {max_iter} iterations (last change of the mean "
            f"log-likelihood {change:.3g} >= tol={tol:g}); increase max_iter or tol, "
            "or try other initial parameters",
            ConvergenceWarning,
            stacklevel=2,
        )
    return EMResult(params, len(history), converged, np.asarray(history))
