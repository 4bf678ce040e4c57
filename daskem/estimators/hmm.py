"""Hidden Markov models fitted by Baum–Welch, out of core: :class:`GaussianHMM`, :class:`BernoulliHMM`,
:class:`PoissonHMM`.

The surface is hmmlearn's where it applies (``startprob_``, ``transmat_``,
``means_``, ``covars_``; ``fit(X, lengths)``, ``predict``, ``predict_proba``,
``score``, ``score_samples``, ``decode``, ``sample``; ``params`` and
``init_params`` as letters).  Where daskem's conventions differ they are
daskem's: ``max_iter`` (hmmlearn's ``n_iter``) and ``tol`` per step, not for
the whole data; ``history_`` (the log-likelihood per step of each
iteration); the emission family's own settings and defaults
(``covariance_type="full"``, ``reg_covar`` added to the variances where
hmmlearn adds a prior ``covars_prior``).

The E-step runs over the data's row chunks (see :mod:`daskem.engine.sequences`),
sequences split over chunks included; the engine's EM loop
(:func:`daskem.engine.em.run_em`) advances ``n_init`` starts in shared passes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator

from daskem.engine.em import IterationInfo, best_run, run_em
from daskem.engine.initialization import INIT_METHODS, InitSpec, initial_params, random_generator
from daskem.engine.passes import compute_one_thread_blas, progress_bar
from daskem.engine.sequences import POSTERIORS, VITERBI, SequenceBlocks, Sequences, statistics_pass
from daskem.estimators.fitting import show_log_lines
from daskem.estimators.settings import (
    CHUNK_ROWS,
    MAX_ITER,
    N_COMPONENTS,
    N_INIT,
    RANDOM_STATE,
    SPLIT_EVERY,
    TOL,
    VERBOSE,
)
from daskem.exceptions import ConvergenceWarning, InputError, ModelFileError, NotFittedError
from daskem.families.base import Family, Params
from daskem.families.hmm import (
    BernoulliHMMFamily,
    GaussianHMMFamily,
    HiddenMarkovFamily,
    HMMParams,
    PoissonHMMFamily,
    unit_weights,
)
from daskem.io.checkpoints import checkpointing, comparable_seed, params_digest
from daskem.io.inputs import fit_inputs, named_beside
from daskem.io.model_files import (
    model_attributes,
    params_from_dataset,
    params_history,
    params_to_dataset,
    write_dataset,
)
from daskem.io.zarr_rows import is_path
from daskem.kernels.gaussian import GaussianParams
from daskem.settings import Setting, is_integer, settings_init
from daskem.version import __version__

__all__ = ["BernoulliHMM", "GaussianHMM", "HiddenMarkovModel", "PoissonHMM"]

STARTPROB_PRIOR = Setting("startprob_prior", 1.0, "Concentration of the Dirichlet prior on the start "
                          "probabilities (1: none).", float, ge=0)
TRANSMAT_PRIOR = Setting("transmat_prior", 1.0, "Concentration of the Dirichlet prior on each row of the "
                         "transition matrix (1: none).", float, ge=0)
ALGORITHM = Setting("algorithm", "viterbi", "How predict decodes: viterbi (the most probable path of states) or "
                    "map (each step's most probable state).", str, choices=("viterbi", "map"))
INIT_METHOD = Setting("init_method", "k-means++", "How the emissions' start is found.", str, choices=INIT_METHODS)


def _letters(name: str, letters: str, help: str) -> Setting:
    return Setting(name, letters, help, str, domain=f"a string of the letters {letters!r}",
                   accepts=lambda value: isinstance(value, str) and set(value) <= set(letters))


class HiddenMarkovModel(BaseEstimator):
    """A hidden Markov model whose emissions are the components of :attr:`FAMILY`, fitted by Baum–Welch out of
    core (see the module's notes; :class:`GaussianHMM` documents the parameters)."""

    #: The model's family (its emission family's settings are the estimator's).
    FAMILY: ClassVar[type[HiddenMarkovFamily]]
    SETTINGS: ClassVar[tuple[Setting, ...]]

    # ------------------------------------------------------------------ settings

    @classmethod
    def _settings(cls, family: type[HiddenMarkovFamily]) -> tuple[Setting, ...]:
        letters = "st" + family.LETTERS
        own = family.EMISSION.SETTINGS
        return (N_COMPONENTS, *own, STARTPROB_PRIOR, TRANSMAT_PRIOR, ALGORITHM, RANDOM_STATE, MAX_ITER, TOL,
                VERBOSE, _letters("params", letters, "The parameters each iteration updates."),
                _letters("init_params", letters, "The parameters the fit initialises (the others are taken "
                         "from the attributes as they are set)."),
                INIT_METHOD, N_INIT, CHUNK_ROWS, SPLIT_EVERY)

    def _family(self) -> HiddenMarkovFamily:
        """The model's family with this estimator's settings (checked)."""
        for setting in self.SETTINGS:
            setting.check(getattr(self, setting.name))
        emission = self.FAMILY.EMISSION
        own = {setting.name: getattr(self, setting.name) for setting in emission.SETTINGS}
        return self.FAMILY(emission(**own), self.startprob_prior, self.transmat_prior, self.params)

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, lengths: Any = None, *, variable: str | None = None, sequence_ids: Any = None,
            sample_weight: None = None, callbacks: Sequence[Callable[[IterationInfo], None]] = (),
            checkpoint: str | os.PathLike | None = None) -> HiddenMarkovModel:
        """Fit the model by Baum–Welch (one EM step per pass over the data).

        Parameters
        ----------
        X : (n_samples, n_features) rows — NumPy, Dask, xarray or a Zarr path/URL (with ``variable``) — the
            steps of the sequences one after another.
        lengths : (n_sequences,) positive integers summing to n_samples, each sequence's steps (None: one
            sequence), or the name of an array beside ``variable`` (in the Zarr group or Dataset) that holds them.
        variable : the variable or Zarr array holding the rows.
        sequence_ids : instead of ``lengths``, one id per row (an array, or the name of one beside ``variable``):
            each run of rows with one id is a sequence, whose rows must be contiguous.
        sample_weight : refused: a step's weight has no meaning in a chain, whose steps follow one another (a
            sequence that should count twice is given twice).
        callbacks : called after each iteration of each start with an :class:`~daskem.engine.em.IterationInfo`.
        checkpoint : a folder for a checkpoint after every iteration; a fit of the same data, lengths and
            settings resumes from it and ends bitwise as the uninterrupted fit (see :mod:`daskem.io.checkpoints`).
        """
        if sample_weight is not None:
            raise InputError("a hidden Markov model takes no sample_weight: a step's weight has no meaning in a "
                             "chain of steps; give a sequence that should count twice twice")
        family = self._family()
        source, data = X, fit_inputs(X, variable, None, chunk_rows=self.chunk_rows)[1]
        n_samples, n_features = data.shape
        if n_samples < self.n_components:
            raise InputError(f"the data have {n_samples} rows, fewer than n_components={self.n_components}; "
                             "reduce n_components or add data")
        sequences = _sequences(source, n_samples, lengths, sequence_ids)
        given = self._given(family, n_features)
        if self.verbose:
            show_log_lines()
        with (checkpointing(checkpoint, self._checkpoint_settings(family, sequences, given), data, None,
                            inputs=[source] if is_path(source) else []) as saved,
              progress_bar(self.verbose >= 2)):
            starts = saved.load() if saved is not None else None
            if starts is None:
                starts = [(family, params) for params in self._starts(family, data, given)]
            results = run_em(statistics_pass(SequenceBlocks.of(data, sequences), self.split_every), starts,
                             tol=self.tol, max_iter=self.max_iter, acceleration="none", split_every=self.split_every,
                             callbacks=callbacks, on_iteration=saved.save if saved is not None else None)
        best = best_run(results)
        self._set_params(best.params)
        self.n_features_in_ = n_features
        self.converged_, self.n_iter_, self.history_ = best.converged, best.n_iter, best.history
        self.lower_bound_ = best.lower_bound
        self.n_missing_values_, self.n_incomplete_rows_, self.n_empty_rows_ = best.missing
        if not self.converged_ and self.max_iter > 0:
            change = self.history_[-1] - self.history_[-2] if self.n_iter_ > 1 else np.inf
            warnings.warn(f"Baum–Welch did not converge in {self.max_iter} iterations (last change of the "
                          f"log-likelihood per step {change:.3g} >= tol={self.tol:g}); increase max_iter or tol",
                          ConvergenceWarning, stacklevel=2)
        return self

    def _checkpoint_settings(self, family: HiddenMarkovFamily, sequences: Sequences, given: HMMParams
                             ) -> dict[str, Any]:
        """What must match for a checkpoint to be resumed: the family, the settings that shape the fit, the
        lengths and the arrays taken from the attributes."""
        settings = {"family": family.name, **family.settings(),
                    **{name: getattr(self, name) for name in ("n_components", *self.RECORDED, "chunk_rows",
                                                              "split_every")}}
        settings["random_state"] = comparable_seed(self.random_state)
        settings["lengths"] = hashlib.sha256(sequences.starts.tobytes()).hexdigest()[:16]
        settings["given"] = params_digest(family, given) if given.emission is not None else [
            hashlib.sha256(np.asarray(array).tobytes()).hexdigest()[:16] for array in (given.startprob, given.transmat)]
        return settings

    def _starts(self, family: HiddenMarkovFamily, data: Any, given: HMMParams) -> list[HMMParams]:
        """``n_init`` starts: the emissions from the family's start on the rows (as a mixture's) where
        ``init_params`` asks for them, else ``given``'s; the start and transition probabilities ``given``'s."""
        k, letters = self.n_components, set(self.init_params)
        if letters & set(family.LETTERS):
            specs = [InitSpec(k, family.emission, self.init_method)] * self.n_init
            emissions = [unit_weights(params) for params in initial_params(
                data, None, specs, rng=random_generator(self.random_state), split_every=self.split_every)]
        else:
            emissions = [given.emission] * self.n_init
        return [HMMParams(given.startprob, given.transmat, emission) for emission in emissions]

    def _given(self, family: HiddenMarkovFamily, n_features: int) -> HMMParams:
        """The start where ``init_params`` leaves a parameter to the attributes (checked): theirs, else uniform
        start and transition probabilities, and no emissions (None: the fit finds them)."""
        k, letters = self.n_components, set(self.init_params)
        needed = [name for letter, name in (("s", "startprob_"), ("t", "transmat_")) if letter not in letters]
        if not set(family.LETTERS) <= letters:
            needed += list(self.EMISSION_ATTRIBUTES)
        missing = [name for name in needed if getattr(self, name, None) is None]
        if missing:
            raise InputError(f"init_params={self.init_params!r} leaves {', '.join(missing)} to be given, but "
                             "they are not set: set them before fit, or add their letters to init_params")
        startprob = (np.full(k, 1.0 / k) if "s" in letters
                     else _distribution(self.startprob_, (k,), "startprob_"))
        transmat = (np.full((k, k), 1.0 / k) if "t" in letters
                    else _distribution(self.transmat_, (k, k), "transmat_"))
        emission = (None if set(family.LETTERS) <= letters
                    else self._emission_from_attributes(family.emission, n_features))
        return HMMParams(startprob, transmat, emission)

    # ------------------------------------------------------------------ the fitted model

    #: The attributes that hold the emissions, and the emission family's arrays they are (see
    #: :meth:`~daskem.families.base.Family.dims`).
    EMISSION_ATTRIBUTES: ClassVar[dict[str, str]] = {"means_": "means"}

    def _emission_from_attributes(self, emission: Family, n_features: int) -> Params:
        """The emission parameters the attributes hold (weights 1), checked."""
        k = self.n_components
        shapes = {name: (k,) if dims == ("component",) else tuple(
            {"component": k, "feature": n_features, "feature2": n_features}[dim] for dim in dims)
            for name, dims in emission.dims().items()}
        arrays = {"weights": np.full(k, 1.0 / k)}
        for attribute, name in self.EMISSION_ATTRIBUTES.items():
            arrays[name] = _array(self._attribute(attribute, n_features), shapes[name], attribute)
        return unit_weights(emission.from_variables(arrays, "the attributes"))

    def _attribute(self, name: str, n_features: int) -> Any:
        """The value of attribute ``name`` on ``n_features``."""
        return getattr(self, name)

    def _set_params(self, params: HMMParams) -> None:
        """The attributes of a fitted model."""
        self.startprob_, self.transmat_ = params.startprob, params.transmat
        self.means_ = params.emission.means

    @property
    def params_(self) -> HMMParams:
        """The model the attributes hold, as one value: a fitted model's, or attributes set by hand (as in
        hmmlearn, a model whose ``startprob_``, ``transmat_`` and emissions are set scores, decodes and samples)."""
        first = next(iter(self.EMISSION_ATTRIBUTES))
        if any(getattr(self, name, None) is None for name in ("startprob_", "transmat_", *self.EMISSION_ATTRIBUTES)):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 "appropriate arguments before using this estimator (or set startprob_, transmat_ "
                                 f"and {', '.join(self.EMISSION_ATTRIBUTES)}).")
        n_features = getattr(self, "n_features_in_", None) or np.shape(getattr(self, first))[-1]
        family = self._family()
        k = self.n_components
        return HMMParams(_distribution(self.startprob_, (k,), "startprob_"),
                         _distribution(self.transmat_, (k, k), "transmat_"),
                         self._emission_from_attributes(family.emission, n_features))

    # ------------------------------------------------------------------ model files

    #: The settings a model file records besides the family's (which hold the priors and ``params``).
    RECORDED: ClassVar[tuple[str, ...]] = ("tol", "max_iter", "n_init", "init_params", "init_method", "algorithm")

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model to Zarr (or netCDF for a .nc suffix), atomically; an existing ``path`` is replaced
        only with ``overwrite=True``, and only if it is a daskem model (see :mod:`daskem.io.outputs`)."""
        write_dataset(self.to_dataset(), path, "model", overwrite=overwrite, label="path")

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as an :class:`xarray.Dataset` (see :mod:`daskem.io.model_files`): ``startprob``,
        ``transmat`` (component, component2), the emissions' arrays and ``history``."""
        params = self.params_
        attrs = {"n_iter": int(self.n_iter_), "converged": int(self.converged_),
                 "lower_bound": float(self.lower_bound_), "daskem_version": __version__,
                 **{name: getattr(self, name) for name in self.RECORDED}}
        if is_integer(self.random_state):
            attrs["random_state"] = int(self.random_state)
        return params_to_dataset(self._family(), params, self.history_, attrs)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str = "the model file") -> HiddenMarkovModel:
        """The model stored in a Dataset made by :meth:`to_dataset`, checked (see :mod:`daskem.io.model_files`)."""
        family, params = params_from_dataset(ds, source)
        if type(family) is not cls.FAMILY:
            raise ModelFileError(f"{source} holds a {family.name} model, not one for {cls.__name__}; "
                                 "read it with daskem.load")
        attrs = model_attributes(ds, source)
        settings = dict(family.settings())
        settings.update({name: attrs[name] for name in (*cls.RECORDED, "random_state") if name in attrs})
        model = cls(n_components=params.n_components, **settings)
        try:
            model._family()
        except InputError as error:
            raise ModelFileError(f"{source}: {error}") from None
        model._set_params(params)
        model.n_features_in_ = params.n_features
        model.history_ = params_history(ds)
        model.n_iter_ = attrs.get("n_iter", len(model.history_))
        model.converged_ = attrs.get("converged", False)
        model.lower_bound_ = attrs.get("lower_bound", np.nan)
        return model

    # ------------------------------------------------------------------ scoring and decoding

    def _blocks(self, X: Any, lengths: Any, variable: str | None, sequence_ids: Any) -> SequenceBlocks:
        _, data, _ = fit_inputs(X, variable, None, chunk_rows=self.chunk_rows)
        n_features = self.params_.n_features
        if data.shape[1] != n_features:
            raise InputError(f"X has {data.shape[1]} features, but the model has {n_features}")
        return SequenceBlocks.of(data, _sequences(X, data.shape[0], lengths, sequence_ids))

    def score_samples(self, X: Any, lengths: Any = None, *, variable: str | None = None, sequence_ids: Any = None
                      ) -> tuple[float, np.ndarray]:
        """The log-likelihood of all sequences (nats) and the posteriors (n_samples, K) of every step."""
        candidate = (self._family(), self.params_)
        posteriors, total = self._blocks(X, lengths, variable, sequence_ids).per_step(POSTERIORS, candidate,
                                                                        self.n_components, np.float64)
        posteriors, total = compute_one_thread_blas(posteriors, total)
        return float(total), posteriors

    def score(self, X: Any, lengths: Any = None, *, variable: str | None = None, sequence_ids: Any = None) -> float:
        """The log-likelihood of all sequences, in nats (hmmlearn's ``score``)."""
        return self.score_samples(X, lengths, variable=variable, sequence_ids=sequence_ids)[0]

    def predict_proba(self, X: Any, lengths: Any = None, *, variable: str | None = None,
                      sequence_ids: Any = None) -> np.ndarray:
        """The posteriors (n_samples, K) ``p(z_t = k | x)`` of every step."""
        return self.score_samples(X, lengths, variable=variable, sequence_ids=sequence_ids)[1]

    def n_parameters(self) -> int:
        """The free parameters the fit estimates (those ``params`` names, as hmmlearn counts them): ``K − 1``
        start probabilities, ``K (K − 1)`` transition probabilities, and the emissions' (the family's count for a
        mixture less its ``K − 1`` weights)."""
        params = self.params_
        family, k = self._family(), params.n_components
        letters = set(self.params)
        emission = family.emission.n_parameters(k, params.n_features) - (k - 1)
        return (("s" in letters) * (k - 1) + ("t" in letters) * k * (k - 1)
                + bool(letters & set(family.LETTERS)) * emission)

    def aic(self, X: Any, lengths: Any = None, *, variable: str | None = None, sequence_ids: Any = None) -> float:
        """Akaike's information criterion, ``−2 log L + 2 p`` (lower is better; hmmlearn's ``aic``)."""
        return -2.0 * self.score(X, lengths, variable=variable, sequence_ids=sequence_ids) + 2 * self.n_parameters()

    def bic(self, X: Any, lengths: Any = None, *, variable: str | None = None, sequence_ids: Any = None) -> float:
        """The Bayesian information criterion, ``−2 log L + p log n`` with n the steps (hmmlearn's ``bic``)."""
        n_steps = fit_inputs(X, variable, None, chunk_rows=self.chunk_rows)[1].shape[0]
        return (-2.0 * self.score(X, lengths, variable=variable, sequence_ids=sequence_ids)
                + self.n_parameters() * np.log(n_steps))

    def decode(self, X: Any, lengths: Any = None, algorithm: str | None = None, *, variable: str | None = None,
               sequence_ids: Any = None) -> tuple[float, np.ndarray]:
        """The states (n_samples,) of every step and a score, as hmmlearn's ``decode``: with ``"viterbi"`` the
        most probable path and the sum of its log probability over sequences (nats); with ``"map"`` each
        step's most probable state and the sum of those posteriors."""
        algorithm = self.algorithm if algorithm is None else algorithm
        ALGORITHM.check(algorithm)
        if algorithm == "map":
            _, posteriors = self.score_samples(X, lengths, variable=variable, sequence_ids=sequence_ids)
            return float(posteriors.max(axis=1).sum()), posteriors.argmax(axis=1)
        candidate = (self._family(), self.params_)
        states, total = self._blocks(X, lengths, variable, sequence_ids).per_step(VITERBI, candidate, None, np.int64)
        states, total = compute_one_thread_blas(states, total)
        return float(total), states

    def predict(self, X: Any, lengths: Any = None, *, variable: str | None = None,
                sequence_ids: Any = None) -> np.ndarray:
        """The state (n_samples,) of every step, decoded by ``algorithm``."""
        return self.decode(X, lengths, variable=variable, sequence_ids=sequence_ids)[1]

    def decode_dataset(self, X: Any, lengths: Any = None, *, variable: str | None = None,
                       sequence_ids: Any = None) -> xr.Dataset:
        """Every step's state (decoded by ``algorithm``) and posteriors, lazily: an :class:`xarray.Dataset` of Dask
        arrays chunked like the rows (moved to sequence boundaries, see :mod:`daskem.engine.sequences`) —
        ``state`` (sample) and ``posterior`` (sample, component) — with the log-likelihood of all sequences and,
        for Viterbi, the best paths' log probability as attributes once computed by :meth:`decode` (not here).
        Computing it (or ``to_zarr``) reads the data once for the posteriors and, for Viterbi, once more."""
        candidate = (self._family(), self.params_)
        blocks = self._blocks(X, lengths, variable, sequence_ids)
        posteriors, _ = blocks.per_step(POSTERIORS, candidate, self.n_components, np.float64)
        states = (blocks.per_step(VITERBI, candidate, None, np.int64)[0] if self.algorithm == "viterbi"
                  else posteriors.argmax(axis=1))
        return xr.Dataset(
            {"state": ("sample", states, {"long_name": f"hidden state of each step ({self.algorithm})", "units": "1"}),
             "posterior": (("sample", "component"), posteriors,
                           {"long_name": "posterior probability of each state at each step", "units": "1"})},
            coords={"component": np.arange(self.n_components)})

    def sample(self, n_samples: int = 1, random_state: Any = None, currstate: int | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """``n_samples`` steps (n_samples, d) of one sequence drawn from the model, and their states; from
        ``currstate`` (else a draw from ``startprob_``).  ``random_state`` defaults to the estimator's."""
        params, family = self.params_, self._family()
        rng = random_generator(self.random_state if random_state is None else random_state)
        k = self.n_components
        states = np.empty(n_samples, dtype=np.int64)
        state = rng.choice(k, p=params.startprob) if currstate is None else int(currstate)
        for t in range(n_samples):
            if t > 0:
                state = rng.choice(k, p=params.transmat[state])
            states[t] = state
        X = np.empty((n_samples, params.n_features))
        for component in np.unique(states):
            chosen = states == component
            weights = np.eye(k)[component]
            one = dataclasses.replace(params.emission, weights=weights)
            X[chosen] = family.emission.sample(one, int(chosen.sum()), rng)[0]
        return X, states

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _sequences(X: Any, n_rows: int, lengths: Any, sequence_ids: Any) -> Sequences:
    """The sequences of ``n_rows`` rows of X that ``lengths`` or ``sequence_ids`` (arrays, or names of arrays
    beside the rows) give."""
    if sequence_ids is not None:
        if lengths is not None:
            raise InputError("give lengths or sequence_ids, not both")
        ids = named_beside(sequence_ids, X, "sequence_ids", "ids")
        return Sequences.of_ids(ids.data if isinstance(ids, xr.DataArray) else ids, n_rows)
    lengths = named_beside(lengths, X, "lengths", "lengths")
    if isinstance(lengths, (xr.DataArray, da.Array)):
        lengths = np.asarray(lengths.compute() if isinstance(lengths, da.Array) else lengths.values)
    return Sequences.of(lengths, n_rows)


def _array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape:
        raise InputError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise InputError(f"{name} holds NaN or infinite values")
    return array


def _distribution(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``value`` as float64 probabilities of ``shape`` whose last axis sums to 1, checked (not renormalised: a
    fitted model's attributes are its parameters, bit for bit)."""
    array = _array(value, shape, name)
    if array.min() < 0 or not np.allclose(array.sum(axis=-1), 1.0, rtol=0, atol=1e-8):
        raise InputError(f"{name} must hold probabilities summing to 1"
                         + (" in each row" if array.ndim == 2 else "") + f", got sums {array.sum(axis=-1)}")
    return array


_SHARED_DOC = """\
    missing : {"nan", "error"}, default "nan"
        "nan": NaN marks a missing value, marginalised exactly as in the mixtures (a step with nothing observed
        has density 1 and still moves the chain); "error": NaN is refused.
    startprob_prior, transmat_prior : float, default 1.0
        Concentrations of the Dirichlet priors on ``startprob_`` and on each row of ``transmat_``, as hmmlearn's
        (1: none; each M-step takes ``max(prior − 1 + counts, 0)``, normalised).
    algorithm : {"viterbi", "map"}, default "viterbi"
        How :meth:`predict` decodes.
    random_state : int, Generator, RandomState or None
        Seed of the start (and of :meth:`sample`).
    max_iter : int, default 100
        Most iterations (passes over the data; hmmlearn's ``n_iter``).
    tol : float, default 1e-3
        Stop when the log-likelihood per step changes by less (hmmlearn's ``tol`` bounds the change of the
        whole data's: ``tol / n_samples`` here stops where hmmlearn stops).
    verbose : int, default 0
        Log one line per iteration (2: and a progress bar).
    params, init_params : str
        The letters of the parameters each iteration updates, and of those the fit initialises (the others
        are taken from the attributes, set before ``fit``): ``s`` ``startprob_``, ``t`` ``transmat_``, and
        the emissions' letters — all or none of them.
    init_method : str, default "k-means++"
        How the emissions' start is found: as a mixture's (``daskem.GaussianMixture``'s ``init_params``).
        The start and transition probabilities start uniform.
    n_init : int, default 1
        Starts, advancing together in shared passes; the best log-likelihood is kept.
    chunk_rows, split_every
        As for :class:`daskem.GaussianMixture`.

    Attributes
    ----------
    startprob_ : (K,) ndarray
    transmat_ : (K, K) ndarray
    means_ : (K, d) ndarray
    converged_, n_iter_, n_features_in_
    n_missing_values_, n_incomplete_rows_, n_empty_rows_ : the values missing, the steps with one, the steps with
        nothing observed.
    history_ : (n_iter_,) the log-likelihood per step (nats) at the start of each iteration of the best start
        (hmmlearn's ``monitor_.history`` holds the whole data's).
    lower_bound_ : its last value.
"""


class GaussianHMM(HiddenMarkovModel):
    __doc__ = """Hidden Markov model with Gaussian emissions, fitted by Baum–Welch out of core.

    Parameters
    ----------
    n_components : int, default 1
        Number of states K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Structure of the state covariances (hmmlearn's default is "diag").
    reg_covar : float, default 1e-6
        Added to the variances after each M-step (hmmlearn adds a prior, ``covars_prior``, instead).
""" + _SHARED_DOC.replace("the emissions' letters", "the emissions' ``m`` ``means_`` and ``c`` ``covars_``") + """\
    covars_ : (K, d, d) ndarray, every state's covariance as a full matrix (hmmlearn's)
    covariances_ : the covariances in the shape of ``covariance_type`` (scikit-learn's)
"""

    FAMILY = GaussianHMMFamily
    SETTINGS = HiddenMarkovModel._settings(GaussianHMMFamily)
    __init__ = settings_init(SETTINGS)

    EMISSION_ATTRIBUTES = {"means_": "means", "covars_": "covariances"}

    def _attribute(self, name: str, n_features: int) -> Any:
        """``covars_`` may hold full matrices (K, d, d) whatever the type, as hmmlearn's attribute gives them, and
        spherical variances in any shape of K values ((K,), (K, 1), …), as hmmlearn takes them."""
        value = getattr(self, name)
        if name != "covars_":
            return value
        if np.shape(value) == (self.n_components, n_features, n_features):
            return _typed(np.asarray(value, dtype=np.float64), self.covariance_type)
        if self.covariance_type == "spherical" and np.size(value) == self.n_components:
            return np.reshape(value, (self.n_components,))
        return value

    def _set_params(self, params: HMMParams) -> None:
        super()._set_params(params)
        emission: GaussianParams = params.emission
        self.covariances_ = emission.covariances
        self.covars_ = emission.full_covariances()


def _typed(full: np.ndarray, covariance_type: str) -> np.ndarray:
    """Full covariances (K, d, d) in the shape of ``covariance_type`` (hmmlearn's ``covars_`` as it reads them)."""
    if covariance_type == "full":
        return full
    if covariance_type == "tied":
        return full[0]
    diagonals = np.diagonal(full, axis1=1, axis2=2)
    return diagonals if covariance_type == "diag" else diagonals.mean(axis=1)


class BernoulliHMM(HiddenMarkovModel):
    __doc__ = """Hidden Markov model whose emissions are products of Bernoulli features (rows of 0 and 1),
    fitted by Baum–Welch out of core.

    Parameters
    ----------
    n_components : int, default 1
        Number of states K.
    min_probability : float, default 1e-10
        Every probability is kept within [p, 1 − p].
""" + _SHARED_DOC.replace("the emissions' letters", "the emissions' ``e`` ``means_``") + """\
    means_ holds each state's probability of a 1 in each feature.
"""

    FAMILY = BernoulliHMMFamily
    SETTINGS = HiddenMarkovModel._settings(BernoulliHMMFamily)
    __init__ = settings_init(SETTINGS)


class PoissonHMM(HiddenMarkovModel):
    __doc__ = """Hidden Markov model with Poisson emissions (counts), fitted by Baum–Welch out of core.

    Parameters
    ----------
    n_components : int, default 1
        Number of states K.
    min_rate : float, default 1e-10
        The least rate of any feature.
""" + _SHARED_DOC.replace("the emissions' letters", "the emissions' ``l`` ``lambdas_``") + """\
    lambdas_ : (K, d) ndarray, each state's rates (hmmlearn's name; ``means_`` holds the same)
"""

    FAMILY = PoissonHMMFamily
    SETTINGS = HiddenMarkovModel._settings(PoissonHMMFamily)
    __init__ = settings_init(SETTINGS)

    EMISSION_ATTRIBUTES = {"lambdas_": "means"}

    def _set_params(self, params: HMMParams) -> None:
        super()._set_params(params)
        self.lambdas_ = params.emission.means
