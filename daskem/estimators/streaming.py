"""Streaming, the part of :class:`~daskem.estimators.base.BaseMixture` that learns from each new batch.

``partial_fit`` is stepwise EM (Cappé & Moulines 2009; the arithmetic in
:mod:`daskem.kernels.stepwise`): the model keeps running statistics per unit
weight, and each batch — one E-step pass over it, through the engine's pass
machinery (:func:`daskem.engine.passes.statistics_pass`), at the current
parameters — is blended into them with the step ``γ = (t + 2) ** −decay``
before the family's M-step runs on them.  The running statistics persist in
model files, so a stream continues bitwise in another process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from daskem.engine.passes import Blocks, compute_one_thread_blas, progress_bar, statistics_pass
from daskem.estimators.fitting import show_log_lines
from daskem.exceptions import InputError
from daskem.families.base import Statistics
from daskem.io.inputs import fit_inputs
from daskem.io.zarr_rows import check_stored_chunks
from daskem.kernels.stepwise import blend_linear, step_size

if TYPE_CHECKING:
    from daskem.estimators.base import BaseMixture

logger = logging.getLogger("daskem")

@dataclass(frozen=True, eq=False)
class Stream:
    """Where stepwise EM stands after some batches.

    ``running`` holds the running statistics per unit weight (the arrays of
    :meth:`~daskem.families.base.Family.stepwise_dims`, float64, shapes from
    (K,) to (K, d, d)); ``log_likelihood`` the running mean log-likelihood
    per unit weight (nats), blended as they are; ``blended`` the batches
    blended into them (t; 0 after the first batch, or when started from
    fitted parameters); ``n_batches`` the batches that ``partial_fit`` has
    seen.
    """

    running: dict[str, np.ndarray]
    log_likelihood: float
    blended: int
    n_batches: int


class Streaming:
    """Stepwise EM for an estimator with the settings of its ``SETTINGS`` (see
    :class:`~daskem.estimators.base.BaseMixture`)."""

    _stream: Stream | None

    @property
    def n_batches_(self) -> int:
        """The batches that :meth:`partial_fit` has blended into the model (0 after ``fit``)."""
        self.params  # noqa: B018 — NotFittedError when not fitted
        stream = getattr(self, "_stream", None)
        return 0 if stream is None else stream.n_batches

    def partial_fit(self, X: Any, y: None = None, *, variable: str | None = None,
                    sample_weight: Any = None) -> BaseMixture:
        """Learn from one more batch of rows by stepwise EM (Cappé & Moulines 2009).

        The model keeps running statistics per unit weight ``s``: for Gaussians
        each component's weight, mean and scatter about that mean; for product
        families (Bernoulli, Poisson) each component's weight, sums and counts
        of missing values.  Each call

        1. reads the batch once: the E-step at the current parameters gives its
           statistics, divided by its weight (rows, or the sum of
           ``sample_weight``; rows with nothing observed weigh 0): ``s̄``;
        2. blends them in, ``s ← (1 − γ) s + γ s̄`` with ``γ = (t + 2) ** −decay``,
           t the batches blended before this one (Gaussian moments by Chan's
           pairwise update, exact far from the origin; see
           :mod:`daskem.kernels.stepwise`); the running mean log-likelihood
           blends alike and becomes ``lower_bound_``;
        3. runs the family's M-step on ``s`` (no component is restarted).

        The first call on an unfitted model runs ``fit`` on the batch (with the
        estimator's settings: ``n_init``, ``init_params``, …), then takes the
        batch's statistics at the fitted parameters as ``s`` (t = 0): the
        parameters are the fit's.  A fitted model without running statistics —
        after ``fit``, or loaded from a model file that ``fit`` wrote — starts
        from its parameters instead: ``s`` are their expected statistics (the
        statistics whose M-step gives them back, ``reg_covar`` included) and the
        next batch is blended in with ``γ = 2 ** −decay``, as a second batch.
        With ``decay=1`` and batches of equal weight, the running statistics
        are the plain average of the batches' statistics.

        Saved (``save``), the model keeps its running statistics, t and
        ``decay``: ``daskem.load(path).partial_fit(next_batch)`` gives bitwise
        what continuing in the same process gives (with the same
        ``chunk_rows`` and ``split_every``, which files do not record).
        ``fit`` starts afresh and drops them.

        Parameters
        ----------
        X : one batch, any input ``fit`` takes, (n_samples, n_features); its
            features must be the model's.
        variable : name of the variable or Zarr array holding the rows.
        sample_weight : (n_samples,) non-negative weights, or the name of a
            variable beside ``variable``.

        Returns
        -------
        self, with ``n_batches_`` one more.

        Raises
        ------
        InputError
            An empty batch, one of another number of features (or feature
            names) than the model's, one of no weight, or a ``decay`` outside
            (0.5, 1].
        """
        self._check_settings()
        if not hasattr(self, "_params"):
            self.fit(X, variable=variable, sample_weight=sample_weight)
            family = self.family_
            stats, absent = self._batch_statistics(X, variable, sample_weight)
            self._stream = Stream(family.stepwise_statistics(stats), stats.mean_log_likelihood, 0, 1)
            self.lower_bound_ = self._stream.log_likelihood
            self._log_batch(stats, 1.0)
            return self
        family, stream = self.family_, getattr(self, "_stream", None)
        if stream is None:
            stream = Stream(family.stepwise_start(self.params), float(self.lower_bound_), 0, 0)
        stats, absent = self._batch_statistics(X, variable, sample_weight)
        gamma = step_size(stream.blended, self.decay)
        running = family.stepwise_blend(stream.running, family.stepwise_statistics(stats), gamma)
        log_likelihood = (float(blend_linear(stream.log_likelihood, stats.mean_log_likelihood, gamma))
                          if np.isfinite(stream.log_likelihood) else stats.mean_log_likelihood)
        params = family.stepwise_m_step(running)
        self._params = params
        self._stream = Stream(running, log_likelihood, stream.blended + 1, stream.n_batches + 1)
        self.lower_bound_ = log_likelihood
        self.n_missing_values_, self.n_incomplete_rows_, self.n_empty_rows_ = stats.missing
        self.n_absent_chunks_ = absent
        self._log_batch(stats, gamma)
        return self

    def _batch_statistics(self, X: Any, variable: str | None, sample_weight: Any) -> tuple[Statistics, int]:
        """One E-step pass over a batch at the current parameters: its summed statistics, and how many
        stored chunks of it were absent."""
        rows, data, weights = fit_inputs(X, variable, sample_weight, sample_dim=self.sample_dim,
                                         feature_dim=self.feature_dim, chunk_rows=self.chunk_rows)
        self._check_features(rows, data.shape[1])
        absent = check_stored_chunks(X, variable, sample_weight, strict=self.strict_chunks)
        if self.verbose:
            show_log_lines()
        blocks = Blocks.of(data, weights, float32=self._float32())
        with progress_bar(self.verbose >= 2):
            ((stats,),) = compute_one_thread_blas(statistics_pass(blocks, self.split_every)(
                [(self.family_, self.params)]))
        if not stats.weight_sum > 0:
            raise InputError(f"the batch of {data.shape[0]} rows carries no weight (every row weighted 0 or with "
                             "nothing observed); partial_fit learns nothing from it")
        return stats, absent

    def _log_batch(self, stats: Statistics, gamma: float) -> None:
        if self.verbose:
            logger.info("batch %4d  mean log-likelihood %.8g  running %.8g  step %.3g",
                        self._stream.n_batches, stats.mean_log_likelihood, self._stream.log_likelihood, gamma)
