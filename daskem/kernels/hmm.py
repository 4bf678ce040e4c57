"""Hidden Markov models: the forward–backward pass and Viterbi decoding of one sequence, compiled (numba).

The E-step of Baum–Welch needs, for a sequence of T steps with per-step log
emission probabilities ``log b_t(k)`` (any family's, from the mixture
kernels), the log-likelihood, the posteriors ``γ_t(k) = p(z_t = k | x)`` and
the expected transitions ``Σ_t ξ_t(j, k)``.  The recursions are run *scaled*
(Rabiner 1989, §V.A): each step's forward message is normalised to sum to 1
and its normaliser ``c_t`` kept, so that ``log p(x) = Σ_t (log c_t + m_t)``
(``m_t`` the largest ``log b_t(k)``, taken out before exponentiating) stays
exact however long the sequence — a log-space recursion's accuracy at a
fraction of its cost (one ``exp`` per step and state, no log-sum-exp in the
K² loop).

The forward recursion starts from an incoming message (the start
probabilities, or the normalised message of the step before), so that a
sequence split over chunks can carry it across them.

Shapes: T steps, K states; everything float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from daskem.kernels.fused import _FASTMATH


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _forward(log_emission: np.ndarray, incoming: np.ndarray, first: bool, transmat: np.ndarray,
             alpha: np.ndarray, scale: np.ndarray, peaks: np.ndarray) -> float:
    """The scaled forward recursion from ``incoming`` (the start probabilities when ``first``, else the
    normalised message of the step before); returns ``Σ_t log c_t + m_t``.

    Writes the normalised messages ``alpha`` (T, K), the normalisers ``scale`` (T,) and the peaks
    ``m_t = max_k log b_t(k)`` ``peaks`` (T,) when they have T rows (for the backward pass); given empty,
    nothing is kept but the last message (O(K) memory: a log-likelihood of any length).
    """
    n_steps, n_states = log_emission.shape
    keep = alpha.shape[0] > 0
    previous, current = incoming.copy(), np.empty(n_states)
    total_log = 0.0
    for t in range(n_steps):
        peak = -np.inf
        for k in range(n_states):
            peak = max(peak, log_emission[t, k])
        total = 0.0
        for k in range(n_states):
            if t == 0 and first:
                value = previous[k]
            else:
                value = 0.0
                for j in range(n_states):
                    value += previous[j] * transmat[j, k]
            value *= math.exp(log_emission[t, k] - peak)
            current[k] = value
            total += value
        for k in range(n_states):
            previous[k] = current[k] / total
        if keep:
            alpha[t] = previous
            scale[t], peaks[t] = total, peak
        total_log += math.log(total) + peak
    return total_log


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _backward(log_emission: np.ndarray, peaks: np.ndarray, scale: np.ndarray, transmat: np.ndarray,
              alpha: np.ndarray, posteriors: np.ndarray, transitions: np.ndarray) -> None:
    """The scaled backward recursion from a sequence's end (``β̂_T = 1``), turned into the posteriors
    (T, K) as it goes; the expected transitions (K, K) are added to ``transitions``:
    ``ξ_t(j, k) = α̂_t(j) A_jk b_{t+1}(k) β̂_{t+1}(k) / c_{t+1}``."""
    n_steps, n_states = log_emission.shape
    beta = np.ones(n_states)
    nxt = np.empty(n_states)
    for t in range(n_steps - 1, -1, -1):
        total = 0.0
        for k in range(n_states):
            posteriors[t, k] = alpha[t, k] * beta[k]
            total += posteriors[t, k]
        for k in range(n_states):
            posteriors[t, k] /= total
        if t == 0:
            break
        for k in range(n_states):
            nxt[k] = math.exp(log_emission[t, k] - peaks[t]) * beta[k] / scale[t]
        for j in range(n_states):
            for k in range(n_states):
                transitions[j, k] += alpha[t - 1, j] * transmat[j, k] * nxt[k]
        for j in range(n_states):
            value = 0.0
            for k in range(n_states):
                value += transmat[j, k] * nxt[k]
            beta[j] = value


def forward_backward(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    """The E-step of one whole sequence.

    Parameters
    ----------
    log_emission : (T, K) ``log p(x_t | z_t = k)`` in nats (finite or −inf; each step must have one finite).
    startprob : (K,) ``p(z_1 = k)``.
    transmat : (K, K) ``p(z_{t+1} = k | z_t = j)``, rows summing to 1.

    Returns
    -------
    log_likelihood : ``log p(x_1 … x_T)`` in nats.
    posteriors : (T, K) ``γ_t(k)``, each row summing to 1.
    transitions : (K, K) ``Σ_{t<T} ξ_t(j, k)``, summing to T − 1.
    """
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    n_steps, n_states = log_emission.shape
    transmat = np.ascontiguousarray(transmat, dtype=np.float64)
    alpha, scale, peaks = np.empty_like(log_emission), np.empty(n_steps), np.empty(n_steps)
    total = _forward(log_emission, np.asarray(startprob, dtype=np.float64), True, transmat, alpha, scale, peaks)
    posteriors, transitions = np.empty_like(log_emission), np.zeros((n_states, n_states))
    _backward(log_emission, peaks, scale, transmat, alpha, posteriors, transitions)
    return float(total), posteriors, transitions


def sequences_statistics(log_emission: np.ndarray, lengths: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
                         ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The E-step of whole sequences laid end to end (a chunk that holds them all): each one's
    :func:`forward_backward`, and the sums Baum–Welch's M-step reads.

    Parameters
    ----------
    log_emission : (n, K) the steps' log emission probabilities, sequence after sequence.
    lengths : (s,) positive integers summing to n: each sequence's steps.
    startprob, transmat : as for :func:`forward_backward`.

    Returns
    -------
    log_likelihood : ``Σ_s log p(x^(s))`` in nats.
    start : (K,) ``Σ_s γ^(s)_1``, the expected first states.
    transitions : (K, K) ``Σ_s Σ_t ξ^(s)_t``, the expected transitions within sequences.
    posteriors : (n, K) ``γ_t(k)`` of every step (for the emissions' statistics).
    """
    n_states = log_emission.shape[1]
    total, start, transitions = 0.0, np.zeros(n_states), np.zeros((n_states, n_states))
    posteriors = np.empty((log_emission.shape[0], n_states))
    first = 0
    for length in np.asarray(lengths, dtype=np.int64):
        steps = slice(first, first + length)
        part, posteriors[steps], counted = forward_backward(log_emission[steps], startprob, transmat)
        total += part
        start += posteriors[first]
        transitions += counted
        first += length
    return total, start, transitions, posteriors


