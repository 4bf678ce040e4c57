"""Model selection — many candidate mixtures fitted in shared passes.

``select`` fits every combination of numbers of components, families (with
the Gaussian's covariance types) and random starts together: the rows are
sampled once for initialisation, and each EM iteration reads the data once for
all candidates still iterating, whatever their family.  The
number of reads is the largest iteration count of any candidate (plus the
initialisation passes), not the sum.
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from daskem.engine.em import MAX_RUNS, EMResult, IterationInfo, best_run
from daskem.estimators.base import BaseMixture
from daskem.estimators.fitting import fit_together
from daskem.estimators.registry import ESTIMATORS, estimator_for, setting_names
from daskem.estimators.settings import (
    ACCELERATION,
    CHUNK_ROWS,
    FEATURE_DIM,
    INIT_PARAMS,
    MAX_ITER,
    N_COMPONENTS,
    N_INIT,
    RANDOM_STATE,
    SAMPLE_DIM,
    SHARED,
    SPLIT_EVERY,
    STRICT_CHUNKS,
    TOL,
)
from daskem.exceptions import ConvergenceWarning, InputError
from daskem.families.base import MISSING, Family
from daskem.families.gaussian import COVARIANCE_TYPE, GaussianFamily
from daskem.families.registry import family_class
from daskem.io.existing import SELECTION_MODEL, SELECTION_TABLE
from daskem.io.outputs import atomic_path
from daskem.settings import is_integer

CRITERIA = ("bic", "aic")
#: Most candidates one selection fits (numbers of components × covariance types).
MAX_CANDIDATES = 1000


@dataclass(eq=False)
class Selection:
    """The outcome of :func:`select`.

    Attributes
    ----------
    table : pandas.DataFrame, one row per candidate, best first by
        ``criterion``: n_components, family, covariance_type (Gaussians only),
        log_likelihood (mean per row, or per unit weight), n_parameters, bic,
        aic, n_iter, converged.
    models : the fitted models, in the order of ``table``.
    criterion : "bic" or "aic".
    n_passes : reads of the data by EM (the largest iteration count).
    """

    table: pd.DataFrame
    models: list[BaseMixture]
    criterion: str
    n_passes: int

    @property
    def best_(self) -> BaseMixture:
        """The model with the lowest criterion."""
        return self.models[0]

    def save(self, folder: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write ``table.csv`` and ``best.zarr`` (the best model) to ``folder``, atomically.

        An existing ``folder`` is replaced only with ``overwrite=True``, and
        only if it is a daskem selection (see :mod:`daskem.io.outputs`).
        """
        with atomic_path(folder, "selection", overwrite=overwrite, label="folder") as temporary:
            temporary.mkdir()
            with (temporary / SELECTION_TABLE).open("w") as table:
                self.table.to_csv(table, index=False)
            self.best_.save(temporary / SELECTION_MODEL)


def select(
    X: Any,
    n_components: Iterable[int] = range(1, 11),
    covariance_types: Sequence[str] = (COVARIANCE_TYPE.default,),
    *,
    families: Sequence[str] = ("gaussian",),
    variable: str | None = None,
    sample_weight: Any = None,
    criterion: str = "bic",
    n_init: int = N_INIT.default,
    tol: float = TOL.default,
    max_iter: int = MAX_ITER.default,
    acceleration: str = ACCELERATION.default,
    init_params: str = INIT_PARAMS.default,
    random_state: int | np.random.Generator | np.random.RandomState | None = RANDOM_STATE.default,
    chunk_rows: int | None = CHUNK_ROWS.default,
    split_every: int = SPLIT_EVERY.default,
    sample_dim: str | tuple[str, ...] | None = SAMPLE_DIM.default,
    feature_dim: str | None = FEATURE_DIM.default,
    strict_chunks: bool = STRICT_CHUNKS.default,
    missing: str = MISSING.default,
    callbacks: Sequence[Callable[[IterationInfo], None]] = (),
    checkpoint: str | os.PathLike | None = None,
    **settings: Any,
) -> Selection:
    """Fit every candidate mixture in shared passes and rank them by BIC or AIC.

    Parameters
    ----------
    X, variable, sample_weight : the data, as for :meth:`GaussianMixture.fit`.
    n_components : the numbers of components to try.
    covariance_types : the covariance types to try for Gaussian mixtures.
    families : the component families to try ("gaussian", "bernoulli",
        "poisson"); each tries every number of components.
    criterion : "bic" or "aic" (lower is better), computed from the
        log-likelihood of each candidate's last E-step (its ``lower_bound_``).
    n_init, tol, max_iter, acceleration, init_params, random_state, chunk_rows, split_every, sample_dim,
    feature_dim, strict_chunks, missing : as for :class:`GaussianMixture`, shared by all candidates.
    callbacks : called after each iteration of each candidate's runs with an
        :class:`daskem.engine.em.IterationInfo`.
    checkpoint : a folder for a checkpoint of every candidate after every
        iteration; an interrupted selection resumes from it (see
        :mod:`daskem.io.checkpoints`).
    **settings : the settings of some families' estimators only (``reg_covar``
        and ``precision`` for Gaussians, ``min_probability`` for Bernoulli,
        ``min_rate`` for Poisson mixtures), each applied to the candidates that
        take it; one that no family tried takes is refused.

    Returns
    -------
    Selection
    """
    if criterion not in CRITERIA:
        raise InputError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    kinds = _kinds(families, covariance_types, settings)
    shapes = _candidates(n_components, kinds, covariance_types, dict(settings, missing=missing))
    shared = dict(tol=tol, max_iter=max_iter, acceleration=acceleration, n_init=n_init, init_params=init_params,
                  random_state=random_state, chunk_rows=chunk_rows, split_every=split_every, sample_dim=sample_dim,
                  feature_dim=feature_dim, strict_chunks=strict_chunks)
    for setting in SHARED:
        if setting.name in shared:
            setting.check(shared[setting.name])
    models = [estimator_for(family, k, **shared, **{name: value for name, value in settings.items()
                                                    if name in ESTIMATORS[family.name].own_setting_names()})
              for k, family in shapes]
    if len(shapes) * n_init > MAX_RUNS:
        raise InputError(f"{len(shapes)} candidates × n_init={n_init} are more than {MAX_RUNS} runs; "
                         "select among fewer or lower n_init")
    fitted_rows, results = fit_together(models, X, variable, sample_weight, checkpoint=checkpoint,
                                        callbacks=callbacks)
    table = _table(models, [best_run(runs) for runs in results], fitted_rows.n_features)
    order = np.argsort(table[criterion].to_numpy(), kind="stable")
    unconverged = [f"{k} {family.label}" for (k, family), model in zip(shapes, models) if not model.converged_]
    if unconverged:
        warnings.warn(
            f"{len(unconverged)} candidate(s) did not converge in {max_iter} iterations "
            f"({', '.join(unconverged)}); increase max_iter or tol",
            ConvergenceWarning,
            stacklevel=2,
        )
    return Selection(
        table.iloc[order].reset_index(drop=True),
        [models[i] for i in order],
        criterion,
        max(result.n_iter for runs in results for result in runs),
    )


