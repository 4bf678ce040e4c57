"""The contract between the EM engine and a component family.

A mixture's E-step needs only each component's log density; its M-step for
the weights is always ``α_k = N_k / N``; everything else — the statistics a
chunk returns, the M-step of the components' own parameters, how a collapsed
component restarts, what to check on the data — belongs to the family.  The
engine (:mod:`daskem.engine.em`) runs EM through this contract alone.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Protocol

import numpy as np

from daskem.exceptions import DaskemError
from daskem.kernels.moments import Moments
from daskem.kernels.stepwise import blend_linear
from daskem.settings import Setting, bind


class Params(Protocol):
    """A family's parameters for one candidate mixture (for Gaussians a
    :class:`~daskem.kernels.gaussian.GaussianParams`, for product families a
    :class:`~daskem.families.product.MeanParams`): the weights (K,) and means (K, d) every family has;
    the rest is the family's own, opaque to the engine."""

    weights: np.ndarray
    means: np.ndarray

    @property
    def n_components(self) -> int: ...

    @property
    def n_features(self) -> int: ...

#: What NaN may mean in the data, the default first: "nan", a missing value (fitted exactly, with
#: the observed-data likelihood); "error", bad data.  Every family's ``missing`` setting.
MISSING = Setting("missing", "nan", "What NaN means: error, or nan (a missing value, fitted exactly).", str,
                  choices=("nan", "error"))
#: The initial arrays every family takes (see :meth:`Family.given_shapes`).
WEIGHTS_INIT = Setting("weights_init", None, "Initial weights (K,).", optional=True, in_runs=False)
MEANS_INIT = Setting("means_init", None, "Initial means (K, d).", optional=True, in_runs=False)


class Statistics(Protocol):
    """Summed statistics of some rows under one candidate's parameters.

    Statistics of disjoint chunks add (``+``, associative and commutative,
    given the same parameters) to those of their union, so any reduction tree
    gives the same sums.
    """

    #: ``Σ_i w_i log p(x_i)`` (nats) and ``Σ_i w_i`` over the rows summed.
    log_likelihood: float
    weight_sum: float
    #: Values missing, rows with a missing value, and rows with nothing observed (left out).
    missing: tuple[int, int, int]

    def __add__(self, other: Any) -> Any: ...

    @property
    def mean_log_likelihood(self) -> float:
        """Log-likelihood per unit of weight (per row when unweighted), in nats."""

    @property
    def objective(self) -> float:
        """What EM climbs, per unit of weight: the mean log-likelihood, or for a variational family the
        evidence lower bound (see :mod:`daskem.families.bayesian`)."""

    def collapsed(self) -> np.ndarray:
        """Indices of the components holding less responsibility than one average row."""