def log_likelihood(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray) -> float:
    """``log p(x_1 … x_T)`` of one sequence: the forward pass alone, in O(K) memory besides the input."""
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    n_states = log_emission.shape[1]
    empty = np.empty((0, n_states))
    return float(_forward(log_emission, np.asarray(startprob, dtype=np.float64), True,
                          np.ascontiguousarray(transmat, dtype=np.float64), empty, np.empty(0), np.empty(0)))


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _viterbi(log_emission: np.ndarray, log_start: np.ndarray, log_transmat: np.ndarray,
             path: np.ndarray) -> float:
    n_steps, n_states = log_emission.shape
    back = np.empty((n_steps, n_states), np.int64)
    score = log_start + log_emission[0]
    nxt = np.empty(n_states)
    for t in range(1, n_steps):
        for k in range(n_states):
            best, arg = -np.inf, 0
            for j in range(n_states):
                value = score[j] + log_transmat[j, k]
                if value > best:
                    best, arg = value, j
            nxt[k] = best + log_emission[t, k]
            back[t, k] = arg
        score[:] = nxt
    best, arg = -np.inf, 0
    for k in range(n_states):
        if score[k] > best:
            best, arg = score[k], k
    path[n_steps - 1] = arg
    for t in range(n_steps - 1, 0, -1):
        arg = back[t, arg]
        path[t - 1] = arg
    return best


def viterbi(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray) -> tuple[float, np.ndarray]:
    """The most probable state path of one sequence and its log probability ``log p(x, z*)`` (ties: the
    lower state, as hmmlearn).  ``log_emission`` (T, K), ``startprob`` (K,), ``transmat`` (K, K) as in
    :func:`forward_backward`; returns (log probability, path (T,) int64)."""
    log_emission = np.ascontiguousarray(log_emission, dtype=np.float64)
    path = np.empty(log_emission.shape[0], np.int64)
    with np.errstate(divide="ignore"):  # a probability 0 is a log of −inf, which the recursion takes
        log_start, log_transmat = np.log(startprob), np.ascontiguousarray(np.log(transmat))
    return float(_viterbi(log_emission, log_start, log_transmat, path)), path
