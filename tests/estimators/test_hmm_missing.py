"""Hidden Markov models with missing values (NaN): marginalised exactly, as in the mixtures."""

from __future__ import annotations

import itertools
import warnings

import dask.array as da
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal, poisson

import daskem

K = 3


def holed(X: np.ndarray, rng: np.random.Generator, fraction: float = 0.2) -> np.ndarray:
    """X with a ``fraction`` of its values missing at random, and every 50th row missing whole."""
    X = X.copy()
    X[rng.random(X.shape) < fraction] = np.nan
    X[::50] = np.nan
    return X


def gaussian_rows(rng: np.random.Generator, n: int = 900, d: int = 3) -> np.ndarray:
    means = rng.normal(scale=4.0, size=(K, d)) + 50.0
    return means[rng.integers(K, size=n)] + rng.normal(size=(n, d))


def as_mixture_start(weights, means, covariances, covariance_type):
    """The mixture's initial arrays of the same parameters."""
    precisions = {"full": np.linalg.inv(covariances), "tied": np.linalg.inv(covariances[0]),
                  "diag": 1.0 / np.diagonal(covariances, axis1=1, axis2=2),
                  "spherical": 1.0 / np.diagonal(covariances, axis1=1, axis2=2).mean(axis=1)}[covariance_type]
    return {"weights_init": weights, "means_init": means, "precisions_init": precisions}


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_a_memoryless_hmm_steps_as_the_mixture_does_with_missing_values(covariance_type):
    """An HMM whose every transition row is the start distribution π is a mixture of weights π: from the same
    start, one Baum–Welch step on data with 20 % of values missing (and empty rows) gives the emissions that one
    EM step of daskem's GaussianMixture(missing='nan') gives — to 1e-10 of each array's scale (the same exact
    marginalisation, summed about other reference points)."""
    rng = np.random.default_rng(1)
    X = holed(gaussian_rows(rng), rng)
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[46.0, 50.0, 52.0], [50.0, 47.0, 50.0], [54.0, 53.0, 49.0]])
    covariances = np.stack([np.diag([4.0, 5.0, 6.0]) + 0.5] * K)
    if covariance_type in ("diag", "spherical"):
        covariances = np.stack([np.diag(np.diag(c)) for c in covariances])
    if covariance_type == "spherical":
        covariances = np.stack([np.eye(3) * np.diag(c).mean() for c in covariances])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixture = daskem.GaussianMixture(K, covariance_type=covariance_type, acceleration="none", max_iter=1,
                                         **as_mixture_start(weights, means, covariances, covariance_type)).fit(X)
        hmm = daskem.GaussianHMM(K, covariance_type=covariance_type, init_params="", params="mc", max_iter=1,
                                 chunk_rows=128)
        hmm.startprob_, hmm.transmat_ = weights, np.tile(weights, (K, 1))
        hmm.means_, hmm.covars_ = means, covariances
        hmm.fit(X)
    for ours, theirs in ((hmm.means_, mixture.means_), (hmm.covariances_, mixture.covariances_)):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-10 * np.abs(theirs).max())
    # The same total log-likelihood: the HMM's is per step, the mixture's per row with something observed.
    assert hmm.history_[0] * len(X) == pytest.approx(mixture.history_[0] * (len(X) - mixture.n_empty_rows_),
                                                     rel=1e-12)
    assert (hmm.n_missing_values_, hmm.n_incomplete_rows_, hmm.n_empty_rows_) == (
        mixture.n_missing_values_, mixture.n_incomplete_rows_, mixture.n_empty_rows_)


