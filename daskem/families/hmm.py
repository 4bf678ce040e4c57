"""Hidden Markov models whose emissions are a family's components: the E-step and M-step of Baum–Welch.

A hidden Markov model of K states is a mixture whose component for each step
depends on the state of the step before: ``p(z_1 = k) = π_k``,
``p(z_{t+1} = k | z_t = j) = A_jk``, and the step's emission ``p(x_t | z_t = k)``
is the k-th component of any family's mixture (:class:`~daskem.families.base.Family`
``log_prob``, its weights held at 1 so that ``log α_k = 0`` there).  Its E-step
is the forward–backward pass (:mod:`daskem.kernels.hmm`) over the pieces of each
sequence that a chunk holds; its statistics are the expected first states, the
expected transitions and the family's own statistics of the rows under the
posteriors (``assignment_statistics``), which add across pieces and chunks as a
mixture's do.  Its M-step is hmmlearn's (Dirichlet priors on ``π`` and each row
of ``A``) for ``π`` and ``A``, and the family's own for the emissions.

How the pieces of a sequence split over chunks pass their messages is
:mod:`daskem.engine.sequences`'s business.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from daskem.exceptions import InputError, ModelFileError
from daskem.families.base import Family, MixtureStatistics, Params
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.gaussian import GaussianFamily
from daskem.families.poisson import PoissonFamily
from daskem.kernels import hmm


@dataclass(frozen=True, eq=False)
class HMMParams:
    """A hidden Markov model's parameters.

    Attributes
    ----------
    startprob : (K,) ``π_k = p(z_1 = k)``.
    transmat : (K, K) ``A_jk = p(z_{t+1} = k | z_t = j)``, rows summing to 1.
    emission : the emission family's parameters, its weights all 1 (so its ``log_prob`` is ``log p_k(x)``).
    """

    startprob: np.ndarray
    transmat: np.ndarray
    emission: Params

    @property
    def n_components(self) -> int:
        return len(self.startprob)

    @property
    def n_features(self) -> int:
        return self.emission.n_features

    @property
    def means(self) -> np.ndarray:
        return self.emission.means


def unit_weights(emission: Params) -> Params:
    """``emission`` with every weight 1: its components' log densities are then its ``log_prob``, exactly."""
    return dataclasses.replace(emission, weights=np.ones(emission.n_components))


@dataclass(frozen=True, eq=False)
class HMMStatistics(MixtureStatistics):
    """Summed E-step statistics of some steps under one model.

    ``log_likelihood`` (nats) is the steps' share of ``Σ_s log p(x^(s))``
    (whole sequences' add up to it), ``n_steps`` the steps, ``n_sequences`` the
    sequences begun among them; ``start`` (K,) ``Σ_s γ^(s)_1``, ``transitions``
    (K, K) ``Σ ξ_t`` over the transitions into the steps, ``emission`` the
    emission family's ``assignment_statistics`` under the posteriors, taken
    about the model's means; ``params`` the model (not added: every piece's is the same).
    """

    log_likelihood: float
    n_steps: int
    n_sequences: int
    start: np.ndarray
    transitions: np.ndarray
    emission: tuple[np.ndarray, ...]
    params: HMMParams
    missing: tuple[int, int, int] = (0, 0, 0)

    def __add__(self, other: HMMStatistics) -> HMMStatistics:
        return HMMStatistics(
            self.log_likelihood + other.log_likelihood, self.n_steps + other.n_steps,
            self.n_sequences + other.n_sequences, self.start + other.start, self.transitions + other.transitions,
            tuple(a + b for a, b in zip(self.emission, other.emission)), self.params,
            tuple(a + b for a, b in zip(self.missing, other.missing)))

    @property
    def weight_sum(self) -> float:
        """The steps counted (each weighs 1): the log-likelihood per step is what Baum–Welch climbs."""
        return float(self.n_steps)

    def collapsed(self) -> np.ndarray:
        """None: a state no step visits keeps its emissions (no restarts in an HMM)."""
        return np.empty(0, dtype=np.int64)


