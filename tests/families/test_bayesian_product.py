"""Bayesian Bernoulli and Poisson mixtures (variational EM under conjugate priors) against a textbook.

The textbook is variational EM for a mixture of product components written out densely in NumPy below, on its
own: responsibilities from ``E[log π_k] + Σ_j E[log p(x_ij | θ_kj)]`` over the observed values, the conjugate
posterior of the responsibility-weighted counts, and the evidence lower bound ``Σ_i w_i log Σ_k ρ_ik − KL(q ‖ p)``
with each KL written as cross-entropy less entropy (SciPy's entropies), not by the closed forms the kernels use.
From the same start, the engine's passes over several chunkings must give the textbook's posteriors and bounds;
the bound must never decrease; missing values must drop out exactly.
"""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import digamma, gammaln, logsumexp

import daskem
from daskem.engine.em import run_em
from daskem.engine.passes import Blocks, statistics_pass
from daskem.exceptions import ConvergenceWarning
from daskem.families.bayesian_product import BayesianBernoulliFamily, BayesianPoissonFamily
from daskem.kernels.variational import WEIGHT_PRIORS
from tests.strategies import bernoulli_rows, chunkings, poisson_rows

FAMILIES = {"bernoulli": (BayesianBernoulliFamily, bernoulli_rows, (0.7, 1.3)),
            "poisson": (BayesianPoissonFamily, poisson_rows, (2.0, 0.5))}


# ------------------------------------------------------------------ the textbook


def expected_log_weights(concentration: np.ndarray) -> np.ndarray:
    if concentration.ndim == 2:  # sticks: E[log v_k] + Σ_{j<k} E[log(1 − v_j)]
        a, b = concentration
        log_v, log_rest = digamma(a) - digamma(a + b), digamma(b) - digamma(a + b)
        return log_v + np.concatenate([[0.0], np.cumsum(log_rest)[:-1]])
    return digamma(concentration) - digamma(concentration.sum())


