"""Gaussian mixture kernels (pure NumPy) for the covariance types of scikit-learn.

Shapes use ``n`` rows, ``d`` features and ``K`` components.  All arithmetic is
float64 whatever the dtype of the rows: chunks are converted on entry.

Covariance types and the shapes of ``covariances`` and ``precisions_cholesky``
(as in scikit-learn):

- ``"full"``: (K, d, d), one matrix per component;
- ``"tied"``: (d, d), one matrix shared by all components;
- ``"diag"``: (K, d), a diagonal per component;
- ``"spherical"``: (K,), one variance per component.

The E-step uses the precision-Cholesky parametrisation: ``U_k`` with
``U_k U_kᵀ = Σ_k⁻¹`` turns the Mahalanobis distance into a sum of squares,
``‖(x − μ_k) U_k‖²``, and ``log|U_k|`` into a sum of logs of its diagonal.
Responsibilities come from a log-sum-exp.

Second moments are accumulated about reference points known before the pass —
the current means (full, tied), or their weighted average (diag, spherical,
whose E-step and moments are then two matrix products) — so that the M-step
subtracts two small numbers rather than two huge ones when the data sit far
from the origin.  ``diag`` and ``spherical`` keep only the diagonal of the
moments (never a d × d matrix); ``tied`` pools them over the components.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from daskem.exceptions import CovarianceError
from daskem.kernels.checks import check_weights, raise_non_finite_log_likelihood

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
LOG_2PI = float(np.log(2.0 * np.pi))
# Added to each component's responsibility sum, as scikit-learn does, so that an
# empty component divides by a tiny number rather than by zero.
NK_FLOOR = 10.0 * np.finfo(np.float64).eps

_NOT_PD_ADVICE = (
    "it has collapsed onto too few points or onto a lower-dimensional subspace. "
    "Increase reg_covar (for example by a factor of 10), reduce n_components, "
    "or rescale the features."
)


def covariance_shape(covariance_type: str, n_components: int, n_features: int) -> tuple[int, ...]:
    """Shape of ``covariances`` (and of ``precisions_cholesky``) for a covariance type."""
    return {
        "full": (n_components, n_features, n_features),
        "tied": (n_features, n_features),
        "diag": (n_components, n_features),
        "spherical": (n_components,),
    }[covariance_type]


@dataclass(frozen=True, eq=False)
class GaussianParams:
    """Parameters of a Gaussian mixture.

    Attributes
    ----------
    weights : (K,) float64, mixing proportions summing to 1.
    means : (K, d) float64, component means, in the data's units.
    covariances : float64 of :func:`covariance_shape`, in squared units.
    precisions_cholesky : float64 of the same shape: triangular ``U_k`` with
        ``U_k U_kᵀ = Σ_k⁻¹`` (full, tied: upper when computed from a
        covariance, lower when given as a precision, as in scikit-learn), or
        ``1/σ`` (diag, spherical).
    covariance_type : one of :data:`COVARIANCE_TYPES`.
    """

    weights: np.ndarray
    means: np.ndarray
    covariances: np.ndarray
    precisions_cholesky: np.ndarray
    covariance_type: str = "full"

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def n_features(self) -> int:
        return self.means.shape[1]

    @classmethod
    def from_covariances(
        cls, weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, covariance_type: str = "full"
    ) -> GaussianParams:
        """Build parameters from covariances, computing the precision Cholesky factors."""
        covariances = np.asarray(covariances, dtype=np.float64)
        return cls(
            weights=np.asarray(weights, dtype=np.float64),
            means=np.asarray(means, dtype=np.float64),
            covariances=covariances,
            precisions_cholesky=precision_cholesky(covariances, covariance_type),
            covariance_type=covariance_type,
        )

    @classmethod
    def from_precisions(
        cls, weights: np.ndarray, means: np.ndarray, precisions: np.ndarray, covariance_type: str = "full"
    ) -> GaussianParams:
        """Build parameters from precisions (inverse covariances) of :func:`covariance_shape`."""
        precisions = np.asarray(precisions, dtype=np.float64)
        if covariance_type in ("full", "tied"):
            matrices = precisions.reshape((-1,) + precisions.shape[-2:])
            chol = np.empty_like(matrices)
            for k, precision in enumerate(matrices):
                try:
                    chol[k] = scipy.linalg.cholesky(precision, lower=True)
                except np.linalg.LinAlgError:
                    raise CovarianceError(
                        f"the precision matrix of {_which(covariance_type, k)} is not symmetric positive definite"
                    ) from None
            chol = chol.reshape(precisions.shape)
            covariances = np.linalg.inv(precisions)
        else:
            bad = np.flatnonzero(~(precisions > 0).reshape(len(precisions), -1).all(axis=1))
            if bad.size:
                raise CovarianceError(f"the precisions of component {bad[0]} are not all positive")
            chol, covariances = np.sqrt(precisions), 1.0 / precisions
        return cls(
            weights=np.asarray(weights, dtype=np.float64),
            means=np.asarray(means, dtype=np.float64),
            covariances=covariances,
            precisions_cholesky=chol,
            covariance_type=covariance_type,
        )

    @property
    def precisions(self) -> np.ndarray:
        """Precisions (inverse covariances), of :func:`covariance_shape`."""
        u = self.precisions_cholesky
        if self.covariance_type in ("full", "tied"):
            return u @ np.swapaxes(u, -1, -2)
        return u**2

    def full_covariances(self) -> np.ndarray:
        """Every component's covariance as a (K, d, d) matrix, whatever the type."""
        k, d, c = self.n_components, self.n_features, self.covariances
        if self.covariance_type == "full":
            return c
        if self.covariance_type == "tied":
            return np.broadcast_to(c, (k, d, d)).copy()
        diagonals = c if self.covariance_type == "diag" else np.repeat(c[:, None], d, axis=1)
        return diagonals[:, :, None] * np.eye(d)


