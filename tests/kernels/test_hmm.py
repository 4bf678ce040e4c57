"""The HMM kernels — scaled forward–backward and Viterbi — against brute force, hmmlearn and long sequences."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import logsumexp

from daskem.kernels import hmm


def random_model(rng: np.random.Generator, n_states: int) -> tuple[np.ndarray, np.ndarray]:
    return rng.dirichlet(np.ones(n_states)), rng.dirichlet(np.ones(n_states), size=n_states)


def brute_force(log_emission, startprob, transmat):
    """Every state path's joint log probability, enumerated: log p(x), γ, Σ ξ and the best path."""
    n_steps, n_states = log_emission.shape
    paths = np.array(list(itertools.product(range(n_states), repeat=n_steps)))
    joint = (np.log(startprob)[paths[:, 0]] + log_emission[np.arange(n_steps), paths].sum(axis=1)
             + np.log(transmat)[paths[:, :-1], paths[:, 1:]].sum(axis=1))
    total = logsumexp(joint)
    weights = np.exp(joint - total)
    posteriors = np.stack([np.bincount(paths[:, t], weights, n_states) for t in range(n_steps)])
    transitions = np.zeros((n_states, n_states))
    for t in range(n_steps - 1):
        np.add.at(transitions, (paths[:, t], paths[:, t + 1]), weights)
    return total, posteriors, transitions, joint.max(), paths[np.argmax(joint)]