def expected_log_terms(name: str, a: np.ndarray, b: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``E_q[log p(x_ij | θ_kj)]`` (n, K, d) of every value (NaN where x is missing)."""
    x = X[:, np.newaxis, :]
    if name == "bernoulli":  # x E[log p] + (1 − x) E[log(1 − p)]
        return x * (digamma(a) - digamma(a + b)) + (1 - x) * (digamma(b) - digamma(a + b))
    # x E[log λ] − E[λ] − log x!
    return x * (digamma(a) - np.log(b)) - a / b - gammaln(x + 1)


def divergence(name: str, post: dict, weight_type: str, c0: float, a0: float, b0: float) -> float:
    """KL(q ‖ p) as E_q[log q] − E_q[log p]: minus SciPy's entropy less the prior's expected log density."""
    concentration, a, b = post["concentration"], post["a"], post["b"]
    if weight_type == "dirichlet_process":  # each stick: Beta(a, b) against Beta(1, c0)
        sa, sb = concentration
        e_log_v, e_log_rest = digamma(sa) - digamma(sa + sb), digamma(sb) - digamma(sa + sb)
        cross = np.sum((1 - 1) * e_log_v + (c0 - 1) * e_log_rest - (gammaln(1) + gammaln(c0) - gammaln(1 + c0)))
        kl = -np.sum(stats.beta(sa, sb).entropy()) - cross
    else:  # Dirichlet(α) against the symmetric Dirichlet(c0)
        k = len(concentration)
        e_log = digamma(concentration) - digamma(concentration.sum())
        cross = gammaln(k * c0) - k * gammaln(c0) + np.sum((c0 - 1) * e_log)
        kl = -stats.dirichlet(concentration).entropy() - cross
    if name == "bernoulli":  # Beta(a, b) against Beta(a0, b0)
        e_log_p, e_log_q = digamma(a) - digamma(a + b), digamma(b) - digamma(a + b)
        cross = np.sum((a0 - 1) * e_log_p + (b0 - 1) * e_log_q - (gammaln(a0) + gammaln(b0) - gammaln(a0 + b0)))
        kl += -np.sum(stats.beta(a, b).entropy()) - cross
    else:  # Gamma(shape a, rate b) against Gamma(a0, b0)
        e_log, e = digamma(a) - np.log(b), a / b
        cross = np.sum(a0 * np.log(b0) - gammaln(a0) + (a0 - 1) * e_log - b0 * e)
        kl += -np.sum(stats.gamma(a, scale=1 / b).entropy()) - cross
    return float(kl)


def textbook_posterior(name: str, resp: np.ndarray, X: np.ndarray, w: np.ndarray, weight_type: str, c0: float,
                       a0: float, b0: float) -> dict:
    observed = ~np.isnan(X)
    wr = resp * w[:, np.newaxis]
    nk = wr.sum(axis=0)
    s1 = wr.T @ np.where(observed, X, 0.0)  # Σ w r x over observed values
    counts = wr.T @ observed  # Σ w r over observed values
    if weight_type == "dirichlet_process":
        after = np.array([nk[k + 1 :].sum() for k in range(len(nk))])
        concentration = np.stack([1 + nk, c0 + after])
    else:
        concentration = c0 + nk
    if name == "bernoulli":
        return {"concentration": concentration, "a": a0 + s1, "b": b0 + counts - s1}
    return {"concentration": concentration, "a": a0 + s1, "b": b0 + counts}


def textbook_step(name: str, post: dict, X: np.ndarray, w: np.ndarray, weight_type: str, c0: float,
                  a0: float, b0: float) -> tuple[float, dict]:
    """One step of variational EM: the bound of ``post`` per unit weight, and the next posterior."""
    seen = ~np.isnan(X).all(axis=1)  # rows with nothing observed carry no information
    X, w = X[seen], w[seen]
    terms = np.nan_to_num(expected_log_terms(name, post["a"], post["b"], X), nan=0.0)  # missing: dropped
    log_rho = expected_log_weights(post["concentration"]) + terms.sum(axis=2)
    norm = logsumexp(log_rho, axis=1)
    bound = (w @ norm - divergence(name, post, weight_type, c0, a0, b0)) / w.sum()
    return bound, textbook_posterior(name, np.exp(log_rho - norm[:, np.newaxis]), X, w, weight_type, c0, a0, b0)


# ------------------------------------------------------------------ the problems


def problem(name: str, weight_type: str, hole_fraction: float, n_samples: int = 500, n_components: int = 4,
            seed: int = 0):
    """A resolved family (concentration 1/K), rows with holes (and a few rows with nothing observed), positive
    weights, and the textbook's start and the family's, from the same random responsibilities."""
    kind, rows, (a0, b0) = FAMILIES[name]
    rng = np.random.default_rng(seed)
    X = rows(rng, n_samples, 5, 3)
    if hole_fraction:
        X[rng.random(X.shape) < hole_fraction] = np.nan
        X[[3, n_samples // 2, n_samples - 1]] = np.nan
    w = rng.uniform(0.5, 2.0, n_samples)
    settings = {"weight_concentration_prior_type": weight_type}
    settings[kind.PRIOR[0].name], settings[kind.PRIOR[1].name] = a0, b0
    family = kind(**settings).for_data(n_components, X.shape[1], None)
    resp = rng.dirichlet(np.ones(n_components), size=n_samples)
    seen = ~np.isnan(X).all(axis=1)
    start = textbook_posterior(name, resp[seen], X[seen], w[seen], weight_type, 1 / n_components, a0, b0)
    gaps = np.isnan(X)
    wr = resp * (w * seen)[:, np.newaxis]
    params = family.posterior(wr.sum(axis=0), wr.T @ np.where(gaps, 0.0, X), wr.T @ gaps)
    return family, X, w, start, params, (weight_type, 1 / n_components, a0, b0)


def fitted(family, X, w, params, chunks, iterations, split_every=3):
    data = Blocks.of(da.from_array(X, chunks=(chunks, -1)), None if w is None else da.from_array(w, chunks=(chunks,)))
    (result,) = run_em(data, [(family, params)], tol=0.0, max_iter=iterations, acceleration="none",
                       split_every=split_every)
    return result


def close(ours, theirs, what, rtol=1e-10):
    """Equal to ``rtol`` of the array's scale (its largest magnitude)."""
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape, what
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=rtol * np.abs(theirs).max(), err_msg=what)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("holes", [0.0, 0.2], ids=["complete", "missing"])
@pytest.mark.parametrize("weight_type", WEIGHT_PRIORS)
@pytest.mark.parametrize("name", list(FAMILIES))
def test_variational_em_is_the_textbooks_over_several_chunkings(name, weight_type, holes):
    """Eight steps from the same start: each posterior and bound equal to 1e-10 of its scale.  Both sides do
    the same float64 arithmetic in other orders (chunked sums through a reduction tree here, one dense sum
    there; KL by closed forms here, by entropies there): rounding of order 1e-14 of scale per step."""
    family, X, w, start, params, prior = problem(name, weight_type, holes)
    bounds, post = [], start
    for _ in range(8):
        bound, post = textbook_step(name, post, X, w, *prior)
        bounds.append(bound)
    for chunks in [(500,), (100,) * 5, (1, 2, 97, 150, 250)]:
        result = fitted(family, X, w, params, chunks, 8)
        close(result.history, bounds, f"bounds {chunks}", 1e-12)
        ours = result.params
        close(ours.weight_concentration, post["concentration"], f"concentration {chunks}")
        close(ours.a, post["a"], f"a {chunks}")
        close(ours.b, post["b"], f"b {chunks}")
        close(ours.means, post["a"] / (post["a"] + post["b"]) if name == "bernoulli" else post["a"] / post["b"],
              f"means {chunks}")
    assert np.all(np.diff(bounds) >= 0)  # the textbook's own bound never decreases