def _which(covariance_type: str, k: int) -> str:
    return "the tied covariance" if covariance_type == "tied" else f"component {k}"


def precision_cholesky(covariances: np.ndarray, covariance_type: str = "full") -> np.ndarray:
    """Cholesky factors of the precisions, as scikit-learn computes them.

    Parameters
    ----------
    covariances : float64 of :func:`covariance_shape`.

    Returns
    -------
    Same shape: ``U = L⁻ᵀ`` with ``L Lᵀ = Σ`` (full, tied), or ``1/√σ²``
    (diag, spherical).

    Raises
    ------
    CovarianceError
        If a covariance is not positive definite; the message names the component.
    """
    if covariance_type in ("diag", "spherical"):
        bad = np.flatnonzero(~((covariances > 0) & (covariances < np.inf)).reshape(len(covariances), -1).all(axis=1))
        if bad.size:
            raise CovarianceError(
                f"the variances of component {bad[0]} are not all positive and finite: {_NOT_PD_ADVICE}"
            )
        return 1.0 / np.sqrt(covariances)
    matrices = covariances.reshape((-1,) + covariances.shape[-2:])
    identity = np.eye(matrices.shape[-1])
    result = np.empty_like(matrices)
    for k, covariance in enumerate(matrices):
        if not np.isfinite(covariance).all():
            raise CovarianceError(
                f"the covariance of {_which(covariance_type, k)} holds NaN or infinite values; "
                "check the data for values too large to square, or rescale the features"
            )
        try:
            lower = scipy.linalg.cholesky(covariance, lower=True)
        except np.linalg.LinAlgError:
            raise CovarianceError(
                f"the covariance of {_which(covariance_type, k)} is not positive definite: {_NOT_PD_ADVICE}"
            ) from None
        result[k] = scipy.linalg.solve_triangular(lower, identity, lower=True).T
    return result.reshape(covariances.shape)


#: Rows × components × features per block of work: blocks this size keep their
#: (K, b, d) temporaries (512 KiB each) in the processor's L2 cache. Measured on one
#: core, 50,000 rows: K=8, d=16 27 ms at 512 rows against 47 ms at 2048; K=32, d=16
#: 108 ms at 128 rows against 188 ms at 256.
BLOCK_ELEMENTS = 2**16
#: Fewest rows per block: below this, the cost of each block's NumPy calls shows.
MIN_BLOCK_ROWS = 128
#: float32 blocks hold this many times the rows (measured: K=8, d=16 on one core,
#: 17 ms per 50,000 rows at 4×, 18 ms at 2×, 24 ms at ½×).
FLOAT32_BLOCK_FACTOR = 4


