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
             alpha: np.ndarray, scale: np.ndarray, peaks: np.ndarray, last: np.ndarray) -> float:
    """The scaled forward recursion from ``incoming`` (the start probabilities when ``first``, else the
    normalised message of the step before); returns ``Σ_t log c_t + m_t``.

    Writes the normalised messages ``alpha`` (T, K), the normalisers ``scale`` (T,) and the peaks
    ``m_t = max_k log b_t(k)`` ``peaks`` (T,) when they have T rows (for the backward pass); given empty,
    nothing is kept but the last message (O(K) memory: a log-likelihood of any length).  The last message is
    written to ``last`` (K,).
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
    last[:] = previous
    return total_log


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _backward(log_emission: np.ndarray, peaks: np.ndarray, scale: np.ndarray, transmat: np.ndarray,
              alpha: np.ndarray, beta: np.ndarray, incoming: np.ndarray, posteriors: np.ndarray,
              transitions: np.ndarray) -> None:
    """The scaled backward recursion over a piece of a sequence from ``beta`` (K,), the scaled message of its
    last step (ones at the sequence's end), turned into the posteriors (T, K) as it goes; the expected
    transitions (K, K) are added to ``transitions``:
    ``ξ_t(j, k) = α̂_t(j) A_jk b_{t+1}(k) β̂_{t+1}(k) / c_{t+1}``.

    Given a non-empty ``incoming`` (the forward message of the step before the piece), the transition into the
    piece's first step is added too and ``beta`` ends as the scaled message of that step before; else ``beta``
    ends as it stands at the first step.
    """
    n_steps, n_states = log_emission.shape
    nxt = np.empty(n_states)
    for t in range(n_steps - 1, -1, -1):
        total = 0.0
        for k in range(n_states):
            posteriors[t, k] = alpha[t, k] * beta[k]
            total += posteriors[t, k]
        for k in range(n_states):
            posteriors[t, k] /= total
        if t == 0 and incoming.shape[0] == 0:
            break
        before = alpha[t - 1] if t > 0 else incoming
        for k in range(n_states):
            nxt[k] = math.exp(log_emission[t, k] - peaks[t]) * beta[k] / scale[t]
        for j in range(n_states):
            for k in range(n_states):
                transitions[j, k] += before[j] * transmat[j, k] * nxt[k]
        for j in range(n_states):
            value = 0.0
            for k in range(n_states):
                value += transmat[j, k] * nxt[k]
            beta[j] = value


def _float64(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float64)


def piece_statistics(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray,
                     incoming: np.ndarray | None = None, beta: np.ndarray | None = None
                     ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The E-step of a piece of a sequence: its steps are the whole sequence, or a run of its steps when the
    sequence is split over chunks (see :mod:`daskem.engine.sequences`).

    Parameters
    ----------
    log_emission : (T, K) ``log p(x_t | z_t = k)`` in nats (finite or −inf; each step must have one finite).
    startprob : (K,) ``p(z_1 = k)``.
    transmat : (K, K) ``p(z_{t+1} = k | z_t = j)``, rows summing to 1.
    incoming : (K,) the normalised forward message of the step before the piece (:func:`forward_message`
        of the pieces before), or None where the piece opens its sequence.
    beta : (K,) the scaled backward message of the piece's last step (what this function returned for the
        piece after), or None where the piece closes its sequence.

    Returns
    -------
    log_likelihood : ``Σ_t log c_t + m_t`` over the piece, in nats: ``log p(x_1 … x_T)`` for a whole sequence;
        the pieces' add up to it.
    posteriors : (T, K) ``γ_t(k) = p(z_t = k | x)`` of the whole sequence, each row summing to 1.
    transitions : (K, K) ``Σ_t ξ_t(j, k)`` over the transitions into the piece's steps (its first step's
        included where there is an ``incoming`` message).
    beta_before : (K,) the scaled backward message of the step before the piece (``beta`` of the piece before);
        where the piece opens its sequence, that of its first step.
    """
    log_emission = _float64(log_emission)
    n_steps, n_states = log_emission.shape
    transmat = _float64(transmat)
    opens = incoming is None
    start = _float64(startprob if opens else incoming)
    alpha, scale, peaks = np.empty_like(log_emission), np.empty(n_steps), np.empty(n_steps)
    total = _forward(log_emission, start, opens, transmat, alpha, scale, peaks, np.empty(n_states))
    posteriors, transitions = np.empty_like(log_emission), np.zeros((n_states, n_states))
    beta = np.ones(n_states) if beta is None else _float64(beta).copy()
    _backward(log_emission, peaks, scale, transmat, alpha, beta, np.empty(0) if opens else start, posteriors,
              transitions)
    return float(total), posteriors, transitions, beta


def forward_message(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray,
                    incoming: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The forward pass alone over a piece of a sequence (see :func:`piece_statistics` for the arguments), in
    O(K) memory besides the input: the piece's log-likelihood (nats) and the normalised forward message (K,)
    of its last step, the ``incoming`` message of the piece after."""
    log_emission = _float64(log_emission)
    n_states = log_emission.shape[1]
    opens = incoming is None
    last = np.empty(n_states)
    total = _forward(log_emission, _float64(startprob if opens else incoming), opens, _float64(transmat),
                     np.empty((0, n_states)), np.empty(0), np.empty(0), last)
    return float(total), last


def forward_backward(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray
                     ) -> tuple[float, np.ndarray, np.ndarray]:
    """The E-step of one whole sequence: ``log p(x_1 … x_T)`` in nats, the posteriors (T, K) ``γ_t(k)`` and
    the expected transitions (K, K) ``Σ_{t<T} ξ_t(j, k)``, summing to T − 1 (see :func:`piece_statistics`)."""
    total, posteriors, transitions, _ = piece_statistics(log_emission, startprob, transmat)
    return total, posteriors, transitions


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
    return forward_message(log_emission, startprob, transmat)[0]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _viterbi(log_emission: np.ndarray, incoming: np.ndarray, first: bool, log_transmat: np.ndarray,
             back: np.ndarray, score: np.ndarray) -> None:
    """The Viterbi recursion over a piece of a sequence: ``score`` (K,) ends as ``log δ_T``, the log probability
    of the best path to each state at the last step; ``incoming`` is ``log π`` when ``first``, else ``log δ``
    of the step before.  The back pointers (T, K) are written to ``back`` when it has T rows (the first row's
    point into the step before, when not ``first``)."""
    n_steps, n_states = log_emission.shape
    keep = back.shape[0] > 0
    nxt = np.empty(n_states)
    score[:] = incoming
    for t in range(n_steps):
        for k in range(n_states):
            if t == 0 and first:
                best, arg = score[k], 0
            else:
                best, arg = -np.inf, 0
                for j in range(n_states):
                    value = score[j] + log_transmat[j, k]
                    if value > best:
                        best, arg = value, j
            nxt[k] = best + log_emission[t, k]
            if keep:
                back[t, k] = arg
        score[:] = nxt


@numba.njit(nogil=True, cache=True)
def _trace(back: np.ndarray, state: int, path: np.ndarray) -> None:
    """The path (T,) that ends in ``state`` by the back pointers (T, K)."""
    path[-1] = state
    for t in range(len(path) - 1, 0, -1):
        state = back[t, state]
        path[t - 1] = state


def _logs(startprob: np.ndarray, transmat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore"):  # a probability 0 is a log of −inf, which the recursions take
        return np.log(_float64(startprob)), np.ascontiguousarray(np.log(_float64(transmat)))


def viterbi_forward(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray,
                    incoming: np.ndarray | None = None) -> np.ndarray:
    """``log δ`` (K,) at the last step of a piece of a sequence (the ``incoming`` of the piece after), from
    ``log δ`` of the step before it (``incoming``; None where the piece opens its sequence).  O(K) memory
    besides the input; the arguments are as for :func:`piece_statistics`."""
    log_emission = _float64(log_emission)
    log_start, log_transmat = _logs(startprob, transmat)
    score = np.empty(log_emission.shape[1])
    _viterbi(log_emission, log_start if incoming is None else _float64(incoming), incoming is None, log_transmat,
             np.empty((0, log_emission.shape[1]), np.int64), score)
    return score


def viterbi_piece(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray,
                  incoming: np.ndarray | None = None, end: int | None = None) -> tuple[float, np.ndarray, int]:
    """The most probable states of a piece of a sequence (ties: the lower state, as hmmlearn).

    ``incoming`` is ``log δ`` of the step before the piece (:func:`viterbi_forward` of the pieces before;
    None where it opens its sequence); ``end`` the state the best path takes at the piece's last step (what
    this function returned as ``before`` for the piece after; None where the piece closes its sequence: the
    best final state).  Returns the log probability ``log p(x, z*)`` of the best path (nats; where the piece
    closes its sequence), the states (T,) int64, and the state of the step before the piece (−1 where it
    opens its sequence).
    """
    log_emission = _float64(log_emission)
    n_steps, n_states = log_emission.shape
    log_start, log_transmat = _logs(startprob, transmat)
    back, score = np.empty((n_steps, n_states), np.int64), np.empty(n_states)
    opens = incoming is None
    _viterbi(log_emission, log_start if opens else _float64(incoming), opens, log_transmat, back, score)
    path = np.empty(n_steps, np.int64)
    _trace(back, int(np.argmax(score)) if end is None else int(end), path)
    return float(score[path[-1]]), path, -1 if opens else int(back[0, path[0]])


def viterbi(log_emission: np.ndarray, startprob: np.ndarray, transmat: np.ndarray) -> tuple[float, np.ndarray]:
    """The most probable state path of one sequence and its log probability ``log p(x, z*)`` (ties: the
    lower state, as hmmlearn).  ``log_emission`` (T, K), ``startprob`` (K,), ``transmat`` (K, K) as in
    :func:`forward_backward`; returns (log probability, path (T,) int64)."""
    return viterbi_piece(log_emission, startprob, transmat)[:2]
