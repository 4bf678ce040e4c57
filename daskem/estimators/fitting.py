"""Fitting, the part of :class:`~daskem.estimators.base.BaseMixture` that runs EM.

Initial parameters, checkpoints, warm starts and ``n_init`` runs that advance
together are the same for every component family; :func:`fit_together` fits
several estimators in shared passes (``select`` uses it).
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from daskem.engine.acceleration import NEAR_CYCLES, REMAINING_FRACTION
from daskem.engine.em import EMResult, EMState, IterationInfo, RunState, best_run, objective_name, run_em
from daskem.engine.initialization import InitSpec, initial_params, random_generator
from daskem.engine.moments import data_moments
from daskem.engine.passes import Blocks, progress_bar
from daskem.estimators.settings import SHAPING
from daskem.exceptions import ConvergenceWarning, InputError
from daskem.families.base import Family, Params
from daskem.io.checkpoints import checkpointing, comparable_seed, params_digest
from daskem.io.inputs import feature_names, fit_inputs
from daskem.io.zarr_rows import check_stored_chunks, is_path

if TYPE_CHECKING:
    from daskem.estimators.base import BaseMixture

logger = logging.getLogger("daskem")


class Fitting:
    """Fitting by EM, for an estimator with the settings of its ``SETTINGS`` (see
    :class:`~daskem.estimators.base.BaseMixture`)."""

    # ------------------------------------------------------------------ the family

    def _family(self) -> Family:
        """The component family with this estimator's settings (raises :class:`InputError` for bad ones)."""
        return self.FAMILY(**{name: getattr(self, name) for name in self.FAMILY.setting_names()})

    def _float32(self) -> bool:
        """Whether float32 rows are handed to the family as they are (else as float64)."""
        return False

    def _checked_initial_arrays(self, family: Family, n_features: int) -> dict[str, np.ndarray | None]:
        """The initial arrays given (``weights_init``, …), checked, by name (None where not given)."""
        k, d = self.n_components, n_features
        checked: dict[str, np.ndarray | None] = {}
        for name, shape in family.given_shapes(k, d).items():
            value = getattr(self, name)
            if value is None:
                checked[name] = None
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.shape != shape:
                raise InputError(f"{name} must have shape {shape} for {k} {family.label} components on {d} "
                                 f"features, got {array.shape}")
            if not np.isfinite(array).all():
                raise InputError(f"{name} holds NaN or infinite values")
            checked[name] = array
        weights = checked.get("weights_init")
        if weights is not None and (weights.min() < 0 or not np.isclose(weights.sum(), 1.0, atol=1e-6)):
            raise InputError(
                f"weights_init must be non-negative and sum to 1, got sum {weights.sum():.6g}"
            )
        family.check_given({name: array for name, array in checked.items() if array is not None})
        return checked

    # ------------------------------------------------------------------ fitting

    def fit(
        self,
        X: Any,
        y: None = None,
        *,
        variable: str | None = None,
        sample_weight: Any = None,
        callbacks: Sequence[Callable[[IterationInfo], None]] = (),
        checkpoint: str | os.PathLike | None = None,
    ) -> BaseMixture:
        """Fit the mixture by EM.

        Parameters
        ----------
        X : NumPy array, Dask array, pandas or Dask DataFrame, xarray
            DataArray, xarray Dataset (with ``variable``) or Zarr path/URL
            (with ``variable`` for a group), of shape (n_samples, n_features).
        variable : name of the variable or Zarr array holding the rows.
        sample_weight : (n_samples,) non-negative weights — NumPy, Dask or
            xarray — or the name of a variable beside ``variable``.  Integer
            weights fit as if rows were repeated.
        callbacks : called after each iteration of each run with an
            :class:`daskem.engine.em.IterationInfo`.
        checkpoint : a folder for a checkpoint after every iteration.  If it
            holds one from an interrupted fit of the same data with the same
            settings, the fit resumes from it and ends bitwise as the
            uninterrupted fit would have (see :mod:`daskem.io.checkpoints`).

        Returns
        -------
        self
        """
        fit_together([self], X, variable, sample_weight, checkpoint=checkpoint, callbacks=callbacks)
        if not self.converged_ and self.max_iter > 0:  # max_iter=0 asks for the start alone
            if self.acceleration == "none":
                last_change = self.history_[-1] - self.history_[-2] if self.n_iter_ > 1 else np.inf
                why = f"last change of the {objective_name(self.family_)} {last_change:.3g} >= tol={self.tol:g}"
            else:
                remaining = self._last_run.remaining(self.acceleration)
                why = ("the gain still to come, estimated "
                       + ("from too few passes" if np.isnan(remaining) else f"at {remaining:.3g} per row")
                       + f", is not yet below {self.tol * REMAINING_FRACTION:g} in {NEAR_CYCLES} cycles in a row")
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations ({why}); "
                "increase max_iter or tol, or try other initial parameters",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _warm_start_params(self, family: Family, n_features: int) -> Params | None:
        """The parameters a warm start continues from (None when not warm-starting), checked against the settings."""
        if not (self.warm_start and hasattr(self, "_params")):
            return None
        last, was = self._params, self.family_.label
        if (last.n_components, was, last.n_features) != (self.n_components, family.label, n_features):
            raise InputError(
                f"warm_start continues the last fit ({last.n_components} {was} components on "
                f"{last.n_features} features), but this fit asks for {self.n_components} "
                f"{family.label} components on {n_features} features; set warm_start=False to start afresh"
            )
        return last

    def _warm_run(self, family: Family, params: Params) -> RunState:
        """The run a warm start from ``params`` continues: under SQUAREM the last fit's own, its cycle
        included (so fits of a few passes each add up to one fit); else a new run from ``params``."""
        last = getattr(self, "_last_run", None)
        if self.acceleration == "squarem" and last is not None and last.family == family and last.fitted is params:
            return last.continued()
        return RunState(family, params, previous=self._last_change_reference())

    def _last_change_reference(self) -> float:
        """What a warm start's first change of log-likelihood is measured from: the last fit's
        lower bound, unless its last iteration restarted a component (then −inf, as within a fit)."""
        restarted = any(iteration == self.n_iter_ for iteration, _, _ in self.reseeded_)
        return -np.inf if restarted or not len(self.history_) else float(self.history_[-1])

    def _checkpoint_settings(self, family: Family, inits: dict[str, np.ndarray | None],
                             warm: Params | None) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: the family, the settings that shape the fit,
        and its start."""
        settings = {"family": family.name, **family.settings(), **{name: getattr(self, name) for name in (*SHAPING, *self.own_setting_names())}}
        settings["random_state"] = comparable_seed(self.random_state)
        for name, array in inits.items():
            settings[name] = None if array is None else hashlib.sha256(array.tobytes()).hexdigest()[:16]
        settings["warm_start_from"] = None if warm is None else params_digest(family, warm)
        return settings

    def _set_fitted(self, result: EMResult, family: Family, rows: FittedRows) -> None:
        self._params, self.family_, self._last_run = result.params, family, result.run
        self._stream = None  # a fit starts afresh: partial_fit starts from its parameters
        if rows.names is not None:
            self.feature_names_in_ = rows.names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self._weight_sum = result.weight_sum
        self.history_ = result.history
        self.reseeded_ = result.reseeded
        self.n_missing_values_, self.n_incomplete_rows_, self.n_empty_rows_ = result.missing
        self.n_absent_chunks_ = rows.n_absent_chunks
        self.n_features_in_ = rows.n_features

    def fit_predict(
        self, X: Any, y: None = None, *, variable: str | None = None, sample_weight: Any = None
    ) -> Any:
        """Fit, then return the component of each row (see :meth:`predict`)."""
        return self.fit(X, variable=variable, sample_weight=sample_weight).predict(X, variable=variable)

    def _check_settings(self) -> None:
        """Refuse (with :class:`~daskem.exceptions.InputError`) a setting outside its domain."""
        for setting in self.SETTINGS:
            setting.check(getattr(self, setting.name))
        self._family()


# ------------------------------------------------------------------ fitting together


@dataclass(frozen=True)
class FittedRows:
    """What models were fitted on: the number of features, their names (None when unnamed), and how
    many stored chunks of the data (and of weights read from the same store) were absent."""

    n_features: int
    names: np.ndarray | None
    n_absent_chunks: int


def fit_together(
    models: Sequence[BaseMixture], X: Any, variable: str | None, sample_weight: Any, *,
    checkpoint: str | os.PathLike | None, callbacks: Sequence[Callable[[IterationInfo], None]] = (),
) -> tuple[FittedRows, list[list[EMResult]]]:
    """Fit models in shared passes: one sample and k-means|| passes for every start, one read of the data
    per iteration for every run still iterating.  Each model's settings are checked first; each ends
    fitted with its best run.

    The models share the settings of a pass and of the loop — ``tol``,
    ``max_iter``, ``acceleration``, ``n_init``, ``init_params``, ``random_state``,
    ``chunk_rows``, ``split_every``, ``sample_dim``, ``feature_dim``,
    ``strict_chunks``, ``verbose`` — taken from the first; each has its own family, size, initial
    arrays and warm start.  Returns the rows' description and each model's
    ``n_init`` results, in order.  A checkpoint records every model's
    settings and resumes only when they all match.
    """
    for model in models:
        model._check_settings()
    lead = models[0]
    source, (X, data, weights) = X, fit_inputs(X, variable, sample_weight, sample_dim=lead.sample_dim,
                                               feature_dim=lead.feature_dim, chunk_rows=lead.chunk_rows)
    absent = check_stored_chunks(source, variable, sample_weight, strict=lead.strict_chunks)
    n_samples, n_features = data.shape
    largest = max(model.n_components for model in models)
    if n_samples < largest:
        raise InputError(
            f"the data have {n_samples} rows, fewer than n_components={largest}; reduce n_components or add data"
        )
    if lead.verbose:
        show_log_lines()
    families = [model._family() for model in models]
    inits = [model._checked_initial_arrays(family, n_features) for model, family in zip(models, families)]
    warm = [model._warm_start_params(family, n_features) for model, family in zip(models, families)]
    settings = [model._checkpoint_settings(*parts) for model, parts in zip(models, zip(families, inits, warm))]
    with (
        checkpointing(checkpoint, settings[0] if len(models) == 1 else {"candidates": settings}, data, weights,
                      inputs=[source] if is_path(source) else []) as saved,
        progress_bar(lead.verbose >= 2),
    ):
        starts = saved.load() if saved is not None else None
        if starts is not None:
            logger.info("resuming from the checkpoint in %s after iteration %d", checkpoint, starts.iteration)
        else:
            families = _for_data(models, families, data, weights, lead.split_every)
            if warm[0] is not None:  # continues the last fit, also in telling when it converges
                starts = EMState(0, [lead._warm_run(families[0], warm[0])])
            else:
                specs = [InitSpec(model.n_components, family, lead.init_params, given)
                         for model, family, given in zip(models, families, inits) for _ in range(lead.n_init)]
                starts = [(spec.family, params) for spec, params in zip(specs, initial_params(
                    data, weights, specs, rng=random_generator(lead.random_state), split_every=lead.split_every))]
        blocks = Blocks.of(data, weights, float32=any(model._float32() for model in models))
        results = run_em(blocks, starts, tol=lead.tol, max_iter=lead.max_iter, acceleration=lead.acceleration,
                         split_every=lead.split_every, callbacks=callbacks,
                         on_iteration=saved.save if saved is not None else None)
    runs = len(results) // len(models)
    fitted = FittedRows(n_features, feature_names(X), absent)
    by_model = [results[i : i + runs] for i in range(0, len(results), runs)]
    for model, model_results in zip(models, by_model):
        best = best_run(model_results)
        model._set_fitted(best, best.run.family, fitted)
    return fitted, by_model


def _for_data(models: Sequence[BaseMixture], families: list[Family], X: Any, sample_weight: Any,
              split_every: int) -> list[Family]:
    """Each model's family with the settings it leaves to the data resolved (see
    :meth:`~daskem.families.base.Family.for_data`): one pass for the data's moments, when one needs them."""
    needed = [family for family in families if family.moments_needed() is not None]
    moments = None if not needed else data_moments(
        Blocks.of(X, sample_weight), any(family.moments_needed() == "full" for family in needed),
        needed[0].nan_hint, split_every)
    return [family.for_data(model.n_components, X.shape[1], moments) for model, family in zip(models, families)]


def show_log_lines() -> None:
    """Make the per-iteration log lines visible when the user has not set up logging."""
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("daskem: %(message)s"))
        logger.addHandler(handler)

