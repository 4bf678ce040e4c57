"""Hypothesis strategies shared by the tests of every component family.

A family's test module draws problems — rows of the family's domain, a start,
and a chunking of the rows — from :func:`family_problems`, so that every family
is checked for the same properties (chunking invariance, monotone likelihood,
integer weights as repeated rows) by the same generators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from daskem.families.bernoulli import BernoulliFamily
from daskem.families.poisson import PoissonFamily
from daskem.families.product import MeanParams, ProductFamily


def bernoulli_rows(rng: np.random.Generator, n_samples: int, n_features: int, n_components: int) -> np.ndarray:
    """0/1 rows (n, d) from a random Bernoulli mixture."""
    probabilities = rng.uniform(0.05, 0.95, size=(n_components, n_features))
    labels = rng.integers(n_components, size=n_samples)
    return (rng.uniform(size=(n_samples, n_features)) < probabilities[labels]).astype(np.float64)


def bernoulli_start(rng: np.random.Generator, n_components: int, n_features: int) -> MeanParams:
    return MeanParams(np.full(n_components, 1.0 / n_components), rng.uniform(0.2, 0.8, size=(n_components, n_features)))


def poisson_rows(rng: np.random.Generator, n_samples: int, n_features: int, n_components: int) -> np.ndarray:
    """Counts (n, d) from a random Poisson mixture, some features often 0."""
    rates = rng.gamma(1.0, 3.0, size=(n_components, n_features))
    return rng.poisson(rates[rng.integers(n_components, size=n_samples)]).astype(np.float64)


def poisson_start(rng: np.random.Generator, n_components: int, n_features: int) -> MeanParams:
    return MeanParams(np.full(n_components, 1.0 / n_components), rng.uniform(0.5, 5.0, size=(n_components, n_features)))


#: Each family under test: its object, a generator of rows in its domain, and of a start.
FAMILIES: dict[str, tuple[ProductFamily, object, object]] = {
    "bernoulli": (BernoulliFamily(), bernoulli_rows, bernoulli_start),
    "poisson": (PoissonFamily(), poisson_rows, poisson_start),
}


def gaussian_rows(rng: np.random.Generator, n_samples: int, n_features: int, n_components: int) -> np.ndarray:
    """Rows (n, d) around random centres four standard deviations apart, of unit variance."""
    centres = rng.normal(scale=4.0, size=(n_components, n_features))
    return centres[rng.integers(n_components, size=n_samples)] + rng.normal(size=(n_samples, n_features))


#: Rows of each registered family (``daskem.families.registry.FAMILIES``), a value outside its
#: domain and the words of the error it gives: the estimator-level conformance tests
#: (tests/estimators/test_conformance.py) run every family registered here.
ROWS: dict[str, tuple[object, float, str]] = {
    "gaussian": (gaussian_rows, np.inf, "infinite"),
    "bayesian_gaussian": (gaussian_rows, np.nan, "does not fit missing values"),
    "bernoulli": (bernoulli_rows, 0.5, "takes 0 or 1 only"),
    "poisson": (poisson_rows, 2.5, "counts only: whole numbers from 0"),
    "bayesian_bernoulli": (bernoulli_rows, 0.5, "takes 0 or 1 only"),
    "bayesian_poisson": (poisson_rows, 2.5, "counts only: whole numbers from 0"),
}


@dataclass
class Problem:
    family: ProductFamily
    X: np.ndarray
    start: MeanParams
    chunks: tuple[int, ...]
    split_every: int


def chunkings(n_samples: int) -> st.SearchStrategy[tuple[int, ...]]:
    """Row chunkings of n_samples rows: up to 9 chunks of any sizes ≥ 1."""
    cuts = st.sets(st.integers(1, n_samples - 1), max_size=8)
    return cuts.map(lambda c: tuple(np.diff([0, *sorted(c), n_samples]).tolist()))


@st.composite
def family_problems(draw, family: str) -> Problem:
    """A problem for ``family``: 20–300 rows of 1–5 features, a start of 1–4 components, a chunking."""
    family_object, rows, start = FAMILIES[family]
    n_samples, n_features = draw(st.integers(20, 300)), draw(st.integers(1, 5))
    n_components = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    X = rows(rng, n_samples, n_features, n_components)
    return Problem(family_object, X, start(rng, n_components, n_features), draw(chunkings(n_samples)),
                   draw(st.integers(2, 5)))
