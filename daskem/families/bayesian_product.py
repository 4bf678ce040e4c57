"""Bayesian mixtures of product components (Bernoulli, Poisson) under conjugate priors, fitted by variational EM.

The model: a Dirichlet process (or Dirichlet distribution) over the weights,
as for :class:`~daskem.families.bayesian.BayesianGaussianFamily`, and a
conjugate prior on each component's parameter of each feature — Beta on a
Bernoulli probability, Gamma on a Poisson rate (the arithmetic is in
:mod:`daskem.kernels.conjugate` and :mod:`daskem.kernels.variational`).  The
variational posterior factorises the same way, and variational EM reads the
same sums as EM:

- the E-step is a product family's (:class:`~daskem.families.product.ProductFamily`)
  under the *expected* coefficients ``E_q[A]``, ``E_q[B]`` and offsets
  ``E_q[log π_k]`` in place of ``log α_k``: its responsibilities are the
  variational ones, and its ``log_likelihood`` is ``Σ_i w_i log Σ_k ρ_ik``;
- the M-step is the posterior those sums give (``N_k``, ``Σ w r x`` and the
  observed counts ``N_k − unseen``): missing values drop out exactly, as in
  the point families;
- what EM climbs is the evidence lower bound of the posterior the pass used,
  per unit weight (:attr:`ConjugateStatistics.objective`): with the
  responsibilities optimal for that posterior it is exactly
  ``(Σ_i w_i log Σ_k ρ_ik − KL(q ‖ prior)) / Σ_i w_i``, and it never decreases
  from one pass to the next.

Components are never restarted (draining the surplus is the point), and the
posterior is not extrapolated (``accelerates = False``).  A family is the
point family whose rows, domain and draws it shares (:attr:`BayesianProductFamily.POINT`),
its conjugate prior (:attr:`~BayesianProductFamily.CONJUGATE`), the prior's two
settings and the names of the posterior's two arrays in model files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from daskem.exceptions import InputError, ModelFileError
from daskem.families.base import MISSING, PosteriorStatistics
from daskem.families.bayesian import WEIGHT_CONCENTRATION_PRIOR, WEIGHT_CONCENTRATION_PRIOR_TYPE
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.poisson import PoissonFamily
from daskem.families.product import MeanParams, MeanStatistics, ProductFamily
from daskem.kernels.conjugate import BetaBernoulli, Conjugate, GammaPoisson
from daskem.kernels.moments import Moments
from daskem.kernels.stepwise import blend_linear
from daskem.kernels.variational import (
    expected_log_weights,
    expected_weights,
    weight_concentration,
    weight_counts,
    weight_divergence,
)
from daskem.settings import Setting

SUCCESS_PRIOR = Setting("success_prior", 1.0, "Beta prior of each probability: successes seen before the data.",
                        float, gt=0)
FAILURE_PRIOR = Setting("failure_prior", 1.0, "Beta prior of each probability: failures seen before the data.",
                        float, gt=0)
COUNT_PRIOR = Setting("count_prior", 1.0, "Gamma prior (shape) of each rate: as if count_prior events had been "
                      "seen in exposure_prior rows.", float, gt=0)
EXPOSURE_PRIOR = Setting("exposure_prior", 1.0, "Gamma prior (rate) of each rate: as if count_prior events had "
                         "been seen in exposure_prior rows.", float, gt=0)


@dataclass(frozen=True, eq=False)
class ProductPosterior(MeanParams):
    """The variational posterior of a Bayesian product mixture, as :class:`MeanParams` for the E-step.

    Attributes
    ----------
    weights : (K,) the expected weights ``E_q[π_k]``, summing to 1.
    means : (K, d) the posterior means: probabilities ``a / (a + b)`` or rates ``a / b``.
    weight_concentration : (K,) the Dirichlet's parameters, or (2, K) each stick's Beta (Dirichlet process).
    a, b : (K, d) the conjugate posterior of each parameter: Beta(a, b), or Gamma(shape a, rate b).
    expected_log_weights : (K,) ``E_q[log π_k]``, what the E-step adds to each component (:attr:`log_weights`).
    """

    weight_concentration: np.ndarray
    a: np.ndarray
    b: np.ndarray
    expected_log_weights: np.ndarray

    @property
    def log_weights(self) -> np.ndarray:
        return self.expected_log_weights


@dataclass(frozen=True, eq=False)
class ConjugateStatistics(PosteriorStatistics):
    """A pass's :class:`~daskem.families.product.MeanStatistics` under a posterior's expected coefficients, with
    that posterior and the family: a value type with ``+`` (see :class:`~daskem.families.base.Statistics`).

    ``sums.log_likelihood`` is ``Σ_i w_i log Σ_k ρ_ik``; ``used`` is the posterior the pass evaluated (None
    for running sums, which have no objective).
    """

    sums: MeanStatistics
    used: ProductPosterior | None
    family: BayesianProductFamily


    @property
    def objective(self) -> float:
        """The evidence lower bound per unit weight of the posterior the pass used, the responsibilities optimal
        for it: ``(Σ_i w_i log Σ_k ρ_ik − KL(q ‖ prior)) / Σ_i w_i`` (NaN for running sums)."""
        if self.used is None:
            return float("nan")
        return (self.sums.log_likelihood - self.family.divergence(self.used)) / self.sums.weight_sum


class BayesianProductFamily(ProductFamily):
    """Product components under a conjugate prior, fitted by variational EM (see the module's docstring).

    A subclass names :attr:`POINT`, :attr:`CONJUGATE`, :attr:`PRIOR`, :attr:`POSTERIOR`, its ``name`` and
    ``SETTINGS`` (the weights' prior, the two of :attr:`PRIOR`, ``missing``).
    """

    #: The point family: its rows' terms, domain, variances and draws are this family's.
    POINT: ClassVar[type[ProductFamily]]
    #: The conjugate prior's arithmetic.
    CONJUGATE: ClassVar[type[Conjugate]]
    #: The settings of the prior of each parameter, ``(a0, b0)``.
    PRIOR: ClassVar[tuple[Setting, Setting]]
    #: The names of the posterior's arrays ``a`` and ``b`` in model files (and the estimator's attributes).
    POSTERIOR: ClassVar[tuple[str, str]]

    GIVEN = ()
    variational = True
    accelerates = False

    weight_concentration_prior_type: str
    weight_concentration_prior: float | None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("weight_concentration_prior", *(setting.name for setting in self.PRIOR)):
            if getattr(self, name) is not None:
                setattr(self, name, float(getattr(self, name)))

    @cached_property
    def point(self) -> ProductFamily:
        """The point family (at its default floor): what checks, scores the rows' own terms and draws."""
        return self.POINT(missing=self.missing)

    # ------------------------------------------------------------------ the prior

    def for_data(self, n_components: int, n_features: int, moments: Moments | None) -> BayesianProductFamily:
        """This family with the weights' concentration resolved: ``1/K`` unless given."""
        if self.weight_concentration_prior is not None:
            return self
        return type(self).from_settings({**self.settings(), "weight_concentration_prior": 1.0 / n_components})

    @property
    def concentration(self) -> float:
        """The weights' concentration, once :meth:`for_data` has resolved it."""
        if self.weight_concentration_prior is None:
            raise InputError("the prior is not resolved yet: fit the model first")
        return self.weight_concentration_prior

    @property
    def prior(self) -> tuple[float, float]:
        """The prior ``(a0, b0)`` of each component's parameter of each feature."""
        return tuple(getattr(self, setting.name) for setting in self.PRIOR)

    def posterior(self, nk: np.ndarray, s1: np.ndarray, unseen: np.ndarray | float) -> ProductPosterior:
        """The variational M-step: the posterior of a pass's sums ``N_k`` (K,), ``Σ w r x`` over observed values
        (K, d) and ``Σ w r`` over missing ones (K, d)."""
        concentration = weight_concentration(nk, self.weight_concentration_prior_type, self.concentration)
        counts = np.broadcast_to(nk[:, np.newaxis] - unseen, s1.shape)  # each feature's observed weight
        return self._posterior(concentration, *self.CONJUGATE.posterior(s1, counts, *self.prior))

    def _posterior(self, concentration: np.ndarray, a: np.ndarray, b: np.ndarray) -> ProductPosterior:
        return ProductPosterior(expected_weights(concentration), self.CONJUGATE.mean(a, b), concentration, a, b,
                                expected_log_weights(concentration))

    def divergence(self, post: ProductPosterior) -> float:
        """``KL(q ‖ prior)`` (nats) of a posterior: its weights' and every component's parameters'."""
        return (weight_divergence(post.weight_concentration, self.concentration)
                + self.CONJUGATE.divergence(post.a, post.b, *self.prior))

    # ------------------------------------------------------------------ the point family's parts

    def natural(self, params: ProductPosterior) -> tuple[np.ndarray, np.ndarray]:
        """The expected coefficients ``E_q[A]``, ``E_q[B]`` (d, K)."""
        expected, per_feature = self.CONJUGATE.expected_natural(params.a, params.b)
        return expected.T, per_feature.T

    def row_terms(self, X: np.ndarray) -> np.ndarray | None:
        return self.point.row_terms(X)

    def check_rows(self, X: np.ndarray, first_row: int, rows: np.ndarray | None = None) -> None:
        self.point.check_rows(X, first_row, rows)

    def floor(self, means: np.ndarray) -> np.ndarray:
        return self.point.floor(means)

    def variance(self, means: np.ndarray) -> np.ndarray:
        return self.point.variance(means)

    def random_means(self, n_components: int, n_features: int, rng: np.random.Generator) -> np.ndarray:
        return self.point.random_means(n_components, n_features, rng)

    def draw(self, means: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        return self.point.draw(means, n_samples, rng)

    # ------------------------------------------------------------------ EM

    def chunk_statistics(self, X: np.ndarray, params: ProductPosterior, first_row: int,
                         sample_weight: np.ndarray | None) -> ConjugateStatistics:
        return ConjugateStatistics(super().chunk_statistics(X, params, first_row, sample_weight), params, self)

    def m_step(self, stats: ConjugateStatistics, may_reseed: np.ndarray | None = None
               ) -> tuple[ProductPosterior, list[tuple[int, int]]]:
        """The posterior the sums give; no restarts."""
        sums = stats.sums
        return self.posterior(sums.nk, sums.s1, sums.unseen), []

    def _empty_row_scores(self, params: ProductPosterior) -> tuple[float, np.ndarray]:
        """``log Σ_k exp E[log π_k]`` and the normalised ``E[log π]``: the weights' terms alone."""
        log_weights = params.log_weights
        top = log_weights.max()
        norm = top + np.log(np.exp(log_weights - top).sum())
        return norm, log_weights - norm

    # ------------------------------------------------------------------ stepwise EM (partial_fit)

    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """The product families' running sums, and ``running_total``: the weight of every batch seen, by which
        the posterior's sums are the running ones times it (as for a Bayesian Gaussian mixture)."""
        return {**super().stepwise_dims(), "running_total": ()}

    def stepwise_statistics(self, stats: ConjugateStatistics) -> dict[str, np.ndarray]:
        return {**super().stepwise_statistics(stats.sums), "running_total": np.float64(stats.weight_sum)}

    def stepwise_blend(self, running: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                       gamma: float) -> dict[str, np.ndarray]:
        """Linear blends; the totals add."""
        blended = {name: blend_linear(running[name], batch[name], gamma) for name in super().stepwise_dims()}
        return {**blended, "running_total": running["running_total"] + batch["running_total"]}

    def stepwise_start(self, params: ProductPosterior) -> dict[str, np.ndarray]:
        """The sums the posterior was formed from (:meth:`posterior` undone), per unit weight, and their total."""
        nk = weight_counts(params.weight_concentration, self.concentration)
        s1, counts = self.CONJUGATE.sums(params.a, params.b, *self.prior)
        total = nk.sum()
        return {"running_weights": nk / total, "running_sums": s1 / total,
                "running_unseen": (nk[:, np.newaxis] - counts) / total, "running_total": np.float64(total)}

    def stepwise_as_statistics(self, running: dict[str, np.ndarray]) -> ConjugateStatistics:
        """The running sums times ``running_total``: the M-step's input."""
        total = float(running["running_total"])
        sums = super().stepwise_as_statistics(running)
        sums = dataclasses.replace(sums, nk=sums.nk * total, s1=sums.s1 * total, unseen=sums.unseen * total,
                                   weight_sum=total)
        return ConjugateStatistics(sums, None, self)

    # ------------------------------------------------------------------ starting

    def given_shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        return {}

    def with_given(self, estimated: ProductPosterior | None, given: dict[str, np.ndarray | None]
                   ) -> ProductPosterior:
        return estimated

    def params_from_assignment(self, stats: tuple[np.ndarray, ...], reference: np.ndarray) -> ProductPosterior:
        """The posterior of the assignment's sums (every value counted as observed)."""
        nk, s1 = stats
        return self.posterior(nk, s1, 0.0)

    # ------------------------------------------------------------------ model files

    def dims(self) -> dict[str, tuple[str, ...]]:
        """The expected weights, the posterior means, then the posterior's own arrays."""
        stick = self.weight_concentration_prior_type == "dirichlet_process"
        first, second = self.POSTERIOR
        return {"weights": ("component",), "means": ("component", "feature"),
                "weight_concentration": ("stick_end", "component") if stick else ("component",),
                first: ("component", "feature"), second: ("component", "feature")}

    def variables(self, params: ProductPosterior) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        arrays = {"weights": params.weights, "means": params.means,
                  "weight_concentration": params.weight_concentration,
                  self.POSTERIOR[0]: params.a, self.POSTERIOR[1]: params.b}
        return {name: (dims, arrays[name]) for name, dims in self.dims().items()}

    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> ProductPosterior:
        """The posterior of the stored concentration and conjugate arrays, once they are found positive and the
        stored weights and means theirs."""
        first, second = self.POSTERIOR
        for name in ("weight_concentration", first, second):
            if not (arrays[name] > 0).all():
                raise ModelFileError(f"{source}: {name} must be positive")
        concentration = arrays["weight_concentration"]
        if concentration.ndim == 2 and len(concentration) != 2:
            raise ModelFileError(f"{source}: weight_concentration holds {len(concentration)} stick ends, not 2")
        post = self._posterior(concentration, arrays[first], arrays[second])
        for name in ("weights", "means"):
            if not np.allclose(getattr(post, name), arrays[name], rtol=1e-9, atol=1e-12):
                raise ModelFileError(f"{source}: the {name} are not those of weight_concentration, {first} and "
                                     f"{second}")
        return post

    # ------------------------------------------------------------------ sampling

    def random_params(self, n_components: int, n_features: int, rng: np.random.Generator) -> ProductPosterior:
        """The posterior of 10,000 rows whose sums are those of the point family's random mixture: weights and
        means close to its (for ``daskem generate``)."""
        point = self.point.random_params(n_components, n_features, rng)
        nk = point.weights * 1e4
        family = self.for_data(n_components, n_features, None)
        return family.posterior(nk, nk[:, np.newaxis] * point.means, 0.0)


class BayesianBernoulliFamily(BayesianProductFamily):
    """Bernoulli components under a Beta(``success_prior``, ``failure_prior``) prior on each probability;
    the posterior's ``successes`` and ``failures`` (K, d) are its Beta's parameters."""

    name = "bayesian_bernoulli"
    means_are = BernoulliFamily.means_are
    means_range = BernoulliFamily.means_range
    POINT = BernoulliFamily
    CONJUGATE = BetaBernoulli
    PRIOR = (SUCCESS_PRIOR, FAILURE_PRIOR)
    POSTERIOR = ("successes", "failures")
    SETTINGS = (WEIGHT_CONCENTRATION_PRIOR_TYPE, WEIGHT_CONCENTRATION_PRIOR, *PRIOR, MISSING)

    success_prior: float
    failure_prior: float


class BayesianPoissonFamily(BayesianProductFamily):
    """Poisson components under a Gamma(shape ``count_prior``, rate ``exposure_prior``) prior on each rate; the
    posterior's ``events`` and ``exposures`` (K, d) are its Gamma's shape and rate."""

    name = "bayesian_poisson"
    means_are = PoissonFamily.means_are
    means_range = PoissonFamily.means_range
    POINT = PoissonFamily
    CONJUGATE = GammaPoisson
    PRIOR = (COUNT_PRIOR, EXPOSURE_PRIOR)
    POSTERIOR = ("events", "exposures")
    SETTINGS = (WEIGHT_CONCENTRATION_PRIOR_TYPE, WEIGHT_CONCENTRATION_PRIOR, *PRIOR, MISSING)

    count_prior: float
    exposure_prior: float