class MixtureStatistics:
    """What every family's statistics share, for a dataclass with the fields
    ``log_likelihood``, ``weight_sum``, ``n_samples``, ``nk`` (K,), the K
    worst-explained rows ``worst_log_prob``, ``worst_index``, ``worst_rows``,
    and ``missing`` (see :class:`Statistics`)."""

    @property
    def mean_log_likelihood(self) -> float:
        """Log-likelihood per unit of weight (per row when unweighted), in nats."""
        return self.log_likelihood / self.weight_sum

    @property
    def objective(self) -> float:
        """The mean log-likelihood: what EM climbs."""
        return self.mean_log_likelihood

    def collapsed(self) -> np.ndarray:
        """Components holding less responsibility than one average row: their indices."""
        return np.flatnonzero(self.nk < self.weight_sum / self.n_samples)

    def missing_of_both(self, other: MixtureStatistics) -> tuple[int, int, int]:
        """The missing counts of both."""
        return tuple(a + b for a, b in zip(self.missing, other.missing))

    def worst_of_both(self, other: MixtureStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The K rows of both that the parameters explain worst (ties: the earlier row):
        their log-likelihoods, indices and values."""
        log_prob = np.concatenate([self.worst_log_prob, other.worst_log_prob])
        index = np.concatenate([self.worst_index, other.worst_index])
        keep = np.lexsort((index, log_prob))[: len(self.nk)]
        return log_prob[keep], index[keep], np.concatenate([self.worst_rows, other.worst_rows])[keep]


class PosteriorStatistics:
    """What a variational family's statistics share, for a dataclass whose field ``sums`` holds the pass's
    statistics under the posterior's expected parameters (and whose other fields say what the pass used):
    they add by their sums, read their sums' log-likelihood, weight and missing counts, and never report a
    collapsed component (a Bayesian mixture drains its surplus on purpose)."""

    def __add__(self, other: PosteriorStatistics) -> PosteriorStatistics:
        return dataclasses.replace(self, sums=self.sums + other.sums)

    @property
    def log_likelihood(self) -> float:
        return self.sums.log_likelihood

    @property
    def weight_sum(self) -> float:
        return self.sums.weight_sum

    @property
    def missing(self) -> tuple[int, int, int]:
        return self.sums.missing

    @property
    def mean_log_likelihood(self) -> float:
        return self.sums.mean_log_likelihood

    def collapsed(self) -> np.ndarray:
        return np.empty(0, dtype=np.int64)


class Family(ABC):
    """A component family: what EM needs to fit, start, count, sample and store mixtures of it.

    An instance holds the family's own settings (for Gaussians the covariance
    type and ``reg_covar``); :meth:`settings` and :meth:`from_settings` turn
    them into JSON-able values and back, for model files and checkpoints.
    """

    #: The family's name, as the command line, model files and tables spell it.
    name: ClassVar[str]
    #: Whether rows take discrete values, so that likelihoods are probabilities (counting
    #: measure), not densities: the likelihoods of a discrete and a continuous family are
    #: not comparable, nor their BIC or AIC.
    discrete: ClassVar[bool] = False

    #: The family's own settings (see :class:`~daskem.settings.Setting`): its constructor's arguments, in
    #: order, each checked and kept as the attribute of its name; model files and checkpoints record them.
    SETTINGS: ClassVar[tuple[Setting, ...]] = (MISSING,)
    #: The initial arrays an estimator of the family takes (``weights_init``, …; see :meth:`given_shapes`).
    GIVEN: ClassVar[tuple[Setting, ...]] = (WEIGHTS_INIT, MEANS_INIT)

    #: Whether the parameters are a posterior, fitted by variational EM: the family then climbs the evidence
    #: lower bound (see :attr:`Statistics.objective`), finds its own number of components and draws no data.
    variational: ClassVar[bool] = False
    #: Whether accelerated EM (SQUAREM) may extrapolate the family's parameters (see :meth:`expectations`).
    accelerates: ClassVar[bool] = True
    #: Said after "remove or impute them" where the data hold NaN that the family refuses.
    nan_hint: ClassVar[str] = " (or fit with missing='nan' to treat NaN as missing values)"

    missing: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        for name, value in bind(self.SETTINGS, len(self.SETTINGS), *args, **kwargs).items():
            setattr(self, name, value)
        for setting in self.SETTINGS:
            setting.check(getattr(self, setting.name))

    @property
    def takes_missing(self) -> bool:
        """Whether NaN marks a missing value (else it is refused)."""
        return self.missing == "nan"

    # ------------------------------------------------------------ settings that depend on the data

    def moments_needed(self) -> str | None:
        """Which moments of the data :meth:`for_data` needs: "full" (the covariance matrix), "diagonal" (the
        mean and variances) or None (none, the default)."""
        return None

    def for_data(self, n_components: int, n_features: int, moments: Moments | None) -> Family:
        """The family with any setting left to the data resolved for ``n_components`` on ``n_features``, from
        the rows' :class:`~daskem.kernels.moments.Moments` (None unless :meth:`moments_needed`); itself by
        default."""
        return self

    # ------------------------------------------------------------ identity

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        """The names of the family's settings (see :attr:`SETTINGS`)."""
        return tuple(setting.name for setting in cls.SETTINGS)

    def settings(self) -> dict[str, Any]:
        """This instance's settings by name (str or float), as files record them."""
        return {name: getattr(self, name) for name in self.setting_names()}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> Family:
        """The instance that :meth:`settings` describes."""
        return cls(**settings)

    @property
    def label(self) -> str:
        """What its components are, in a word or two for messages and tables ("full", "Bernoulli")."""
        return self.name.replace("_", " ").title()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.settings() == self.settings()

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.settings().items()))))

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={value!r}" for name, value in self.settings().items())
        return f"{type(self).__name__}({arguments})"

    @abstractmethod
    def chunk_statistics(
        self, X: np.ndarray, params: Params, first_row: int, sample_weight: np.ndarray | None
    ) -> Statistics:
        """The E-step of one chunk: its statistics under ``params``.

        ``X`` (n, d) holds the rows in the dtype the pass reads them in (float64,
        or float32 for the float32 path), ``first_row`` is the index of its first
        row in the data, ``sample_weight`` (n,) its weights or None for ones.
        """

    @abstractmethod
    def m_step(self, stats: Statistics, may_reseed: np.ndarray) -> tuple[Params, list[tuple[int, int]]]:
        """New parameters from summed statistics.

        Collapsed components (see :meth:`Statistics.collapsed`) that
        ``may_reseed`` ((K,) booleans) allows restart; returns the parameters
        and (component, row) for each restart.
        """

    @abstractmethod
    def e_step(self, X: np.ndarray, params: Params, first_row: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores of rows X (n, d) (any real dtype; ``first_row`` names them in errors): ``log p(x_i)``
        (n,) in nats and the log responsibilities (n, K), float64."""

    @abstractmethod
    def log_prob(self, X: np.ndarray, params: Params, first_row: int) -> np.ndarray:
        """``log α_k + log p_k(x_i)`` (K, n) float64 of rows X (n, d) (any real dtype; ``first_row`` names them
        in errors), in nats: the E-step before its normalisation (missing values marginalised as the ``missing``
        setting says; a row with nothing observed has ``log α_k``).  Values outside the domain are refused as
        in :meth:`e_step`."""

    @abstractmethod
    def impute(self, X: np.ndarray, params: Params, first_row: int) -> np.ndarray:
        """Rows X (n, d) with each NaN replaced by its conditional expectation under the mixture given
        the row's observed values (whatever the ``missing`` setting), float64; rows with nothing
        observed take the mixture's mean.  Values outside the domain are refused as in :meth:`e_step`."""

    def check_sample(self, rows: np.ndarray, index: np.ndarray) -> None:
        """Refuse rows (m, d) sampled to initialise — rows ``index`` (m,) of the data, NaN where missing —
        that hold a value outside the family's domain, naming its row and feature (none by default: the
        sample's magnitude check and the first pass's checks serve)."""

    def check_first_pass(self, stats: Statistics) -> None:
        """Refuse data the family cannot fit, from the first pass's statistics (nothing by default)."""

    # ------------------------------------------------------------ extrapolating (accelerated EM)

    def expectations(self, params: Params, reference: Params) -> dict[str, np.ndarray]:
        """The parameters as the expected sufficient statistics per unit weight that their M-step would come
        from, taken about ``reference``'s means (so that they stay exact far from the origin): for each
        array of :meth:`dims`, ``α_k`` for the weights and ``α_k (μ_k − μ_ref,k)`` for the means; families
        with other arrays add them.  Affine combinations of these are combinations of the statistics."""
        weights = params.weights
        return {"weights": weights, "means": weights[:, np.newaxis] * (params.means - reference.means)}

    def from_expectations(self, arrays: dict[str, np.ndarray], reference: Params) -> Params | None:
        """The parameters whose :meth:`expectations` about ``reference`` are ``arrays`` (weights summing to
        1), or None where they leave the parameter space: a weight not above 0, or arrays that
        :meth:`combined` refuses (a covariance not positive definite, a probability outside [0, 1])."""
        weights = arrays["weights"]
        if not (all(np.isfinite(array).all() for array in arrays.values()) and weights.min() > 0):
            return None
        centred = arrays["means"] / weights[:, np.newaxis]
        values = {"weights": weights / weights.sum(), "means": reference.means + centred,
                  **self.own_from_expectations(arrays, weights, centred)}
        try:
            return self.combined(values)
        except DaskemError:
            return None

    def own_from_expectations(self, arrays: dict[str, np.ndarray], weights: np.ndarray,
                              centred: np.ndarray) -> dict[str, np.ndarray]:
        """The family's own arrays (besides weights and means) from :meth:`expectations` ``arrays``, given
        the weights (K,) and the means less the reference's (K, d) they hold (none by default)."""
        return {}

    def combined(self, arrays: dict[str, np.ndarray]) -> Params:
        """The parameters of a combination's arrays (weights positive and summing to 1), as
        :meth:`from_variables` checks a model file's; raise a :class:`~daskem.exceptions.DaskemError`
        where they leave the parameter space."""
        return self.from_variables(arrays, "an extrapolated EM step")

    def step_scales(self, params: Params) -> dict[str, np.ndarray]:
        """For each array of :meth:`expectations`, the scale (broadcastable to it) that a change of it is
        measured in near ``params``, so that changes of arrays in different units compare.

        Each is ``1/√`` of the diagonal of the Fisher information of one row
        in those coordinates: ``√α_k`` for the weights, ``√(α_k σ²_kj)`` for
        the means (σ² from :meth:`variances`); families with other arrays add
        them.  Scales do not move with the data's origin, so neither does an
        accelerated fit.
        """
        weights = params.weights
        return {"weights": np.sqrt(weights), "means": np.sqrt(weights[:, np.newaxis] * self.variances(params))}

    # ------------------------------------------------------------ stepwise EM (partial_fit)

    @abstractmethod
    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """The running statistics of stepwise EM (see :mod:`daskem.kernels.stepwise`) by name, and their
        dimensions as a model file stores them (``running_weights`` (component) first)."""

    @abstractmethod
    def stepwise_statistics(self, stats: Statistics) -> dict[str, np.ndarray]:
        """A pass's summed statistics as running statistics (the arrays of :meth:`stepwise_dims`) per
        unit weight: divided by ``stats.weight_sum`` (positive)."""

    def stepwise_blend(self, running: dict[str, np.ndarray], batch: dict[str, np.ndarray],
                       gamma: float) -> dict[str, np.ndarray]:
        """``(1 − γ) running + γ batch``: by default array by array (statistics linear in the rows)."""
        return {name: blend_linear(running[name], batch[name], gamma) for name in self.stepwise_dims()}

    @abstractmethod
    def stepwise_start(self, params: Params) -> dict[str, np.ndarray]:
        """Running statistics whose M-step gives ``params`` back (to rounding): the expected statistics
        per unit weight of the parameters, about their own means (see :meth:`expectations`)."""

    @abstractmethod
    def stepwise_as_statistics(self, running: dict[str, np.ndarray]) -> Statistics:
        """Running statistics as a pass's summed statistics of unit weight, for :meth:`m_step`."""

    def stepwise_m_step(self, running: dict[str, np.ndarray]) -> Params:
        """The parameters of running statistics: :meth:`m_step`, with no component restarted."""
        stats = self.stepwise_as_statistics(running)
        return self.m_step(stats, np.zeros(len(running["running_weights"]), dtype=bool))[0]

    # ------------------------------------------------------------ counting

    @abstractmethod
    def n_parameters(self, n_components: int, n_features: int) -> int:
        """Free parameters of a mixture of ``n_components`` on ``n_features`` (for BIC and AIC)."""

    # ------------------------------------------------------------ starting

    @abstractmethod
    def given_shapes(self, n_components: int, n_features: int) -> dict[str, tuple[int, ...]]:
        """The initial arrays a user may give (``weights_init``, ``means_init``, …) and their shapes."""

    def check_given(self, given: dict[str, np.ndarray]) -> None:
        """Refuse (with :class:`~daskem.exceptions.InputError`) given initial arrays — finite, of
        their shapes, weights a distribution — outside the family's parameter space."""

    @abstractmethod
    def with_given(self, estimated: Params | None, given: dict[str, np.ndarray | None]) -> Params:
        """Parameters from the given initial arrays, the ``estimated`` ones standing in for those not
        given (``estimated`` is None only when every array is given)."""

    @abstractmethod
    def assignment_statistics(
        self, X: np.ndarray, assignment: np.ndarray, weights: np.ndarray, reference: np.ndarray
    ) -> tuple[np.ndarray, ...]:
        """Statistics of rows X (n, d) float64 assigned to components, to start from.

        ``assignment`` holds labels (n,) in [0, K) (−1: none) or responsibilities
        (n, K); ``weights`` (n,) the rows' weights; ``reference`` (K, d) a point
        per component that sums may be taken about (each label's centre).  The
        arrays returned add element by element across chunks.
        """

    @abstractmethod
    def params_from_assignment(self, stats: tuple[np.ndarray, ...], reference: np.ndarray) -> Params:
        """The start that summed :meth:`assignment_statistics` (about ``reference``) give."""

    def posterior_statistics(self, X: np.ndarray, posteriors: np.ndarray, params: Params,
                             first_row: int) -> tuple[np.ndarray, ...]:
        """The E-step's statistics of rows X (n, d) whose responsibilities come from elsewhere — ``posteriors``
        (n, K), such as a hidden Markov model's — under ``params`` (for the missing values' conditional
        expectations; weights not used), taken about its means: what :meth:`params_from_posterior_statistics`
        turns into the M-step's parameters.  The arrays add element by element across chunks.  By default
        :meth:`assignment_statistics` (rows without missing values)."""
        return self.assignment_statistics(X, posteriors, np.ones(len(X)), params.means)

    def params_from_posterior_statistics(self, stats: tuple[np.ndarray, ...], params: Params) -> Params:
        """The M-step of summed :meth:`posterior_statistics` taken about ``params``'s means (weights ``N_k / N``)."""
        return self.params_from_assignment(stats, params.means)

    # ------------------------------------------------------------ model files

    @abstractmethod
    def dims(self) -> dict[str, tuple[str, ...]]:
        """The arrays of a model file and their dimensions: ``weights`` (component) and ``means``
        (component, feature) first, then the family's own; a second axis of features is ``feature2``."""

    def variables(self, params: Params) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        """The arrays of a model file: name → (dimensions, values), each the attribute of ``params``
        of that name."""
        return {name: (dims, getattr(params, name)) for name, dims in self.dims().items()}

    @abstractmethod
    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> Params:
        """Parameters from a model file's arrays (finite float64, dimensions checked, weights a
        distribution); raise :class:`~daskem.exceptions.ModelFileError` naming ``source`` for values
        outside the family's parameter space."""

    # ------------------------------------------------------------ sampling and summaries

    def at_floor(self, params: Params) -> np.ndarray:
        """Which components (K,) booleans have a shape the family's floor sets rather than the data: a
        likelihood that grows without bound as the floor falls (a spurious maximum, closed in on a few rows
        or on rows that share a value).  None, unless a family's likelihood is unbounded (see Gaussian's)."""
        return np.zeros(params.n_components, dtype=bool)

    @abstractmethod
    def variances(self, params: Params) -> np.ndarray:
        """The variance (K, d) of each feature under each component, in the features' units squared."""

    @abstractmethod
    def random_params(self, n_components: int, n_features: int, rng: np.random.Generator) -> Params:
        """A random mixture whose components differ clearly, to draw synthetic data from
        (``daskem generate``)."""

    @abstractmethod
    def sample(self, params: Params, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` rows (n, d) float64 drawn from the mixture, grouped by component, and their
        components (n,) int64."""

