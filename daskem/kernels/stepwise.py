"""Stepwise EM (Cappé & Moulines 2009): running statistics per unit weight, blended batch by batch.

After each batch b the running statistics become ``s ← (1 − γ) s + γ s̄(b)``,
``s̄(b)`` the batch's statistics divided by its weight, with the step
``γ = (t + 2) ** −decay`` (:func:`step_size`; t batches blended before this
one), and the M-step runs on ``s``.  With ``decay = 1`` and equal batches,
``s`` is the plain average of the batches' statistics.

Statistics that are sums of a quantity linear in the rows (counts, sums of
Bernoulli or Poisson values) blend linearly (:func:`blend_linear`).  Second
moments do not: sums of ``x xᵀ`` cancel catastrophically far from the origin.
They are kept per component as a weight, a mean and the scatter about that
mean (:func:`centred_moments`), and blended with Chan's pairwise update
(:func:`blend_centred`), which only ever subtracts nearby means.

Shapes: ``K`` components, ``d`` features; the scatter has the shape of the
Gaussian second moments of the covariance type (see
:func:`daskem.kernels.gaussian.second_moment_shape`): (K, d, d) full, (d, d)
tied (pooled over components), (K, d) diag and spherical (diagonals).
Everything is float64.
"""

from __future__ import annotations

import numpy as np

from daskem.kernels.gaussian import NK_FLOOR


def step_size(blended: int, decay: float) -> float:
    """The weight ``γ = (t + 2) ** −decay`` of the next batch, t = ``blended`` batches blended so far
    (so 1/2, 1/3, … under ``decay = 1``: the running average)."""
    return float((blended + 2.0) ** -decay)


def blend_linear(old: np.ndarray, new: np.ndarray, gamma: float) -> np.ndarray:
    """``(1 − γ) old + γ new``, element by element (any shape)."""
    return (1.0 - gamma) * old + gamma * new


def centred_moments(
    nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray, covariance_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moments about reference points as weights, means and the scatter about those means.

    Parameters
    ----------
    nk : (K,) ``Σ w r``.
    s1 : (K, d) ``Σ w r (x − c_k)``.
    s2 : second moments ``Σ w r (x − c_k)(x − c_k)ᵀ`` in the shape of ``covariance_type``
        ((K, d, d), (d, d) pooled, (K, d) diagonals).
    reference : (K, d) the points ``c_k``.

    Returns
    -------
    nk (K,) unchanged; means ``c_k + δ_k`` (K, d) with ``δ_k = s1_k / (N_k + NK_FLOOR)`` (an empty
    component keeps ``c_k``, as the M-step does); the scatter ``s2 − N_k δ_k δ_kᵀ`` about the means,
    in ``s2``'s shape (tied: summed over components; diag and spherical: diagonals).
    """
    shift = s1 / (nk + NK_FLOOR)[:, np.newaxis]
    if covariance_type == "full":
        scatter = s2 - nk[:, np.newaxis, np.newaxis] * shift[:, :, np.newaxis] * shift[:, np.newaxis, :]
    elif covariance_type == "tied":
        scatter = s2 - np.einsum("k,ki,kj->ij", nk, shift, shift)
    else:
        scatter = s2 - nk[:, np.newaxis] * shift**2
    return nk, reference + shift, scatter


def blend_centred(
    old: tuple[np.ndarray, np.ndarray, np.ndarray],
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
    gamma: float,
    covariance_type: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(1 − γ) old + γ new`` of two sets of (weights (K,), means (K, d), scatter about the means) by
    Chan's pairwise update, exact far from the origin.

    With a = old, b = new: ``w = (1 − γ) w_a + γ w_b``; ``μ = μ_a + (γ w_b / w)(μ_b − μ_a)`` (the
    weighted mean ``((1 − γ) w_a μ_a + γ w_b μ_b) / w``; ``μ_a`` where ``w = 0``);
    ``M = (1 − γ) M_a + γ M_b + (1 − γ) γ w_a w_b / w · (μ_a − μ_b)(μ_a − μ_b)ᵀ`` — for tied scatter
    the last term summed over components, for diag and spherical its diagonal.
    """
    (w_a, mu_a, m_a), (w_b, mu_b, m_b) = old, new
    weights = (1.0 - gamma) * w_a + gamma * w_b
    occupied = weights > 0
    safe = np.where(occupied, weights, 1.0)
    delta = mu_b - mu_a
    means = mu_a + np.where(occupied, gamma * w_b / safe, 0.0)[:, np.newaxis] * delta
    between = np.where(occupied, (1.0 - gamma) * gamma * w_a * w_b / safe, 0.0)
    scatter = blend_linear(m_a, m_b, gamma)
    if covariance_type == "full":
        scatter += between[:, np.newaxis, np.newaxis] * delta[:, :, np.newaxis] * delta[:, np.newaxis, :]
    elif covariance_type == "tied":
        scatter += np.einsum("k,ki,kj->ij", between, delta, delta)
    else:
        scatter += between[:, np.newaxis] * delta**2
    return weights, means, scatter
