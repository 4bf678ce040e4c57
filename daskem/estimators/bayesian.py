"""The scikit-learn-style Bayesian mixtures, fitted by variational EM out of core: :class:`BayesianGaussianMixture`,
:class:`BayesianBernoulliMixture` and :class:`BayesianPoissonMixture`, on what they share (:class:`BayesianMixture`)."""

from __future__ import annotations

from typing import Self

import numpy as np
import xarray as xr

from daskem.engine.em import EMResult
from daskem.estimators.base import BaseMixture
from daskem.estimators.settings import estimator_settings
from daskem.exceptions import ModelFileError
from daskem.families.base import Family
from daskem.families.bayesian import BayesianGaussianFamily
from daskem.families.bayesian_product import BayesianBernoulliFamily, BayesianPoissonFamily
from daskem.settings import settings_init

__all__ = ["BayesianBernoulliMixture", "BayesianGaussianMixture", "BayesianMixture", "BayesianPoissonMixture"]


class BayesianMixture(BaseMixture):
    """What the Bayesian mixtures share: textbook variational EM (no acceleration), the evidence lower bound on
    the total scale (``lower_bound_``, ``lower_bounds_``), the weights' posterior, and model files that
    remember which prior settings were left to the data."""

    #: Textbook variational EM, one step per pass (extrapolating the posterior is not done yet).
    acceleration = "none"

    @classmethod
    def prior_settings(cls) -> tuple[str, ...]:
        """The family's prior settings that may be left to the data (None)."""
        return tuple(setting.name for setting in cls.FAMILY.SETTINGS if setting.optional)

    def to_dataset(self) -> xr.Dataset:
        """The base's Dataset, with the attribute ``prior_from_data``: the prior settings left to the data
        (comma-separated), which the model file's family holds resolved and loading leaves None again."""
        ds = super().to_dataset()
        ds.attrs["prior_from_data"] = ",".join(name for name in self.prior_settings() if getattr(self, name) is None)
        return ds

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str = "the model file") -> Self:
        model = super().from_dataset(ds, source)
        names, settings = ds.attrs.get("prior_from_data", ""), cls.prior_settings()
        left = [name for name in names.split(",") if name] if isinstance(names, str) else None
        if left is None or not set(left) <= set(settings):
            raise ModelFileError(f"{source}: attribute prior_from_data is {names!r}, not a comma-separated list "
                                 f"of {settings}")
        for name in left:
            setattr(model, name, None)
        return model

    def _set_fitted(self, result: EMResult, family: Family, rows: object) -> None:
        super()._set_fitted(result, family, rows)
        self.lower_bound_ = result.lower_bound * result.weight_sum

    @property
    def lower_bounds_(self) -> list[float]:
        return [float(value) * self._weight_sum for value in self.history_]

    @property
    def weight_concentration_(self) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        concentration = self.params.weight_concentration
        return (concentration[0], concentration[1]) if concentration.ndim == 2 else concentration

    @property
    def weight_concentration_prior_(self) -> float:
        return self.family_.weight_concentration_prior


