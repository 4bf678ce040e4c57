"""The compiled (numba) E-step of rows with missing values (see :mod:`daskem.kernels.missing`), block by block.

Three entry points, one per output: :func:`missing_statistics` (the expected
complete-data statistics), :func:`missing_log_prob` (every component's
``log α_k + log p_k(x_o)``) and :func:`missing_imputed` (the rows completed
by their conditional expectation).  Each is one call per chunk that releases
the GIL, as the block kernels of :mod:`daskem.kernels.fused`, and shares the
work up to the responsibilities (:func:`_block`).

Rows are taken in the order of :func:`daskem.kernels.patterns.pattern_order`,
so that each run of rows with one pattern factorises the q × q missing block
of every component's precision once
(:func:`daskem.kernels.patterns.factorise_block`, a block's runs of one q
side by side).  ``P_k e_k`` of every row and component is one matrix product
with the block's terms, ``e_k = x̃ − (μ_k − c)`` with ``x̃ = x − c`` and 0
where missing: with ``masked`` the terms are ``[x̃, o]`` (o = 1 where
observed) and ``e_k`` is 0 where missing, else ``[x̃, 1]``, half the product,
and ``e_k`` holds ``c − μ_k`` there.  Either way
``Q = eᵀ P e − gᵀ P_mm⁻¹ g`` with ``g = (P e)_m`` (the Schur complement does
not depend on what fills the holes) and ``x̂_m − μ_m = e_m − P_mm⁻¹ g``; the
fill's terms cancel in Q, so unmasked loses about ``Σ_j P_jj (μ_j − c_j)²``
ulps (see :data:`daskem.kernels.missing.MAX_FILL_AMPLIFICATION`).  One pass
over the block's rows, :data:`_PRODUCT_ROWS` at a time, takes each row's
quadratic forms and then its missing coordinates' conditional means from its
run's ``P_mm⁻¹`` (:func:`_condition_row`); the responsibilities, each run's
conditional covariance and the moments (K products, as in
:func:`daskem.kernels.fused.whitened_statistics`) follow per block.  Every
row's count of missing values and pattern is read in order, and the rows
themselves are asked for ahead (:func:`_prefetch_row`): in pattern order
they lie all over the chunk, and waiting for them took a tenth of the pass.

Sums and products are float64 whatever the rows' dtype; ``fastmath`` and
``error_model`` are those of :mod:`daskem.kernels.fused`.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from daskem.kernels.fused import _FASTMATH, _normalise
from daskem.kernels.patterns import (
    RUN_GROUP,
    RUN_Q,
    RUN_STOP,
    RUN_WHERE,
    add_run_covariances,
    factorise_block,
    factors_workspace,
)

#: A chunk's rows, in :func:`daskem.kernels.patterns.pattern_order`'s order: X (n, d), float32 or
#: float64, NaN where missing; ``order``, ``n_missing`` and ``patterns`` (n,) int64 from it.
Rows = namedtuple("Rows", "X order n_missing patterns")

#: The mixture as the pass takes it, its arrays float64 (K components, d features):
#:
#: - ``centre`` (d,), the point ``c``;
#: - ``products`` (2d, K·d), column ``k·d + l`` ``[P_k[:, l]; −(μ_k − c) ∘ P_k[:, l]]`` (``masked``),
#:   or (d + 1, K·d) ``[P_k[:, l]; −(P_k (μ_k − c))_l]``; ``masked``, which of the two;
#: - ``shifted`` (K, d), ``μ_k − c``;
#: - ``precisions_t`` (d, d, K), the precisions ``P_k[j, l]`` at ``[j, l, k]``;
#: - ``moment_offsets`` (K, d), ``μ_k − r_k``, with ``r_k`` the points the moments are taken about (0
#:   for :func:`missing_log_prob` and :func:`missing_imputed`), and ``moment_shift``,
#:   ``moment_offsets − shifted`` (``e + μ_k − r_k = x̃ + c − r_k`` where observed, unmasked);
#: - ``log_weights``, ``offsets`` (K,), ``log α_k`` and ``log α_k + ½ log det P_k − d/2 log 2π``;
#: - ``means`` (K, d), the ``μ_k``.
Mixture = namedtuple(
    "Mixture",
    "centre products masked shifted precisions_t moment_offsets moment_shift log_weights offsets means",
)

#: Rows whose products ``P_k e_k`` :func:`_condition_block` takes at once, just before their rows' work:
#: OpenBLAS leaves a product this small (128 × K·d) in the cache, where a block's (512 rows) took
#: half as long again to read back as to compute.
_PRODUCT_ROWS = 128

#: How many rows ahead :func:`_read_terms` asks for the rows it reads in pattern order.
_PREFETCH_ROWS = 16

#: A pass's buffers for one block (see :func:`_workspace`): its terms (b, 2d or d + 1), the products
#: ``P_k e_k`` of :data:`_PRODUCT_ROWS` rows, ``x̂_k − r_k`` (K, b, d), the log densities then
#: responsibilities (K, b), ``log p(x_o)`` (b,), and scratch (d,).
Scratch = namedtuple("Scratch", "terms products centred lp norm gathered")


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def missing_statistics(  # noqa: PLR0913 (one compiled call per chunk)
    rows: Rows,
    mixture: Mixture,
    weights: np.ndarray,
    floor: float,
    block_rows: int,
    log_prob_norm: np.ndarray,
    nk: np.ndarray,
    s1: np.ndarray,
    t: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
) -> None:
    """The expected complete-data statistics of rows with missing values, block by block.

    Parameters
    ----------
    rows : :data:`Rows`.
    mixture : :data:`Mixture`.
    weights : (n,) float64 row weights in ``rows.order`` (0 for rows with nothing observed).
    floor : responsibilities below this count as 0 (see :data:`daskem.kernels.fused.RESPONSIBILITY_FLOOR`).
    block_rows : rows per block.
    log_prob_norm : (n,) float64, written: ``log p(x_o)`` (0 for rows with nothing observed).
    nk, s1, t : (K,), (K, d), (K, d, d) float64, incremented by ``Σ w r``, ``Σ w r (x̂_k − r_k)`` and
        ``Σ w r ((x̂_k − r_k)(x̂_k − r_k)ᵀ + C_k)``: x̂_k the row completed by component k's conditional
        mean, C_k its conditional covariance.
    low, high : (d,) float64, lowered and raised to each column's least and greatest observed value.
    """
    order, n_missing = rows.order, rows.n_missing
    n_rows, n_features = rows.X.shape
    n_components = mixture.offsets.shape[0]
    scratch, factors = _workspace(rows, mixture, block_rows)
    weighted_buffer = np.empty_like(scratch.centred)
    moment, first = np.empty((n_features, n_features)), np.empty(n_features)
    totals = np.empty(n_components)
    conditional = np.zeros((n_features, n_features, n_components))  # Σ w r C, component last
    for start in range(0, n_rows, block_rows):
        b = min(block_rows, n_rows - start)
        lp, centred, found, factors = _block(rows, mixture, start, b, scratch, factors, low, high)
        _normalise(lp, weights, start, floor, scratch.norm[:b])
        for r in range(b):
            log_prob_norm[order[start + r]] = 0.0 if n_missing[start + r] == n_features else scratch.norm[r]
        add_run_covariances(factors.runs, found, factors.counts, factors.sq_offset, factors.inverses, lp, totals,
                            conditional)
        _add_moments(lp, centred, weighted_buffer, first, moment, nk, s1, t)
    for k in range(n_components):  # the lower triangle of Σ w r C (features missing in ascending order), mirrored
        for j in range(n_features):
            for m in range(j):
                t[k, j, m] += conditional[j, m, k]
                t[k, m, j] += conditional[j, m, k]
            t[k, j, j] += conditional[j, j, k]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def missing_log_prob(rows: Rows, mixture: Mixture, block_rows: int, log_prob: np.ndarray) -> None:
    """``log_prob`` (K, n) float64 ← ``log α_k + log p_k(x_o)`` of every component and row (``log α_k`` for
    rows with nothing observed); ``rows``, ``mixture`` and ``block_rows`` as in :func:`missing_statistics`."""
    order = rows.order
    n_rows, n_features = rows.X.shape
    scratch, factors = _workspace(rows, mixture, block_rows)
    low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)  # not needed here
    for start in range(0, n_rows, block_rows):
        b = min(block_rows, n_rows - start)
        lp, _, _, factors = _block(rows, mixture, start, b, scratch, factors, low, high)
        for r in range(b):
            for k in range(log_prob.shape[0]):
                log_prob[k, order[start + r]] = lp[k, r]


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def missing_imputed(rows: Rows, mixture: Mixture, floor: float, block_rows: int, imputed: np.ndarray) -> None:
    """``imputed`` (n, d) float64 ← the rows, each missing value replaced by ``Σ_k r_k (μ_kj + x̂_kj − r_kj)``
    — with ``mixture.moment_offsets`` 0, its conditional expectation under the mixture (``Σ_k α_k μ_kj``
    where nothing is observed); the other parameters as in :func:`missing_statistics`."""
    X, order, n_missing = rows.X, rows.order, rows.n_missing
    n_rows, n_features = X.shape
    scratch, factors = _workspace(rows, mixture, block_rows)
    low, high = np.full(n_features, np.inf), np.full(n_features, -np.inf)  # not needed here
    no_weights = np.empty(0)  # ones: only rows with something observed use their responsibilities
    for start in range(0, n_rows, block_rows):
        b = min(block_rows, n_rows - start)
        lp, centred, _, factors = _block(rows, mixture, start, b, scratch, factors, low, high)
        _normalise(lp, no_weights, start, floor, scratch.norm[:b])
        for r in range(b):
            i = order[start + r]
            empty = n_missing[start + r] == n_features
            _impute_row(X[i], empty, mixture.log_weights, mixture.means, lp[:, r], centred[:, r], imputed[i])


@numba.njit(nogil=True, error_model="numpy", cache=True)
def _workspace(rows, mixture, block_rows):  # noqa: ANN001, ANN202 (numba types)
    """A pass's :data:`Scratch` and :class:`daskem.kernels.patterns.Factors` buffers, allocated once per chunk
    (see :func:`daskem.kernels.fused._buffers`)."""
    n_features, n_components, n_terms = rows.X.shape[1], mixture.offsets.shape[0], mixture.products.shape[0]
    scratch = Scratch(
        np.empty(n_terms * block_rows), np.empty(n_components * n_features * _PRODUCT_ROWS),
        np.empty(n_components * n_features * block_rows), np.empty(n_components * block_rows),
        np.empty(block_rows), np.empty(n_features),
    )
    return scratch, factors_workspace(block_rows, n_features, n_components)


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _block(rows, mixture, start, b, scratch, factors, low, high):  # noqa: ANN001, ANN202 (numba types)
    """The work the three passes share on the block of rows ``order[start : start + b]``: read its terms
    (:func:`_read_terms`, ``low`` and ``high`` as in :func:`missing_statistics`), factorise its runs,
    condition its rows (:func:`_condition_block`).

    Returns ``log α_k + log p_k(x_o)`` (K, b) and ``x̂_k − r_k`` (K, b, d), views of ``scratch``, how
    many runs the block has, and ``factors`` with its buffers grown.
    """
    n_features, n_components, n_terms = rows.X.shape[1], mixture.offsets.shape[0], mixture.products.shape[0]
    terms = scratch.terms[: n_terms * b].reshape(b, n_terms)
    _read_terms(rows.X, rows.order, start, b, mixture.centre, mixture.masked, terms, low, high)
    centred = scratch.centred[: n_components * b * n_features].reshape(n_components, b, n_features)
    lp = scratch.lp[: n_components * b].reshape(n_components, b)
    found, factors = factorise_block(rows.X, rows.order, start, b, rows.n_missing, rows.patterns,
                                     mixture.precisions_t, factors)
    _condition_block(mixture, rows.n_missing[start : start + b], scratch, factors, lp, centred)
    return lp, centred, found, factors


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _read_terms(X, order, start, b, centre, masked, terms, low, high):  # noqa: ANN001, ANN202 (numba types)
    """``terms`` (b, ·) ← ``[x̃, o]`` (``masked``) or ``[x̃, 1]`` of rows ``order[start : start + b]``,
    ``x̃ = x − c`` and 0 where missing, o = 1 where observed; ``low`` and ``high`` (d,) take in their values."""
    n_rows, n_features = X.shape
    for r in range(b):
        if start + r + _PREFETCH_ROWS < n_rows:  # rows in pattern order are all over the chunk
            _prefetch_row(X, order[start + r + _PREFETCH_ROWS])
        i = order[start + r]
        for j in range(n_features):
            value = np.float64(X[i, j])
            seen = value == value
            terms[r, j] = value - centre[j] if seen else 0.0
            low[j], high[j] = min(low[j], value), max(high[j], value)
            if masked:
                terms[r, n_features + j] = 1.0 if seen else 0.0
        if not masked:
            terms[r, n_features] = 1.0


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _condition_block(mixture, n_missing, scratch, factors, lp, centred):  # noqa: ANN001, ANN202 (numba types)
    """``lp`` (K, b) ← ``log α_k + log p_k(x_o)`` and ``centred`` (K, b, d) ← ``x̂_k − r_k`` of a block's rows,
    whose terms are in ``scratch.terms`` and runs in ``factors`` (factorised), ``n_missing`` (b,) theirs.

    One loop over the rows, each row's work while its products are in the first-level cache (see
    :data:`_PRODUCT_ROWS`); some 70 lines, as the call of :func:`_condition_row` is written out for
    each q up to 8, so that each is compiled for its q (loops unrolled).
    """
    products, shifted, offsets, masked = mixture.products, mixture.shifted, mixture.offsets, mixture.masked
    moment_offsets, moment_shift, log_weights = mixture.moment_offsets, mixture.moment_shift, mixture.log_weights
    runs, counts, inverses, log_dets = factors.runs, factors.counts, factors.inverses, factors.log_dets
    sq_offset, vector_offset, gathered = factors.sq_offset, factors.vector_offset, scratch.gathered
    n_components, b, n_features = centred.shape
    n_terms = products.shape[0]
    terms_buffer = scratch.terms
    terms = terms_buffer[: n_terms * b].reshape(b, n_terms)
    run = 0
    for r in range(b):  # each row's work while its products are in the first-level cache
        if r % _PRODUCT_ROWS == 0:  # the products of the next rows, just before they are used
            rows = min(_PRODUCT_ROWS, b - r)
            pe = scratch.products[: rows * n_components * n_features].reshape(rows, n_components * n_features)
            np.dot(terms_buffer[r * n_terms : (r + rows) * n_terms].reshape(rows, n_terms), products, pe)
        pr = r % _PRODUCT_ROWS  # the row's products
        if n_missing[r] == n_features:  # nothing observed: p = 1, responsibilities α, nothing learnt
            for k in range(n_components):
                lp[k, r] = log_weights[k]
                centred[k, r] = 0.0
            continue
        for k in range(n_components):  # eᵀ P e, then e + μ_k − r_k: apart, each loop vectorises
            base, total = k * n_features, 0.0
            if masked:
                for j in range(n_features):
                    total += (terms[r, j] - shifted[k, j] * terms[r, n_features + j]) * pe[pr, base + j]
            else:
                for j in range(n_features):
                    total += (terms[r, j] - shifted[k, j]) * pe[pr, base + j]
            lp[k, r] = offsets[k] - 0.5 * total
        for k in range(n_components):
            if masked:
                for j in range(n_features):
                    centred[k, r, j] = terms[r, j] - shifted[k, j] * terms[r, n_features + j] + moment_offsets[k, j]
            else:
                for j in range(n_features):
                    centred[k, r, j] = terms[r, j] + moment_shift[k, j]
        if n_missing[r] == 0:
            continue
        while runs[run, RUN_STOP] <= r:  # the row's run: runs are in row order
            run += 1
        q, group = runs[run, RUN_Q], runs[run, RUN_GROUP]
        factors_at = (sq_offset[q] + group * n_components, counts[q] * n_components,
                      vector_offset[q] + group * n_components)
        if q == 1:  # one call per literal q up to 8, so that each is compiled for its q (loops unrolled)
            _condition_row(1, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 2:
            _condition_row(2, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 3:
            _condition_row(3, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 4:
            _condition_row(4, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 5:
            _condition_row(5, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 6:
            _condition_row(6, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 7:
            _condition_row(7, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        elif q == 8:
            _condition_row(8, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)
        else:
            _condition_row(q, r, pe[pr], runs, run, factors_at, inverses, log_dets, gathered, lp, centred)


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _condition_row(q, r, pe, runs, run, factors_at, inverses, log_dets, gathered, lp, centred):  # noqa: ANN001, ANN202
    """Condition row r of a block on its observed values (see :func:`_condition_block`), every component.

    ``q`` values are missing, those of ``runs[run]`` (see :func:`daskem.kernels.patterns._block_runs`);
    ``pe`` (b, K·d) holds ``P_k e_k``; ``factors_at`` is where the run's factors are in ``inverses`` and
    ``log_dets`` (see :func:`daskem.kernels.patterns.factorise_block`): its first entry, the step from one
    entry of a factor to the next, its first log det.  ``lp`` (K, b) less
    ``½ (gᵀ P_mm⁻¹ g − log det P_mm + q log 2π)`` and ``centred`` (K, b, d) less ``P_mm⁻¹ g`` at the
    missing features.  ``gathered`` (≥ q,) is scratch.
    """
    n_components, n_features = centred.shape[0], centred.shape[2]
    base, stride, vector = factors_at
    correction = q * math.log(2.0 * math.pi)
    for k in range(n_components):  # one component at a time: loops over K alone cost ~4 ns each
        for a in range(q):
            gathered[a] = pe[k * n_features + runs[run, RUN_WHERE + a]]
        total = log_dets[vector + k] - correction
        for a in range(q):  # Q = eᵀ P e − gᵀ P_mm⁻¹ g; x̂_m − μ_m = e_m − P_mm⁻¹ g
            solved = 0.0
            for c in range(q):
                solved += inverses[base + (a * q + c) * stride + k] * gathered[c]
            total -= gathered[a] * solved
            centred[k, r, runs[run, RUN_WHERE + a]] -= solved
        lp[k, r] -= 0.5 * total


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _add_moments(lp, centred, weighted_buffer, first, moment, nk, s1, t):  # noqa: ANN001, ANN202 (numba types)
    """Add a block's ``Σ w r``, ``Σ w r (x̂_k − r_k)`` and ``Σ w r (x̂_k − r_k)(x̂_k − r_k)ᵀ`` (``lp`` (K, b) the
    weighted responsibilities, ``centred`` (K, b, d) ``x̂_k − r_k``) to nk, s1 and t, K matrix products;
    ``weighted_buffer``, ``first`` (d,) and ``moment`` (d, d) are scratch."""
    n_components, b, n_features = centred.shape
    weighted = weighted_buffer[: centred.size].reshape(centred.shape)
    for k in range(n_components):  # running sums through memory in this loop cost as much as all of it
        nk[k] += np.sum(lp[k])
        for r in range(b):
            for j in range(n_features):
                weighted[k, r, j] = lp[k, r] * centred[k, r, j]
        np.dot(lp[k], centred[k], first)
        s1[k] += first
        np.dot(centred[k].T, weighted[k], moment)
        t[k] += moment


@numba.njit(nogil=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _impute_row(row, empty, log_weights, means, resp, centred, out):  # noqa: ANN001, ANN202 (numba types)
    """``out`` (d,) ← the row, each missing value replaced by ``Σ_k r_k (μ_kj + centred[k, j])`` (``resp`` (K,)
    the responsibilities, ``centred`` (K, d) ``x̂_k − μ_k``), or by ``Σ_k α_k μ_kj`` where nothing is observed."""
    n_features = row.shape[0]
    for j in range(n_features):
        out[j] = row[j]
        if np.isnan(row[j]):
            out[j] = 0.0
            for k in range(means.shape[0]):
                if empty:
                    out[j] += math.exp(log_weights[k]) * means[k, j]
                else:
                    out[j] += resp[k] * (means[k, j] + centred[k, j])


@intrinsic
def _prefetch_row(typingctx, array, row):  # noqa: ANN001, ANN202 (numba typing)
    """Ask the processor to start loading row ``row`` of a 2-D array into its caches (nothing is read).

    LLVM's ``prefetch`` intrinsic: a hint, which changes no result.
    """

    def codegen(context, builder, signature, args):  # noqa: ANN001, ANN202
        array_type = signature.args[0]
        view = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context, builder, view.data, cgutils.unpack_tuple(builder, view.shape),
            cgutils.unpack_tuple(builder, view.strides), array_type.layout,
            [args[1], context.get_constant(types.intp, 0)], wraparound=False,
        )
        if getattr(pointer.type, "is_opaque", False):  # llvmlite with opaque pointers
            name = "llvm.prefetch.p0"
        else:
            pointer, name = builder.bitcast(pointer, ir.IntType(8).as_pointer()), "llvm.prefetch.p0i8"
        flag = ir.IntType(32)
        prefetch = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [pointer.type, flag, flag, flag]), name
        )
        builder.call(prefetch, [pointer, flag(0), flag(3), flag(1)])  # read, keep in every cache level, data
        return context.get_dummy_value()

    return types.none(array, types.intp), codegen
