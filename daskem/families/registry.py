"""Every component family daskem knows, by name: where a new family registers.

Model files, checkpoints, the command line and job files find a family here
by the name it records (``gaussian``, ``bernoulli``, ``poisson``).
"""

from __future__ import annotations

from typing import Any

from daskem.exceptions import InputError
from daskem.families.base import Family
from daskem.families.bayesian import BayesianGaussianFamily
from daskem.families.bayesian_product import BayesianBernoulliFamily, BayesianPoissonFamily
from daskem.families.bernoulli import BernoulliFamily
from daskem.families.gaussian import GaussianFamily
from daskem.families.poisson import PoissonFamily

#: Family classes by name.
FAMILIES: dict[str, type[Family]] = {
    family.name: family for family in (GaussianFamily, BernoulliFamily, PoissonFamily, BayesianGaussianFamily,
                                       BayesianBernoulliFamily, BayesianPoissonFamily)
}


def display_name(name: str) -> str:
    """A family's name as messages spell it: "Poisson", "Bayesian Gaussian"."""
    return name.replace("_", " ").title()


def family_class(name: Any) -> type[Family]:
    """The family class called ``name``; an :class:`InputError` listing the names for any other."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        raise InputError(f"family {name!r} is not one daskem knows; choose one of {tuple(FAMILIES)}") from None
