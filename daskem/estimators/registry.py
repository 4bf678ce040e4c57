"""The estimator of each family, and :func:`load` for any model file."""

from __future__ import annotations

import os
from typing import Any

import xarray as xr

from daskem.estimators.base import BaseMixture
from daskem.estimators.discrete import BernoulliMixture, PoissonMixture
from daskem.estimators.gaussian import GaussianMixture
from daskem.exceptions import InputError, ModelFileError
from daskem.families.base import Family
from daskem.families.registry import family_class
from daskem.io.model_files import read_dataset

#: The estimator of each family, by the family's name.
ESTIMATORS: dict[str, type[BaseMixture]] = {
    estimator.FAMILY.name: estimator for estimator in (GaussianMixture, BernoulliMixture, PoissonMixture)
}


def estimator_for(family: Family, n_components: int, **settings: Any) -> BaseMixture:
    """An unfitted estimator of ``n_components`` of ``family`` (its settings included) with ``settings``."""
    return ESTIMATORS[family.name](n_components, **family.settings(), **settings)


def estimator(family: str = "gaussian", **settings: Any) -> BaseMixture:
    """An unfitted estimator of the family called ``family`` with ``settings`` (as the command line and
    job files give them, for every family at once).

    Settings that the family does not take (``covariance_type`` for a
    Bernoulli mixture) must be left at :class:`GaussianMixture`'s defaults.
    """
    kind = ESTIMATORS[family_class(family).name]
    taken = set(kind._get_param_names())
    defaults = GaussianMixture().get_params()
    foreign = sorted(name for name, value in settings.items()
                     if name not in taken and (name not in defaults or value != defaults[name]))
    if foreign:
        raise InputError(f"{', '.join(foreign)} do(es) not apply to a {family} mixture: leave "
                         f"{'it' if len(foreign) == 1 else 'them'} out, or fit a Gaussian mixture")
    return kind(**{name: value for name, value in settings.items() if name in taken})


def from_dataset(ds: xr.Dataset, source: str) -> BaseMixture:
    """The model (of any family) in a model Dataset, checked (see :mod:`daskem.io.model_files`)."""
    name = ds.attrs.get("family", "gaussian")
    if name not in ESTIMATORS:
        raise ModelFileError(f"{source} holds a mixture of family {name!r}, which this daskem does not know; "
                             f"it knows {tuple(ESTIMATORS)}")
    return ESTIMATORS[name].from_dataset(ds, source)


def load(path: str | os.PathLike) -> BaseMixture:
    """Read a model written by ``save`` (of any family), checking everything in it."""
    with read_dataset(path) as ds:
        return from_dataset(ds, f"the model file {str(path)!r}")
