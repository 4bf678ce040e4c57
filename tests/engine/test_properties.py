"""Property tests: the statistics do not depend on the chunking, and EM never
lowers the log-likelihood."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, reject
from hypothesis import strategies as st

from daskem.engine.em import run_em
from daskem.engine.passes import Blocks, statistics_pass, sum_batches
from daskem.exceptions import ComponentCollapseWarning, ConvergenceWarning, CovarianceError
from daskem.families.gaussian import GaussianFamily, GaussianStatistics
from daskem.kernels.gaussian import GaussianParams
from tests.helpers import make_mixture_data


def params_for(X: np.ndarray, n_components: int, seed: int) -> GaussianParams:
    rng = np.random.default_rng(seed)
    means = X[rng.choice(len(X), n_components, replace=False)]
    covariances = np.repeat(np.atleast_2d(np.cov(X.T))[None], n_components, axis=0)
    return GaussianParams.from_covariances(np.full(n_components, 1 / n_components), means, covariances)


@st.composite
def chunked_problem(draw):
    n_samples = draw(st.integers(20, 300))
    n_features = draw(st.integers(1, 4))
    n_components = draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**16))
    cuts = sorted(draw(st.sets(st.integers(1, n_samples - 1), max_size=8)))
    chunks = tuple(np.diff([0, *cuts, n_samples]).tolist())
    split_every = draw(st.integers(2, 5))
    X = make_mixture_data(n_samples, n_features, n_components, seed=seed, shift=draw(st.sampled_from([0.0, 1e5])))
    return X, params_for(X, n_components, seed), chunks, split_every


@given(chunked_problem())
def test_statistics_do_not_depend_on_the_chunking(problem):
    X, params, chunks, split_every = problem
    whole = GaussianStatistics.from_chunk(X, params)
    data = Blocks.of(da.from_array(X, chunks=(chunks, -1)))
    ((chunked,),) = dask.compute(statistics_pass(data, split_every)([(GaussianFamily(reg_covar=1e-6), params)]))
    assert chunked.n_samples == whole.n_samples == len(X)
    np.testing.assert_allclose(chunked.log_likelihood, whole.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(chunked.nk, whole.nk, rtol=1e-12)
    scale = np.abs(whole.s2).max()
    np.testing.assert_allclose(chunked.s1, whole.s1, rtol=1e-10, atol=1e-12 * np.sqrt(scale) * len(X))
    np.testing.assert_allclose(chunked.s2, whole.s2, rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_array_equal(chunked.reference, whole.reference)


@given(chunked_problem(), st.permutations(range(4)))
def test_statistics_add_in_any_order(problem, order):
    X, params, _, _ = problem
    parts = [(GaussianStatistics.from_chunk(part, params),) for part in np.array_split(X, 4)]
    (forward,), (shuffled,) = sum_batches(parts), sum_batches([parts[i] for i in order])
    np.testing.assert_allclose(shuffled.s2, forward.s2, rtol=1e-12, atol=1e-12 * np.abs(forward.s2).max())
    np.testing.assert_allclose(shuffled.log_likelihood, forward.log_likelihood, rtol=1e-12)


def test_statistics_about_different_references_refuse_to_add():
    X = make_mixture_data(30, 2, 2)
    a = GaussianStatistics.from_chunk(X, params_for(X, 2, 0))
    b = GaussianStatistics.from_chunk(X, params_for(X, 2, 1))
    with pytest.raises(ValueError, match="different reference"):
        a + b


@given(
    n_samples=st.integers(40, 200),
    n_features=st.integers(1, 3),
    n_components=st.integers(1, 3),
    seed=st.integers(0, 2**16),
    chunk_rows=st.integers(7, 80),
)
def test_log_likelihood_never_decreases(n_samples, n_features, n_components, seed, chunk_rows):
    """Exact EM (reg_covar=0) is monotone; a component collapsing onto a few rows is
    a different event (a restart or a CovarianceError), not a counterexample."""
    X = make_mixture_data(n_samples, n_features, n_components, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ComponentCollapseWarning)
        try:
            (result,) = run_em(
                Blocks.of(da.from_array(X, chunks=(chunk_rows, -1))),
                [(GaussianFamily(reg_covar=0.0), params_for(X, n_components, seed))],
                tol=0.0,
                max_iter=15,
            )
        except CovarianceError:
            reject()
    if result.reseeded:  # a collapsed component restarted: a new start, not an EM step
        reject()
    assert result.n_iter == 15
    steps = np.diff(result.history)
    assert steps.min() >= -1e-10 * np.abs(result.history).max(), result.history
