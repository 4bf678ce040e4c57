"""Bayesian Gaussian mixtures, fitted by variational EM, as a :class:`~daskem.families.base.Family`.

The model is scikit-learn's ``BayesianGaussianMixture``: a Dirichlet process
(or Dirichlet distribution) over the weights and a Gaussian–Wishart over each
component's mean and precision (the arithmetic is in
:mod:`daskem.kernels.variational`).  Variational EM reads the same sums as EM:
a pass is a Gaussian pass under :func:`~daskem.kernels.variational.as_gaussian_params`
of the posterior, the M-step is :func:`~daskem.kernels.variational.posterior`
on the M-step's means and covariances, and what EM climbs is the evidence
lower bound (:attr:`VariationalStatistics.objective`), not the likelihood.
Components are never restarted: draining the surplus is the point.

The prior's defaults depend on the data (its mean and covariance, ``1/K``,
``d``): :meth:`BayesianGaussianFamily.for_data` resolves them from one pass's
:class:`~daskem.kernels.moments.Moments`, and a fitted family holds them all
as settings, so that its model file says which prior it was fitted under.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from daskem.exceptions import InputError, ModelFileError, NonFiniteDataError
from daskem.families.base import Family, PosteriorStatistics
from daskem.families.gaussian import COVARIANCE_DIMS, COVARIANCE_TYPE, REG_COVAR, GaussianFamily, GaussianStatistics
from daskem.kernels.moments import Moments
from daskem.kernels.variational import (
    WEIGHT_PRIORS,
    GaussianPosterior,
    GaussianPrior,
    as_gaussian_params,
    entropy,
    lower_bound,
    posterior_of_sums,
    sums_of_posterior,
)
from daskem.settings import Setting


def _finite_array(ndim: tuple[int, ...]) -> Any:
    """Whether a value is an array-like of finite numbers with one of ``ndim`` dimensions."""
    def accepts(value: Any) -> bool:
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return False
        return array.ndim in ndim and array.size > 0 and bool(np.isfinite(array).all())
    return accepts


WEIGHT_CONCENTRATION_PRIOR_TYPE = Setting(
    "weight_concentration_prior_type", WEIGHT_PRIORS[0],
    "The prior over the weights: a Dirichlet process (stick-breaking) or a Dirichlet distribution.", str,
    choices=WEIGHT_PRIORS)
WEIGHT_CONCENTRATION_PRIOR = Setting(
    "weight_concentration_prior", None, "The weights' concentration (default 1/n_components); smaller leaves more "
    "components empty.", float, gt=0, optional=True)
MEAN_PRECISION_PRIOR = Setting("mean_precision_prior", None, "How strongly the means are drawn to mean_prior "
                               "(default 1).", float, gt=0, optional=True)
MEAN_PRIOR = Setting("mean_prior", None, "The prior of the means (n_features,) (default: the data's mean).",
                     optional=True, in_runs=False, domain="None or an array (n_features,) of finite numbers",
                     accepts=_finite_array((1,)))
DEGREES_OF_FREEDOM_PRIOR = Setting(
    "degrees_of_freedom_prior", None, "The Wishart's degrees of freedom, > n_features - 1 (default n_features).",
    float, gt=0, optional=True)
COVARIANCE_PRIOR = Setting(
    "covariance_prior", None, "The Wishart's scale, shaped like one component's covariance (default: the data's "
    "covariance).", optional=True, in_runs=False,
    domain="None, a number > 0 (spherical), an array (n_features,) (diag) or (n_features, n_features) (full, tied)",
    accepts=_finite_array((0, 1, 2)))

#: What to do about NaN, which a variational fit refuses (see :attr:`BayesianGaussianFamily.nan_hint`).
NAN_HINT = ("; BayesianGaussianMixture does not fit missing values: impute them, or fit daskem.GaussianMixture, "
            "which fits them exactly (missing='nan')")


@dataclass(frozen=True, eq=False)
class VariationalStatistics(PosteriorStatistics):
    """A pass's Gaussian sums under a posterior's E-step, with that posterior and the prior: a value type with
    ``+`` (see :class:`~daskem.families.base.Statistics`).

    Attributes
    ----------
    sums : the pass's :class:`~daskem.families.gaussian.GaussianStatistics` under
        :func:`~daskem.kernels.variational.as_gaussian_params` of ``used``; their ``log_likelihood`` is
        ``Σ_i w_i log Σ_k ρ_ik``, not a log-likelihood.
    used : the posterior the pass evaluated (None for running sums, see
        :meth:`BayesianGaussianFamily.stepwise_as_statistics`: they have no objective).
    prior : the prior.
    reg_covar, covariance_type : the family's.
    """

    sums: GaussianStatistics
    used: GaussianPosterior | None
    prior: GaussianPrior
    reg_covar: float
    covariance_type: str


    @cached_property
    def updated(self) -> GaussianPosterior:
        """The variational M-step: the posterior these sums give (computed once)."""
        sums = self.sums
        return posterior_of_sums(sums.nk, sums.s1, sums.s2, sums.reference, self.prior, self.reg_covar,
                                 self.covariance_type)

    @property
    def objective(self) -> float:
        """The evidence lower bound per unit weight, on scikit-learn's scale: of the responsibilities the pass
        gave and the posterior they give (:attr:`updated`), as scikit-learn computes it after its M-step."""
        sums = self.sums
        spread = entropy(sums.log_likelihood, sums.nk, sums.s1, sums.s2, sums.reference, self.used)
        return lower_bound(self.updated, spread) / sums.weight_sum


class BayesianGaussianFamily(Family):
    """Gaussian components under a conjugate prior, fitted by variational EM (see the module's docstring).

    The prior's settings may be None (choose from the data): :meth:`for_data` resolves them.  Arrays are kept
    as tuples of floats (covariances flattened row by row), so that settings compare, hash and go into files.
    """

    name = "bayesian_gaussian"
    SETTINGS = (COVARIANCE_TYPE, REG_COVAR, WEIGHT_CONCENTRATION_PRIOR_TYPE, WEIGHT_CONCENTRATION_PRIOR,
                MEAN_PRECISION_PRIOR, MEAN_PRIOR, DEGREES_OF_FREEDOM_PRIOR, COVARIANCE_PRIOR)
    GIVEN = ()
    missing = "error"
    variational = True
    accelerates = False
    nan_hint = NAN_HINT

    covariance_type: str
    reg_covar: float
    weight_concentration_prior_type: str
    weight_concentration_prior: float | None
    mean_precision_prior: float | None
    mean_prior: tuple[float, ...] | None
    degrees_of_freedom_prior: float | None
    covariance_prior: tuple[float, ...] | float | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("weight_concentration_prior", "mean_precision_prior", "degrees_of_freedom_prior"):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))
        if self.mean_prior is not None:
            self.mean_prior = tuple(float(v) for v in np.asarray(self.mean_prior, dtype=np.float64))
        if self.covariance_prior is not None:
            self.covariance_prior = self._flat_covariance(np.asarray(self.covariance_prior, dtype=np.float64))

    def _flat_covariance(self, array: np.ndarray) -> tuple[float, ...] | float:
        """A covariance prior of the covariance type's shape, checked, as a tuple (spherical: a float)."""
        kind = self.covariance_type
        ndim = {"full": 2, "tied": 2, "diag": 1, "spherical": 0}[kind]
        if array.ndim != ndim or (ndim == 2 and array.shape[0] != array.shape[1]):
            shape = {2: "(n_features, n_features)", 1: "(n_features,)", 0: "a number"}[ndim]
            raise InputError(f"covariance_prior must be {shape} for covariance_type={kind!r}, got shape "
                             f"{array.shape}")
        if ndim == 2 and not np.allclose(array, array.T, rtol=1e-10, atol=0):
            raise InputError("covariance_prior must be a symmetric matrix")
        return float(array) if ndim == 0 else tuple(float(v) for v in array.ravel())

    def check_given_prior(self) -> None:
        """Refuse a covariance prior given by the user that is not positive definite (one taken from the data
        may be singular, as scikit-learn's: the posterior adds each component's scatter and ``reg_covar``)."""
        if self.covariance_prior is None:
            return
        array = self._covariance_array()
        smallest = np.linalg.eigvalsh(array).min() if array.ndim == 2 else array.min()
        if not smallest > 0:
            raise InputError(f"covariance_prior must be positive definite (its smallest eigenvalue is {smallest:g})")

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> BayesianGaussianFamily:
        """The family that :meth:`settings` describe (a full or tied covariance prior read as a square)."""
        settings = dict(settings)
        covariance = settings.get("covariance_prior")
        if covariance is not None and settings.get("covariance_type", COVARIANCE_TYPE.default) in ("full", "tied"):
            flat = np.asarray(covariance, dtype=np.float64).ravel()
            d = int(round(np.sqrt(flat.size)))
            if d * d != flat.size:
                raise InputError(f"covariance_prior holds {flat.size} values, not a square matrix's")
            settings["covariance_prior"] = flat.reshape(d, d)
        return cls(**settings)

    @property
    def label(self) -> str:
        return f"Bayesian {self.covariance_type}"

    @cached_property
    def gaussian(self) -> GaussianFamily:
        """The Gaussian family of the same covariance type and ``reg_covar``: what counts, samples, scores and
        checks the data."""
        return GaussianFamily(self.covariance_type, self.reg_covar, missing="error")

    # ------------------------------------------------------------------ the prior

    def moments_needed(self) -> str | None:
        """The data's moments the prior's defaults need: "full" (a covariance matrix), "diagonal" (means and
        variances), or None."""
        if self.covariance_prior is None:
            return "full" if self.covariance_type in ("full", "tied") else "diagonal"
        return "diagonal" if self.mean_prior is None else None

    def for_data(self, n_components: int, n_features: int, moments: Moments | None) -> BayesianGaussianFamily:
        """This family with every prior setting resolved, as scikit-learn's defaults for ``n_components`` on
        rows of ``n_features`` whose weighted moments are ``moments``: concentration ``1/K``, mean precision 1,
        the data's mean, ``d`` degrees of freedom, the data's covariance (frequency weights: integer weights
        count as repeated rows)."""
        settings = self.settings()
        mean, covariance = settings["mean_prior"], settings["covariance_prior"]
        if mean is None or covariance is None:
            if moments.weight_sum <= 1.0:
                raise InputError(f"the rows weigh {moments.weight_sum:g} in all, no more than 1 sample: the prior's "
                                 "default covariance needs more; give covariance_prior, or more rows")
            mean = moments.mean if mean is None else mean
            if covariance is None:
                covariance = moments.covariance()
                if self.covariance_type in ("diag", "spherical"):
                    covariance = np.diagonal(covariance) if covariance.ndim == 2 else covariance
                    covariance = covariance.mean() if self.covariance_type == "spherical" else covariance
        if len(mean) != n_features:
            raise InputError(f"mean_prior has {len(mean)} values for data of {n_features} features")
        dof = n_features if settings["degrees_of_freedom_prior"] is None else settings["degrees_of_freedom_prior"]
        if not dof > n_features - 1:
            raise InputError(f"degrees_of_freedom_prior must be > n_features - 1 = {n_features - 1}, got {dof!r}")
        concentration = settings["weight_concentration_prior"]
        settings.update(
            weight_concentration_prior=1.0 / n_components if concentration is None else concentration,
            mean_precision_prior=1.0 if settings["mean_precision_prior"] is None else settings["mean_precision_prior"],
            mean_prior=mean, degrees_of_freedom_prior=dof, covariance_prior=covariance)
        family = type(self).from_settings(settings)
        shape = family._covariance_array().shape
        if shape not in ((), (n_features,), (n_features, n_features)):
            raise InputError(f"covariance_prior has shape {shape} for data of {n_features} features")
        return family

    def _covariance_array(self) -> np.ndarray:
        array = np.asarray(self.covariance_prior, dtype=np.float64)
        if self.covariance_type in ("full", "tied"):
            d = int(round(np.sqrt(array.size)))
            return array.reshape(d, d)
        return array

    @property
    def prior(self) -> GaussianPrior:
        """The prior, once :meth:`for_data` has resolved it."""
        if self.mean_prior is None or self.covariance_prior is None or self.weight_concentration_prior is None:
            raise InputError("the prior is not resolved yet: fit the model first")
        return GaussianPrior(self.weight_concentration_prior_type, self.weight_concentration_prior,
                             self.mean_precision_prior, np.asarray(self.mean_prior), self.degrees_of_freedom_prior,
                             self._covariance_array())

    # ------------------------------------------------------------------ EM

    def chunk_statistics(self, X: np.ndarray, params: GaussianPosterior, first_row: int,
                         sample_weight: np.ndarray | None) -> VariationalStatistics:
        try:
            sums = GaussianStatistics.from_chunk(X, as_gaussian_params(params), first_row, sample_weight)
        except NonFiniteDataError as error:
            raise NonFiniteDataError(f"{error}{self.nan_hint}" if np.isnan(X).any() else str(error)) from None
        return VariationalStatistics(sums, params, self.prior, self.reg_covar, self.covariance_type)

    def m_step(self, stats: VariationalStatistics, may_reseed: np.ndarray | None = None
               ) -> tuple[GaussianPosterior, list[tuple[int, int]]]:
        """The posterior the sums give (:attr:`VariationalStatistics.updated`); no restarts."""
        return stats.updated, []

    def e_step(self, X: np.ndarray, params: GaussianPosterior, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """``log Σ_k ρ_k(x)`` (n,) — scikit-learn's ``score_samples`` for this model — and the variational
        log responsibilities (n, K)."""
        return self.gaussian.e_step(X, as_gaussian_params(params), first_row)

    def log_prob(self, X: np.ndarray, params: GaussianPosterior, first_row: int) -> np.ndarray:
        """``log ρ_k(x)`` (K, n): the variational E-step before its normalisation."""
        return self.gaussian.log_prob(X, as_gaussian_params(params), first_row)

    def impute(self, X: np.ndarray, params: GaussianPosterior, first_row: int) -> np.ndarray:
        """Missing values filled at the posterior's expected mixture (:attr:`GaussianPosterior.point`)."""
        return self.gaussian.impute(X, params.point, first_row)

    def check_first_pass(self, stats: VariationalStatistics) -> None:
        self.gaussian.check_first_pass(stats.sums)

    def n_parameters(self, n_components: int, n_features: int) -> int:
        return self.gaussian.n_parameters(n_components, n_features)

    # ------------------------------------------------------------------ stepwise EM (partial_fit)

    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """The Gaussian's running statistics (weights, means, scatter per unit weight), and ``running_total``:
        the weight of every batch seen, by which the posterior's counts are the running ones times it (with
        ``decay=1`` and equal batches, the posterior of all the rows seen)."""
        return {**self.gaussian.stepwise_dims(), "running_total": ()}

    def stepwise_statistics(self, stats: VariationalStatistics) -> dict[str, np.ndarray]:
        return {**self.gaussian.stepwise_statistics(stats.sums), "running_total": np.float64(stats.weight_sum)}

    def stepwise_blend(self, running: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                       gamma: float) -> dict[str, np.ndarray]:
        """The Gaussian's blend (Chan's update); the totals add."""
        blended = self.gaussian.stepwise_blend(running, batch, gamma)
        return {**blended, "running_total": running["running_total"] + batch["running_total"]}

    def stepwise_start(self, params: GaussianPosterior) -> dict[str, np.ndarray]:
        """The sums the posterior was formed from (:func:`~daskem.kernels.variational.posterior` undone), per
        unit weight, and their total ``Σ_k N_k``."""
        nk, means, scatter = sums_of_posterior(params, self.prior, self.reg_covar)
        total = nk.sum()
        return {"running_weights": nk / total, "running_means": means, "running_scatter": scatter / total,
                "running_total": np.float64(total)}

    def stepwise_as_statistics(self, running: dict[str, np.ndarray]) -> VariationalStatistics:
        """The running sums times ``running_total``, about the running means: the M-step's input."""
        total = float(running["running_total"])
        sums = self.gaussian.stepwise_as_statistics(running)
        sums = dataclasses.replace(sums, nk=sums.nk * total, s2=sums.s2 * total, weight_sum=total)
        return VariationalStatistics(sums, None, self.prior, self.reg_covar, self.covariance_type)

    # ------------------------------------------------------------------ starting

    def given_shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        return {}

    def with_given(self, estimated: GaussianPosterior | None, given: dict[str, np.ndarray | None]
                   ) -> GaussianPosterior:
        return estimated

    def assignment_statistics(self, X: np.ndarray, assignment: np.ndarray, weights: np.ndarray,
                              reference: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.gaussian.assignment_statistics(X, assignment, weights, reference)

    def params_from_assignment(self, stats: tuple[np.ndarray, ...], reference: np.ndarray) -> GaussianPosterior:
        """The posterior the assignment's sums give, as scikit-learn starts from its initial responsibilities."""
        return posterior_of_sums(*stats, reference, self.prior, self.reg_covar, self.covariance_type)

    # ------------------------------------------------------------------ model files

    def dims(self) -> dict[str, tuple[str, ...]]:
        """The expected weights, the means and covariances, then the posterior's own arrays."""
        stick = self.weight_concentration_prior_type == "dirichlet_process"
        return {"weights": ("component",), "means": ("component", "feature"),
                "covariances": COVARIANCE_DIMS[self.covariance_type],
                "weight_concentration": ("stick_end", "component") if stick else ("component",),
                "mean_precision": ("component",), "degrees_of_freedom": ("component",)}

    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> GaussianPosterior:
        """The posterior, once its positive arrays are found positive and its weights those of its
        concentrations."""
        for name in ("weight_concentration", "mean_precision", "degrees_of_freedom"):
            if not (arrays[name] > 0).all():
                raise ModelFileError(f"{source}: {name} must be positive")
        if (arrays["degrees_of_freedom"] <= arrays["means"].shape[1] - 1).any():
            raise ModelFileError(f"{source}: degrees_of_freedom must exceed n_features - 1")
        point = self.gaussian.from_variables(arrays, source)
        post = GaussianPosterior(arrays["weight_concentration"], arrays["mean_precision"], point.means,
                                 arrays["degrees_of_freedom"], point.covariances, point.precisions_cholesky,
                                 self.covariance_type)
        if not np.allclose(post.weights, arrays["weights"], rtol=1e-9, atol=1e-12):
            raise ModelFileError(f"{source}: the weights are not those of weight_concentration")
        return post

    # ------------------------------------------------------------------ sampling and summaries

    def at_floor(self, params: GaussianPosterior) -> np.ndarray:
        return self.gaussian.at_floor(params.point)

    def variances(self, params: GaussianPosterior) -> np.ndarray:
        return self.gaussian.variances(params.point)

    def random_params(self, n_components: int, n_features: int, rng: np.random.Generator) -> GaussianPosterior:
        raise InputError("daskem generate draws from a GaussianMixture's family; a Bayesian mixture has no "
                         "parameters of its own to draw from")

    def sample(self, params: GaussianPosterior, n_samples: int, rng: np.random.Generator
               ) -> tuple[np.ndarray, np.ndarray]:
        return self.gaussian.sample(params.point, n_samples, rng)

