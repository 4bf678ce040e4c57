"""Gaussian mixture kernels with full covariances (pure NumPy).

Shapes use ``n`` rows, ``d`` features and ``K`` components.  All arithmetic is
float64 whatever the dtype of the rows: chunks are converted on entry.

The E-step uses the precision-Cholesky parametrisation: for each component the
triangular ``U_k`` with ``U_k U_kᵀ = Σ_k⁻¹`` turns the Mahalanobis
distance into a sum of squares, ``‖(x − μ_k) U_k‖²``, and ``log|U_k|`` into
the sum of ``log diag(U_k)``.  Responsibilities come from a log-sum-exp.

Second moments are accumulated about a reference point known before the pass —
the current means — so that the M-step subtracts two small numbers rather than
two huge ones when the data sit far from the origin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from daskem.exceptions import CovarianceError, NonFiniteDataError

LOG_2PI = float(np.log(2.0 * np.pi))
# Added to each component's responsibility sum, as scikit-learn does, so that an
# empty component divides by a tiny number rather than by zero.
NK_FLOOR = 10.0 * np.finfo(np.float64).eps


@dataclass(frozen=True, eq=False)
class GaussianParams:
    """Parameters of a Gaussian mixture with full covariances.

    Attributes
    ----------
    weights : (K,) float64, mixing proportions summing to 1.
    means : (K, d) float64, component means, in the data's units.
    covariances : (K, d, d) float64, component covariances, in squared units.
    precisions_cholesky : (K, d, d) float64, triangular ``U_k`` with
        ``U_k U_kᵀ = covariances[k]⁻¹`` (upper when computed from a
        covariance, lower when given as a precision, as in scikit-learn).
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @classmethod
    def from_covariances(
        cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray
    ) -> GaussianParams:
        """Build parameters from covariances (K, d, d), computing the precision Cholesky."""
        covariances = np.asarray(covariances, dtype=np.float64)
        return cls(
            weights=np.asarray(weights, dtype=np.float64),
            means=np.asarray(means, dtype=np.float64),
            covariances=covariances,
            precisions_cholesky=precision_cholesky(covariances),
        )

    @classmethod
    def from_precisions(
        cls, weights: np.ndarray, means: np.ndarray, precisions: np.ndarray
    ) -> GaussianParams:
        """Build parameters from precision matrices (K, d, d), the inverses of the covariances."""
        precisions = np.asarray(precisions, dtype=np.float64)
        chol = np.empty_like(precisions)
        for k, precision in enumerate(precisions):
            try:
                chol[k] = scipy.linalg.cholesky(precision, lower=True)
            except np.linalg.LinAlgError:
                raise CovarianceError(
                    f"the precision matrix of component {k} is not symmetric positive definite"
                ) from None
        covariances = np.linalg.inv(precisions)
        return cls(
            weights=np.asarray(weights, dtype=np.float64),
            means=np.asarray(means, dtype=np.float64),
            covariances=covariances,
            precisions_cholesky=chol,
        )

    @property
    def precisions(self) -> np.ndarray:
        """Precision matrices (K, d, d): ``U_k U_kᵀ``."""
        u = self.precisions_cholesky
        return u @ np.swapaxes(u, 1, 2)


def precision_cholesky(covariances: np.ndarray) -> np.ndarray:
    """Upper-triangular Cholesky factors of the precision matrices.

    Parameters
    ----------
    covariances : (K, d, d) float64

    Returns
    -------
    (K, d, d) float64 ``U_k = L_k⁻ᵀ`` where ``L_k L_kᵀ = covariances[k]``.

    Raises
    ------
    CovarianceError
        If a covariance is not positive definite; the message names the component.
    """
    n_components, n_features, _ = covariances.shape
    identity = np.eye(n_features)
    result = np.empty_like(covariances)
    for k, covariance in enumerate(covariances):
        try:
            lower = scipy.linalg.cholesky(covariance, lower=True)
        except np.linalg.LinAlgError:
            raise CovarianceError(
                f"the covariance of component {k} is not positive definite: it has "
                "collapsed onto too few points or onto a lower-dimensional subspace. "
                "Increase reg_covar (for example by a factor of 10), reduce "
                "n_components, or rescale the features."
            ) from None
        result[k] = scipy.linalg.solve_triangular(lower, identity, lower=True).T
    return result


def weighted_log_prob(X: np.ndarray, params: GaussianParams) -> np.ndarray:
    """``log α_k + log N(x_i | μ_k, Σ_k)`` for every row and component.

    Parameters
    ----------
    X : (n, d) float64 rows.

    Returns
    -------
    (n, K) float64, in nats.
    """
    n_samples, n_features = X.shape
    mahalanobis = np.empty((n_samples, params.n_components))
    for k in range(params.n_components):
        y = (X - params.means[k]) @ params.precisions_cholesky[k]
        mahalanobis[:, k] = np.einsum("ij,ij->i", y, y)
    log_det = np.log(np.diagonal(params.precisions_cholesky, axis1=1, axis2=2)).sum(axis=1)
    return -0.5 * (n_features * LOG_2PI + mahalanobis) + log_det + np.log(params.weights)


def e_step(X: np.ndarray, params: GaussianParams) -> tuple[np.ndarray, np.ndarray]:
    """E-step on a block of rows.

    Parameters
    ----------
    X : (n, d) rows, any real dtype (converted to float64).

    Returns
    -------
    log_prob_norm : (n,) float64, ``log p(x_i | Θ)`` in nats.
    log_resp : (n, K) float64, log responsibilities ``log r_ik``.
    """
    X = np.asarray(X, dtype=np.float64)
    wlp = weighted_log_prob(X, params)
    peak = wlp.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # rows with peak == ±inf are reported by callers
        log_prob_norm = np.log(np.exp(wlp - peak).sum(axis=1)) + peak[:, 0]
        log_resp = wlp - log_prob_norm[:, np.newaxis]
    return log_prob_norm, log_resp