@pytest.mark.parametrize("seed", range(4))
def test_forward_backward_and_viterbi_equal_the_enumeration_of_every_path(seed):
    """On 7 steps of 3 states (2,187 paths), with emissions from −800 to 0 nats (products of probabilities
    underflow at once): equal to 1e-12 of each quantity's scale (both sides sum a few float64 terms)."""
    rng = np.random.default_rng(seed)
    startprob, transmat = random_model(rng, 3)
    log_emission = rng.uniform(-800, 0, size=(7, 3))
    total, posteriors, transitions, best, path = brute_force(log_emission, startprob, transmat)
    ours = hmm.forward_backward(log_emission, startprob, transmat)
    assert ours[0] == pytest.approx(total, rel=1e-12)
    np.testing.assert_allclose(ours[1], posteriors, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours[2], transitions, rtol=0, atol=1e-12 * 7)
    assert ours[2].sum() == pytest.approx(6, rel=1e-12) and np.allclose(ours[1].sum(axis=1), 1, rtol=0, atol=1e-14)
    assert hmm.log_likelihood(log_emission, startprob, transmat) == ours[0]
    score, decoded = hmm.viterbi(log_emission, startprob, transmat)
    assert score == pytest.approx(best, rel=1e-12)
    np.testing.assert_array_equal(decoded, path)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_equal_to_hmmlearn(covariance_type):
    """hmmlearn's scaled (and log-space) passes on its own emission log-likelihoods: the same log-likelihood
    and posteriors to 1e-10 of their scale over 2,000 steps, and the same Viterbi path and score."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is part of the test install")
    rng = np.random.default_rng(3)
    model = hmmlearn.GaussianHMM(n_components=4, covariance_type=covariance_type, random_state=0)
    model.startprob_, model.transmat_ = random_model(rng, 4)
    model.means_ = rng.normal(scale=3.0, size=(4, 3))
    model.covars_ = (np.stack([np.eye(3) * (1 + k) for k in range(4)]) if covariance_type == "full"
                     else np.ones((4, 3)) + np.arange(4)[:, None])
    X, _ = model.sample(2000, random_state=1)
    log_emission = model._compute_log_likelihood(X)
    for implementation in ("scaling", "log"):
        model.implementation = implementation
        their_total, their_posteriors = model.score_samples(X)
        total, posteriors, _ = hmm.forward_backward(log_emission, model.startprob_, model.transmat_)
        assert total == pytest.approx(their_total, rel=1e-10)
        np.testing.assert_allclose(posteriors, their_posteriors, rtol=0, atol=1e-10)
        their_score, their_path = model.decode(X, algorithm="viterbi")
        score, path = hmm.viterbi(log_emission, model.startprob_, model.transmat_)
        assert score == pytest.approx(their_score, rel=1e-12)
        np.testing.assert_array_equal(path, their_path)


def test_ten_million_steps_do_not_underflow():
    """10⁷ steps of emissions near −500 nats (each step's probabilities underflow float64 by themselves).
    With every row of the transition matrix equal to the start probabilities the states are independent,
    so log p(x) = Σ_t log Σ_k π_k b_t(k) exactly; the forward pass equals that sum (math.fsum, exactly
    rounded) to 1e-9: rounding grows at worst as the steps times float64's 1.1e-16."""
    n_steps = 10_000_000
    rng = np.random.default_rng(0)
    startprob = np.array([0.3, 0.7])
    log_emission = rng.uniform(-520.0, -480.0, size=(n_steps, 2))
    exact = math.fsum(np.logaddexp(log_emission[:, 0] + math.log(0.3), log_emission[:, 1] + math.log(0.7)))
    ours = hmm.log_likelihood(log_emission, startprob, np.stack([startprob, startprob]))
    assert math.isfinite(ours) and ours == pytest.approx(exact, rel=1e-9)


def test_a_state_the_model_cannot_reach_is_never_on_the_path():
    startprob, transmat = np.array([1.0, 0.0]), np.array([[1.0, 0.0], [0.5, 0.5]])
    log_emission = np.log(np.array([[0.1, 0.9]] * 5))
    total, posteriors, transitions = hmm.forward_backward(log_emission, startprob, transmat)
    assert total == pytest.approx(5 * math.log(0.1), rel=1e-14) and (posteriors[:, 1] == 0).all()
    assert hmm.viterbi(log_emission, startprob, transmat)[1].tolist() == [0] * 5


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_one_baum_welch_step_of_several_sequences_equals_hmmlearns(covariance_type):
    """The pieces of Baum–Welch compose into hmmlearn's step: the E-step of three sequences
    (``sequences_statistics`` on the Gaussian family's per-component log densities), then the start and
    transition counts normalised and the Gaussian family's M-step on the posteriors (``reg_covar=0``;
    hmmlearn's covariance prior set to 0, so both are maximum likelihood).  Equal to 1e-8 of each array's
    scale: the same float64 sums in other orders, over 1,500 steps."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm", reason="hmmlearn is part of the test install")
    from daskem.families.gaussian import GaussianFamily
    from daskem.kernels.gaussian import GaussianParams

    rng = np.random.default_rng(5)
    startprob, transmat = random_model(rng, 3)
    means = rng.normal(scale=3.0, size=(3, 2)) + 100.0
    covars = np.stack([np.eye(2) * (1 + k) for k in range(3)])
    truth = hmmlearn.GaussianHMM(3, covariance_type="full")
    truth.startprob_, truth.transmat_, truth.means_, truth.covars_ = startprob, transmat, means, covars
    lengths = np.array([400, 700, 400])
    X = np.vstack([truth.sample(length, random_state=i)[0] for i, length in enumerate(lengths)])
    start_covars = covars if covariance_type == "full" else np.stack([np.diag(c) for c in covars])
    theirs = hmmlearn.GaussianHMM(3, covariance_type=covariance_type, n_iter=1, params="stmc", init_params="",
                                  covars_prior=0.0, tol=0.0)
    theirs.startprob_, theirs.transmat_, theirs.means_, theirs.covars_ = startprob, transmat, means, start_covars
    theirs.fit(X, lengths)

    family = GaussianFamily(covariance_type, reg_covar=0.0)
    params = GaussianParams.from_covariances(np.full(3, 1 / 3), means, start_covars, covariance_type)
    log_norm, log_resp = family.e_step(X, params, 0)
    log_emission = log_resp + log_norm[:, np.newaxis] + math.log(3)  # log p_k(x): the weights taken out
    total, start, transitions, posteriors = hmm.sequences_statistics(log_emission, lengths, startprob, transmat)
    assert total == pytest.approx(theirs.monitor_.history[0], rel=1e-10)
    reference = np.repeat(X[:1], 3, axis=0)
    emissions = family.params_from_assignment(
        family.assignment_statistics(X, posteriors, np.ones(len(X)), reference), reference)
    for ours, their, name in [(start / start.sum(), theirs.startprob_, "startprob"),
                              (transitions / transitions.sum(axis=1, keepdims=True), theirs.transmat_, "transmat"),
                              (emissions.means, theirs.means_, "means"),
                              (emissions.covariances, theirs._covars_, "covars")]:
        np.testing.assert_allclose(ours, their, rtol=0, atol=1e-8 * np.abs(their).max(), err_msg=name)


def split_at(log_emission, cuts, run_forward, run_backward):
    """A sequence cut into pieces at ``cuts``: forward messages carried along, then each piece's backward pass in
    reverse, as the chains of tasks of engine/sequences.py run them."""
    bounds = [0, *sorted(set(cuts)), len(log_emission)]
    pieces = [log_emission[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    incoming = [None]
    for piece in pieces[:-1]:
        incoming.append(run_forward(piece, incoming[-1]))
    results, after = [], None
    for piece, message in zip(reversed(pieces), reversed(incoming)):
        result, after = run_backward(piece, message, after)
        results.append(result)
    return results[::-1]


@given(st.integers(0, 2**32 - 1), st.integers(1, 60), st.lists(st.integers(1, 59), max_size=6))
def test_a_sequence_in_pieces_gives_the_whole_sequences_results(seed, n_steps, cuts):
    """Cut anywhere, a sequence's pieces give its log-likelihood, posteriors and expected transitions, and its
    Viterbi path and score: the arithmetic is the whole sequence's step for step, so the posteriors and path are
    the same bits; the sums over pieces agree to 1e-13 of their scale (a few float64 additions regrouped)."""
    rng = np.random.default_rng(seed)
    startprob, transmat = random_model(rng, 3)
    log_emission = rng.uniform(-50, 0, size=(n_steps, 3))
    cuts = [cut for cut in cuts if cut < n_steps]
    total, posteriors, transitions = hmm.forward_backward(log_emission, startprob, transmat)

    def statistics(piece, incoming, after):
        result = hmm.piece_statistics(piece, startprob, transmat, incoming, after)
        return result, result[3]

    def path(piece, incoming, end):
        result = hmm.viterbi_piece(piece, startprob, transmat, incoming, end)
        return result, result[2]

    parts = split_at(log_emission, cuts, lambda piece, incoming: hmm.forward_message(
        piece, startprob, transmat, incoming)[1], statistics)
    np.testing.assert_array_equal(np.concatenate([part[1] for part in parts]), posteriors)
    assert sum(part[0] for part in parts) == pytest.approx(total, rel=1e-13)
    np.testing.assert_allclose(sum(part[2] for part in parts), transitions, rtol=0, atol=1e-13 * n_steps)
    score, best = hmm.viterbi(log_emission, startprob, transmat)
    decoded = split_at(log_emission, cuts, lambda piece, incoming: hmm.viterbi_forward(
        piece, startprob, transmat, incoming), path)
    np.testing.assert_array_equal(np.concatenate([part[1] for part in decoded]), best)
    assert decoded[-1][0] == score
