"""k-means||: scalable k-means++ over the whole data set (Bahmani et al. 2012), a few passes.

Oversample ``2K`` rows per round for :data:`KMEANS_PARALLEL_ROUNDS` rounds,
weight them by the rows nearest to each, recluster them in memory, then one
pass estimates every candidate's parameters from the hard assignment of all
rows.  With missing values, distances are taken over each row's observed
values (see :mod:`daskem.engine.initialization`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import dask
import numpy as np

from daskem.engine.passes import Blocks, compute_one_thread_blas, map_reduce
from daskem.engine.seeding import best_kmeans_plusplus, no_progress
from daskem.exceptions import InputError
from daskem.families.base import Params
from daskem.kernels.checks import check_magnitude, check_weights, raise_non_finite, raise_unobserved
from daskem.kernels.kmeans import nearest_cost, nearest_mass, oversample, squared_distances

if TYPE_CHECKING:
    from daskem.engine.initialization import InitSpec

#: Oversampling rounds of k-means||, each one pass over the data.
KMEANS_PARALLEL_ROUNDS = 5


def _data_pass(data: Blocks, chunk_fn: Callable, combine: Callable, *shared, split_every: int):
    """One read of the data (see :func:`daskem.engine.passes.map_reduce`), computed."""
    (result,) = compute_one_thread_blas(map_reduce(data, chunk_fn, combine, *shared, split_every=split_every))
    return result


def _observed(X, w, first_row, missing):
    """A chunk's rows as float64, checked, its weights (zero where nothing is observed), and where
    values are missing (None where none are, or NaN is not allowed)."""
    X = np.asarray(X, dtype=np.float64)
    w = None if w is None else check_weights(w, len(X), first_row)
    gaps = np.isnan(X) if missing else None
    if gaps is None or not gaps.any():
        raise_non_finite(X, first_row, "while initialising with k-means||")
        return X, w, None
    raise_non_finite(np.where(gaps, 0.0, X), first_row, "while initialising with k-means||")
    empty = gaps.all(axis=1)
    return X, (np.ones(len(X)) if w is None else w) * ~empty, gaps


def _completed(X, gaps, centers):
    """Rows X with each missing value taken from the nearest of ``centers`` (by the observed values)."""
    if gaps is None:
        return X
    return np.where(gaps, centers[np.argmin(squared_distances(X, centers), axis=1)], X)


def _chunk_costs_and_ranges(X, w, first_row, center_sets, missing):
    X, w, gaps = _observed(X, w, first_row, missing)
    seen = True if gaps is None else ~gaps
    return (tuple(float(nearest_cost(X, c, w).sum()) for c in center_sets),
            np.min(X, axis=0, initial=np.inf, where=seen), np.max(X, axis=0, initial=-np.inf, where=seen))


def _combine_costs_and_ranges(parts):
    costs = _sum_elementwise([p[0] for p in parts])
    return costs, np.min([p[1] for p in parts], axis=0), np.max([p[2] for p in parts], axis=0)


def _chunk_oversample(X, w, first_row, center_sets, costs, oversamplings, seeds, missing):
    X, w, gaps = _observed(X, w, first_row, missing)
    drawn = []
    for c, cost, ell, seed in zip(center_sets, costs, oversamplings, seeds):
        kept, chunk_cost = oversample(X, c, cost, ell, np.random.default_rng([seed, first_row]), w)
        drawn.append((_completed(kept, None if gaps is None else np.isnan(kept), c), chunk_cost))
    return tuple(drawn)


def _chunk_masses(X, w, first_row, center_sets, missing):
    X, w, _ = _observed(X, w, first_row, missing)
    return tuple(nearest_mass(X, c, w) for c in center_sets)


def _chunk_assignment_statistics(X, w, first_row, center_sets, families, missing):
    X, w, gaps = _observed(X, w, first_row, missing)
    weights = np.ones(len(X)) if w is None else w
    return tuple(family.assignment_statistics(_completed(X, gaps, centers),
                                              np.argmin(squared_distances(X, centers), axis=1), weights, centers)
                 for centers, family in zip(center_sets, families))


def _sum_elementwise(parts):
    """Add tuples of numbers, arrays or tuples of arrays, element by element."""
    total = parts[0]
    for part in parts[1:]:
        total = tuple(
            tuple(x + y for x, y in zip(a, b)) if isinstance(a, tuple) else a + b for a, b in zip(total, part)
        )
    return total


def _concat_samples(parts):
    """Concatenate the rows drawn (in chunk order) and add the costs, per candidate."""
    return tuple(
        (np.concatenate([p[i][0] for p in parts]), sum(p[i][1] for p in parts)) for i in range(len(parts[0]))
    )


def _first_centers(data: Blocks, count: int, rng: np.random.Generator, missing: bool) -> list[np.ndarray]:
    """``count`` rows, each drawn in proportion to weight from one random chunk (its missing values,
    if any, replaced by their feature's mean in the chunk, or 0 where the chunk has none)."""
    centers = []
    for _ in range(100 * count):
        if len(centers) == count:
            return centers
        chunk = int(rng.integers(len(data.rows)))
        rows, weights = dask.compute(data.rows[chunk], data.weights[chunk])
        rows, weights, gaps = _observed(rows, weights, data.first_rows[chunk], missing)
        weights = np.ones(len(rows)) if weights is None else weights
        if gaps is not None:  # (a feature with no value in the chunk takes 0: any start will do)
            seen = (~gaps).sum(axis=0)
            rows = np.where(gaps, np.where(gaps, 0.0, rows).sum(axis=0) / np.maximum(seen, 1), rows)
        if weights.sum() > 0:
            centers.append(rows[rng.choice(len(rows), p=weights / weights.sum())][None])
    raise InputError("k-means|| found no row of positive weight in the chunks it tried; check sample_weight")


def kmeans_parallel(
    data: Blocks, specs: Sequence[InitSpec], starts: Sequence[tuple], rng: np.random.Generator,
    split_every: int, step: Callable[[str], None] = no_progress,
) -> list[Params]:
    """k-means|| for each distinct start, then one pass for every spec's parameters.

    ``step`` is called after each pass over the data, with what it did.
    """
    unique = list(dict.fromkeys(starts))
    sizes = [key[0] for key in unique]
    missing = any(spec.family.takes_missing for spec in specs)
    center_sets = _first_centers(data, len(unique), rng, missing)
    costs, minimum, maximum = _data_pass(data, _chunk_costs_and_ranges, _combine_costs_and_ranges, center_sets,
                                         missing, split_every=split_every)
    raise_unobserved(minimum, maximum)
    check_magnitude(minimum, maximum)
    step("costs of the first centres")
    oversamplings = [2.0 * k for k in sizes]
    for round_ in range(KMEANS_PARALLEL_ROUNDS):
        seeds = rng.integers(2**32, size=len(unique)).tolist()
        drawn = _data_pass(data, _chunk_oversample, _concat_samples, center_sets, costs, oversamplings, seeds,
                           missing, split_every=split_every)
        center_sets = [np.vstack([c, rows]) for c, (rows, _) in zip(center_sets, drawn)]
        costs = [cost for _, cost in drawn]
        step(f"oversampling round {round_ + 1} of {KMEANS_PARALLEL_ROUNDS}")
    masses = _data_pass(data, _chunk_masses, _sum_elementwise, center_sets, missing, split_every=split_every)
    step("weights of the candidate centres")
    centres = {}
    for key, k, candidates, mass in zip(unique, sizes, center_sets, masses):
        if len(candidates) < k:
            raise InputError(f"k-means|| found only {len(candidates)} distinct rows for n_components={k}")
        centres[key] = _weighted_centres(candidates, mass, best_kmeans_plusplus(candidates, mass, k, rng), k)
    finals = [centres[key] for key in starts]
    sums = _data_pass(data, _chunk_assignment_statistics, _sum_elementwise, finals,
                      [spec.family for spec in specs], missing, split_every=split_every)
    step("moments of the initial assignment")
    return [spec.family.params_from_assignment(m, c) for m, c, spec in zip(sums, finals, specs)]


def _weighted_centres(candidates: np.ndarray, mass: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Centres (K, d) of candidate rows (m, d) with ``labels`` (m,), weighted by ``mass`` (m,)."""
    total = np.bincount(labels, weights=mass, minlength=k)
    sums = np.stack([np.bincount(labels, weights=mass * column, minlength=k) for column in candidates.T], axis=1)
    return sums / np.maximum(total, np.finfo(float).tiny)[:, np.newaxis]