def _kinds(families: Sequence[str], covariance_types: Sequence[str], settings: dict[str, Any]) -> list[type[Family]]:
    """The family classes to try, once each; refuses lists given as text and settings no family tried takes."""
    if isinstance(families, str) or isinstance(covariance_types, str):
        raise InputError("families and covariance_types are lists of names, such as ['gaussian', 'bernoulli']")
    if "covariance_type" in settings:
        raise InputError("select tries the covariance types of covariance_types (a list), not covariance_type")
    kinds = [family_class(name) for name in dict.fromkeys(families)]
    variational = [kind.name for kind in kinds if kind.variational]
    if variational:
        raise InputError(f"select ranks candidates by BIC or AIC; a {variational[0]} mixture finds its number of "
                         "components itself: fit one with the most components you would try instead")
    foreign = sorted(set(settings) - setting_names([kind.name for kind in kinds]))
    if foreign:
        raise InputError(f"select got {', '.join(foreign)}, which no family tried ({', '.join(k.name for k in kinds)}) "
                         "takes; see daskem.select's keywords")
    return kinds


def _candidates(n_components: Iterable[int], kinds: list[type[Family]], covariance_types: Sequence[str],
                settings: dict[str, Any]) -> list[tuple[int, Family]]:
    """Every (number of components, family with its settings) to fit, checked."""
    sizes = list(itertools.islice(n_components, MAX_CANDIDATES + 1))
    if len(sizes) > MAX_CANDIDATES:
        raise InputError(f"n_components lists more than {MAX_CANDIDATES} numbers; select among fewer")
    if not all(is_integer(k) for k in sizes):
        raise InputError(f"n_components must be integers, got {sizes!r}")
    families = []
    for kind in kinds:
        own = {name: value for name, value in settings.items() if name in kind.setting_names()}
        spans = dict.fromkeys(covariance_types) if kind is GaussianFamily else [None]
        families += [kind(**own, **({"covariance_type": t} if t is not None else {})) for t in spans]
    shapes = list(itertools.product(sorted({int(k) for k in sizes}), families))
    if not shapes:
        raise InputError("give at least one number of components, one family and (for Gaussians) one covariance type")
    if len(shapes) > MAX_CANDIDATES:
        raise InputError(f"{len(shapes)} candidates are more than {MAX_CANDIDATES}; select among fewer")
    for k, _ in shapes:
        N_COMPONENTS.check(k)
    if len({family.discrete for family in families}) > 1:
        warnings.warn(
            "the candidates mix continuous (Gaussian) and discrete families: the log-likelihood of one is a "
            "density, of the other a probability, so their BIC and AIC do not compare (a Gaussian with a "
            "tiny variance always wins on discrete data); compare families of one kind",
            UserWarning,
            stacklevel=3,
        )
    return shapes


def _table(models: list[BaseMixture], best: list[EMResult], n_features: int) -> pd.DataFrame:
    """One row per fitted candidate: its size, family, log-likelihood, parameters, BIC, AIC and iterations."""
    rows = []
    for model, result in zip(models, best):
        family, k = model.family_, model.n_components
        p = family.n_parameters(k, n_features)
        log_likelihood = result.lower_bound * result.weight_sum
        rows.append({
            "n_components": k,
            "family": family.name,
            "covariance_type": getattr(family, "covariance_type", None),
            "log_likelihood": result.lower_bound,
            "n_parameters": p,
            "bic": -2.0 * log_likelihood + p * np.log(result.weight_sum),
            "aic": -2.0 * log_likelihood + 2.0 * p,
            "n_iter": result.n_iter,
            "converged": result.converged,
        })
    return pd.DataFrame(rows)
