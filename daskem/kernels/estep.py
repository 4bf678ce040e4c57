"""The E-step of a Gaussian mixture on one chunk of rows, and its statistics.

A chunk goes through the block kernel that its parameters call for (see
:mod:`daskem.kernels.block_kernels`), or, where NaN marks missing values and
the chunk holds some, through the exact pass of :mod:`daskem.kernels.missing`.
:func:`chunk_statistics` returns the sums the M-step needs, about reference
points known before the pass, in float64; :func:`e_step` scores rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from daskem.kernels import fused
from daskem.kernels import missing as missing_values
from daskem.kernels.block_kernels import NO_WEIGHTS, compute_dtype, kernel_for, normalise
from daskem.kernels.checks import check_weights, raise_non_finite_log_likelihood
from daskem.kernels.gaussian import GaussianParams

#: Rows of a chunk looked at for NaN before its pass when NaN marks a missing value: a chunk with
#: holes among them goes straight to the missing-value pass, not through a block kernel first
#: (which cost a whole complete-data pass before the non-finite log-likelihood sent it there).
PROBE_ROWS = 256


def joint_log_prob(X: np.ndarray, params: GaussianParams, missing: bool = False) -> np.ndarray:
    """``log α_k + log p_k(x_i)`` (K, n) float64 of rows X (n, d) (any real dtype), block by block.

    With ``missing``, NaN marks a missing value: rows are scored by the marginal density of their observed
    coordinates, and a row with nothing observed has ``log α_k``.  Rows that are not finite or too large to
    square give NaN (callers check).
    """
    X = np.asarray(X, dtype=np.float64)
    gaps = np.isnan(X) if missing else None
    partial = np.flatnonzero(gaps.any(axis=1)) if gaps is not None else np.empty(0, dtype=np.intp)
    kernel = kernel_for(params)
    log_prob = np.empty((params.n_components, X.shape[0]))
    step = kernel.block_rows
    with np.errstate(invalid="ignore", over="ignore"):
        for start in range(0, X.shape[0], step):
            log_prob[:, start : start + step] = kernel.log_prob(X[start : start + step])
        if partial.size:  # rows with missing values, scored again by their observed coordinates
            log_prob[:, partial] = missing_values.log_prob(X[partial], params)
    return log_prob


def e_step(X: np.ndarray, params: GaussianParams, missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """E-step on rows X.

    Parameters
    ----------
    X : (n, d) rows, any real dtype (converted to float64).
    missing : whether NaN marks a missing value: then rows are scored by the
        marginal density of their observed coordinates (a row with nothing
        observed has ``log p = 0`` and the weights as responsibilities).

    Returns
    -------
    log_prob_norm : (n,) float64, ``log p(x_i | Θ)`` in nats (NaN for rows that are
        not finite or too large to square).
    log_resp : (n, K) float64, log responsibilities ``log r_ik``.
    """
    log_prob = joint_log_prob(X, params, missing)
    with np.errstate(invalid="ignore", over="ignore"):  # rows that are not finite give NaN: callers check
        log_prob_norm = normalise(log_prob)[0]
    if missing:  # nothing observed: p = 1, r = α
        log_prob_norm[np.isnan(np.asarray(X, dtype=np.float64)).all(axis=1)] = 0.0
    return log_prob_norm, (log_prob - log_prob_norm).T


@dataclass(frozen=True, eq=False)
class ChunkStatistics:
    """What the E-step of one chunk returns (see :func:`chunk_statistics`)."""

    log_likelihood: float
    weight_sum: float
    n_samples: int
    nk: np.ndarray
    s1: np.ndarray
    s2: np.ndarray
    reference: np.ndarray
    worst_log_prob: np.ndarray
    worst_index: np.ndarray
    worst_rows: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    missing: tuple[int, int, int]


#: The missing counts of a chunk without missing values.
NONE_MISSING = (0, 0, 0)


def chunk_statistics(
    X: np.ndarray,
    params: GaussianParams,
    first_row: int = 0,
    sample_weight: np.ndarray | None = None,
    missing: bool = False,
) -> ChunkStatistics:
    """E-step and sufficient statistics of one chunk of rows.

    The moments are taken about reference points known before the pass — the
    current means for full and tied covariances (as rounded into the whitening
    product, see :class:`WhitenedKernel`), their weighted average ``c`` for
    diag and spherical (see :class:`ExpandedKernel`) — and accumulated in
    float64.

    Parameters
    ----------
    X : (n, d) rows, any real dtype.
    params : the parameters of this iteration.
    first_row : index of the chunk's first row in the whole data set.
    sample_weight : (n,) non-negative weights, or None for ones.
    missing : whether NaN marks a missing value (else it is an error).  Rows
        with missing values take the expected complete-data statistics and
        their observed-data log-likelihood (see :mod:`daskem.kernels.missing`);
        rows with no observed value are left out (weight 0, not counted in
        ``n_samples``).

    Returns
    -------
    ChunkStatistics with
        log_likelihood ``Σ_i w_i log p(x_i | Θ)`` (nats), weight_sum ``Σ_i w_i``,
        n_samples (rows), nk (K,) ``Σ_i w_i r_ik``, s1 (K, d)
        ``Σ_i w_i r_ik (x_i − c_k)``, s2 the second moments
        ``Σ_i w_i r_ik (x_i − c_k)(x_i − c_k)ᵀ`` — (K, d, d) for full, their
        sum over components (d, d) for tied, their diagonals (K, d) for diag
        and spherical — the reference points ``c_k`` (K, d), the K rows of
        positive weight that the parameters explain worst (log-likelihood,
        global index, values), the per-feature minimum and maximum (d,) of the
        observed values, and the missing counts (values, rows with one,
        rows with nothing observed).

    Raises
    ------
    NonFiniteDataError
        If the chunk holds infinite values, or NaN where ``missing`` is false.
    InputError
        If a weight is negative or not finite.
    """
    X = np.asarray(X)
    X = X.astype(compute_dtype(X.dtype), copy=False)
    if sample_weight is not None:
        sample_weight = check_weights(sample_weight, X.shape[0], first_row)
    if missing and np.isnan(X[:PROBE_ROWS]).any():
        return _with_missing(X, params, first_row, sample_weight)
    kernel = kernel_for(params, X.dtype.type)
    with np.errstate(invalid="ignore", over="ignore"):  # bad rows are named below
        log_prob_norm = kernel.accumulate(X, sample_weight)
    if sample_weight is None:
        log_likelihood, weight_sum = log_prob_norm.sum(), float(X.shape[0])
    else:
        log_likelihood, weight_sum = sample_weight @ log_prob_norm, float(sample_weight.sum())
    if not np.isfinite(log_likelihood):  # a NaN anywhere makes it NaN: complete chunks pay no search for gaps
        if missing and np.isnan(X).any():
            return _with_missing(X, params, first_row, sample_weight)
        raise_non_finite_log_likelihood(X, log_prob_norm, first_row)
    worst = fused.worst_rows(log_prob_norm, NO_WEIGHTS if sample_weight is None else sample_weight,
                             params.n_components)
    return ChunkStatistics(
        float(log_likelihood), weight_sum, X.shape[0], *kernel.sums(), kernel.reference,
        log_prob_norm[worst], worst + first_row, X[worst].astype(np.float64),
        *kernel.ranges(X), NONE_MISSING,
    )


def _with_missing(
    X: np.ndarray, params: GaussianParams, first_row: int, sample_weight: np.ndarray | None
) -> ChunkStatistics:
    """:func:`chunk_statistics` of a chunk with missing values, every row through
    :func:`daskem.kernels.missing.statistics`, its moments about the block kernel's reference points."""
    reference = kernel_for(params, X.dtype.type).reference
    with np.errstate(invalid="ignore", over="ignore"):  # bad rows are named below
        part = missing_values.statistics(X, params, reference, sample_weight)
    empty = part.n_missing == X.shape[1]
    weights = np.ones(len(X)) if sample_weight is None else sample_weight.copy()
    weights[empty] = 0.0  # rows with nothing observed carry no information
    log_likelihood = weights @ part.log_prob_norm
    if not np.isfinite(log_likelihood):
        raise_non_finite_log_likelihood(np.where(np.isnan(X), 0.0, X), part.log_prob_norm, first_row)
    worst = fused.worst_rows(part.log_prob_norm, weights, params.n_components)
    rows = missing_values.impute(X[worst], params)  # a restart's seeds: missing values as the mixture expects them
    return ChunkStatistics(
        float(log_likelihood), float(weights.sum()), int((~empty).sum()), part.nk, part.s1,
        typed_moments(part.s2, params.covariance_type), reference, part.log_prob_norm[worst], worst + first_row,
        rows, part.low, part.high, (int(part.n_missing.sum()), int(np.count_nonzero(part.n_missing)), int(empty.sum())),
    )


def typed_moments(s2: np.ndarray, covariance_type: str) -> np.ndarray:
    """Second moments (K, d, d) in the shape of ``covariance_type``'s (see :func:`chunk_statistics`)."""
    if covariance_type == "full":
        return s2
    if covariance_type == "tied":
        return s2.sum(axis=0)
    return np.diagonal(s2, axis1=1, axis2=2).copy()
