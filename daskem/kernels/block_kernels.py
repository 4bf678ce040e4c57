"""Block kernels of the Gaussian E-step: a block of rows → log densities, responsibilities, moments.

Shapes use ``b`` rows of a block, ``d`` features and ``K`` components.  A
chunk is cut into blocks of a few hundred to a few thousand rows that stay in
cache; a *block kernel* turns each block into ``log α_k + log p_k(x_i)``, the
responsibilities (a log-sum-exp over components) and its share of the moments:

- :class:`ExpandedKernel` (any type): the log densities and the moments as
  two matrix products with the block's expanded terms ``[x̃_j x̃_l, x̃, 1]``
  about one reference point, compiled (:mod:`daskem.kernels.fused`) with a
  log-sum-exp between them;
- :class:`WhitenedKernel` (full, tied): all K whitenings as one matrix
  product and K products for the moments, in whitened coordinates, exact for
  components further apart than the expanded terms allow;
- :class:`DifferencesKernel` (any type): the differences ``x − μ_k`` per
  component, exact however far apart the components lie;
- :class:`SplitKernel`: expanded terms for the components near the others,
  differences for those far away.

:func:`kernel_for` takes the first of these whose rounding stays within its
bounds.  Every kernel returns moments about reference points known before the
pass (see :func:`daskem.kernels.estep.chunk_statistics`), summed in float64.
"""

from __future__ import annotations

import numpy as np

from daskem.kernels import fused
from daskem.kernels.gaussian import LOG_2PI, MIN_BLOCK_ROWS, GaussianParams, Moments, block_rows

#: Bytes per block of the expanded kernel: its terms (P + d + 1, b), log densities and
#: responsibilities (K, b) twice, in the rows' dtype — half the 1 MiB second-level cache of
#: a core.  Measured on one core, K=8, d=16, 100,000 rows: float64 15.2 ms at 256 KiB,
#: 14.6 at 512, 23.6 at 1 MiB; float32 9.0, 8.2 and 15.6 ms (the products of small blocks
#: run below the rate of BLAS).
EXPANDED_BLOCK_BYTES = 2**19
#: float32 blocks of per-component differences hold this many times the rows (measured:
#: K=8, d=16 on one core, 17 ms per 50,000 rows at 4×, 18 ms at 2×, 24 ms at ½×).
FLOAT32_BLOCK_FACTOR = 4


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
    return params.log_weights + log_det - 0.5 * d * LOG_2PI


