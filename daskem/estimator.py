"""Layer 5: the scikit-learn-style estimator :class:`GaussianMixture` and :func:`load`."""

from __future__ import annotations

import os
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from daskem.engine import DEFAULT_SPLIT_EVERY
from daskem.exceptions import InputError
from daskem.families.gaussian import GaussianFamily
from daskem.initialization import InitSpec, initial_params, random_generator
from daskem.kernels import gaussian
from daskem.kernels.gaussian import COVARIANCE_TYPES, GaussianParams, covariance_shape
from daskem.mixture import BaseMixture, __version__, check_number, is_int
from daskem.model_io import (
    ModelFileError,
    model_attributes,
    params_from_dataset,
    params_history,
    params_to_dataset,
    read_dataset,
    stored_feature_names,
)

__all__ = ["GaussianMixture", "load", "__version__"]

#: Values of ``precision`` (see :class:`GaussianMixture`).
PRECISIONS = ("auto", "float64")


class GaussianMixture(BaseMixture):
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

    SETTINGS = (*BaseMixture.SETTINGS, "covariance_type", "reg_covar", "precision")

    # ------------------------------------------------------------------ hooks

    def _family(self) -> GaussianFamily:
        return GaussianFamily(self.reg_covar)

    def _kind(self, params: GaussianParams | None) -> str:
        return self.covariance_type if params is None else params.covariance_type

    def _check_family_settings(self) -> None:
        if self.covariance_type not in COVARIANCE_TYPES:
            raise InputError(
                f"covariance_type={self.covariance_type!r} is not supported; choose one of {COVARIANCE_TYPES}"
            )
        if self.precision not in PRECISIONS:
            raise InputError(f"precision={self.precision!r} is not supported; choose one of {PRECISIONS}")
        check_number(self, "reg_covar", 0.0)

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

    def _initial_params(self, data: da.Array, weights: da.Array | None, inits: dict[str, np.ndarray | None],
                        rng: np.random.Generator) -> list[GaussianParams]:
        spec = InitSpec(self.n_components, self.covariance_type, self.init_params, **inits)
        return initial_params(data, weights, [spec] * self.n_init, reg_covar=self.reg_covar, rng=rng,
                              split_every=self.split_every)

    def _float32(self) -> bool:
        return self.precision == "auto"

    # --------------------------------------------------------- fitted attributes

    @property
    def covariances_(self) -> np.ndarray:
        return self.params.covariances

    @property
    def precisions_cholesky_(self) -> np.ndarray:
        return self.params.precisions_cholesky

    @property
    def precisions_(self) -> np.ndarray:
        return self.params.precisions

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw rows from the fitted mixture.

        Returns
        -------
        X : (n_samples, d) float64, grouped by component.
        y : (n_samples,) int64 component labels.
        """
        params = self.params
        if not is_int(n_samples) or n_samples < 1:
            raise InputError(f"Invalid value for 'n_samples': {n_samples!r}; sample draws an integer >= 1 of rows")
        return gaussian.sample(params, n_samples, random_generator(self.random_state))

    def _n_parameters(self) -> int:
        params = self.params
        return gaussian.n_parameters(params.n_components, params.n_features, params.covariance_type)

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
        if is_int(self.random_state):
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



def load(path: str | os.PathLike) -> GaussianMixture:
    """Read a model written by :meth:`GaussianMixture.save`, checking everything in it."""
    with read_dataset(path) as ds:
        return GaussianMixture.from_dataset(ds, f"the model file {str(path)!r}")
