"""Layer 5: the scikit-learn-style estimator :class:`GaussianMixture` and :func:`load`."""

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
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, DensityMixin

from daskem.checkpoint import checkpointing, comparable_seed, params_digest
from daskem.engine import (
    DEFAULT_SPLIT_EVERY,
    MAX_RUNS,
    Blocks,
    EMResult,
    EMState,
    IterationInfo,
    RunState,
    best_run,
    run_em,
)
from daskem.exceptions import ConvergenceWarning, InputError, NotFittedError
from daskem.families.gaussian import GaussianFamily
from daskem.initialization import INIT_METHODS, InitSpec, initial_params, random_generator
from daskem.inputs import (
    as_row_chunked,
    as_rows,
    feature_names,
    fit_inputs,
    in_memory_rows,
    is_path,
    row_coordinate,
    stacked_dims,
)
from daskem.kernels import estep, gaussian
from daskem.kernels.checks import raise_non_finite_log_likelihood
from daskem.kernels.gaussian import COVARIANCE_TYPES, GaussianParams, covariance_shape
from daskem.model_io import (
    ModelFileError,
    described,
    model_attributes,
    params_from_dataset,
    params_history,
    params_to_dataset,
    read_dataset,
    stored_feature_names,
    write_dataset,
)

try:
    __version__ = version("daskem")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

logger = logging.getLogger("daskem")