def block_rows(n_components: int, n_features: int) -> int:
    """Rows per cache-sized block for K components and d features."""
    return max(MIN_BLOCK_ROWS, BLOCK_ELEMENTS // (n_components * n_features))


def _offsets(params: GaussianParams) -> np.ndarray:
    """``log α_k + log|U_k| − d/2·log 2π`` for each component: (K,)."""
    u, d = params.precisions_cholesky, params.n_features
    if params.covariance_type == "full":
        log_det = np.log(np.diagonal(u, axis1=1, axis2=2)).sum(axis=1)
    elif params.covariance_type == "tied":
        log_det = np.log(np.diagonal(u)).sum()
    elif params.covariance_type == "diag":
        log_det = np.log(u).sum(axis=1)
    else:
        log_det = d * np.log(u)
    return np.log(params.weights) + log_det - 0.5 * d * LOG_2PI


class _DifferencesKernel:
    """Any covariance type, block by block: the differences ``x − μ_k`` (K, b, d), whitened
    (by one batched matrix product for full and tied); moments about the means, exact
    however far apart the components are.

    In float32 (float32 rows, full or tied: see :func:`compute_dtype`) the
    differences are taken from ``m_k``, the means rounded to float32, so that
    ``x − m_k`` loses nothing however far the data sit from the origin; the
    rest, ``(μ_k − m_k) U_k``, is one row per component subtracted after
    whitening, and the moments are about ``m_k``.
    """

    def __init__(self, params: GaussianParams, dtype: type = np.float64) -> None:
        self.params, self.offsets = params, _offsets(params)
        self.means = params.means.astype(dtype)
        self.reference = self.means.astype(np.float64)
        self.u = params.precisions_cholesky.astype(dtype)
        self.correction = None
        if dtype != np.float64:
            rounding = params.means - self.reference  # (K, d), below half an ulp of the means
            u = params.precisions_cholesky
            corrections = rounding @ u if u.ndim == 2 else np.einsum("kd,kde->ke", rounding, u)
            self.correction = corrections.astype(dtype)
        self.ones = np.ones(params.n_features, dtype)
        self.moments = _Moments(params.n_components, params.n_features, params.covariance_type)
        self._tiles: dict[str, np.ndarray] = {}

    def log_prob(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log α_k + log p_k(x_i)`` (K, b) float64 of a block X (b, d), and what :meth:`add` needs."""
        diffs = X[np.newaxis, :, :] - self._tiled("means", self.means, len(X))
        u = self.u
        if self.params.covariance_type in ("full", "tied"):
            y = diffs @ u
        else:
            y = diffs * (u[:, np.newaxis, :] if u.ndim == 2 else u[:, np.newaxis, np.newaxis])
        if self.correction is not None:
            y -= self._tiled("correction", self.correction, len(X))
        np.square(y, out=y)
        return self.offsets[:, np.newaxis] - 0.5 * (y @ self.ones), diffs

    def _tiled(self, name: str, rows: np.ndarray, n: int) -> np.ndarray:
        """``rows`` (K, d) repeated for ``n`` rows of a block: (K, n, d), built once per pass.

        Subtracting a tiled array runs over whole contiguous (n·d) rows; broadcasting a
        (K, 1, d) one runs inner loops of only d values, 2–3× slower.
        """
        tiled = self._tiles.get(name)
        if tiled is None or tiled.shape[1] < n:
            tiled = np.ascontiguousarray(np.broadcast_to(rows[:, np.newaxis, :], (rows.shape[0], n, rows.shape[1])))
            self._tiles[name] = tiled
        return tiled[:, :n]

    def add(self, diffs: np.ndarray, resp: np.ndarray) -> None:
        """Add a block's moments; ``resp`` (K, b) already multiplied by any weights."""
        self.moments.add(diffs, resp)

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.moments.nk, self.moments.s1, self.moments.s2


class _DiagonalKernel:
    """Diag and spherical covariances as matrix products about one reference point.

    With ``c = Σ_k α_k μ_k`` (known before the pass, close to the data),
    ``x̃ = x − c``, ``δ_k = μ_k − c`` and the precisions ``P_kj = 1/σ²_kj``,
    the Mahalanobis distances of a block are one product::

        Σ_j P_kj (x̃_j − δ_kj)² = [x̃², x̃] · [P; −2 P∘δ]ᵀ + Σ_j P_kj δ_kj²

    and its moments another: ``Rᵀ [x̃², x̃, 1]`` gives ``Σ r x̃²``, ``Σ r x̃``
    and ``Σ r`` per component.  Taken about ``c`` rather than the origin, the
    expanded squares lose about ``(|μ_k − c| / σ_k)²`` ulps (times the length
    of the sums), not ``(|x| / σ)²``: used only while that factor is at most
    :data:`MAX_SEPARATION` (see :func:`_kernel`).
    """

    def __init__(self, params: GaussianParams) -> None:
        u, d = params.precisions_cholesky, params.n_features
        precision = u**2 if params.covariance_type == "diag" else np.repeat((u**2)[:, np.newaxis], d, axis=1)
        centre = params.weights @ params.means
        delta = params.means - centre
        #: ``max (μ_kj − c_j)² / σ²_kj``: how many ulps the expanded squares may lose (see :func:`_kernel`).
        self.separation = float((precision * delta**2).max())
        self.centre, self.n_features = centre, d
        self.reference = np.broadcast_to(centre, params.means.shape).copy()
        self.product = -0.5 * np.hstack([precision, -2.0 * precision * delta])  # (K, 2d)
        self.constant = (_offsets(params) - 0.5 * (precision * delta**2).sum(axis=1))[:, np.newaxis]  # (K, 1)
        self.totals = np.zeros((params.n_components, 2 * d + 1))

    def log_prob(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log α_k + log p_k(x_i)`` (K, b) of a block X (b, d) float64, and ``[x̃², x̃, 1]`` (b, 2d+1)."""
        d = self.n_features
        terms = np.empty((X.shape[0], 2 * d + 1))
        np.subtract(X, self.centre, out=terms[:, d : 2 * d])
        np.multiply(terms[:, d : 2 * d], terms[:, d : 2 * d], out=terms[:, :d])
        terms[:, 2 * d] = 1.0
        log_prob = self.product @ terms[:, : 2 * d].T
        log_prob += self.constant
        return log_prob, terms

    def add(self, terms: np.ndarray, resp: np.ndarray) -> None:
        """Add a block's moments; ``resp`` (K, b) already multiplied by any weights."""
        self.totals += resp @ terms

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        d = self.n_features
        return self.totals[:, 2 * d].copy(), self.totals[:, d : 2 * d].copy(), self.totals[:, :d].copy()


#: Largest ``max_kj (μ_kj − c_j)² / σ²_kj`` for which diag and spherical use matrix products
#: about one reference point: moments then stay within ~1e-10 of their scale (measured
#: 8e-11 at this limit, components 100 standard deviations from ``c``). Components
#: further apart use the exact differences.
MAX_SEPARATION = 1e4


def compute_dtype(data_dtype: np.dtype | type, covariance_type: str) -> type:
    """The arithmetic inside a block: float32 for float32 rows and full or tied covariances, else float64.

    In float32 the differences, products and per-block sums are float32 and
    every sum across blocks and chunks float64: 1.2–1.35× faster on one core
    (K=8, d=16), about 1.4× for a whole fit, with parameters within ~1e-6 of
    the float64 fit's.  Diag and
    spherical kernels expand squares (see :class:`_DiagonalKernel`), which
    float32 cannot afford: they stay float64.
    """
    is_float32 = np.dtype(data_dtype) == np.float32
    return np.float32 if is_float32 and covariance_type in ("full", "tied") else np.float64


def _kernel(params: GaussianParams, dtype: type = np.float64) -> _DifferencesKernel | _DiagonalKernel:
    """The block kernel for ``params`` in ``dtype`` (see :func:`compute_dtype`): matrix products
    for diag and spherical covariances whose components are not too far apart, differences per
    component otherwise."""
    if params.covariance_type in ("full", "tied"):
        return _DifferencesKernel(params, dtype)
    kernel = _DiagonalKernel(params)
    return kernel if kernel.separation <= MAX_SEPARATION else _DifferencesKernel(params)


def _normalise(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Log-sum-exp over components of ``log_prob`` (K, b): ``log p(x_i)`` (b,) and ``r_ik`` (K, b).

    Components are the first axis, so that every reduction runs over whole
    contiguous rows of b values.
    """
    peak = log_prob.max(axis=0)
    with np.errstate(invalid="ignore"):  # NaN rows are reported by the callers
        scaled = np.exp(log_prob - peak)
        total = scaled.sum(axis=0)
        scaled /= total
        return np.log(total) + peak, scaled


def e_step(X: np.ndarray, params: GaussianParams) -> tuple[np.ndarray, np.ndarray]:
    """E-step on rows X.

    Parameters
    ----------
    X : (n, d) rows, any real dtype (converted to float64).

    Returns
    -------
    log_prob_norm : (n,) float64, ``log p(x_i | Θ)`` in nats (NaN for rows that are
        not finite or too large to square).
    log_resp : (n, K) float64, log responsibilities ``log r_ik``.
    """
    X = np.asarray(X, dtype=np.float64)
    n_samples = X.shape[0]
    kernel = _kernel(params)
    log_prob_norm = np.empty(n_samples)
    log_resp = np.empty((n_samples, params.n_components))
    step = block_rows(params.n_components, params.n_features)
    with np.errstate(invalid="ignore", over="ignore"):  # rows that are not finite give NaN: callers check
        for start in range(0, n_samples, step):
            rows = slice(start, start + step)
            log_prob = kernel.log_prob(X[rows])[0]
            log_prob_norm[rows] = _normalise(log_prob)[0]
            log_resp[rows] = (log_prob - log_prob_norm[rows]).T
    return log_prob_norm, log_resp


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


def chunk_statistics(
    X: np.ndarray,
    params: GaussianParams,
    first_row: int = 0,
    sample_weight: np.ndarray | None = None,
) -> ChunkStatistics:
    """E-step and sufficient statistics of one chunk of rows.

    The moments are taken about reference points known before the pass — the
    current means for full and tied covariances, their weighted average ``c``
    for diag and spherical (see :class:`_DiagonalKernel`) — and accumulated in
    float64.

    Parameters
    ----------
    X : (n, d) rows, any real dtype.
    params : the parameters of this iteration.
    first_row : index of the chunk's first row in the whole data set.
    sample_weight : (n,) non-negative weights, or None for ones.

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
        global index, values), and the per-feature minimum and maximum (d,).

    Raises
    ------
    NonFiniteDataError
        If the chunk holds NaN or infinite values.
    InputError
        If a weight is negative or not finite.
    """
    X = np.asarray(X)
    X = X.astype(compute_dtype(X.dtype, params.covariance_type), copy=False)
    if sample_weight is not None:
        sample_weight = check_weights(sample_weight, X.shape[0], first_row)
    kernel = _kernel(params, X.dtype.type)
    log_prob_norm = np.empty(X.shape[0])
    step = block_rows(params.n_components, params.n_features) * (FLOAT32_BLOCK_FACTOR if X.dtype == np.float32 else 1)
    with np.errstate(invalid="ignore", over="ignore"):  # bad rows are named below
        for start in range(0, X.shape[0], step):
            rows = slice(start, start + step)
            log_prob, work = kernel.log_prob(X[rows])
            log_prob_norm[rows], resp = _normalise(log_prob)
            kernel.add(work, resp if sample_weight is None else resp * sample_weight[rows])
    if sample_weight is None:
        log_likelihood, weight_sum = log_prob_norm.sum(), float(X.shape[0])
    else:
        log_likelihood, weight_sum = sample_weight @ log_prob_norm, float(sample_weight.sum())
    if not np.isfinite(log_likelihood):
        raise_non_finite_log_likelihood(X, log_prob_norm, first_row)
    worst = _worst_rows(log_prob_norm, sample_weight, params.n_components)
    return ChunkStatistics(
        float(log_likelihood), weight_sum, X.shape[0], *kernel.sums(), kernel.reference,
        log_prob_norm[worst], worst + first_row, X[worst].astype(np.float64),
        X.min(axis=0).astype(np.float64), X.max(axis=0).astype(np.float64),
    )


def _worst_rows(log_prob_norm: np.ndarray, sample_weight: np.ndarray | None, count: int) -> np.ndarray:
    """Indices of the ``count`` rows of positive weight with least log-likelihood, worst first."""
    candidates = np.arange(len(log_prob_norm))
    if sample_weight is not None:
        candidates = candidates[sample_weight > 0]
    if len(candidates) > count:
        candidates = candidates[np.argpartition(log_prob_norm[candidates], count - 1)[:count]]
    return candidates[np.lexsort((candidates, log_prob_norm[candidates]))]


def second_moment_shape(covariance_type: str, n_components: int, n_features: int) -> tuple[int, ...]:
    """Shape of the summed second moments ``s2``: (K, d, d) full, (d, d) tied, (K, d) diag and spherical."""
    if covariance_type == "full":
        return (n_components, n_features, n_features)
    return (n_features, n_features) if covariance_type == "tied" else (n_components, n_features)


class _Moments:
    """Running ``Σ r``, ``Σ r·δ`` and second moments of δ over blocks of differences."""

    def __init__(self, n_components: int, n_features: int, covariance_type: str) -> None:
        self.covariance_type = covariance_type
        self.nk = np.zeros(n_components)
        self.s1 = np.zeros((n_components, n_features))
        self.s2 = np.zeros(second_moment_shape(covariance_type, n_components, n_features))

    def add(self, diffs: np.ndarray, resp: np.ndarray) -> None:
        """Add a block: diffs (K, b, d), resp (K, b) (already multiplied by any weights).

        The products are in the dtype of ``diffs``; the running sums are float64.
        """
        self.nk += resp.sum(axis=1)
        resp = resp.astype(diffs.dtype, copy=False)
        weighted = diffs * resp[:, :, np.newaxis]
        self.s1 += (resp[:, np.newaxis, :] @ diffs)[:, 0]  # a product: 6× faster than a sum over the middle axis
        if self.covariance_type == "full":
            self.s2 += np.swapaxes(weighted, 1, 2) @ diffs
        elif self.covariance_type == "tied":
            n_features = diffs.shape[2]
            self.s2 += weighted.reshape(-1, n_features).T @ diffs.reshape(-1, n_features)
        else:
            self.s2 += np.einsum("kbd,kbd->kd", weighted, diffs)


def weighted_moments(
    X: np.ndarray, resp: np.ndarray, reference: np.ndarray, covariance_type: str = "full"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Responsibility-weighted moments about per-component reference points.

    Parameters
    ----------
    X : (n, d) float64 rows.
    resp : (n, K) float64 responsibilities times any sample weights.
    reference : (K, d) float64 points ``c_k``.

    Returns
    -------
    nk, s1, s2 as in :func:`chunk_statistics` for ``covariance_type``.
    """
    n_components, n_features = reference.shape
    moments = _Moments(n_components, n_features, covariance_type)
    step = block_rows(n_components, n_features)
    for start in range(0, X.shape[0], step):
        rows = slice(start, start + step)
        moments.add(X[np.newaxis, rows, :] - reference[:, np.newaxis, :], resp[rows].T)
    return moments.nk, moments.s1, moments.s2


def assignment_moments(
    X: np.ndarray, labels: np.ndarray, weights: np.ndarray, reference: np.ndarray, covariance_type: str = "full"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moments of hard assignments about per-component reference points.

    The same sums as :func:`weighted_moments` with one-hot responsibilities,
    but each row is visited for its own component only: O(n d²), not O(n K d²).

    Parameters
    ----------
    X : (n, d) float64 rows.
    labels : (n,) component of each row, in [0, K).
    weights : (n,) float64 row weights.
    reference : (K, d) float64 points ``c_k``.
    """
    n_components, n_features = reference.shape
    nk, s1 = np.zeros(n_components), np.zeros((n_components, n_features))
    s2 = np.zeros(second_moment_shape(covariance_type, n_components, n_features))
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_components + 1))
    for k in np.flatnonzero(np.diff(bounds)):
        rows = order[bounds[k] : bounds[k + 1]]
        diffs = X[rows] - reference[k]
        w = weights[rows]
        weighted = diffs * w[:, np.newaxis]
        nk[k], s1[k] = w.sum(), w @ diffs
        if covariance_type == "full":
            s2[k] = weighted.T @ diffs
        elif covariance_type == "tied":
            s2 += weighted.T @ diffs
        else:
            s2[k] = np.einsum("bd,bd->d", weighted, diffs)
    return nk, s1, s2


def m_step_arrays(
    nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray, reg_covar: float, covariance_type: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M-step arithmetic: weights, means and covariances from summed statistics.

    Parameters
    ----------
    nk : (K,) summed responsibilities ``Σ_i w_i r_ik``.
    s1 : (K, d) ``Σ_i w_i r_ik (x_i − c_k)`` about the reference points ``c_k``.
    s2 : second moments about ``c_k`` as in :func:`chunk_statistics`.
    reference : (K, d) the reference points ``c_k``.
    reg_covar : non-negative number added to the variances.

    Returns
    -------
    weights ``N_k / Σ_j N_j`` (K,), means ``c_k + δ_k`` (K, d) with
    ``δ_k = s1_k / N_k``, and covariances of :func:`covariance_shape`:
    ``s2_k / N_k − δ_k δ_kᵀ + reg_covar·I`` (full),
    ``(Σ_k s2_k − N_k δ_k δ_kᵀ) / Σ_k N_k + reg_covar·I`` (tied), the
    diagonal of the full formula (diag), and its mean over features (spherical).
    """
    nk = nk + NK_FLOOR
    shift = s1 / nk[:, np.newaxis]
    n_features = reference.shape[1]
    diagonal = np.arange(n_features)
    if covariance_type == "full":
        covariances = s2 / nk[:, None, None] - shift[:, :, None] * shift[:, None, :]
        covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
        covariances[:, diagonal, diagonal] += reg_covar
    elif covariance_type == "tied":
        covariances = (s2 - np.einsum("k,ki,kj->ij", nk, shift, shift)) / nk.sum()
        covariances = 0.5 * (covariances + covariances.T)
        covariances[diagonal, diagonal] += reg_covar
    else:
        covariances = s2 / nk[:, None] - shift**2 + reg_covar
        if covariance_type == "spherical":
            covariances = covariances.mean(axis=1)
    return nk / nk.sum(), reference + shift, covariances


def m_step(
    nk: np.ndarray, s1: np.ndarray, s2: np.ndarray, reference: np.ndarray, reg_covar: float,
    covariance_type: str = "full",
) -> GaussianParams:
    """M-step: parameters from summed statistics (see :func:`m_step_arrays`)."""
    weights, means, covariances = m_step_arrays(nk, s1, s2, reference, reg_covar, covariance_type)
    return GaussianParams.from_covariances(weights, means, covariances, covariance_type)


def reseed(
    weights: np.ndarray, means: np.ndarray, covariances: np.ndarray, covariance_type: str,
    collapsed: np.ndarray, seeds: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Restart collapsed components at given rows.

    Each collapsed component k takes the mean ``seeds[i]`` (for its position i
    in ``collapsed``), the average covariance of the other components, and the
    weight ``1/K``; the weights are then renormalised.

    Parameters
    ----------
    weights, means, covariances : M-step arrays (see :func:`m_step_arrays`).
    collapsed : (m,) indices of the collapsed components.
    seeds : (m, d) rows to restart them at.
    """
    weights, means, covariances = weights.copy(), means.copy(), covariances.copy()
    healthy = np.setdiff1d(np.arange(len(weights)), collapsed)
    if covariance_type != "tied":
        covariances[collapsed] = np.average(covariances[healthy], axis=0, weights=weights[healthy])
    means[collapsed] = seeds
    weights[collapsed] = 1.0 / len(weights)
    return weights / weights.sum(), means, covariances


def n_parameters(n_components: int, n_features: int, covariance_type: str = "full") -> int:
    """Free parameters of a mixture: weights, means and covariances."""
    k, d = n_components, n_features
    covariance_params = {
        "full": k * d * (d + 1) // 2,
        "tied": d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
    }[covariance_type]
    return (k - 1) + k * d + covariance_params


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
        for mean, covariance, count in zip(params.means, params.full_covariances(), counts)
    ]
    labels = np.repeat(np.arange(params.n_components), counts)
    return np.vstack(rows), labels