def chunk_statistics(
    X: np.ndarray, params: GaussianParams, first_row: int = 0
) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
    """E-step and sufficient statistics of one chunk of rows.

    The moments are taken about the current means ``params.means`` (the
    reference point of the pass) and accumulated in float64.

    Parameters
    ----------
    X : (n, d) rows, any real dtype.
    params : the parameters of this iteration.
    first_row : index of the chunk's first row in the whole data set, used in
        error messages only.

    Returns
    -------
    log_likelihood : float, ``Σ_i log p(x_i | Θ)`` in nats.
    n_samples : float, number of rows.
    nk : (K,) ``Σ_i r_ik``.
    s1 : (K, d) ``Σ_i r_ik (x_i − μ_k)``.
    s2 : (K, d, d) ``Σ_i r_ik (x_i − μ_k)(x_i − μ_k)ᵀ``.

    Raises
    ------
    NonFiniteDataError
        If the chunk holds NaN or infinite values.
    """
    X = np.asarray(X, dtype=np.float64)
    log_prob_norm, log_resp = e_step(X, params)
    if not np.isfinite(log_prob_norm).all():
        _raise_non_finite(X, log_prob_norm, first_row)
    nk, s1, s2 = weighted_moments(X, np.exp(log_resp), params.means)
    return float(log_prob_norm.sum()), float(X.shape[0]), nk, s1, s2


def weighted_moments(
    X: np.ndarray, resp: np.ndarray, reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responsibility-weighted moments about per-component reference points.

    Parameters
    ----------
    X : (n, d) float64 rows.
    resp : (n, K) float64 responsibilities (or any non-negative weights).
    reference : (K, d) float64 points ``c_k``.

    Returns
    -------
    nk : (K,) ``Σ_i r_ik``.
    s1 : (K, d) ``Σ_i r_ik (x_i − c_k)``.
    s2 : (K, d, d) ``Σ_i r_ik (x_i − c_k)(x_i − c_k)ᵀ``.
    """
    n_components, n_features = reference.shape
    s1 = np.empty((n_components, n_features))
    s2 = np.empty((n_components, n_features, n_features))
    for k in range(n_components):
        diff = X - reference[k]
        weighted = diff * resp[:, k, np.newaxis]
        s1[k] = weighted.sum(axis=0)
        s2[k] = weighted.T @ diff
    return resp.sum(axis=0), s1, s2


def _raise_non_finite(X: np.ndarray, log_prob_norm: np.ndarray, first_row: int) -> None:
    last_row = first_row + X.shape[0] - 1
    where = f"rows {first_row}–{last_row}"
    bad_values = int(np.count_nonzero(~np.isfinite(X)))
    if bad_values:
        bad_rows = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        raise NonFiniteDataError(
            f"the data hold {bad_values} NaN or infinite value(s) in {bad_rows} row(s) "
            f"of the chunk of {where}; remove or impute them before fitting"
        )
    bad_rows = int(np.count_nonzero(~np.isfinite(log_prob_norm)))
    raise NonFiniteDataError(
        f"{bad_rows} row(s) in the chunk of {where} have a log-likelihood that is not "
        "finite (values too large for float64 arithmetic); rescale the features"
    )


def m_step(
    nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray, reg_covar: float
) -> GaussianParams:
    """M-step: parameters from summed statistics.

    Parameters
    ----------
    nk : (K,) summed responsibilities ``Σ_i r_ik``.
    s1 : (K, d) ``Σ_i r_ik (x_i − c_k)`` about the reference points ``c_k``.
    s2 : (K, d, d) ``Σ_i r_ik (x_i − c_k)(x_i − c_k)ᵀ``.
    reference : (K, d) the reference points ``c_k``.
    reg_covar : non-negative number added to the covariance diagonals.

    Returns
    -------
    GaussianParams with ``α_k = N_k / Σ_j N_j``, ``μ_k = c_k + s1_k / N_k`` and
    ``Σ_k = s2_k / N_k − δ_k δ_kᵀ + reg_covar·I`` where ``δ_k = μ_k − c_k``.
    """
    nk = nk + NK_FLOOR
    shift = s1 / nk[:, np.newaxis]
    covariances = s2 / nk[:, np.newaxis, np.newaxis] - shift[:, :, np.newaxis] * shift[:, np.newaxis, :]
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    n_features = reference.shape[1]
    covariances[:, np.arange(n_features), np.arange(n_features)] += reg_covar
    return GaussianParams.from_covariances(nk / nk.sum(), reference + shift, covariances)


def n_parameters(n_components: int, n_features: int) -> int:
    """Free parameters of a full-covariance mixture: weights, means and covariances."""
    covariance_params = n_components * n_features * (n_features + 1) // 2
    return (n_components - 1) + n_components * n_features + covariance_params


def sample(
    params: GaussianParams, n_samples: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw rows from the mixture.

    Returns
    -------
    X : (n_samples, d) float64 rows, grouped by component.
    labels : (n_samples,) int64 component of each row.
    """
    counts = rng.multinomial(n_samples, params.weights)
    rows = [
        rng.multivariate_normal(mean, covariance, size=count)
        for mean, covariance, count in zip(params.means, params.covariances, counts)
    ]
    labels = np.repeat(np.arange(params.n_components), counts)
    return np.vstack(rows), labels
