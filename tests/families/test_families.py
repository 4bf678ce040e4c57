"""Conformance of every product family (Bernoulli, Poisson, …) with EM, through the engine.

Each family registered in ``strategies.FAMILIES`` is checked against textbook
mixture EM written out below in NumPy, and for the properties every family
must have: statistics that do not depend on the chunking (worst rows and
their tie-breaks included), a log-likelihood that never decreases, integer
weights equal to repeated rows, and clear errors for values outside its
domain.
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st
from scipy.special import gammaln, logsumexp

from daskem.engine.em import run_em
from daskem.engine.passes import Blocks, statistics_pass
from daskem.exceptions import ComponentCollapseWarning, DomainError
from daskem.families.product import MeanParams
from tests.strategies import FAMILIES, Problem, family_problems

NAMES = list(FAMILIES)


def textbook_log_density(family: str, X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """``log p_k(x_i)`` (n, K), written out from the family's density."""
    x, m = X[:, np.newaxis, :], means[np.newaxis]
    if family == "bernoulli":
        return (x * np.log(m) + (1 - x) * np.log(1 - m)).sum(axis=2)
    if family == "poisson":
        return (x * np.log(m) - m - gammaln(x + 1)).sum(axis=2)
    raise ValueError(f"no textbook density for {family}")


def textbook_em(family: str, X: np.ndarray, start: MeanParams, iterations: int, low: float, high: float):
    """Mixture EM in memory, two passes an iteration: (weights, means, mean log-likelihoods)."""
    weights, means, history = start.weights, start.means, []
    for _ in range(iterations):
        log_prob = np.log(weights) + textbook_log_density(family, X, means)
        norm = logsumexp(log_prob, axis=1)
        history.append(norm.mean())
        resp = np.exp(log_prob - norm[:, np.newaxis])
        nk = resp.sum(axis=0)
        weights, means = nk / len(X), np.clip(resp.T @ X / nk[:, np.newaxis], low, high)
    return weights, means, np.array(history)