class BayesianGaussianMixture(BayesianMixture):
    """Variational Bayesian Gaussian mixture, fitted out of core: scikit-learn's
    :class:`sklearn.mixture.BayesianGaussianMixture`, on data of any size.

    A Dirichlet process (or distribution) over the weights lets the data empty
    the components they do not need: fit more components than you expect
    (``n_components=30``) and read how many keep weight (``weights_``).  Each
    pass over the data is one variational EM step — the E-step's responsibilities
    under the posterior, then the posterior from their sums — and the fit stops
    when the evidence lower bound per row changes by less than ``tol``.
    Parameters mean what they mean in scikit-learn, and ``clone``, ``Pipeline``
    and ``GridSearchCV`` work with it.  NaN is refused (fit
    :class:`daskem.GaussianMixture` for data with missing values).

    Parameters
    ----------
    n_components : int, default 1
        Most components K; the fit may leave some empty.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Structure of the component covariances.
    tol : float, default 1e-3
        Stop when the evidence lower bound *per row* (per unit weight)
        changes by less between two passes.  scikit-learn compares the
        change of the total bound with ``tol``, a rule N times stricter on N
        rows; ``tol / N`` here stops where it stops.
    reg_covar : float, default 1e-6
        Non-negative number added to the variances of each M-step's
        covariances before the posterior is formed.
    max_iter : int, default 100
        Most passes over the data (0 keeps the start).
    n_init : int, default 1
        Number of initialisations, advancing together; the highest bound is kept.
    init_params : {"k-means++", "k-means||", "kmeans", "random", "random_from_data"}
        How the starting responsibilities are found (see
        :mod:`daskem.engine.initialization`); the start is the posterior they give.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
        The prior over the weights: a truncated Dirichlet process
        (stick-breaking; the default) or a Dirichlet distribution.
    weight_concentration_prior : float > 0, optional
        γ₀ (Dirichlet process) or α₀ (Dirichlet); default ``1 / n_components``.
        Smaller values leave more components empty.
    mean_precision_prior : float > 0, optional
        β₀, how strongly the means are drawn to ``mean_prior``; default 1.
    mean_prior : (n_features,) array-like, optional
        m₀; default the data's (weighted) mean, from one pass before the fit.
    degrees_of_freedom_prior : float > n_features - 1, optional
        ν₀ of the Wishart prior; default ``n_features``.
    covariance_prior : array-like or float, optional
        The Wishart's scale, shaped like one component's covariance:
        (d, d) full and tied, (d,) diag, a number spherical; default the
        data's covariance (frequency weights: integer weights count as
        repeated rows), from the same pass as ``mean_prior``.
    random_state, warm_start, verbose, chunk_rows, split_every, sample_dim, feature_dim, strict_chunks, decay
        As for :class:`daskem.GaussianMixture`.  :meth:`partial_fit` blends
        each batch's sums into running ones as there (``decay``), and the
        posterior is formed from the running sums times the weight of every
        row seen: with ``decay=1`` and equal batches, the posterior of all of
        them.  After ``partial_fit``, ``lower_bound_`` is the running mean of
        ``score_samples`` per row.

    Attributes
    ----------
    weights_ : (K,) ndarray
        The expected weights ``E[π_k]``.
    means_ : (K, d) ndarray
    covariances_ : ndarray, (K, d, d) full, (d, d) tied, (K, d) diag, (K,) spherical
        The Wishart's scale inverted, divided by the degrees of freedom.
    precisions_, precisions_cholesky_ : ndarray, shaped like ``covariances_``
    weight_concentration_ : (K,) ndarray, or a pair of (K,) ndarrays (Dirichlet process: each stick's Beta)
    mean_precision_ : (K,) ndarray
    degrees_of_freedom_ : (K,) ndarray (tied: a float)
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, degrees_of_freedom_prior_, covariance_prior_
        The prior the fit used, the data's defaults resolved.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The evidence lower bound after the last iteration of the best run,
        on scikit-learn's scale (the total over the rows, its constants dropped).
    lower_bounds_ : list of float
        The same at each iteration.
    history_ : (n_iter_,) ndarray
        The bound per row (per unit weight) at each iteration: what ``tol`` is measured in.
    n_features_in_, feature_names_in_, n_absent_chunks_
        As for :class:`daskem.GaussianMixture`.
    family_ : daskem.families.bayesian.BayesianGaussianFamily
        The fitted family, its prior resolved: what scores rows and writes the model file.
    """

    FAMILY = BayesianGaussianFamily
    SETTINGS = estimator_settings(BayesianGaussianFamily)
    __init__ = settings_init(SETTINGS)

    def _check_settings(self) -> None:
        super()._check_settings()
        self._family().check_given_prior()

    @property
    def covariances_(self) -> np.ndarray:
        return self.params.covariances

    @property
    def precisions_cholesky_(self) -> np.ndarray:
        return self.params.precisions_cholesky

    @property
    def precisions_(self) -> np.ndarray:
        return self.params.point.precisions

    @property
    def mean_precision_(self) -> np.ndarray:
        return self.params.mean_precision

    @property
    def degrees_of_freedom_(self) -> np.ndarray | float:
        dof = self.params.degrees_of_freedom
        return float(dof[0]) if self.params.covariance_type == "tied" else dof

    @property
    def mean_precision_prior_(self) -> float:
        return self.family_.prior.mean_precision

    @property
    def mean_prior_(self) -> np.ndarray:
        return self.family_.prior.mean

    @property
    def degrees_of_freedom_prior_(self) -> float:
        return self.family_.prior.degrees_of_freedom

    @property
    def covariance_prior_(self) -> np.ndarray | float:
        return self.family_.prior.covariance


