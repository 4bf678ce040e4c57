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

from daskem.engine.em import MAX_RUNS, IterationInfo, best_run
from daskem.engine.passes import DEFAULT_SPLIT_EVERY
from daskem.estimators.base import ACCELERATION, INIT_PARAMS, MAX_ITER, N_INIT, TOL, BaseMixture, fit_together
from daskem.estimators.gaussian import PRECISIONS
from daskem.estimators.registry import estimator_for
from daskem.exceptions import ConvergenceWarning, InputError
from daskem.families.base import MISSING
from daskem.families.gaussian import COVARIANCE_TYPE, REG_COVAR, GaussianFamily
from daskem.families.registry import family_class
from daskem.io.outputs import SELECTION_MODEL, SELECTION_TABLE, atomic_path
from daskem.kernels.checks import is_integer

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
    covariance_types: Sequence[str] = (COVARIANCE_TYPE,),
    *,
    families: Sequence[str] = ("gaussian",),
    variable: str | None = None,
    sample_weight: Any = None,
    n_init: int = N_INIT,
    criterion: str = "bic",
    tol: float = TOL,
    reg_covar: float = REG_COVAR,
    missing: str = MISSING[0],
    max_iter: int = MAX_ITER,
    acceleration: str = ACCELERATION,
    init_params: str = INIT_PARAMS,
    random_state: int | np.random.Generator | np.random.RandomState | None = None,
    chunk_rows: int | None = None,
    split_every: int = DEFAULT_SPLIT_EVERY,
    precision: str = PRECISIONS[0],
    sample_dim: str | tuple[str, ...] | None = None,
    feature_dim: str | None = None,
    strict_chunks: bool = False,
    callbacks: Sequence[Callable[[IterationInfo], None]] = (),
    checkpoint: str | os.PathLike | None = None,
) -> Selection:
    """Fit every candidate mixture in shared passes and rank them by BIC or AIC.

    Parameters
    ----------
    X, variable, sample_weight : the data, as for :meth:`GaussianMixture.fit`.
    n_components : the numbers of components to try.
    covariance_types : the covariance types to try for Gaussian mixtures.
    families : the component families to try ("gaussian", "bernoulli",
        "poisson"); each tries every number of components.
    n_init : random starts per candidate; the best lower bound is kept.
    criterion : "bic" or "aic" (lower is better), computed from the
        log-likelihood of each candidate's last E-step (its ``lower_bound_``).
    tol, reg_covar, max_iter, init_params, random_state, chunk_rows, split_every, precision, sample_dim,
    feature_dim, strict_chunks, missing : as for :class:`GaussianMixture`, shared by all candidates
        (``reg_covar`` and ``precision`` by the Gaussian ones, ``missing`` by every family).
    acceleration : "squarem" (the default: accelerated EM, fewer passes) or
        "none" (textbook EM, one EM step per pass), as for
        :class:`GaussianMixture`; shared by all candidates.
    checkpoint : a folder for a checkpoint of every candidate after every
        iteration; an interrupted selection resumes from it (see
        :mod:`daskem.io.checkpoints`).

    Returns
    -------
    Selection
    """
    if criterion not in CRITERIA:
        raise InputError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    sizes = list(itertools.islice(n_components, MAX_CANDIDATES + 1))
    if len(sizes) > MAX_CANDIDATES:
        raise InputError(f"n_components lists more than {MAX_CANDIDATES} numbers; select among fewer")
    if not all(is_integer(k) for k in sizes):
        raise InputError(f"n_components must be integers, got {sizes!r}")
    if isinstance(families, str) or isinstance(covariance_types, str):
        raise InputError("families and covariance_types are lists of names, such as ['gaussian', 'bernoulli']")
    kinds = [family_class(name) for name in dict.fromkeys(families)]
    candidate_families = [GaussianFamily(t, reg_covar, missing) if kind is GaussianFamily else kind(missing=missing)
                          for kind in kinds for t in (dict.fromkeys(covariance_types) if kind is GaussianFamily
                                                      else [None])]
    shapes = list(itertools.product(sorted({int(k) for k in sizes}), candidate_families))
    if not shapes:
        raise InputError("give at least one number of components, one family and (for Gaussians) one covariance type")
    if len(shapes) > MAX_CANDIDATES:
        raise InputError(f"{len(shapes)} candidates are more than {MAX_CANDIDATES}; select among fewer")
    if len({family.discrete for family in candidate_families}) > 1:
        warnings.warn(
            "the candidates mix continuous (Gaussian) and discrete families: the log-likelihood of one is a "
            "density, of the other a probability, so their BIC and AIC do not compare (a Gaussian with a "
            "tiny variance always wins on discrete data); compare families of one kind",
            UserWarning,
            stacklevel=2,
        )
    shared = dict(tol=tol, max_iter=max_iter, acceleration=acceleration, n_init=n_init, init_params=init_params,
                  random_state=random_state, chunk_rows=chunk_rows, split_every=split_every, sample_dim=sample_dim,
                  feature_dim=feature_dim, strict_chunks=strict_chunks)
    models = [estimator_for(family, k, **shared, **({"precision": precision} if family.name == "gaussian" else {}))
              for k, family in shapes]
    for model in models:
        model._check_settings()
    if len(shapes) * n_init > MAX_RUNS:
        raise InputError(f"{len(shapes)} candidates × n_init={n_init} are more than {MAX_RUNS} runs; "
                         "select among fewer or lower n_init")
    fitted_rows, results = fit_together(models, X, variable, sample_weight, checkpoint=checkpoint,
                                        callbacks=callbacks)
    n_features = fitted_rows.n_features
    rows = []
    for model, (k, family), runs in zip(models, shapes, results):
        best = best_run(runs)
        model._set_fitted(best, family, fitted_rows)
        p = family.n_parameters(k, n_features)
        log_likelihood = best.lower_bound * best.weight_sum
        rows.append({
            "n_components": k,
            "family": family.name,
            "covariance_type": getattr(family, "covariance_type", None),
            "log_likelihood": best.lower_bound,
            "n_parameters": p,
            "bic": -2.0 * log_likelihood + p * np.log(best.weight_sum),
            "aic": -2.0 * log_likelihood + 2.0 * p,
            "n_iter": best.n_iter,
            "converged": best.converged,
        })
    table = pd.DataFrame(rows)
    order = np.argsort(table[criterion].to_numpy(), kind="stable")
    unconverged = [f"{k} {family.label}" for (k, family), r in zip(shapes, rows) if not r["converged"]]
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
