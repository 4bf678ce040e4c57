"""What every mixture estimator shares (:class:`BaseMixture`).

Fitting (initial parameters, checkpoints, warm starts, ``n_init`` runs that
advance together), prediction and scoring (in memory or lazily, to Zarr), the
information criteria and model files are the same for every component family;
a family's estimator (:class:`daskem.estimators.gaussian.GaussianMixture`, …) adds its
settings, its start and its model-file layout through the hooks below.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import numbers
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, DensityMixin

from daskem.engine.acceleration import ACCELERATIONS, NEAR_CYCLES, REMAINING_FRACTION
from daskem.engine.em import MAX_RUNS, EMResult, EMState, IterationInfo, RunState, best_run, run_em
from daskem.engine.initialization import INIT_METHODS, InitSpec, initial_params, random_generator
from daskem.engine.passes import Blocks
from daskem.exceptions import ConvergenceWarning, InputError, ModelFileError, NotFittedError
from daskem.families.base import Family, Params
from daskem.io.checkpoints import checkpointing, comparable_seed, params_digest
from daskem.io.inputs import (
    as_row_chunked,
    as_rows,
    check_stored_chunks,
    feature_names,
    fit_inputs,
    in_memory_rows,
    is_path,
    row_coordinate,
    stacked_dims,
)
from daskem.io.model_files import (
    described,
    model_attributes,
    params_from_dataset,
    params_history,
    params_to_dataset,
    stored_feature_names,
    write_dataset,
)
from daskem.kernels.checks import is_integer
from daskem.version import __version__

logger = logging.getLogger("daskem")

#: The fitted attributes that count missing values: values, rows with one, rows with nothing
#: observed (left out of the fit), as the last pass saw them.
MISSING_COUNTS = ("n_missing_values_", "n_incomplete_rows_", "n_empty_rows_")

# Defaults of the settings every estimator shares, declared here once: the estimators'
# signatures, select, the command line and job files read them.
TOL = 1e-3
MAX_ITER = 100
ACCELERATION = ACCELERATIONS[0]
N_INIT = 1
INIT_PARAMS = "k-means++"


class BaseMixture(DensityMixin, BaseEstimator):
    """A mixture fitted by EM, out of core: what every family's estimator shares.

    A subclass names its :attr:`FAMILY` and takes, besides the settings of
    :attr:`SETTINGS` and ``weights_init``, ``means_init``, ``random_state``,
    ``warm_start``, ``verbose``, ``sample_dim``, ``feature_dim`` and
    ``strict_chunks``, the family's own settings under their names
    (``covariance_type`` and ``reg_covar``; ``min_probability``; …) and its
    other initial arrays (``precisions_init``).  It may override :meth:`_float32`.
    """

    #: The component family.
    FAMILY: type[Family]
    #: The settings that shape a fit, besides the family's: a checkpoint resumes only when they match.
    SETTINGS: tuple[str, ...] = ("n_components", "tol", "max_iter", "acceleration", "n_init", "init_params",
                                 "chunk_rows", "split_every")

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = getattr(self, "missing", None) == "nan"  # NaN is a missing value
        return tags

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
        weights = checked["weights_init"]
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
        self._check_settings()
        rows, (results,) = fit_together([self], X, variable, sample_weight, checkpoint=checkpoint,
                                        callbacks=callbacks)
        self._set_fitted(best_run(results), self._family(), rows)
        if not self.converged_ and self.max_iter > 0:  # max_iter=0 asks for the start alone
            if self.acceleration == "none":
                last_change = self.history_[-1] - self.history_[-2] if self.n_iter_ > 1 else np.inf
                why = f"last change of the mean log-likelihood {last_change:.3g} >= tol={self.tol:g}"
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
        last, was = self._params, self._fitted_family.label
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
        return -np.inf if restarted else self.lower_bound_

    def _checkpoint_settings(self, family: Family, inits: dict[str, np.ndarray | None],
                             warm: Params | None) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: the family, the settings that shape the fit,
        and its start."""
        settings = {"family": family.name, **family.settings(), **{name: getattr(self, name) for name in self.SETTINGS}}
        settings["random_state"] = comparable_seed(self.random_state)
        for name, array in inits.items():
            settings[name] = None if array is None else hashlib.sha256(array.tobytes()).hexdigest()[:16]
        settings["warm_start_from"] = None if warm is None else params_digest(family, warm)
        return settings

    def _set_fitted(self, result: EMResult, family: Family, rows: FittedRows) -> None:
        self._params, self._fitted_family, self._last_run = result.params, family, result.run
        if rows.names is not None:
            self.feature_names_in_ = rows.names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
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
        if not is_integer(self.n_components) or self.n_components < 1:
            raise InputError(f"n_components must be an integer >= 1, got {self.n_components!r}")
        if self.init_params not in INIT_METHODS:
            raise InputError(f"init_params={self.init_params!r} is not supported; choose one of {INIT_METHODS}")
        check_number(self, "tol", 0.0)
        if self.acceleration not in ACCELERATIONS:
            raise InputError(f"acceleration={self.acceleration!r} is not supported; choose one of {ACCELERATIONS}")
        for name, low in (("max_iter", 0), ("n_init", 1), ("split_every", 2)):
            value = getattr(self, name)
            if not is_integer(value) or value < low:
                raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.n_init > MAX_RUNS:
            raise InputError(f"n_init must be at most {MAX_RUNS} (random starts run together), got {self.n_init}")
        if self.chunk_rows is not None and (not is_integer(self.chunk_rows) or self.chunk_rows < 1):
            raise InputError(f"chunk_rows must be a positive integer, got {self.chunk_rows!r}")
        if not isinstance(self.strict_chunks, (bool, np.bool_)):
            raise InputError(f"strict_chunks must be True or False, got {self.strict_chunks!r}")
        if not (
            self.random_state is None
            or is_integer(self.random_state)
            or isinstance(self.random_state, (np.random.Generator, np.random.RandomState))
        ):
            raise InputError(
                "random_state must be None, an integer, a numpy.random.Generator or a numpy.random.RandomState, "
                f"got {self.random_state!r}"
            )
        self._family()

    # --------------------------------------------------------- fitted attributes

    @property
    def params(self) -> Params:
        """The fitted parameters as one value."""
        try:
            return self._params
        except AttributeError:
            raise NotFittedError(  # scikit-learn's words, then ours
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator (or daskem.load() a saved model)."
            ) from None

    @property
    def lower_bounds_(self) -> list[float]:
        """The mean log-likelihood at the start of each iteration of the best run (scikit-learn's name
        for :attr:`history_`)."""
        return [float(value) for value in self.history_]

    @property
    def weights_(self) -> np.ndarray:
        return self.params.weights

    @property
    def means_(self) -> np.ndarray:
        return self.params.means

    def _n_parameters(self) -> int:
        """Free parameters of the fitted mixture (for :meth:`bic` and :meth:`aic`)."""
        params = self.params
        return self._fitted_family.n_parameters(params.n_components, params.n_features)

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture (seeded by ``random_state``).

        Returns
        -------
        X : (n_samples, d) float64, grouped by component.
        y : (n_samples,) int64 component labels.
        """
        params = self.params
        if not is_integer(n_samples) or n_samples < 1:
            raise InputError(f"Invalid value for 'n_samples': {n_samples!r}; sample draws an integer >= 1 of rows")
        return self._fitted_family.sample(params, n_samples, random_generator(self.random_state))

    # --------------------------------------------------------------- prediction

    def score_samples(self, X: Any, *, variable: str | None = None) -> Any:
        """Log-likelihood of each row, ``log p(x_i)`` in nats: (n_samples,)."""
        return self._map_rows(X, variable, _log_prob_norm, row_shape=(), dtype=np.float64)

    def predict_proba(self, X: Any, *, variable: str | None = None) -> Any:
        """Responsibilities of each component for each row: (n_samples, n_components)."""
        return self._map_rows(
            X, variable, _responsibilities, row_shape=(self.params.n_components,), dtype=np.float64
        )

    def predict(self, X: Any, *, variable: str | None = None) -> Any:
        """Most responsible component of each row: (n_samples,) int64."""
        return self._map_rows(X, variable, _labels, row_shape=(), dtype=np.int64)

    def impute(self, X: Any, *, variable: str | None = None) -> Any:
        """The rows with each missing value (NaN) replaced by its conditional expectation under the
        fitted mixture given the row's observed values: (n_samples, n_features) float64, lazy (Dask)
        for Dask, xarray and Zarr inputs.  For Gaussians ``Σ_k r_k (μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o))``
        with r the responsibilities given the observed values; rows with nothing observed take the
        mixture's mean."""
        return self._map_rows(X, variable, _imputed, row_shape=(self.params.n_features,), dtype=np.float64)

    def score(self, X: Any, y: None = None, *, variable: str | None = None) -> float:
        """Mean log-likelihood per row, in nats."""
        return float(np.mean(self.score_samples(X, variable=variable)))

    def bic(self, X: Any, *, variable: str | None = None) -> float:
        """Bayesian information criterion on X (lower is better)."""
        n_samples = self._n_rows(X, variable)
        return -2 * self.score(X, variable=variable) * n_samples + self._n_parameters() * np.log(n_samples)

    def aic(self, X: Any, *, variable: str | None = None) -> float:
        """Akaike information criterion on X (lower is better)."""
        n_samples = self._n_rows(X, variable)
        return -2 * self.score(X, variable=variable) * n_samples + 2 * self._n_parameters()

    def _rows(self, X: Any, variable: str | None) -> tuple[Any, str | None]:
        """X as :func:`daskem.io.inputs.as_rows` sees it with this model's dims, and the variable still to pick."""
        rows = as_rows(X, variable, sample_dim=self.sample_dim, feature_dim=self.feature_dim)
        return (X, variable) if rows is X else (rows, None)

    def _n_rows(self, X: Any, variable: str | None) -> int:
        X, variable = self._rows(X, variable)
        rows = in_memory_rows(X, variable)
        return len(rows) if rows is not None else as_row_chunked(X, variable).shape[0]

    def _map_rows(
        self,
        X: Any,
        variable: str | None,
        kernel: Callable[[np.ndarray, Family, Params, int], np.ndarray],
        row_shape: tuple[int, ...],
        dtype: type,
    ) -> Any:
        """Apply a per-row kernel: in memory for NumPy input, lazily otherwise."""
        params, family = self.params, self._fitted_family
        check_stored_chunks(X, variable, strict=self.strict_chunks)
        X, variable = self._rows(X, variable)
        rows = in_memory_rows(X, variable)
        if rows is not None:
            self._check_features(X, rows.shape[1])
            return kernel(rows, family, params, 0)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])

        def block_kernel(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
            first_row = block_info[0]["array-location"][0][0] if block_info else 0
            return kernel(block, family, params, first_row)

        if row_shape:
            return data.map_blocks(block_kernel, chunks=(data.chunks[0], row_shape), dtype=dtype)
        return data.map_blocks(block_kernel, drop_axis=1, dtype=dtype)

    def score_dataset(self, X: Any, *, variable: str | None = None) -> xr.Dataset:
        """Labels, responsibilities and log-likelihood of every row, lazily.

        The result is an :class:`xarray.Dataset` of Dask arrays chunked like
        the input rows — ``label`` (row), ``responsibility`` (row, component)
        and ``log_likelihood`` (row, nats) — with the input's row coordinate
        when it has one.  Computing (or ``to_zarr``) reads each chunk once for
        all three.
        """
        params, family = self.params, self._fitted_family
        check_stored_chunks(X, variable, strict=self.strict_chunks)
        X, variable = self._rows(X, variable)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])
        dim, coordinate = row_coordinate(X, variable)
        stacked = stacked_dims(X)
        if dim == "component":  # the scores' own dimension: the rows take the default name
            dim = "sample"
        blocks = Blocks.of(data)
        shared = dask.delayed((family, params), traverse=False)
        parts = [dask.delayed(_score_block, nout=3, pure=True)(rows, shared, first_row)
                 for rows, first_row in zip(blocks.rows, blocks.first_rows)]
        k = params.n_components
        columns = [
            da.concatenate([da.from_delayed(part[i], (n, *shape), dtype=dtype)
                            for part, n in zip(parts, data.chunks[0])])
            for i, (shape, dtype) in enumerate((((), np.int64), ((k,), np.float64), ((), np.float64)))
        ]
        coords = {"component": np.arange(k)}
        if coordinate is not None and not stacked:
            coords[dim] = coordinate
        scores = xr.Dataset(
            {
                "label": (dim, columns[0]),
                "responsibility": ((dim, "component"), columns[1]),
                "log_likelihood": (dim, columns[2]),
            },
            coords=coords,
            attrs={"description": f"scores of the rows under a daskem {type(self).__name__}",
                   "daskem_version": __version__},
        )
        if stacked:  # back to the input's own dimensions and coordinates: a (y, x) label map
            index = xr.Coordinates.from_pandas_multiindex(X.indexes[dim], dim)
            scores = scores.assign_coords(index).unstack(dim).transpose(*stacked, "component")
        return described(scores)

    def _check_features(self, X: Any, n_features: int) -> None:
        """X's number of features and, as scikit-learn checks them, its column names against the fit's."""
        if n_features != self.params.n_features:
            raise InputError(
                f"X has {n_features} features, but {type(self).__name__} is expecting {self.params.n_features} "
                "features as input (the number it was fitted on)"
            )
        names, fitted = feature_names(X), getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and not np.array_equal(names, fitted):
            raise InputError(
                "The feature names should match those that were passed during fit: the model was fitted on "
                f"{list(fitted)}, X has {list(names)}; select X[model.feature_names_in_] to reorder them"
            )
        if (names is None) != (fitted is None):
            name = type(self).__name__
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names"
                if names is None else f"X has feature names, but {name} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------- model files

    #: Settings of the estimator (besides the family's) that model files record.
    FILE_SETTINGS: tuple[str, ...] = ("tol", "max_iter", "acceleration", "n_init", "init_params")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model to Zarr (or netCDF for a .nc suffix), atomically.

        An existing ``path`` is replaced only with ``overwrite=True``, and only
        if it is a daskem model (see :mod:`daskem.io.outputs`).
        """
        write_dataset(self.to_dataset(), path, "model", overwrite=overwrite, label="path")

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as an :class:`xarray.Dataset` (see :mod:`daskem.io.model_files`)."""
        params = self.params
        attrs = {
            "n_iter": int(self.n_iter_),
            "converged": int(self.converged_),
            "lower_bound": float(self.lower_bound_),
            **{name.rstrip("_"): int(getattr(self, name)) for name in MISSING_COUNTS},
            "n_absent_chunks": int(self.n_absent_chunks_),
            **{name: _attribute(getattr(self, name)) for name in self.FILE_SETTINGS},
            "daskem_version": __version__,
        }
        if is_integer(self.random_state):
            attrs["random_state"] = int(self.random_state)
        return params_to_dataset(self._fitted_family, params, self.history_, attrs,
                                 getattr(self, "feature_names_in_", None))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str = "the model file") -> BaseMixture:
        """The model stored in a Dataset made by :meth:`to_dataset`, checked (see :mod:`daskem.io.model_files`)."""
        family, params = params_from_dataset(ds, source)
        if family.name != cls.FAMILY.name:
            raise ModelFileError(f"{source} holds a {family.name} mixture, not one for {cls.__name__}; "
                                 "read it with daskem.load")
        attrs = model_attributes(ds, source)
        settings = {name: attrs[name] for name in (*cls.FILE_SETTINGS, "random_state") if name in attrs}
        model = cls(n_components=params.n_components, **family.settings(), **settings)
        model._params, model._fitted_family = params, family
        model.history_ = params_history(ds)
        model.n_iter_ = attrs.get("n_iter", len(model.history_))
        if len(model.history_) and model.n_iter_ != len(model.history_):
            raise ModelFileError(f"{source}: n_iter is {model.n_iter_} but the history has "
                                 f"{len(model.history_)} iterations")
        model.converged_ = attrs.get("converged", False)
        model.lower_bound_ = attrs.get("lower_bound", np.nan)
        model.reseeded_ = []
        for name in MISSING_COUNTS:
            setattr(model, name, attrs.get(name.rstrip("_"), 0))
        model.n_absent_chunks_ = attrs.get("n_absent_chunks", 0)
        model.n_features_in_ = params.n_features
        names = stored_feature_names(ds)
        if names is not None:
            model.feature_names_in_ = names
        return model


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
    """Fit models (settings checked) in shared passes: one sample and k-means|| passes for every start,
    one read of the data per iteration for every run still iterating.

    The models share the settings of a pass and of the loop — ``tol``,
    ``max_iter``, ``acceleration``, ``n_init``, ``init_params``, ``random_state``,
    ``chunk_rows``, ``split_every``, ``sample_dim``, ``feature_dim``,
    ``strict_chunks``, ``verbose`` — taken from the first; each has its own family, size, initial
    arrays and warm start.  Returns the rows' description and each model's
    ``n_init`` results, in order.  A checkpoint records every model's
    settings and resumes only when they all match.
    """
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
        _show_log_lines()
    families = [model._family() for model in models]
    inits = [model._checked_initial_arrays(family, n_features) for model, family in zip(models, families)]
    warm = [model._warm_start_params(family, n_features) for model, family in zip(models, families)]
    settings = [model._checkpoint_settings(*parts) for model, parts in zip(models, zip(families, inits, warm))]
    with (
        checkpointing(checkpoint, settings[0] if len(models) == 1 else {"candidates": settings}, data, weights,
                      inputs=[source] if is_path(source) else []) as saved,
        _pass_progress(lead.verbose),
    ):
        starts = saved.load() if saved is not None else None
        if starts is not None:
            logger.info("resuming from the checkpoint in %s after iteration %d", checkpoint, starts.iteration)
        elif warm[0] is not None:  # continues the last fit, also in telling when it converges
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
    return fitted, [results[i : i + runs] for i in range(0, len(results), runs)]


