"""The weighted mean and covariance of rows, chunk by chunk, exact far from the origin.

Each chunk's sums are taken about its own mean, and two chunks' sums combine
by Chan, Golub & LeVeque's pairwise update (1979), so that no sum of squares
about the origin is ever formed; means are held about a row of the data, so
that their differences keep every digit: the covariance of rows at 1e8 ± 1
is as exact as at 0 ± 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Moments:
    """The weighted moments of some rows: a value type with ``+`` (associative, commutative up to rounding).

    The mean is held as a row of the data (``reference``, exact) plus an ``offset`` from it, so that the
    difference of two chunks' means — which their combination needs — keeps every digit however far the data
    lie from the origin.

    Attributes
    ----------
    weight_sum : ``W = Σ_i w_i``.
    reference : (d,) a row of the data (zeros when W is 0).
    offset : (d,) ``Σ_i w_i (x_i − reference) / W``.
    scatter : ``Σ_i w_i (x_i − mean)(x_i − mean)ᵀ``, (d, d) when full, else its diagonal (d,).
    """

    weight_sum: float
    reference: np.ndarray
    offset: np.ndarray
    scatter: np.ndarray

    @property
    def mean(self) -> np.ndarray:
        """``Σ_i w_i x_i / W`` (d,)."""
        return self.reference + self.offset

    def __add__(self, other: Moments) -> Moments:
        if other.weight_sum == 0:
            return self
        if self.weight_sum == 0:
            return other
        total = self.weight_sum + other.weight_sum
        delta = (other.reference - self.reference) + (other.offset - self.offset)  # mean_b − mean_a
        share = other.weight_sum / total
        between = self.weight_sum * share  # W_a W_b / W
        outer = np.outer(delta, delta) if self.scatter.ndim == 2 else delta**2
        return Moments(total, self.reference, self.offset + share * delta,
                       self.scatter + other.scatter + between * outer)

    def covariance(self) -> np.ndarray:
        """The covariance with frequency weights, ``scatter / (W − 1)``: with unit weights NumPy's ``np.cov``
        (``ddof=1``), and integer weights count as repeated rows."""
        return self.scatter / (self.weight_sum - 1.0)


def chunk_moments(X: np.ndarray, weights: np.ndarray | None, full: bool) -> Moments:
    """The moments of rows X (n, d) with ``weights`` (n,) (None: ones), about its first row: the full scatter
    matrix when ``full``, else its diagonal."""
    X = np.asarray(X, dtype=np.float64)
    w = np.ones(len(X)) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    d = X.shape[1]
    if total == 0:
        return Moments(0.0, np.zeros(d), np.zeros(d), np.zeros((d, d) if full else d))
    reference = X[0].copy()
    shifted = X - reference
    offset = w @ shifted / total
    centred = shifted - offset
    scatter = (centred * w[:, np.newaxis]).T @ centred if full else w @ centred**2
    return Moments(total, reference, offset, scatter)
