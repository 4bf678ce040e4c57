"""SQUAREM: accelerated EM that costs no extra pass (Varadhan & Roland 2008, *Scand. J. Stat.* 35:335).

From θ₀, two EM steps give θ₁ = F(θ₀) and θ₂ = F(θ₁).  With r = θ₁ − θ₀ and
v = θ₂ − 2θ₁ + θ₀, the step length α = ‖r‖/‖v‖ (at least 1, at most a
bound that grows while steps of the bound succeed) gives the extrapolated
point θ′ = θ₀ + 2αr + α²v = (1−α)²θ₀ + 2α(1−α)θ₁ + α²θ₂ — an affine
combination, so weights still sum to 1.  α = 1 is θ₂, plain EM.

The pass that starts from θ′ gives its log-likelihood and F(θ′) at once: θ′
is kept when its log-likelihood is at least θ₁'s (and that pass is the first
of the next cycle), else the fit falls back to θ₂ — a cycle costs two
passes, a rejected step one more.  The parameters are extrapolated array by
array in the expected sufficient statistics they come from
(:meth:`~daskem.families.base.Family.expectations`: weights, weighted means,
weighted second moments about θ₀'s means), with norms measured in the scales
of :meth:`~daskem.families.base.Family.step_scales`; docs/design.md records
what else was tried.

These are pure functions; :class:`daskem.engine.em.RunState` keeps the cycle.
"""

from __future__ import annotations

import math

import numpy as np

from daskem.families.base import Family, Params

#: ``acceleration=`` values: SQUAREM, the default, or textbook EM (one EM step per pass).
ACCELERATIONS = ("squarem", "none")
#: The bound on α grows by this factor each time a step of the bound is kept (as R's SQUAREM
#: package, ``mstep``); a refused step α leaves α divided by it as the bound.
STEP_FACTOR = 4.0
#: Under acceleration a fit stops once, in :data:`NEAR_CYCLES` cycles in a row, the EM step gained less
#: than ``tol`` and the gain still to come was estimated below ``tol`` times this.  One cycle's estimate
#: can be fooled where EM nearly stalls (near a saddle); two, with a jump between them, were not on the
#: cases of ``benchmarks/bench_passes.py`` (docs/design.md has the figures).
REMAINING_FRACTION = 0.01
NEAR_CYCLES = 2
#: A gain of log-likelihood up to this many times the rounding of its level is no gain.
ROUNDING = 16 * np.finfo(np.float64).eps


def _squared_norm(scales: dict[str, np.ndarray], change: dict[str, np.ndarray]) -> float:
    """‖change‖² in ``scales`` (see :meth:`Family.step_scales`); zero scales (a probability on its floor,
    an empty component) count nothing."""
    total = 0.0
    for name, scale in scales.items():
        scaled = np.divide(change[name], scale, out=np.zeros_like(change[name]),
                           where=(scale > 0) & np.isfinite(scale))
        total += float(np.sum(scaled * scaled))
    return total


def _cycle(family: Family, theta0: Params, theta1: Params,
           theta2: Params) -> tuple[list[dict], float, float, float]:
    """The three points as :meth:`Family.expectations` about θ₀, and ‖r‖², ‖v‖² and ‖θ₂ − θ₁‖² in
    θ₀'s :meth:`Family.step_scales`."""
    scales = family.step_scales(theta0)
    points = [family.expectations(theta, theta0) for theta in (theta0, theta1, theta2)]
    e0, e1, e2 = points
    r2 = _squared_norm(scales, {name: e1[name] - e0[name] for name in e0})
    v2 = _squared_norm(scales, {name: e2[name] - 2 * e1[name] + e0[name] for name in e0})
    last2 = _squared_norm(scales, {name: e2[name] - e1[name] for name in e0})
    return points, r2, v2, last2


def extrapolate(family: Family, theta0: Params, theta1: Params, theta2: Params,
                step_max: float) -> tuple[Params | None, float]:
    """SQUAREM's point from θ₀ and its two EM steps θ₁, θ₂, and its step length α in [1, ``step_max``].

    The point is θ₂ where α = 1 (plain EM: no change, or steps that do not
    shrink alike), None where it leaves the parameter space
    (:meth:`Family.from_expectations`).
    """
    points, r2, v2, _ = _cycle(family, theta0, theta1, theta2)
    if r2 == 0.0:
        return theta2, 1.0
    alpha = step_max if v2 == 0.0 else min(max(math.sqrt(r2 / v2), 1.0), step_max)
    if alpha == 1.0:
        return theta2, 1.0
    coefficients = ((1 - alpha) ** 2, 2 * alpha * (1 - alpha), alpha**2)
    combined = {name: sum(c * point[name] for c, point in zip(coefficients, points)) for name in points[0]}
    return family.from_expectations(combined, theta0), alpha


def next_step_max(step_max: float, alpha: float, kept: bool) -> float:
    """The bound on the step length after a step ``alpha`` was ``kept`` or refused: grown by
    :data:`STEP_FACTOR` after a kept step of the bound (as R's SQUAREM package), and after a refused
    step ``alpha / STEP_FACTOR`` (not below 1), so that steps too long for the surface are not tried
    again and again, each costing a pass."""
    if not kept:
        return max(1.0, alpha / STEP_FACTOR)
    return step_max * STEP_FACTOR if alpha == step_max else step_max


def remaining_after(gain: float, level: float, family: Family, theta0: Params, theta1: Params,
                    theta2: Params) -> float:
    """How much mean log-likelihood plain EM would still gain from θ₁, estimated from its last gain
    ``gain`` = ℓ(θ₁) − ℓ(θ₀) = ℓ(θ₁) − ``level`` (nats per unit weight) and its rate (same units).

    Near the optimum EM shrinks the distance to it by a rate c per step
    (c = ‖θ₂ − θ₁‖ / ‖θ₁ − θ₀‖) and the log-likelihood still to gain by c², so
    the gains to come after ``gain`` add up to ``gain · c² / (1 − c²)``
    (Aitken's estimate, McLachlan & Krishnan, *The EM Algorithm and
    Extensions*, §4.9).  0 when EM gained nothing beyond the rounding of
    ``level`` (at a fixed point the rate is noise); inf while the steps do not shrink.
    """
    if gain <= ROUNDING * max(1.0, abs(level)):
        return 0.0
    _, before, _, after = _cycle(family, theta0, theta1, theta2)
    if not after < before:
        return math.inf
    rate = after / before
    return gain * rate / (1.0 - rate)