# ------------------------------------------------------------------ helpers


def _log_prob_norm(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.e_step(X, params, first_row)[0]


def _responsibilities(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return np.exp(family.e_step(X, params, first_row)[1])


def _labels(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.e_step(X, params, first_row)[1].argmax(axis=1)


def _imputed(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.impute(X, params, first_row)


def _score_block(
    X: np.ndarray, model: tuple[Family, Params], first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    family, params = model
    log_prob_norm, log_resp = family.e_step(X, params, first_row)
    return log_resp.argmax(axis=1), np.exp(log_resp), log_prob_norm


def _attribute(value: Any) -> int | float | str:
    """A setting as a model file's attribute: a Python int, float or str."""
    if is_integer(value):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)


def check_number(estimator: BaseMixture, name: str, low: float) -> None:
    """Refuse a setting that is not a finite number >= ``low``."""
    value = getattr(estimator, name)
    if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
        raise InputError(f"{name} must be a finite number >= {low:g}, got {value!r}")


def _pass_progress(verbose: int) -> contextlib.AbstractContextManager:
    """Dask's progress bar on stderr for passes longer than a second when ``verbose >= 2``."""
    if verbose < 2:
        return contextlib.nullcontext()
    from dask.diagnostics import ProgressBar

    return ProgressBar(minimum=1.0, dt=0.05, out=sys.stderr)


def _show_log_lines() -> None:
    """Make the per-iteration log lines visible when the user has not set up logging."""
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("daskem: %(message)s"))
        logger.addHandler(handler)