def normalise(log_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


class BlockKernel:
    """What every block kernel does: E-step and moments of a block, their sums, and
    its reference points.

    Subclasses set ``reference`` (K, d) float64 and ``block_rows`` (the most rows
    a block may have), and either override :meth:`accumulate` or provide
    ``_log_prob(X) -> (log_prob, work)`` and ``_add(work, resp)``.
    """

    reference: np.ndarray
    block_rows: int

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        """``log α_k + log p_k(x_i)`` (K, b) float64 of a block X (b, d), b ≤ :attr:`block_rows`."""
        return self._log_prob(X)[0]

    def accumulate(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """E-step of rows X (n, d) with weights (n,) or None, block by block; adds
        their moments and returns ``log p(x_i)`` (n,) float64."""
        log_prob_norm = np.empty(len(X))
        for start in range(0, len(X), self.block_rows):
            rows = slice(start, start + self.block_rows)
            log_prob, work = self._log_prob(X[rows])
            log_prob_norm[rows], resp = normalise(log_prob)
            self._add(work, resp if weights is None else resp * weights[rows])
        return log_prob_norm

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``Σ r``, ``Σ r (x − c_k)`` and the second moments about the reference points ``c_k``."""
        raise NotImplementedError

    def ranges(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Least and greatest value of each column of the rows X (n, d) accumulated, float64 (d,) each."""
        return fused.column_ranges(X)


class WhitenedKernel(BlockKernel):
    """Full and tied covariances: every component's whitening in one matrix product,
    moments in whitened coordinates.

    With ``c = Σ_k α_k μ_k`` (in the block's dtype), ``x̃ = x − c`` and
    ``δ_k = μ_k − c``, the whitened differences of a block are one product,
    held transposed::

        Yᵀ = [U_1 … U_K; −δ_1 U_1 … −δ_K U_K]ᵀ · [x̃, 1]ᵀ        (K·d, b)

    whose rows k·d … k·d + d − 1 are ``y_k = (x − μ_k) U_k``.  Compiled loops
    (:mod:`~daskem.kernels.fused`) give the squared norms, and, after the
    log-sum-exp, ``r ∘ Y``, ``Σ r`` and ``Σ r y_k``; the second moments are K
    products ``Y_kᵀ (r_k ∘ Y_k)``.  At the end of the chunk ``U_k⁻¹`` turns
    them back into moments about the means, as the differences give them::

        Σ r (x − μ_k)(x − μ_k)ᵀ = U_k⁻ᵀ [Σ r y_k y_kᵀ] U_k⁻¹    (summed over k for tied)

    (with ``U_k`` and ``δ_k U_k`` exactly as rounded into the product, so the
    reference points ``μ_k`` are those the product really used).

    Centred on each mean, the moments lose nothing to the data's distance from
    the origin or to the components' distances from one another.  Only Y
    does, where its two terms, of size ``‖(μ_k − c)‖`` in units of the
    component's spread, cancel: about that many ulps — the kernel's
    :attr:`amplification`, bounded in :func:`_kernel`.
    """

    #: The largest :attr:`amplification` accepted in each dtype (see :func:`_kernel`).
    #: float64: ~1e-12 lost with components 10,000 standard deviations from ``c``.
    #: float32: at most 256 ulps of 6e-8 (1.5e-5) in any whitened difference, errors that
    #: average out over the rows' sums.
    MAX_AMPLIFICATION = {np.float64: 1e4, np.float32: 256.0}

    def __init__(self, params: GaussianParams, dtype: type = np.float64) -> None:
        k, d = params.n_components, params.n_features
        u = np.broadcast_to(params.precisions_cholesky, (k, d, d))
        self.tied = params.covariance_type == "tied"
        self.centre = (params.weights @ params.means).astype(dtype)
        delta = params.means - self.centre
        #: ``max_k (Σ_i δ_ki² P_k,ii)^½``, the distance of the farthest mean from ``c`` in units
        #: of its component's spread (bounding ``‖diag(δ_k) U_k‖``): how many ulps Y may lose.
        self.amplification = float(np.sqrt((delta**2 * (u**2).sum(axis=2)).sum(axis=1).max()))
        whitening = np.empty((k * d, d + 1))
        whitening[:, :d] = u.transpose(0, 2, 1).reshape(k * d, d)
        whitening[:, d] = -np.einsum("kd,kde->ke", delta, u).reshape(-1)
        self.whitening = whitening.astype(dtype)
        # What the product really computes, in float64: U_k and the points it centres on.
        rounded = self.whitening.astype(np.float64).reshape(k, d, d + 1)
        self.unwhitening = np.linalg.inv(rounded[:, :, :d].transpose(0, 2, 1))
        offsets = rounded[:, np.newaxis, :, d]
        self.reference = self.centre.astype(np.float64) - (offsets @ self.unwhitening)[:, 0]
        self.offsets = _offsets(params)
        self.n_components, self.n_features = k, d
        self.block_rows = block_rows(k, d)
        self.floor = fused.RESPONSIBILITY_FLOOR[dtype]
        self.nk, self.s1, self.t = np.zeros(k), np.zeros(k * d), np.zeros((k, d, d))

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((self.n_components, len(X)))
        fused.whitened_log_prob(X, self.centre, self.whitening, self.offsets, self.block_rows, out)
        return out

    def accumulate(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The whole of X in one compiled call (block by block inside), so that the
        GIL is released once per chunk, not a dozen times per block."""
        log_prob_norm = np.empty(len(X))
        fused.whitened_statistics(
            X, self.centre, self.whitening, self.offsets, NO_WEIGHTS if weights is None else weights,
            self.floor, self.block_rows, log_prob_norm, self.nk, self.s1, self.t,
        )
        return log_prob_norm

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        v = self.unwhitening
        s1 = (self.s1.reshape(self.n_components, 1, self.n_features) @ v)[:, 0]
        s2 = np.swapaxes(v, 1, 2) @ self.t @ v
        return self.nk, s1, s2.sum(axis=0) if self.tied else s2


#: What :func:`~daskem.kernels.fused.whitened_statistics` takes for "no sample weights".
NO_WEIGHTS = np.empty(0)


class DifferencesKernel(BlockKernel):
    """Any covariance type, block by block: the differences ``x − μ_k`` (K, b, d), whitened
    (by one batched matrix product for full and tied); moments about the means, exact
    however far apart the components are.

    In float32 (float32 rows: see :func:`compute_dtype`) the
    differences are taken from ``m_k``, the means rounded to float32, so that
    ``x − m_k`` loses nothing however far the data sit from the origin; the
    rest, ``(μ_k − m_k) U_k``, is one row per component subtracted after
    whitening, and the moments are about ``m_k``.
    """

    #: Rounding errors are those of the differences themselves.
    amplification = 1.0

    def __init__(self, params: GaussianParams, dtype: type = np.float64) -> None:
        self.params, self.offsets = params, _offsets(params)
        self.means = params.means.astype(dtype)
        self.reference = self.means.astype(np.float64)
        self.u = params.precisions_cholesky.astype(dtype)
        self.correction = None
        if dtype != np.float64:
            rounding = params.means - self.reference  # (K, d), below half an ulp of the means
            corrections = self._whiten(rounding[:, np.newaxis, :], params.precisions_cholesky)[:, 0]
            self.correction = corrections.astype(dtype)
        self.ones = np.ones(params.n_features, dtype)
        self.block_rows = block_rows(params.n_components, params.n_features)
        if dtype == np.float32:
            self.block_rows *= FLOAT32_BLOCK_FACTOR
        self.moments = Moments(params.n_components, params.n_features, params.covariance_type)
        self._tiles: dict[str, np.ndarray] = {}

    def _log_prob(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``log α_k + log p_k(x_i)`` (K, b) float64 of a block X (b, d), and the differences (K, b, d)."""
        diffs = X[np.newaxis, :, :] - self._tiled("means", self.means, len(X))
        y = self._whiten(diffs, self.u)
        if self.correction is not None:
            y -= self._tiled("correction", self.correction, len(X))
        np.square(y, out=y)
        return self.offsets[:, np.newaxis] - 0.5 * (y @ self.ones), diffs

    def _whiten(self, diffs: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``(x − μ_k) U_k`` (K, b, d) of differences (K, b, d), for ``U`` of the covariance type."""
        if self.params.covariance_type in ("full", "tied"):
            return diffs @ u
        return diffs * (u[:, np.newaxis, :] if self.params.covariance_type == "diag" else u[:, np.newaxis, np.newaxis])

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

    def _add(self, diffs: np.ndarray, resp: np.ndarray) -> None:
        """Add a block's moments; ``resp`` (K, b) already multiplied by any weights."""
        self.moments.add(diffs, resp)

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.moments.nk, self.moments.s1, self.moments.s2


class ExpandedKernel(BlockKernel):
    """Every covariance type as two matrix products per block, about one reference point.

    With ``c = Σ_k α_k μ_k`` (known before the pass, close to the data),
    ``x̃ = x − c``, ``δ_k = μ_k − c`` and the precisions ``P_k = U_k U_kᵀ``::

        log α_k + log p_k(x) = off_k − ½ (x̃ − δ_k)ᵀ P_k (x̃ − δ_k)
                             = Σ_{j≤l} a_kjl x̃_j x̃_l + (P_k δ_k)ᵀ x̃ + off_k − ½ δ_kᵀ P_k δ_k

    with ``a_kjj = −½ P_kjj`` and ``a_kjl = −P_kjl`` (j < l): one product of
    the coefficients (K, P + d + 1) with the block's terms
    ``[x̃_j x̃_l …, x̃, 1]`` — P = d(d+1)/2 pairs for full and tied, the d
    squares for diag and spherical.  The moments are the other product,
    ``Σ r [x̃_j x̃_l …, x̃, 1]`` per component (see
    :func:`~daskem.kernels.fused.expanded_statistics`).  Symmetry halves the
    work of both against whitening every row for every component.

    The expanded squares lose about ``Σ_j P_kjj δ_kj²`` ulps (the squared
    distance of a mean from ``c`` in units of its spread, times the length of
    the sums), not ``‖x‖²``: the kernel's :attr:`amplification`, bounded in
    :func:`_kernel`.
    """

    #: The largest :attr:`amplification` accepted in each dtype (see :func:`_kernel`).
    #: float64: moments within ~1e-10 of their scale at the limit (measured 8e-11 for diag,
    #: components 100 standard deviations from ``c``).  float32: one M-step of two
    #: full-covariance components (d=16, 200,000 rows) against float64 arithmetic on the same
    #: rows: covariances within 2.5e-8 at amplification 725, 8.4e-8 at 6,500, 1.3e-7 at
    #: 11,600 — the per-row errors average out over the sums, far inside the float32 path's
    #: promise of 1e-5.
    MAX_AMPLIFICATION = {np.float64: 1e4, np.float32: 1e4}

    def __init__(self, params: GaussianParams, dtype: type = np.float64, centre: np.ndarray | None = None) -> None:
        u, (k, d) = params.precisions_cholesky, params.means.shape
        kind = params.covariance_type
        self.centre = (params.weights @ params.means if centre is None else centre).astype(dtype)
        # c as rounded into the terms: the reference point of the moments
        self.reference = np.broadcast_to(self.centre.astype(np.float64), (k, d)).copy()
        delta = params.means - self.reference
        if kind in ("full", "tied"):
            u = np.broadcast_to(u, (k, d, d))
            precision = u @ np.swapaxes(u, 1, 2)
            first, second = np.triu_indices(d)
            quadratic = np.where(first == second, -0.5, -1.0) * precision[:, first, second]
            diagonal = np.diagonal(precision, axis1=1, axis2=2)
            linear = np.einsum("kde,ke->kd", precision, delta)
        else:  # the precisions are diagonal: no (K, d, d) array
            diagonal = u**2 if kind == "diag" else np.repeat((u**2)[:, np.newaxis], d, axis=1)
            first = second = np.arange(d)
            quadratic = -0.5 * diagonal
            linear = diagonal * delta
        #: ``Σ_j P_kjj δ_kj²`` (K,): how many ulps each component's expanded squares may lose.
        self.amplifications = (diagonal * delta**2).sum(axis=1)
        self.amplification = float(self.amplifications.max())
        constant = _offsets(params) - 0.5 * (linear * delta).sum(axis=1)
        self.coefficients = np.hstack([quadratic, linear, constant[:, np.newaxis]]).astype(dtype)
        self.pairs = np.vstack([first, second]).astype(np.int64)
        self.covariance_type, self.n_features = kind, d
        row_bytes = np.dtype(dtype).itemsize * (self.coefficients.shape[1] + 2 * k)
        self.block_rows = max(MIN_BLOCK_ROWS, EXPANDED_BLOCK_BYTES // row_bytes)
        self.floor = fused.RESPONSIBILITY_FLOOR[dtype]
        self.totals = np.zeros((k, self.coefficients.shape[1]))

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        out = np.empty((self.coefficients.shape[0], len(X)))
        fused.expanded_log_prob(X, self.centre, self.pairs, self.coefficients, self.block_rows, out)
        return out

    def accumulate(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        """The whole of X in one compiled call, as :meth:`WhitenedKernel.accumulate`; it also finds
        the columns' ranges (see :meth:`ranges`): a separate pass cost 0.8 ms per 100,000 × 16 float32
        rows, a tenth of the kernel."""
        log_prob_norm = np.empty(len(X))
        self.low, self.high = np.full(X.shape[1], np.inf, X.dtype), np.full(X.shape[1], -np.inf, X.dtype)
        fused.expanded_statistics(
            X, self.centre, self.pairs, self.coefficients, NO_WEIGHTS if weights is None else weights,
            self.floor, self.block_rows, log_prob_norm, self.totals, self.low, self.high,
        )
        return log_prob_norm

    def ranges(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.low.astype(np.float64), self.high.astype(np.float64)

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n_pairs, d = self.pairs.shape[1], self.n_features
        nk, s1 = self.totals[:, -1].copy(), self.totals[:, n_pairs : n_pairs + d].copy()
        pair_sums = self.totals[:, :n_pairs]
        if self.covariance_type in ("diag", "spherical"):
            return nk, s1, pair_sums.copy()
        first, second = self.pairs
        s2 = np.empty((len(nk), d, d))
        s2[:, first, second] = pair_sums
        s2[:, second, first] = pair_sums
        return nk, s1, s2.sum(axis=0) if self.covariance_type == "tied" else s2


class SplitKernel(BlockKernel):
    """Expanded terms for the components near ``c``, exact differences for the others.

    One component far from ``c`` in units of its own spread (a component left on a
    handful of rows, with variances near ``reg_covar``, is the usual one) would put
    every component on the differences kernel: at K=2000 that made an iteration
    30× slower.  Here each block's terms give the near components' log densities
    (one product) and moments (another), the differences give the far ones', and
    one log-sum-exp over all components joins them.  Every component keeps the
    accuracy of the kernel it is on.
    """

    def __init__(self, params: GaussianParams, dtype: type, near: np.ndarray, centre: np.ndarray) -> None:
        self.near_index, self.far_index = np.flatnonzero(near), np.flatnonzero(~near)
        self.near = ExpandedKernel(_components(params, self.near_index), dtype, centre)
        self.far = DifferencesKernel(_components(params, self.far_index), dtype)
        self.reference = np.empty_like(params.means)
        self.reference[self.near_index], self.reference[self.far_index] = self.near.reference, self.far.reference
        self.covariance_type, self.n_components = params.covariance_type, params.n_components
        self.block_rows = min(self.near.block_rows, self.far.block_rows)

    def log_prob(self, X: np.ndarray) -> np.ndarray:
        log_prob = np.empty((self.n_components, len(X)))
        log_prob[self.near_index], log_prob[self.far_index] = self.near.log_prob(X), self.far.log_prob(X)
        return log_prob

    def accumulate(self, X: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
        near, far = self.near, self.far
        log_prob_norm = np.empty(len(X))
        log_prob = np.empty((self.n_components, self.block_rows))
        terms_buffer = np.empty(near.coefficients.shape[1] * self.block_rows, X.dtype)
        self.low, self.high = np.full(X.shape[1], np.inf, X.dtype), np.full(X.shape[1], -np.inf, X.dtype)
        for start in range(0, len(X), self.block_rows):
            rows = slice(start, min(start + self.block_rows, len(X)))
            terms = fused._expand(X, rows.start, rows.stop, near.centre, near.pairs, terms_buffer, self.low, self.high)
            block = log_prob[:, : rows.stop - rows.start]
            block[self.near_index] = near.coefficients @ terms
            block[self.far_index], diffs = far._log_prob(X[rows])
            log_prob_norm[rows], resp = normalise(block)
            if weights is not None:
                resp *= weights[rows]
            near_resp = resp[self.near_index]
            near_resp[near_resp < near.floor] = 0.0  # no subnormal products (see fused.RESPONSIBILITY_FLOOR)
            near.totals += near_resp.astype(X.dtype) @ terms.T
            far._add(diffs, resp[self.far_index])
        return log_prob_norm

    def ranges(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.low.astype(np.float64), self.high.astype(np.float64)

    def sums(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        (near_nk, near_s1, near_s2), (far_nk, far_s1, far_s2) = self.near.sums(), self.far.sums()
        nk, s1 = np.empty(self.n_components), np.empty(self.reference.shape)
        nk[self.near_index], nk[self.far_index] = near_nk, far_nk
        s1[self.near_index], s1[self.far_index] = near_s1, far_s1
        if self.covariance_type == "tied":  # moments summed over components, each about its own point
            return nk, s1, near_s2 + far_s2
        s2 = np.empty((self.n_components, *near_s2.shape[1:]))
        s2[self.near_index], s2[self.far_index] = near_s2, far_s2
        return nk, s1, s2


def _components(params: GaussianParams, index: np.ndarray) -> GaussianParams:
    """The components ``index`` of ``params``, with their weights as they are (not renormalised)."""
    return params.subset(index)


def compute_dtype(data_dtype: np.dtype | type) -> type:
    """The arithmetic inside a block: float32 for float32 rows, else float64.

    In float32 the terms, products and per-block sums are float32 and every
    sum across blocks and chunks float64 (see each kernel's
    ``MAX_AMPLIFICATION`` for what that costs in accuracy).
    """
    return np.float32 if np.dtype(data_dtype) == np.float32 else np.float64


def kernel_for(params: GaussianParams, dtype: type = np.float64) -> BlockKernel:
    """The block kernel for ``params`` in ``dtype`` (see :func:`compute_dtype`).

    Expanded terms about one point while their :attr:`amplification` stays
    within the kernel's ``MAX_AMPLIFICATION``; whitened products beyond that for
    full and tied; else expanded terms for the components within the limit and
    the exact differences for the others (:class:`SplitKernel`), or for all.
    """
    expanded = ExpandedKernel(params, dtype)
    limit = ExpandedKernel.MAX_AMPLIFICATION[dtype]
    if expanded.amplification <= limit:
        return expanded
    if params.covariance_type in ("full", "tied"):
        whitened = WhitenedKernel(params, dtype)
        if whitened.amplification <= WhitenedKernel.MAX_AMPLIFICATION[dtype]:
            return whitened
    near = expanded.amplifications <= limit
    if near.any():
        return SplitKernel(params, dtype, near, expanded.centre)
    return DifferencesKernel(params, dtype)