@pytest.mark.parametrize("name", list(FAMILIES))
def test_missing_values_drop_out_rows_with_nothing_observed_change_nothing(name):
    """Rows with nothing observed weigh nothing: padding the data with them changes no posterior or bound."""
    family, X, w, _, params, _ = problem(name, "dirichlet_process", 0.15)
    padded = np.vstack([X[:200], np.full((40, X.shape[1]), np.nan), X[200:]])
    padded_w = np.concatenate([w[:200], np.ones(40), w[200:]])
    plain, more = fitted(family, X, w, params, (250, 250), 6), fitted(family, padded, padded_w, params, (270, 270), 6)
    close(more.history, plain.history, "bounds", 1e-12)  # the same sums in another order
    close(more.params.a, plain.params.a, "a", 1e-12)
    close(more.params.b, plain.params.b, "b", 1e-12)


@pytest.mark.parametrize("name", list(FAMILIES))
@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_the_bound_never_decreases_and_passes_do_not_depend_on_the_chunking(name, data):
    n_samples = data.draw(st.integers(20, 300))
    weight_type = data.draw(st.sampled_from(WEIGHT_PRIORS))
    holes = data.draw(st.sampled_from([0.0, 0.1, 0.4]))
    family, X, w, _, params, _ = problem(name, weight_type, holes, n_samples=n_samples,
                                         n_components=data.draw(st.integers(1, 6)),
                                         seed=data.draw(st.integers(0, 2**16)))
    weighted = data.draw(st.booleans())
    chunks = data.draw(chunkings(n_samples))
    result = fitted(family, X, w if weighted else None, params, chunks, 15, data.draw(st.integers(2, 5)))
    history = result.history
    # Variational EM climbs the bound: each pass's is at least the last's, up to rounding of its size.
    assert np.diff(history).min() >= -1e-12 * np.abs(history).max(), history
    # One pass in chunks equals one pass over all rows: the same sums in another order.
    weights = da.from_array(w, chunks=(chunks,)) if weighted else None
    blocks = Blocks.of(da.from_array(X, chunks=(chunks, -1)), weights)
    ((chunked,),) = dask.compute(statistics_pass(blocks, 3)([(family, result.params)]))
    whole = family.chunk_statistics(X, result.params, 0, w if weighted else None)
    assert chunked.objective == pytest.approx(whole.objective, rel=1e-12, abs=1e-12)
    for field in ("nk", "s1", "unseen"):
        close(getattr(chunked.sums, field), getattr(whole.sums, field), field, 1e-12)


