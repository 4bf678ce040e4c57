"""The variational Bayesian Gaussian mixture's kernels against scikit-learn's BayesianGaussianMixture, step by step.

From the same responsibilities, each step's posterior (weights' concentration, mean precisions, means,
degrees of freedom, covariances, precision factors), the E-step's log-likelihoods and responsibilities,
and the evidence lower bound must equal scikit-learn's.
"""

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture

from daskem.kernels import estep, gaussian, variational
from daskem.kernels.variational import GaussianPrior
from tests.helpers import make_mixture_data

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


def close(ours, theirs, what):
    """Equal to 1e-8 of the array's scale: both sides do the same float64 arithmetic, in other orders
    (moments about reference points here, about the means there), which costs ~1e-13 of scale."""
    ours, theirs = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-8 * max(np.abs(theirs).max(), 1e-300), err_msg=what)


def prior_of(model: BayesianGaussianMixture) -> GaussianPrior:
    """The prior scikit-learn derived from the data (its ``*_prior_`` attributes)."""
    return GaussianPrior(model.weight_concentration_prior_type, model.weight_concentration_prior_,
                         model.mean_precision_prior_, model.mean_prior_, model.degrees_of_freedom_prior_,
                         model.covariance_prior_)


def our_posterior(X, resp, prior, covariance_type, reg_covar):
    """The posterior from daskem's sums: moments about each component's first row, then the M-step arithmetic."""
    reference = np.repeat(X[:1], resp.shape[1], axis=0)
    nk, s1, s2 = gaussian.weighted_moments(X, resp, reference, covariance_type)
    _, xk, sk = gaussian.m_step_arrays(nk, s1, s2, reference, reg_covar, covariance_type)
    return variational.posterior(nk, xk, sk, prior, covariance_type)