class HiddenMarkovFamily:
    """Hidden Markov models with ``emission`` components: what the EM engine needs to fit them, and what model
    files and checkpoints need to store them (as a :class:`~daskem.families.base.Family` does).

    ``startprob_prior`` and ``transmat_prior`` are the concentrations of the
    Dirichlet priors on ``π`` and on each row of ``A`` (1: none, the
    maximum-likelihood step); ``params`` the letters of the parameters each
    M-step updates (``s`` ``π``, ``t`` ``A``, and the emission family's
    :attr:`LETTERS`, all or none of them).  A subclass names its emission family.
    """

    #: The emission family, and the letters (hmmlearn's) that name its parameters in ``params``.
    EMISSION: ClassVar[type[Family]]
    LETTERS: ClassVar[str]
    #: The settings of an HMM besides its emission family's.
    OWN_SETTINGS: ClassVar[tuple[str, ...]] = ("startprob_prior", "transmat_prior", "params")
    name: ClassVar[str]
    variational: ClassVar[bool] = False
    accelerates: ClassVar[bool] = False

    def __init__(self, emission: Family | None = None, startprob_prior: float = 1.0, transmat_prior: float = 1.0,
                 params: str | None = None) -> None:
        emission = self.EMISSION() if emission is None else emission
        letters = self.LETTERS
        params = "st" + letters if params is None else params
        unknown = sorted(set(params) - set("st" + letters))
        if unknown:
            raise InputError(f"params holds {''.join(unknown)!r}, which names no parameter of an HMM with "
                             f"{emission.name.title()} emissions: use letters of {'st' + letters!r}")
        if 0 < len(set(params) & set(letters)) < len(letters):
            raise InputError(f"params must update the {emission.name.title()} emissions whole: give all of "
                             f"{letters!r} or none")
        self.emission, self.params = emission, params
        self.startprob_prior, self.transmat_prior = float(startprob_prior), float(transmat_prior)
        self.updates_emission = bool(set(params) & set(letters))

    @property
    def label(self) -> str:
        return f"HMM with {self.emission.name.title()} emissions"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.settings().items()))))

    def __repr__(self) -> str:
        own = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.OWN_SETTINGS)
        return f"{type(self).__name__}({self.emission!r}, {own})"

    # ------------------------------------------------------------------ settings and arrays, as files store them

    @classmethod
    def setting_names(cls) -> tuple[str, ...]:
        return (*cls.EMISSION.setting_names(), *cls.OWN_SETTINGS)

    def settings(self) -> dict[str, Any]:
        """The emission family's settings and the HMM's, by name."""
        return {**self.emission.settings(), **{name: getattr(self, name) for name in self.OWN_SETTINGS}}

    @classmethod
    def from_settings(cls, settings: dict[str, Any]) -> HiddenMarkovFamily:
        emission = cls.EMISSION.from_settings({name: value for name, value in settings.items()
                                               if name in cls.EMISSION.setting_names()})
        return cls(emission, **{name: settings[name] for name in cls.OWN_SETTINGS if name in settings})

    def dims(self) -> dict[str, tuple[str, ...]]:
        """``startprob`` (component), ``transmat`` (component, component2), then the emission family's arrays
        but its weights."""
        emission = {name: dims for name, dims in self.emission.dims().items() if name != "weights"}
        return {"startprob": ("component",), "transmat": ("component", "component2"), **emission}

    def variables(self, params: HMMParams) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
        arrays = {"startprob": params.startprob, "transmat": params.transmat}
        return {name: (dims, arrays[name] if name in arrays else getattr(params.emission, name))
                for name, dims in self.dims().items()}

    def from_variables(self, arrays: dict[str, np.ndarray], source: str) -> HMMParams:
        """The model of stored arrays, checked: probabilities that sum to 1, emissions in the family's space."""
        startprob, transmat = arrays["startprob"], arrays["transmat"]
        for name, array in (("startprob", startprob), ("transmat", transmat)):
            if array.min() < 0 or np.abs(array.sum(axis=-1) - 1.0).max() > PROBABILITY_SUM_TOLERANCE:
                raise ModelFileError(f"{source}: {name} must hold probabilities summing to 1"
                                     + (" in each row" if array.ndim == 2 else ""))
        k = len(startprob)
        emission = {name: array for name, array in arrays.items() if name not in ("startprob", "transmat")}
        params = self.emission.from_variables({"weights": np.full(k, 1.0 / k), **emission}, source)
        return HMMParams(startprob, transmat, unit_weights(params))

    def stepwise_dims(self) -> dict[str, tuple[str, ...]]:
        """None: an HMM does not learn batch by batch."""
        return {}

    # ------------------------------------------------------------------ the E-step

    def log_emission(self, X: np.ndarray, params: HMMParams, first_row: int) -> np.ndarray:
        """``log p(x_t | z_t = k)`` (n, K) of rows X (n, d), in nats."""
        return np.ascontiguousarray(self.emission.log_prob(X, params.emission, first_row).T)

    def _statistics(self, X: np.ndarray, params: HMMParams, first_row: int, log_likelihood: float,
                    posteriors: np.ndarray, start: np.ndarray, transitions: np.ndarray,
                    n_sequences: int) -> HMMStatistics:
        emission = (self.emission.posterior_statistics(X, posteriors, params.emission, first_row)
                    if self.updates_emission else ())
        gaps = np.isnan(X) if self.emission.takes_missing else None
        missing = (0, 0, 0) if gaps is None else (
            int(gaps.sum()), int(gaps.any(axis=1).sum()), int(gaps.all(axis=1).sum()))
        return HMMStatistics(log_likelihood, len(X), n_sequences, start, transitions, emission, params, missing)

    def sequences_statistics(self, X: np.ndarray, params: HMMParams, first_row: int,
                             lengths: np.ndarray) -> HMMStatistics:
        """The E-step of whole sequences laid end to end in rows X (n, d), of ``lengths`` (s,) summing to n."""
        log_likelihood, start, transitions, posteriors = hmm.sequences_statistics(
            self.log_emission(X, params, first_row), lengths, params.startprob, params.transmat)
        return self._statistics(X, params, first_row, log_likelihood, posteriors, start, transitions, len(lengths))

    def forward_message(self, X: np.ndarray, params: HMMParams, first_row: int,
                        incoming: np.ndarray | None) -> np.ndarray:
        """The forward message at the end of a piece of a sequence (rows X (n, d)) from the one before it
        (see :func:`daskem.kernels.hmm.forward_message`)."""
        return hmm.forward_message(self.log_emission(X, params, first_row), params.startprob, params.transmat,
                                   incoming)[1]

    def piece_statistics(self, X: np.ndarray, params: HMMParams, first_row: int, incoming: np.ndarray | None,
                         beta: np.ndarray | None) -> tuple[HMMStatistics, np.ndarray]:
        """The E-step of a piece of a sequence (rows X (n, d)) and the backward message of the step before it
        (see :func:`daskem.kernels.hmm.piece_statistics`)."""
        log_likelihood, posteriors, transitions, before = hmm.piece_statistics(
            self.log_emission(X, params, first_row), params.startprob, params.transmat, incoming, beta)
        opens = incoming is None
        start = posteriors[0].copy() if opens else np.zeros(params.n_components)
        return (self._statistics(X, params, first_row, log_likelihood, posteriors, start, transitions, int(opens)),
                before)

    def posteriors(self, X: np.ndarray, params: HMMParams, first_row: int, incoming: np.ndarray | None,
                   beta: np.ndarray | None) -> tuple[tuple[np.ndarray, float], np.ndarray]:
        """The posteriors (n, K) and log-likelihood (nats) of a piece of a sequence, and the backward message
        of the step before it."""
        log_likelihood, posteriors, _, before = hmm.piece_statistics(
            self.log_emission(X, params, first_row), params.startprob, params.transmat, incoming, beta)
        return (posteriors, log_likelihood), before

    def sequences_posteriors(self, X: np.ndarray, params: HMMParams, first_row: int,
                             lengths: np.ndarray) -> tuple[np.ndarray, float]:
        """The posteriors (n, K) of whole sequences laid end to end in rows X (n, d), and their log-likelihood."""
        parts = [self.posteriors(X[a:b], params, first_row + a, None, None)[0] for a, b in _bounds(lengths)]
        return np.concatenate([part for part, _ in parts]), sum(total for _, total in parts)

    def viterbi_forward(self, X: np.ndarray, params: HMMParams, first_row: int,
                        incoming: np.ndarray | None) -> np.ndarray:
        """``log δ`` at the end of a piece of a sequence (see :func:`daskem.kernels.hmm.viterbi_forward`)."""
        return hmm.viterbi_forward(self.log_emission(X, params, first_row), params.startprob, params.transmat,
                                   incoming)

    def viterbi_piece(self, X: np.ndarray, params: HMMParams, first_row: int, incoming: np.ndarray | None,
                      end: int | None) -> tuple[tuple[np.ndarray, float], int]:
        """The most probable states (n,) of a piece of a sequence and, where it closes its sequence, the path's
        log probability (else 0); and the state of the step before it (see
        :func:`daskem.kernels.hmm.viterbi_piece`)."""
        log_prob, path, before = hmm.viterbi_piece(self.log_emission(X, params, first_row), params.startprob,
                                                   params.transmat, incoming, end)
        return (path, log_prob if end is None else 0.0), before

    def sequences_viterbi(self, X: np.ndarray, params: HMMParams, first_row: int,
                          lengths: np.ndarray) -> tuple[np.ndarray, float]:
        """The most probable states (n,) of whole sequences in rows X (n, d), and the sum of their paths' log
        probabilities."""
        parts = [self.viterbi_piece(X[a:b], params, first_row + a, None, None)[0] for a, b in _bounds(lengths)]
        return np.concatenate([path for path, _ in parts]), sum(log_prob for _, log_prob in parts)

    def check_first_pass(self, stats: HMMStatistics) -> None:
        """Nothing to refuse: the emissions' log densities were checked as each piece was read."""

    # ------------------------------------------------------------------ the M-step

    def m_step(self, stats: HMMStatistics, may_reseed: np.ndarray | None = None
               ) -> tuple[HMMParams, list[tuple[int, int]]]:
        """hmmlearn's M-step: ``π ∝ max(prior − 1 + Σ γ_1, 0)`` and each row of ``A`` likewise from
        ``Σ ξ`` (a probability that is 0 stays 0; a row that no step leaves keeps its values); the emissions
        from the family's own M-step on the posteriors' statistics; no restarts."""
        params = stats.params
        startprob, transmat, emission = params.startprob, params.transmat, params.emission
        if "s" in self.params:
            startprob = _dirichlet_step(startprob, stats.start, self.startprob_prior)
        if "t" in self.params:
            transmat = _dirichlet_step(transmat, stats.transitions, self.transmat_prior)
        if self.updates_emission:
            emission = unit_weights(self.emission.params_from_posterior_statistics(stats.emission, params.emission))
        return HMMParams(startprob, transmat, emission), []