def test_scores_are_the_textbooks():
    """score_samples is ``log Σ_k ρ_k(x)`` and predict_proba the variational responsibilities; a row with
    nothing observed takes the weights' terms alone."""
    family, X, w, start, params, prior = problem("poisson", "dirichlet_distribution", 0.2)
    log_norm, log_resp = family.e_step(X, params, 0)
    terms = np.nan_to_num(expected_log_terms("poisson", start["a"], start["b"], X), nan=0.0)
    log_rho = expected_log_weights(start["concentration"]) + terms.sum(axis=2)
    # 1e-12: digammas and one log-sum-exp either way
    close(log_norm, logsumexp(log_rho, axis=1), "log Σ ρ", 1e-12)
    close(log_resp, log_rho - logsumexp(log_rho, axis=1, keepdims=True), "log r", 1e-12)


def profiles(n_samples: int = 3000, seed: int = 0) -> np.ndarray:
    """0/1 rows of 3 well-separated profiles over 24 features (probabilities 0.1 or 0.9)."""
    rng = np.random.default_rng(seed)
    patterns = np.where(rng.random((3, 24)) < 0.5, 0.1, 0.9)
    return (rng.random((n_samples, 24)) < patterns[rng.integers(3, size=n_samples)]).astype(np.float64)


@pytest.mark.parametrize("init_params", ["k-means++", "random"])
def test_a_dirichlet_process_with_20_components_finds_the_3_profiles(init_params):
    """The reason for the model: the surplus components of a Dirichlet process drain below 1e-3."""
    X = profiles()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = daskem.BayesianBernoulliMixture(20, init_params=init_params, random_state=0, max_iter=2000,
                                                tol=1e-8, chunk_rows=1000).fit(X)
    assert int(np.sum(model.weights_ >= 1e-3)) == 3
    assert np.all(np.diff(model.history_) >= -1e-12 * np.abs(model.history_).max())


def test_settings_are_checked_and_the_posterior_is_the_estimators():
    X = profiles(600)
    with pytest.raises(daskem.DaskemError, match="success_prior must be a finite number > 0"):
        daskem.BayesianBernoulliMixture(2, success_prior=0.0).fit(X)
    with pytest.raises(daskem.DaskemError, match="exposure_prior must be a finite number > 0"):
        daskem.BayesianPoissonMixture(2, exposure_prior=-1.0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = daskem.BayesianBernoulliMixture(3, success_prior=0.5, failure_prior=2.0, random_state=0,
                                                max_iter=5).fit(X)
    assert model.weight_concentration_prior is None and model.weight_concentration_prior_ == 1 / 3
    np.testing.assert_array_equal(model.means_, model.successes_ / (model.successes_ + model.failures_))
    # The posterior counts every row once, the prior's pseudo-counts on top: a + b = a0 + b0 + N_k.
    counts = model.successes_ + model.failures_ - 2.5
    close(counts.sum(axis=0), np.full(24, 600.0), "rows counted", 1e-12)
    assert model.lower_bound_ == pytest.approx(model.history_[-1] * 600, rel=1e-15)


@pytest.mark.parametrize("name", ["bayesian_bernoulli", "bayesian_poisson"])
def test_a_model_file_with_a_posterior_out_of_its_space_or_other_means_is_refused(tmp_path, name):
    estimator = {"bayesian_bernoulli": daskem.BayesianBernoulliMixture,
                 "bayesian_poisson": daskem.BayesianPoissonMixture}[name]
    X = profiles(300) if name == "bayesian_bernoulli" else poisson_rows(np.random.default_rng(0), 300, 4, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ds = estimator(2, random_state=0, max_iter=3).fit(X).to_dataset()
    first, second = estimator.FAMILY.POSTERIOR
    np.testing.assert_array_equal(estimator.from_dataset(ds).means_, ds["means"].values)
    bad = ds.copy(deep=True)
    bad[second][0, 0] = 0.0
    with pytest.raises(daskem.DaskemError, match=f"{second} must be positive"):
        estimator.from_dataset(bad)
    bad = ds.copy(deep=True)
    bad["means"][0, 0] = bad["means"][0, 0] * 0.5
    with pytest.raises(daskem.DaskemError, match=f"the means are not those of weight_concentration, {first}"):
        estimator.from_dataset(bad)