@pytest.mark.parametrize("weight_type", variational.WEIGHT_PRIORS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_each_step_equals_scikit_learns(covariance_type, weight_type):
    X = make_mixture_data(n_samples=500, n_features=3, n_components=4, seed=3) + 50.0
    n_components, reg_covar = 6, 1e-6
    theirs = BayesianGaussianMixture(n_components=n_components, covariance_type=covariance_type,
                                     weight_concentration_prior_type=weight_type, reg_covar=reg_covar)
    theirs._check_parameters(X)
    prior = prior_of(theirs)
    resp = np.random.default_rng(0).dirichlet(np.ones(n_components), size=len(X))
    for step in range(5):
        theirs._m_step(X, np.log(resp))
        post = our_posterior(X, resp, prior, covariance_type, reg_covar)
        where = f"{covariance_type}, {weight_type}, step {step}"
        concentration = theirs.weight_concentration_
        close(post.weight_concentration, np.stack(concentration) if isinstance(concentration, tuple)
              else concentration, f"weight_concentration_ ({where})")
        close(post.mean_precision, theirs.mean_precision_, f"mean_precision_ ({where})")
        close(post.means, theirs.means_, f"means_ ({where})")
        close(post.degrees_of_freedom, np.broadcast_to(theirs.degrees_of_freedom_, (n_components,)),
              f"degrees_of_freedom_ ({where})")
        close(post.covariances, theirs.covariances_, f"covariances_ ({where})")
        close(post.precisions_cholesky, theirs.precisions_cholesky_, f"precisions_cholesky_ ({where})")
        log_prob_norm, log_resp = estep.e_step(X, variational.as_gaussian_params(post))
        their_norm, their_log_resp = theirs._estimate_log_prob_resp(X)
        close(log_prob_norm, their_norm, f"log p ({where})")
        close(log_resp, their_log_resp, f"log responsibilities ({where})")
        entropy = -np.sum(np.exp(log_resp) * log_resp)
        their_bound = float(np.squeeze(theirs._compute_lower_bound(their_log_resp, their_norm)))  # tied: (1,)
        close(variational.lower_bound(post, entropy), their_bound, f"lower bound ({where})")
        resp = np.exp(log_resp)


def test_a_dirichlet_process_leaves_surplus_components_empty():
    """The reason for the model: from 10 components on data of 3 clusters, variational EM's updates
    drain the surplus ones (their expected weights fall below 1e-3)."""
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    X = centres[rng.integers(3, size=3000)] + rng.normal(size=(3000, 2))
    prior = GaussianPrior("dirichlet_process", 1e-2, 1.0, X.mean(axis=0), 2.0, np.cov(X.T))
    resp = rng.dirichlet(np.ones(10), size=len(X))
    for _ in range(200):
        post = our_posterior(X, resp, prior, "full", 1e-6)
        resp = np.exp(estep.e_step(X, variational.as_gaussian_params(post))[1])
    a, b = post.weight_concentration
    expected = a / (a + b) * np.concatenate([[1.0], np.cumprod(b / (a + b))[:-1]])  # E[π_k] of the sticks
    assert np.count_nonzero(expected > 1e-3) == 3
    assert sorted(np.round(post.means[expected > 1e-3]).tolist()) == sorted(centres.tolist())


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_entropy_comes_from_a_passs_sums(covariance_type):
    """−Σ w r log r from the log-likelihood and the moments about reference points (no sum of r log r in the
    pass) equals the direct sum, with weights, far from the origin."""
    rng = np.random.default_rng(4)
    X = make_mixture_data(n_samples=800, n_features=3, n_components=3, seed=5) + 1e4
    weights = rng.uniform(0.5, 2.0, len(X))
    prior = GaussianPrior("dirichlet_distribution", 0.2, 1.0, X.mean(axis=0), 3.0,
                          {"full": np.cov(X.T), "tied": np.cov(X.T), "diag": X.var(axis=0),
                           "spherical": X.var(axis=0).mean()}[covariance_type])
    post = our_posterior(X, rng.dirichlet(np.ones(4), size=len(X)), prior, covariance_type, 1e-6)
    log_prob_norm, log_resp = estep.e_step(X, variational.as_gaussian_params(post))
    resp = np.exp(log_resp) * weights[:, np.newaxis]
    reference = post.means + rng.normal(scale=0.5, size=post.means.shape)  # the pass's points, near the means
    nk, s1, s2 = gaussian.weighted_moments(X, resp, reference, covariance_type)
    direct = -np.sum(resp * log_resp)
    derived = variational.entropy(float(weights @ log_prob_norm), nk, s1, s2, reference, post)
    # The derived value is a difference of sums of size ~Σ w |log ρ| (about 1e4 here): 1e-12 of that.
    scale = np.sum(np.abs(weights @ log_prob_norm))
    assert abs(derived - direct) <= 1e-11 * scale, (derived, direct)


@pytest.mark.parametrize("weight_type", variational.WEIGHT_PRIORS)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_the_sums_of_a_posterior_give_it_back(covariance_type, weight_type):
    """``sums_of_posterior`` undoes ``posterior``: the M-step of the sums it returns (about their own means) is
    the posterior again, to 1e-9 of each array's scale (one subtraction of the prior's terms loses ~1e-13)."""
    X = make_mixture_data(n_samples=400, n_features=3, n_components=3, seed=5) + 1e3
    theirs = BayesianGaussianMixture(n_components=5, covariance_type=covariance_type,
                                     weight_concentration_prior_type=weight_type)
    theirs._check_parameters(X)
    prior = prior_of(theirs)
    resp = np.random.default_rng(2).dirichlet(np.ones(5), size=len(X))
    resp[:, 4] = 0.0  # an empty component too
    resp /= resp.sum(axis=1, keepdims=True)
    post = our_posterior(X, resp, prior, covariance_type, 1e-6)
    nk, means, scatter = variational.sums_of_posterior(post, prior, 1e-6)
    _, xk, sk = gaussian.m_step_arrays(nk, np.zeros_like(means), scatter, means, 1e-6, covariance_type)
    again = variational.posterior(nk, xk, sk, prior, covariance_type)
    for name in ("weight_concentration", "mean_precision", "means", "degrees_of_freedom", "covariances"):
        close(getattr(again, name), getattr(post, name), name)