def _dirichlet_step(current: np.ndarray, counts: np.ndarray, prior: float) -> np.ndarray:
    """The MAP distributions (each row of ``counts``, (K,) or (K, K)) under a Dirichlet prior of concentration
    ``prior``: ``max(prior − 1 + counts, 0)`` normalised, 0 where ``current`` is 0 (hmmlearn's); a row whose
    total is 0 keeps ``current``'s."""
    values = np.where(current == 0, 0.0, np.maximum(prior - 1.0 + counts, 0.0))
    total = values.sum(axis=-1, keepdims=True)
    return np.where(total > 0, values / np.where(total > 0, total, 1.0), current)


def _bounds(lengths: np.ndarray) -> list[tuple[int, int]]:
    """The rows ``[a, b)`` of each of sequences of ``lengths`` laid end to end."""
    ends = np.cumsum(lengths)
    return [(int(end - length), int(end)) for end, length in zip(ends, lengths)]


#: How far stored probabilities may sum from 1 (rounding of K numbers written as decimals).
PROBABILITY_SUM_TOLERANCE = 1e-9


class GaussianHMMFamily(HiddenMarkovFamily):
    EMISSION, LETTERS, name = GaussianFamily, "mc", "gaussian_hmm"


class BernoulliHMMFamily(HiddenMarkovFamily):
    EMISSION, LETTERS, name = BernoulliFamily, "e", "bernoulli_hmm"


class PoissonHMMFamily(HiddenMarkovFamily):
    EMISSION, LETTERS, name = PoissonFamily, "l", "poisson_hmm"


#: The HMM families by name (``gaussian_hmm``, …), as model files and checkpoints record them.
HMM_FAMILIES: dict[str, type[HiddenMarkovFamily]] = {
    kind.name: kind for kind in (GaussianHMMFamily, BernoulliHMMFamily, PoissonHMMFamily)}
