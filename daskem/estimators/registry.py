"""The estimator of each family, the settings that runs give them, and :func:`load` for any model file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import xarray as xr

from daskem.estimators.base import BaseMixture
from daskem.estimators.bayesian import BayesianBernoulliMixture, BayesianGaussianMixture, BayesianPoissonMixture
from daskem.estimators.discrete import BernoulliMixture, PoissonMixture
from daskem.estimators.gaussian import GaussianMixture
from daskem.estimators.hmm import BernoulliHMM, GaussianHMM, HiddenMarkovModel, PoissonHMM
from daskem.estimators.settings import run_settings
from daskem.exceptions import InputError, ModelFileError
from daskem.families.base import Family
from daskem.families.registry import display_name, family_class
from daskem.io.model_files import read_dataset
from daskem.settings import Setting

#: The estimator of each family, by the family's name.
ESTIMATORS: dict[str, type[BaseMixture]] = {
    estimator.FAMILY.name: estimator
    for estimator in (GaussianMixture, BernoulliMixture, PoissonMixture, BayesianGaussianMixture,
                      BayesianBernoulliMixture, BayesianPoissonMixture)
}


def estimator_for(family: Family, n_components: int, **settings: Any) -> BaseMixture:
    """An unfitted estimator of ``n_components`` of ``family`` (its settings included) with ``settings``."""
    return ESTIMATORS[family.name](n_components, **family.settings(), **settings)


#: Every setting that the command line, job files and ``select`` take, of every family's estimator, by name.
RUN_SETTINGS: dict[str, Setting] = run_settings(ESTIMATORS.values())


def setting_names(families: Sequence[str]) -> set[str]:
    """The names of every setting that the estimator of some family of ``families`` takes."""
    return {setting.name for family in families for setting in ESTIMATORS[family_class(family).name].SETTINGS}


def families_taking(name: str) -> list[str]:
    """The families whose estimators take the setting called ``name``."""
    return [family for family, kind in ESTIMATORS.items() if any(setting.name == name for setting in kind.SETTINGS)]


def taken_settings(families: Sequence[str], settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as the command line and job files give them — every setting of :data:`RUN_SETTINGS` at
    once — less those that no estimator of ``families`` takes, which must be left at their defaults
    (``covariance_type`` for a Bernoulli mixture)."""
    taken = setting_names(families)
    foreign = sorted(name for name, value in settings.items() if name not in taken and (
        name not in RUN_SETTINGS or value != RUN_SETTINGS[name].default_in_runs))
    if foreign:
        takers = sorted({family for name in foreign for family in families_taking(name)})
        raise InputError(f"{', '.join(foreign)} do(es) not apply to a {' or '.join(families)} mixture: leave "
                         f"{'it' if len(foreign) == 1 else 'them'} out"
                         + (f", or fit a {' or '.join(map(display_name, takers))} mixture" if takers else ""))
    return {name: value for name, value in settings.items() if name in taken}


def estimator_from_settings(family: str = "gaussian", **settings: Any) -> BaseMixture:
    """An unfitted estimator of the family called ``family`` with ``settings`` as the command line and job
    files give them (see :func:`taken_settings`)."""
    return ESTIMATORS[family_class(family).name](**taken_settings([family], settings))


#: The estimator of each hidden Markov model family, by the family's name (``gaussian_hmm``, …).
HMM_ESTIMATORS: dict[str, type[HiddenMarkovModel]] = {
    estimator.FAMILY.name: estimator for estimator in (GaussianHMM, BernoulliHMM, PoissonHMM)}


def hmm_from_settings(emission: str = "gaussian", **settings: Any) -> HiddenMarkovModel:
    """An unfitted hidden Markov model with ``emission`` components and ``settings`` as the command line and job
    files give them (the settings of every HMM at once, None where left to the estimator's default): those its
    estimator does not take must be left at their defaults."""
    kind = HMM_ESTIMATORS.get(f"{emission}_hmm")
    if kind is None:
        raise InputError(f"emission {emission!r} is not one daskem knows for a hidden Markov model; choose one of "
                         f"{tuple(name.removesuffix('_hmm') for name in HMM_ESTIMATORS)}")
    taken = {setting.name for setting in kind.SETTINGS}
    foreign = sorted(name for name, value in settings.items() if name not in taken and value is not None
                     and value != HMM_RUN_SETTINGS[name].default_in_runs)
    if foreign:
        raise InputError(f"{', '.join(foreign)} do(es) not apply to a hidden Markov model with {emission} emissions: "
                         f"leave {'it' if len(foreign) == 1 else 'them'} out")
    return kind(**{name: value for name, value in settings.items() if name in taken and value is not None})


#: Every setting of every hidden Markov model that the command line and job files take, by name (``params`` and
#: ``init_params`` are the Python API's: their letters depend on the emissions).
HMM_RUN_SETTINGS: dict[str, Setting] = {
    setting.name: setting for estimator in HMM_ESTIMATORS.values() for setting in estimator.SETTINGS
    if setting.in_runs and setting.name not in ("params", "init_params")}


def from_dataset(ds: xr.Dataset, source: str) -> BaseMixture | HiddenMarkovModel:
    """The model (of any family, mixture or HMM) in a model Dataset, checked (see :mod:`daskem.io.model_files`)."""
    name = ds.attrs.get("family", "gaussian")
    if name in HMM_ESTIMATORS:
        return HMM_ESTIMATORS[name].from_dataset(ds, source)
    if name not in ESTIMATORS:
        raise ModelFileError(f"{source} holds a mixture of family {name!r}, which this daskem does not know; "
                             f"it knows {tuple(ESTIMATORS)}")
    return ESTIMATORS[name].from_dataset(ds, source)


def load(path: str | os.PathLike) -> BaseMixture | HiddenMarkovModel:
    """Read a model written by ``save`` (of any family), checking everything in it."""
    with read_dataset(path) as ds:
        return from_dataset(ds, f"the model file {str(path)!r}")