_PRODUCT_PARAMETERS = """
    n_components : int, default 1
        Most components K; the fit may leave some empty.
    tol : float, default 1e-3
        Stop when the evidence lower bound per row (per unit weight) changes
        by less between two passes.
    max_iter : int, default 100
        Most passes over the data (0 keeps the start).
    n_init : int, default 1
        Number of initialisations, advancing together; the highest bound is kept.
    init_params : {"k-means++", "k-means||", "kmeans", "random", "random_from_data"}
        How the starting responsibilities are found (see
        :mod:`daskem.engine.initialization`); the start is the posterior they give.
    random_state, warm_start, verbose, chunk_rows, split_every, sample_dim, feature_dim, strict_chunks
        As for :class:`daskem.GaussianMixture`.
    decay : float in (0.5, 1], default 0.7
        The step size of :meth:`partial_fit`, as for :class:`daskem.GaussianMixture`:
        each batch's sums are blended into running ones, and the posterior is
        formed from the running sums times the weight of every row seen (with
        ``decay=1`` and equal batches, the posterior of all of them).  After
        ``partial_fit``, ``lower_bound_`` is the running mean of ``score_samples``.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}
        The prior over the weights: a truncated Dirichlet process
        (stick-breaking; the default) or a Dirichlet distribution.
    weight_concentration_prior : float > 0, optional
        γ₀ (Dirichlet process) or α₀ (Dirichlet); default ``1 / n_components``.
        Smaller values leave more components empty.
{prior}
    missing : {"nan", "error"}, default "nan"
        "nan": NaN marks a missing value, whose feature's term drops out of the
        row's likelihood; each posterior counts the rows where its feature is
        observed, so the fit is exact.  Rows with nothing observed are left
        out.  "error": NaN is refused.

    Attributes
    ----------
    weights_ : (K,) ndarray
        The expected weights ``E[π_k]``.
    means_ : (K, d) ndarray
        The posterior means: {means}.
{arrays}
    weight_concentration_ : (K,) ndarray, or a pair of (K,) ndarrays (Dirichlet process: each stick's Beta)
    weight_concentration_prior_ : float
        The concentration the fit used (``1 / n_components`` when left to it).
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        The evidence lower bound, total over the rows (nats), of the
        posterior the last pass of the best run started from.
    lower_bounds_ : list of float
        The same at each iteration.
    history_ : (n_iter_,) ndarray
        The bound per row (per unit weight) at each iteration: what ``tol`` is
        measured in; it never decreases.
    n_missing_values_, n_incomplete_rows_, n_empty_rows_, n_features_in_, feature_names_in_, n_absent_chunks_
        As for :class:`daskem.GaussianMixture`.
    n_batches_ : int
        The batches :meth:`partial_fit` has learnt from since the last ``fit``.
    family_ : {family}
        The fitted family, the weights' concentration resolved: what scores
        rows and writes the model file.
"""


def _product_parameters(**parts: str) -> str:
    """The settings and attributes of a Bayesian product mixture's docstring, its ``{prior}``, ``{means}``,
    ``{arrays}`` and ``{family}`` filled in."""
    text = _PRODUCT_PARAMETERS
    for name, value in parts.items():
        text = text.replace(f"{{{name}}}", value)
    return text


class BayesianBernoulliMixture(BayesianMixture):
    __doc__ = """Variational Bayesian mixture of Bernoulli components (binary features, 0 or 1), fitted out of core.

    A Dirichlet process (or distribution) over the weights and a Beta prior on
    each component's probability of each feature: fit more components than
    you expect and read how many keep weight (``weights_``).  Each pass over the
    data is one variational EM step, and the fit stops when the evidence lower
    bound per row changes by less than ``tol``.  Rows with a value other than
    0, 1 or NaN (missing) are refused, naming the first.

    Parameters
    ----------""" + _product_parameters(
        prior="""    success_prior : float > 0, default 1
        a₀ of the Beta(a₀, b₀) prior of each probability: successes seen before the data.
    failure_prior : float > 0, default 1
        b₀ of that prior: failures seen before the data (1 and 1: uniform).""",
        means="probabilities ``a / (a + b)``",
        arrays="""    successes_, failures_ : (K, d) ndarray
        The posterior Beta(a, b) of each probability: the prior's successes
        and failures plus the responsibility-weighted ones of the rows.""",
        family="daskem.families.bayesian_product.BayesianBernoulliFamily")

    FAMILY = BayesianBernoulliFamily
    SETTINGS = estimator_settings(BayesianBernoulliFamily)
    __init__ = settings_init(SETTINGS)

    @property
    def successes_(self) -> np.ndarray:
        return self.params.a

    @property
    def failures_(self) -> np.ndarray:
        return self.params.b


class BayesianPoissonMixture(BayesianMixture):
    __doc__ = """Variational Bayesian mixture of Poisson components (counts: whole numbers >= 0), fitted out of core.

    A Dirichlet process (or distribution) over the weights and a Gamma prior on
    each component's rate of each feature: fit more components than you expect
    and read how many keep weight (``weights_``).  Each pass over the data is
    one variational EM step, and the fit stops when the evidence lower bound per
    row changes by less than ``tol``.  Negative or fractional values are
    refused, naming the first.

    Parameters
    ----------""" + _product_parameters(
        prior="""    count_prior : float > 0, default 1
        Shape a₀ of the Gamma(a₀, b₀) prior of each rate: as if ``count_prior``
        events had been seen in ``exposure_prior`` rows.
    exposure_prior : float > 0, default 1
        Rate b₀ of that prior: the rows those events were seen in.""",
        means="rates ``a / b``",
        arrays="""    events_, exposures_ : (K, d) ndarray
        The posterior Gamma(shape a, rate b) of each rate: the prior's events
        and rows plus the responsibility-weighted ones of the data.""",
        family="daskem.families.bayesian_product.BayesianPoissonFamily")

    FAMILY = BayesianPoissonFamily
    SETTINGS = estimator_settings(BayesianPoissonFamily)
    __init__ = settings_init(SETTINGS)

    @property
    def events_(self) -> np.ndarray:
        return self.params.a

    @property
    def exposures_(self) -> np.ndarray:
        return self.params.b