def test_a_memoryless_poisson_hmm_steps_as_the_mixture_does_with_missing_values():
    rng = np.random.default_rng(2)
    rates = np.array([[1.0, 8.0], [5.0, 2.0], [12.0, 12.0]])
    X = holed(rng.poisson(rates[rng.integers(K, size=900)]).astype(float), rng)
    weights, start = np.array([0.4, 0.4, 0.2]), np.array([[2.0, 6.0], [4.0, 3.0], [10.0, 9.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mixture = daskem.PoissonMixture(K, acceleration="none", max_iter=1, weights_init=weights,
                                        means_init=start).fit(X)
        hmm = daskem.PoissonHMM(K, init_params="", params="l", max_iter=1, chunk_rows=100)
        hmm.startprob_, hmm.transmat_, hmm.lambdas_ = weights, np.tile(weights, (K, 1)), start
        hmm.fit(X)
    np.testing.assert_allclose(hmm.lambdas_, mixture.means_, rtol=0, atol=1e-12 * mixture.means_.max())


def brute_force(X, startprob, transmat, log_density):
    """log p(x_obs) by the enumeration of every state path."""
    n = len(X)
    log_b = np.array([[log_density(x, k) for k in range(len(startprob))] for x in X])
    paths = np.array(list(itertools.product(range(len(startprob)), repeat=n)))
    joint = (np.log(startprob)[paths[:, 0]] + log_b[np.arange(n), paths].sum(axis=1)
             + np.log(transmat)[paths[:, :-1], paths[:, 1:]].sum(axis=1))
    return logsumexp(joint)


def test_the_log_likelihood_marginalises_the_missing_values_exactly():
    """Six steps, some values and one whole step missing: the log-likelihood of the observed values equals the
    enumeration of every path with each step's marginal density of its observed coordinates (1e-12)."""
    rng = np.random.default_rng(3)
    model = daskem.GaussianHMM(2, max_iter=1).fit(rng.normal(size=(40, 3)))
    model.startprob_, model.transmat_ = np.array([0.7, 0.3]), np.array([[0.8, 0.2], [0.4, 0.6]])
    X = rng.normal(size=(6, 3))
    X[1, 0] = X[3, 1:] = np.nan
    X[4] = np.nan

    def log_density(x, k):
        seen = ~np.isnan(x)
        if not seen.any():
            return 0.0
        return multivariate_normal(model.means_[k][seen], model.covars_[k][np.ix_(seen, seen)]).logpdf(x[seen])

    assert model.score(X) == pytest.approx(brute_force(X, model.startprob_, model.transmat_, log_density), rel=1e-12)
    counts = np.array([[3.0, np.nan], [0.0, 7.0], [np.nan, np.nan], [2.0, 2.0]])
    poisson_model = daskem.PoissonHMM(2, max_iter=1).fit(np.array([[1.0, 2.0], [5.0, 6.0]] * 10))
    poisson_model.startprob_, poisson_model.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.3, 0.7]])

    def log_count(x, k):
        seen = ~np.isnan(x)
        return poisson(poisson_model.lambdas_[k][seen]).logpmf(x[seen]).sum()

    assert poisson_model.score(counts) == pytest.approx(
        brute_force(counts, poisson_model.startprob_, poisson_model.transmat_, log_count), rel=1e-12)


@pytest.mark.parametrize("estimator", ["GaussianHMM", "BernoulliHMM"])
def test_with_missing_values_the_log_likelihood_never_decreases_and_chunks_do_not_matter(estimator):
    rng = np.random.default_rng(4)
    X = gaussian_rows(rng, 600)
    X = holed((X > 50.0) * 1.0 if estimator == "BernoulliHMM" else X, rng)
    lengths = [250, 50, 300]
    fits = []
    for data in (X, da.from_array(X, chunks=(97, 3))):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(getattr(daskem, estimator)(K, random_state=0, max_iter=15, tol=0.0).fit(data, lengths))
    whole, split = fits
    assert np.all(np.diff(whole.history_) >= -1e-12 * np.abs(whole.history_).max())
    for name in ("transmat_", "means_", "history_"):
        np.testing.assert_allclose(getattr(split, name), getattr(whole, name), rtol=0,
                                   atol=1e-10 * max(1.0, np.abs(getattr(whole, name)).max()))