def fit(problem, chunks, iterations=10, weights=None, **settings):
    data = Blocks.of(da.from_array(problem.X, chunks=(chunks, -1)),
                     None if weights is None else da.from_array(weights, chunks=(chunks,)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        (result,) = run_em(data, [(problem.family, problem.start)], tol=0.0, max_iter=iterations,
                           split_every=problem.split_every, **settings)
    return result


@pytest.mark.parametrize("name", NAMES)
def test_em_is_textbook_mixture_em_over_several_chunkings(name):
    rng = np.random.default_rng(0)
    _, rows, start = FAMILIES[name]
    X = rows(rng, 500, 6, 3)
    problem = Problem(FAMILIES[name][0], X, start(rng, 3, 6), (500,), 3)
    bounds = {"bernoulli": (1e-10, 1 - 1e-10), "poisson": (1e-10, np.inf)}[name]
    weights, means, history = textbook_em(name, X, problem.start, 10, *bounds)
    for chunks in [(500,), (100,) * 5, (1, 2, 97, 150, 250)]:
        result = fit(problem, chunks, acceleration="none")
        # The same sums in other orders, over 10 iterations: rounding far below 1e-10 of each array.
        np.testing.assert_allclose(result.params.weights, weights, rtol=1e-10)
        np.testing.assert_allclose(result.params.means, means, rtol=1e-10)
        np.testing.assert_allclose(result.history, history, rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_statistics_do_not_depend_on_the_chunking(name, data):
    problem = data.draw(family_problems(name))
    whole = problem.family.chunk_statistics(problem.X, problem.start, 0, None)
    blocks = Blocks.of(da.from_array(problem.X, chunks=(problem.chunks, -1)))
    ((chunked,),) = dask.compute(statistics_pass(blocks, problem.split_every)([(problem.family, problem.start)]))
    assert chunked.n_samples == whole.n_samples == len(problem.X)
    np.testing.assert_allclose(chunked.log_likelihood, whole.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(chunked.nk, whole.nk, rtol=1e-12, atol=1e-12 * len(problem.X))
    np.testing.assert_allclose(chunked.s1, whole.s1, rtol=1e-12, atol=1e-12 * np.abs(whole.s1).max())
    # The worst rows, ties to the earlier row, whatever the chunking (0/1 rows tie often).
    np.testing.assert_array_equal(chunked.worst_index, whole.worst_index)
    np.testing.assert_array_equal(chunked.worst_rows, whole.worst_rows)


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_log_likelihood_never_decreases(name, data):
    problem = data.draw(family_problems(name))
    result = fit(problem, problem.chunks, iterations=12)
    if result.reseeded:  # a collapsed component restarted: a new start, not an EM step
        reject()
    assert np.diff(result.history).min() >= -1e-12 * np.abs(result.history).max(), result.history


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
def test_integer_weights_are_repeated_rows(name, data):
    problem = data.draw(family_problems(name))
    counts = np.random.default_rng(len(problem.X)).integers(0, 4, size=len(problem.X))
    if counts.sum() < 2:
        reject()
    weighted = fit(problem, problem.chunks, weights=counts.astype(float))
    repeated = np.repeat(problem.X, counts, axis=0)
    expanded = fit(Problem(problem.family, repeated, problem.start, (len(repeated),), 2), (len(repeated),))
    # Sums of the same terms grouped differently: rounding only, which ten passes amplify where two components
    # nearly coincide (one Poisson feature, rates 2.48 and 2.68: weights 1.2e-10 apart, and two chunkings of the
    # same weighted rows 5e-12 apart), far below what a wrong weighting would change.
    np.testing.assert_allclose(weighted.params.weights, expanded.params.weights, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(weighted.params.means, expanded.params.means, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(weighted.history, expanded.history, rtol=1e-10)


BAD_VALUES = {"bernoulli": [0.5, 2.0, -1.0, np.inf], "poisson": [-1.0, 2.5, np.inf]}  # NaN: missing


@pytest.mark.parametrize("name", NAMES)
def test_a_value_outside_the_domain_is_named_by_row_and_feature(name):
    rng = np.random.default_rng(1)
    family, rows, start = FAMILIES[name]
    for bad in BAD_VALUES[name]:
        X = rows(rng, 60, 3, 2)
        X[47, 2] = bad
        problem = Problem(family, X, start(rng, 2, 3), (20, 20, 20), 2)
        with pytest.raises(DomainError, match=rf"row 47, feature 2 holds {bad!r}; a {name.capitalize()} mixture"):
            fit(problem, problem.chunks)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_at_the_edge_stay_finite(name):
    """A feature a component never sees (all 0, or for Bernoulli all 1) meets the floor, not log 0."""
    family, rows, start = FAMILIES[name]
    X = rows(np.random.default_rng(2), 200, 4, 2)
    X[:100, 0], X[100:, 1] = 0.0, 1.0 if name == "bernoulli" else 0.0
    result = fit(Problem(family, X, start(np.random.default_rng(3), 2, 4), (50,) * 4, 2), (50,) * 4, 20)
    assert np.isfinite(result.params.means).all() and np.isfinite(result.history).all()
    assert (result.params.means > 0).all() and (name != "bernoulli" or (result.params.means < 1).all())


def test_poisson_log_factorials_in_and_beyond_the_table_are_gammalns():
    from daskem.families.poisson import LOG_FACTORIALS, PoissonFamily

    edge = len(LOG_FACTORIALS)
    X = np.array([[0.0, 3.0, edge - 1.0, edge, 1e7], [1.0, 0.0, 2.0, 5.0, 40.0]])
    # The table holds gammaln's own values; lgamma above it agrees to a few ulps.
    np.testing.assert_allclose(PoissonFamily().row_terms(X), -gammaln(X + 1.0).sum(axis=1), rtol=1e-14)


def test_candidates_of_different_families_share_a_pass_and_keep_their_own_results():
    """One pass computes a Gaussian and a Bernoulli candidate together (the engine knows neither):
    each ends bitwise where it ends alone."""
    from daskem.families.gaussian import GaussianFamily
    from daskem.kernels.gaussian import GaussianParams

    rng = np.random.default_rng(4)
    family, rows, start = FAMILIES["bernoulli"]
    X = rows(rng, 400, 5, 3)
    bernoulli = (family, start(rng, 3, 5))
    gaussian = (GaussianFamily("diag", reg_covar=1e-3), GaussianParams.from_covariances(
        np.full(2, 0.5), X[:2] * 0.5 + 0.25, np.full((2, 5), 0.3), "diag"))
    data = Blocks.of(da.from_array(X, chunks=((150, 150, 100), -1)))
    together = run_em(data, [gaussian, bernoulli], tol=0.0, max_iter=6)
    alone = [run_em(data, [candidate], tol=0.0, max_iter=6)[0] for candidate in (gaussian, bernoulli)]
    for shared, single in zip(together, alone):
        assert np.array_equal(shared.history, single.history)
        assert np.array_equal(shared.params.means, single.params.means)
        assert np.array_equal(shared.params.weights, single.params.weights)


@pytest.mark.parametrize("name", NAMES)
def test_scores_are_the_textbook_ones(name):
    family, rows, start = FAMILIES[name]
    rng = np.random.default_rng(5)
    X, params = rows(rng, 300, 4, 3), start(rng, 3, 4)
    log_prob = np.log(params.weights) + textbook_log_density(name, X, params.means)
    log_prob_norm, log_resp = family.e_step(X, params, 0)
    np.testing.assert_allclose(log_prob_norm, logsumexp(log_prob, axis=1), rtol=1e-13)
    np.testing.assert_allclose(log_resp, log_prob - logsumexp(log_prob, axis=1, keepdims=True), rtol=1e-12,
                               atol=1e-12)
    X[7, 1] = 0.5
    with pytest.raises(DomainError, match="row 107, feature 1 holds 0.5"):
        family.e_step(X, params, 100)