#: Values of ``precision`` (see :class:`GaussianMixture`).
PRECISIONS = ("auto", "float64")


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture model fitted by EM, out of core.

    A scikit-learn estimator: parameters mean what they mean in
    :class:`sklearn.mixture.GaussianMixture`, and ``clone``, ``Pipeline`` and
    ``GridSearchCV`` work with it.

    Parameters
    ----------
    n_components : int, default 1
        Number of mixture components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Structure of the component covariances.
    tol : float, default 1e-3
        Convergence threshold on the change of the mean log-likelihood per row
        (per unit weight when weighted; nats) between two iterations.
    reg_covar : float, default 1e-6
        Non-negative number added to the variances.
    max_iter : int, default 100
        Most EM iterations; each reads the data once.  0 keeps the initial
        parameters (``n_iter_`` 0, ``lower_bound_`` −inf), as scikit-learn.
    n_init : int, default 1
        Number of initialisations; the run with the best lower bound is kept.
        All runs advance together, reading the data once per iteration.
    init_params : {"k-means++", "k-means||", "kmeans", "random", "random_from_data"}
        How initial parameters are estimated (see :mod:`daskem.initialization`).
    weights_init, means_init, precisions_init : array-like, optional
        Initial weights (K,), means (K, d) and precisions (of the shape of
        ``covariances_`` for the covariance type).
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed of the initialisation and of :meth:`sample`, with scikit-learn's
        meanings (see :func:`daskem.initialization.random_generator`).
    warm_start : bool, default False
        When True, each ``fit`` starts from the parameters of the last one
        (``n_init`` is then ignored).
    verbose : int, default 0
        When positive, log one line per iteration to the ``daskem`` logger
        (and show it on stderr if logging is not configured); from 2, also
        Dask's progress bar on stderr for every pass longer than a second
        (local scheduler).  For a bar of your own, pass ``callbacks`` to
        :meth:`fit`.
    chunk_rows : int, optional
        Rows per Dask chunk; by default taken from the data (see
        :func:`daskem.inputs.as_row_chunked`).
    split_every : int, default 8
        Fan-in of the reduction tree.
    precision : {"auto", "float64"}, default "auto"
        Arithmetic inside each block of rows.  "auto": float32 for float32
        data (sums across blocks stay float64; parameters within ~1e-6 of the
        float64 fit's), float64 otherwise.  "float64": always float64, the
        reference.
    sample_dim : str or tuple of str, optional
        For xarray inputs (and Zarr groups opened through xarray when given):
        the dimension of the rows.  Several are stacked into rows, and
        :meth:`score_dataset` returns the scores over them again: a
        (y, x, band) image with ``sample_dim=("y", "x")`` gives a (y, x)
        label map.  By default every dimension but the features'.
    feature_dim : str, optional
        The dimension of the features; by default the one other than
        ``sample_dim``, else the one named band, channel, feature or variable,
        else the second of two (see :func:`daskem.inputs.as_rows`).  Its
        coordinate, if it holds strings, becomes ``feature_names_in_``.

    Attributes
    ----------
    weights_ : (K,) ndarray
    means_ : (K, d) ndarray
    covariances_ : ndarray, (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical
    precisions_ : ndarray, shaped like ``covariances_``
    precisions_cholesky_ : ndarray, shaped like ``covariances_``
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood per row (per unit weight) at the start of the last
        iteration of the best run.
    history_ : (n_iter_,) ndarray
        Mean log-likelihood at the start of each iteration of the best run.
    reseeded_ : list of (iteration, component, row)
        Components that collapsed and were restarted at a row (see
        :func:`daskem.engine.run_em`).
    n_features_in_ : int
    feature_names_in_ : (n_features_in_,) ndarray of str
        The column names of a pandas or Dask DataFrame fitted on (only then),
        checked at predict and kept in the model file.
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "k-means++",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: int | np.random.Generator | np.random.RandomState | None = None,
        warm_start: bool = False,
        verbose: int = 0,
        chunk_rows: int | None = None,
        split_every: int = DEFAULT_SPLIT_EVERY,
        precision: str = "auto",
        sample_dim: str | tuple[str, ...] | None = None,
        feature_dim: str | None = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.chunk_rows = chunk_rows
        self.split_every = split_every
        self.precision = precision
        self.sample_dim = sample_dim
        self.feature_dim = feature_dim

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
    ) -> GaussianMixture:
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
            :class:`daskem.engine.IterationInfo`.
        checkpoint : a folder for a checkpoint after every iteration.  If it
            holds one from an interrupted fit of the same data with the same
            settings, the fit resumes from it and ends bitwise as the
            uninterrupted fit would have (see :mod:`daskem.checkpoint`).

        Returns
        -------
        self
        """
        self._check_settings()
        source, (X, data, weights) = X, fit_inputs(X, variable, sample_weight, sample_dim=self.sample_dim,
                                                   feature_dim=self.feature_dim, chunk_rows=self.chunk_rows)
        n_samples, n_features = data.shape
        if n_samples < self.n_components:
            raise InputError(
                f"the data have {n_samples} rows, fewer than n_components={self.n_components}; "
                "reduce n_components or add data"
            )
        if self.verbose:
            _show_log_lines()
        inits = self._checked_initial_arrays(n_features)
        warm = self._warm_start_params(n_features)
        settings = self._checkpoint_settings(inits, warm)
        with (
            checkpointing(checkpoint, settings, data, weights, inputs=[source] if is_path(source) else []) as saved,
            _pass_progress(self.verbose),
        ):
            family = GaussianFamily(self.reg_covar)
            starts = saved.load(family) if saved is not None else None
            if starts is not None:
                logger.info("resuming from the checkpoint in %s after iteration %d", checkpoint, starts.iteration)
            elif warm is not None:  # continues the last fit, also in telling when it converges
                starts = EMState(0, [RunState(family, warm, previous=self._last_change_reference())])
            else:
                spec = InitSpec(self.n_components, self.covariance_type, self.init_params, **inits)
                starts = [(family, params) for params in initial_params(
                    data, weights, [spec] * self.n_init, reg_covar=self.reg_covar,
                    rng=random_generator(self.random_state), split_every=self.split_every)]
            blocks = Blocks.of(data, weights, float32=self.precision == "auto")
            results = run_em(blocks, starts, tol=self.tol, max_iter=self.max_iter, split_every=self.split_every,
                             callbacks=callbacks, on_iteration=saved.save if saved is not None else None)
        self._set_fitted(best_run(results), n_features, feature_names(X))
        if not self.converged_ and self.max_iter > 0:  # max_iter=0 asks for the start alone
            last_change = self.history_[-1] - self.history_[-2] if self.n_iter_ > 1 else np.inf
            warnings.warn(
                f"EM did not converge in {self.max_iter} iterations (last change of the mean "
                f"log-likelihood {last_change:.3g} >= tol={self.tol:g}); "
                "increase max_iter or tol, or try other initial parameters",
                ConvergenceWarning,
                stacklevel=2,
            )
        return self

    def _warm_start_params(self, n_features: int) -> GaussianParams | None:
        """The parameters a warm start continues from (None when not warm-starting), checked against the settings."""
        if not (self.warm_start and hasattr(self, "_params")):
            return None
        last = self._params
        if (last.n_components, last.covariance_type, last.n_features) != (
            self.n_components, self.covariance_type, n_features
        ):
            raise InputError(
                f"warm_start continues the last fit ({last.n_components} {last.covariance_type} components on "
                f"{last.n_features} features), but this fit asks for {self.n_components} "
                f"{self.covariance_type} components on {n_features} features; set warm_start=False to start afresh"
            )
        return last

    def _last_change_reference(self) -> float:
        """What a warm start's first change of log-likelihood is measured from: the last fit's
        lower bound, unless its last iteration restarted a component (then −inf, as within a fit)."""
        restarted = any(iteration == self.n_iter_ for iteration, _, _ in self.reseeded_)
        return -np.inf if restarted else self.lower_bound_

    def _checkpoint_settings(
        self, inits: dict[str, np.ndarray | None], warm: GaussianParams | None
    ) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: the settings that shape the fit, and its start."""
        settings = {
            name: getattr(self, name)
            for name in ("n_components", "covariance_type", "tol", "reg_covar", "max_iter", "n_init",
                         "init_params", "chunk_rows", "split_every", "precision")
        }
        settings["random_state"] = comparable_seed(self.random_state)
        for name, array in inits.items():
            settings[name] = None if array is None else hashlib.sha256(array.tobytes()).hexdigest()[:16]
        settings["warm_start_from"] = None if warm is None else params_digest(warm)
        return settings

    def _set_fitted(self, result: EMResult, n_features: int, names: np.ndarray | None = None) -> None:
        self._params = result.params
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.lower_bound_ = result.lower_bound
        self.history_ = result.history
        self.reseeded_ = result.reseeded
        self.n_features_in_ = n_features

    def fit_predict(
        self, X: Any, y: None = None, *, variable: str | None = None, sample_weight: Any = None
    ) -> Any:
        """Fit, then return the component of each row (see :meth:`predict`)."""
        return self.fit(X, variable=variable, sample_weight=sample_weight).predict(X, variable=variable)

    def _check_settings(self) -> None:
        if not _is_int(self.n_components) or self.n_components < 1:
            raise InputError(f"n_components must be an integer >= 1, got {self.n_components!r}")
        if self.covariance_type not in COVARIANCE_TYPES:
            raise InputError(
                f"covariance_type={self.covariance_type!r} is not supported; choose one of {COVARIANCE_TYPES}"
            )
        if self.init_params not in INIT_METHODS:
            raise InputError(f"init_params={self.init_params!r} is not supported; choose one of {INIT_METHODS}")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision={self.precision!r} is not supported; choose one of {PRECISIONS}")
        for name, low in (("tol", 0.0), ("reg_covar", 0.0)):
            value = getattr(self, name)
            if not isinstance(value, numbers.Real) or not math.isfinite(value) or value < low:
                raise InputError(f"{name} must be a finite number >= {low:g}, got {value!r}")
        for name, low in (("max_iter", 0), ("n_init", 1), ("split_every", 2)):
            value = getattr(self, name)
            if not _is_int(value) or value < low:
                raise InputError(f"{name} must be an integer >= {low}, got {value!r}")
        if self.n_init > MAX_RUNS:
            raise InputError(f"n_init must be at most {MAX_RUNS} (random starts run together), got {self.n_init}")
        if self.chunk_rows is not None and (not _is_int(self.chunk_rows) or self.chunk_rows < 1):
            raise InputError(f"chunk_rows must be a positive integer, got {self.chunk_rows!r}")
        if not (
            self.random_state is None
            or _is_int(self.random_state)
            or isinstance(self.random_state, (np.random.Generator, np.random.RandomState))
        ):
            raise InputError(
                "random_state must be None, an integer, a numpy.random.Generator or a numpy.random.RandomState, "
                f"got {self.random_state!r}"
            )

    def _checked_initial_arrays(self, n_features: int) -> dict[str, np.ndarray | None]:
        k, d = self.n_components, n_features
        checked: dict[str, np.ndarray | None] = {}
        for name, shape in (
            ("weights_init", (k,)),
            ("means_init", (k, d)),
            ("precisions_init", covariance_shape(self.covariance_type, k, d)),
        ):
            value = getattr(self, name)
            if value is None:
                checked[name] = None
                continue
            array = np.asarray(value, dtype=np.float64)
            if array.shape != shape:
                raise InputError(f"{name} must have shape {shape} for covariance_type={self.covariance_type!r}, "
                                 f"got {array.shape}")
            if not np.isfinite(array).all():
                raise InputError(f"{name} holds NaN or infinite values")
            checked[name] = array
        weights = checked["weights_init"]
        if weights is not None and (weights.min() < 0 or not np.isclose(weights.sum(), 1.0, atol=1e-6)):
            raise InputError(
                f"weights_init must be non-negative and sum to 1, got sum {weights.sum():.6g}"
            )
        precisions = checked["precisions_init"]
        if (
            precisions is not None
            and self.covariance_type in ("full", "tied")
            and not np.allclose(precisions, np.swapaxes(precisions, -1, -2))
        ):
            raise InputError("precisions_init must hold symmetric matrices")
        return checked

    # --------------------------------------------------------- fitted attributes

    @property
    def params(self) -> GaussianParams:
        """The fitted parameters as one value."""
        try:
            return self._params
        except AttributeError:
            raise NotFittedError(  # scikit-learn's words, then ours
                "This GaussianMixture instance is not fitted yet. Call 'fit' with appropriate arguments "
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

    @property
    def covariances_(self) -> np.ndarray:
        return self.params.covariances

    @property
    def precisions_cholesky_(self) -> np.ndarray:
        return self.params.precisions_cholesky

    @property
    def precisions_(self) -> np.ndarray:
        return self.params.precisions

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

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture.

        Returns
        -------
        X : (n_samples, d) float64, grouped by component.
        y : (n_samples,) int64 component labels.
        """
        params = self.params
        if not _is_int(n_samples) or n_samples < 1:
            raise InputError(f"Invalid value for 'n_samples': {n_samples!r}; sample draws an integer >= 1 of rows")
        return gaussian.sample(params, n_samples, random_generator(self.random_state))

    def _n_parameters(self) -> int:
        params = self.params
        return gaussian.n_parameters(params.n_components, params.n_features, params.covariance_type)

    def _rows(self, X: Any, variable: str | None) -> tuple[Any, str | None]:
        """X as :func:`daskem.inputs.as_rows` sees it with this model's dims, and the variable still to pick."""
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
        kernel: Callable[[np.ndarray, GaussianParams, int], np.ndarray],
        row_shape: tuple[int, ...],
        dtype: type,
    ) -> Any:
        """Apply a per-row kernel: in memory for NumPy input, lazily otherwise."""
        params = self.params
        X, variable = self._rows(X, variable)
        rows = in_memory_rows(X, variable)
        if rows is not None:
            self._check_features(X, rows.shape[1])
            return kernel(rows, params, 0)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])

        def block_kernel(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
            first_row = block_info[0]["array-location"][0][0] if block_info else 0
            return kernel(block, params, first_row)

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
        params = self.params
        X, variable = self._rows(X, variable)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])
        dim, coordinate = row_coordinate(X, variable)
        stacked = stacked_dims(X)
        if dim == "component":  # the scores' own dimension: the rows take the default name
            dim = "sample"
        blocks = Blocks.of(data)
        shared = dask.delayed(params, traverse=False)
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
            attrs={"description": "scores of the rows under a daskem GaussianMixture",
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
                f"X has {n_features} features, but GaussianMixture is expecting {self.params.n_features} "
                "features as input (the number it was fitted on)"
            )
        names, fitted = feature_names(X), getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and not np.array_equal(names, fitted):
            raise InputError(
                "The feature names should match those that were passed during fit: the model was fitted on "
                f"{list(fitted)}, X has {list(names)}; select X[model.feature_names_in_] to reorder them"
            )
        if (names is None) != (fitted is None):
            warnings.warn(
                "X does not have valid feature names, but GaussianMixture was fitted with feature names"
                if names is None else "X has feature names, but GaussianMixture was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )

    # ------------------------------------------------------------- model files

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as an :class:`xarray.Dataset` (see :mod:`daskem.model_io`)."""
        attrs = {
            "n_iter": int(self.n_iter_),
            "converged": int(self.converged_),
            "lower_bound": float(self.lower_bound_),
            "tol": float(self.tol),
            "reg_covar": float(self.reg_covar),
            "max_iter": int(self.max_iter),
            "n_init": int(self.n_init),
            "init_params": str(self.init_params),
            "precision": str(self.precision),
            "daskem_version": __version__,
        }
        if _is_int(self.random_state):
            attrs["random_state"] = int(self.random_state)
        return params_to_dataset(self.params, self.history_, attrs, getattr(self, "feature_names_in_", None))

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str = "the model file") -> GaussianMixture:
        """The model stored in a Dataset made by :meth:`to_dataset`, checked (see :mod:`daskem.model_io`)."""
        params = params_from_dataset(ds, source)
        attrs = model_attributes(ds, source)
        settings = {name: attrs[name] for name in ("tol", "reg_covar", "max_iter", "n_init", "init_params",
                                                   "random_state", "precision") if name in attrs}
        model = cls(n_components=params.n_components, covariance_type=params.covariance_type, **settings)
        model._params = params
        model.history_ = params_history(ds)
        model.n_iter_ = attrs.get("n_iter", len(model.history_))
        if len(model.history_) and model.n_iter_ != len(model.history_):
            raise ModelFileError(f"{source}: n_iter is {model.n_iter_} but the history has "
                                 f"{len(model.history_)} iterations")
        model.converged_ = attrs.get("converged", False)
        model.lower_bound_ = attrs.get("lower_bound", np.nan)
        model.reseeded_ = []
        model.n_features_in_ = params.n_features
        names = stored_feature_names(ds)
        if names is not None:
            model.feature_names_in_ = names
        return model

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model to Zarr (or netCDF for a .nc suffix), atomically.

        An existing ``path`` is replaced only with ``overwrite=True``, and only
        if it is a daskem model (see :mod:`daskem.outputs`).
        """
        write_dataset(self.to_dataset(), path, "model", overwrite=overwrite, label="path")


def load(path: str | os.PathLike) -> GaussianMixture:
    """Read a model written by :meth:`GaussianMixture.save`, checking everything in it."""
    with read_dataset(path) as ds:
        return GaussianMixture.from_dataset(ds, f"the model file {str(path)!r}")


# ------------------------------------------------------------------ helpers


def _log_prob_norm(X: np.ndarray, params: GaussianParams, first_row: int) -> np.ndarray:
    return _checked_e_step(X, params, first_row)[0]


def _responsibilities(X: np.ndarray, params: GaussianParams, first_row: int) -> np.ndarray:
    return np.exp(_checked_e_step(X, params, first_row)[1])


def _labels(X: np.ndarray, params: GaussianParams, first_row: int) -> np.ndarray:
    return _checked_e_step(X, params, first_row)[1].argmax(axis=1)


def _score_block(
    X: np.ndarray, params: GaussianParams, first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    log_prob_norm, log_resp = _checked_e_step(X, params, first_row)
    return log_resp.argmax(axis=1), np.exp(log_resp), log_prob_norm


def _checked_e_step(
    X: np.ndarray, params: GaussianParams, first_row: int
) -> tuple[np.ndarray, np.ndarray]:
    log_prob_norm, log_resp = estep.e_step(X, params)
    if not np.isfinite(log_prob_norm).all():
        raise_non_finite_log_likelihood(np.asarray(X, dtype=np.float64), log_prob_norm, first_row, "while scoring")
    return log_prob_norm, log_resp


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


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
