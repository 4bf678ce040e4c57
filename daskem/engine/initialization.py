"""Initial parameters for EM, for many candidates at once.

Methods (``init_params``):

- ``"k-means++"`` (default): on a bounded random sample of rows.  Up to
  ``JUDGED_MAX_COMPONENTS`` components, a judged start: k-means++ seedings
  refined by a few Lloyd steps on a smaller part of the sample, half in the
  data's units and half sphered, each started as a mixture and run a few
  accelerated EM passes there; the one that climbs highest wins, unless it
  is spurious (see :func:`_judged`).  Above
  that, the best (least inertia) of a few seedings on the whole sample.  The
  winner's hard assignment of the sample gives the weights, means and
  covariances.
- ``"kmeans"``: Lloyd to convergence on the sample from one k-means++ seeding.
- ``"random"``: random responsibilities on the sample (as scikit-learn).
- ``"random_from_data"``: K sample rows as means (for Gaussians, covariances
  ``reg_covar·I``, as scikit-learn).
- ``"k-means||"``: scalable k-means++ over the whole data set (Bahmani et al.
  2012), a few passes: oversample ``2K`` rows per round for a few rounds,
  weight them by the rows nearest to each, recluster them in memory, then one
  pass estimates the parameters from the hard assignment of all rows.

With missing values (a family with ``missing="nan"``), the sample's holes
are filled by their feature's weighted mean in the sample before clustering;
k-means|| measures distances over each row's observed values (scaled to all
d features: the partial distance of k-means with missing data), fills a
drawn row's holes from its nearest centre, and estimates the start from rows
filled by their assigned centre.  Either way it is a start, which EM then
corrects; rows with nothing observed weigh nothing.

The sample (at most ``DEFAULT_SAMPLE_ROWS`` rows, read chunk by chunk, only the
sample held) is drawn once for all candidates; the k-means|| passes of all
candidates are shared too.  Candidates that differ only in covariance type
share their clustering, and so do candidates of different families; a judged
start is judged once for each family, under the first candidate's settings
(so the covariance types of a selection share one judgment).
Parameters the user gives (``weights_init``, ``means_init``, ``precisions_init``)
replace the estimated ones, as in scikit-learn; when all are given the data
are not read at all.
Sample weights weight every step.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np

from daskem.engine.acceleration import ACCELERATIONS
from daskem.engine.em import RunState
from daskem.engine.passes import DEFAULT_SPLIT_EVERY, Blocks, compute_one_thread_blas, map_reduce, one_blas_thread
from daskem.exceptions import ComponentCollapseWarning, InputError, NonFiniteDataError
from daskem.families.base import Family, Params
from daskem.kernels.checks import check_magnitude, check_weights, raise_non_finite, raise_unobserved
from daskem.kernels.kmeans import kmeans_plusplus, lloyd, nearest_cost, nearest_mass, oversample, squared_distances

logger = logging.getLogger("daskem")

#: Rows drawn from the data to initialise on.
DEFAULT_SAMPLE_ROWS = 50_000
#: Lloyd steps after each k-means++ seeding.
LLOYD_STEPS = 10
#: k-means++ seedings tried; the one with least inertia wins (but see ``JUDGED_MAX_COMPONENTS``).
SEEDINGS = 4
#: Components up to which the k-means++ start is judged: on at most ``JUDGING_ROWS`` of the sampled rows, it
#: tries ``SEEDINGS`` seedings in the data's units and as many in sphered units, and keeps the one from which
#: ``JUDGING_PASSES`` accelerated EM passes reach the highest log-likelihood (see :func:`_judged`).
JUDGED_MAX_COMPONENTS = 16
JUDGING_ROWS = 4000
JUDGING_PASSES = 60
JUDGING_TOL = 1e-4
#: The least variance sphering divides by, relative to the largest (a constant feature is left as it is).
SPHERING_FLOOR = 1e-12
#: Rows × centres of a k-means++ seeding, at most (what K=64 costs on the default sample), and
#: the least rows a centre it may seed on.  On 50,000 sampled rows at K=256, seeding on 12,500
#: gave the same inertia after Lloyd's steps (medians of 6 seeds, clusters apart or overlapping),
#: 6,000 a worse one where clusters lay apart.
SEEDING_WORK = 64 * DEFAULT_SAMPLE_ROWS
SEEDING_ROWS_PER_CENTRE = 48
#: Components × sample rows from which initialisation logs its progress at INFO level
#: (K=200 on 50,000 rows takes about a second).
LONG_INIT_WORK = 10**7
#: Oversampling rounds of k-means||, each one pass over the data.
KMEANS_PARALLEL_ROUNDS = 5


@dataclass(frozen=True, eq=False)
class InitSpec:
    """How to start one candidate: its size, family, method and any given initial arrays
    (``weights_init``, ``means_init``, …: see :meth:`~daskem.families.base.Family.given_shapes`)."""

    n_components: int
    family: Family
    init_params: str = "k-means++"
    given: dict[str, np.ndarray | None] = field(default_factory=dict)

    @property
    def fully_given(self) -> bool:
        return all(self.given.get(name) is not None for name in self.family.given_shapes(self.n_components, 1))


def random_generator(random_state: int | np.random.RandomState | np.random.Generator | None) -> np.random.Generator:
    """The Generator a ``random_state`` stands for, as scikit-learn's ``check_random_state`` reads it.

    None: fresh entropy; an integer: that seed; a Generator: itself (draws advance it);
    a ``RandomState``: a Generator seeded from one draw of it (so that it advances too).
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


# ----------------------------------------------------------------- on a sample


def seedings(n_components: int) -> int:
    """k-means++ seedings to try for K components: ``SEEDINGS`` up to K=64, fewer above.

    With many components one seeding already averages over many draws, and
    each costs O(n K² d) on the sample.
    """
    return max(1, min(SEEDINGS, 256 // n_components))


def _seeding_rows(n_rows: int, n_components: int, rng: np.random.Generator) -> np.ndarray | slice:
    """The rows (of ``n_rows``) that a k-means++ seeding of K centres draws from: all, or a random subset.

    A seeding costs O(n K log K d), where Lloyd's steps that follow cost O(n K d) each:
    at large K it is seeded on at most ``SEEDING_WORK / K`` rows (but never fewer
    than ``SEEDING_ROWS_PER_CENTRE`` a centre), as scikit-learn's MiniBatchKMeans
    seeds on a subset.  Lloyd's steps then use every row.
    """
    size = max(SEEDING_WORK // n_components, SEEDING_ROWS_PER_CENTRE * n_components)
    if size >= n_rows:
        return slice(None)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


class _Progress:
    """Labelled progress of one initialisation: a log line per step, at INFO when it may take a while."""

    def __init__(self, label: str, steps: int, long: bool) -> None:
        self.label, self.steps, self.done = label, steps, 0
        self.level = logging.INFO if long else logging.DEBUG
        self.start = time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        logger.log(self.level, "%s: %s (step %d of %d, %.2f s)", self.label, what, self.done, self.steps,
                   time.perf_counter() - self.start)


def _no_progress(what: str) -> None:
    """The step callback of an initialisation nobody watches."""


def _best_kmeans_plusplus(
    X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, step: Callable[[str], None] = _no_progress
) -> np.ndarray:
    """Labels (n,) of the best (least inertia) of :func:`seedings` k-means++ seedings refined by ``LLOYD_STEPS``.

    ``step`` is called after each seeding, with what was done.
    """
    found = []  # (inertia, labels) of each seeding
    count = seedings(k)
    for i in range(count):
        found.append(_kmeans_plusplus(X, w, k, rng)[1:])
        step(f"seeding {i + 1} of {count} and {LLOYD_STEPS} Lloyd steps")
    return min(found, key=lambda pair: pair[0])[1]


def _kmeans_plusplus(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator
                     ) -> tuple[np.ndarray, float, np.ndarray]:
    """One k-means++ seeding of rows X (n, d) refined by ``LLOYD_STEPS``: centres (K, d), inertia, labels (n,)."""
    seeds = _seeding_rows(len(X), k, rng)
    with one_blas_thread():  # Lloyd's threads each run their own products
        centres, labels, inertia = lloyd(X, kmeans_plusplus(X[seeds], k, rng, w[seeds]), LLOYD_STEPS, weights=w)
    return centres, inertia, labels


@dataclass(frozen=True, eq=False)
class _Clustering:
    """A k-means clustering of rows mapped by ``transform`` (d, d) (x ↦ x · transform): its centres (K, d)
    there, and the labels (m,) of the rows it was fitted on."""

    transform: np.ndarray
    centres: np.ndarray
    labels: np.ndarray

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Label (n,) of each row of X (n, d): its nearest centre, in these units."""
        return np.argmin(squared_distances(X @ self.transform, self.centres), axis=1)


def _judged_candidates(
    X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, step: Callable[[str], None] = _no_progress,
) -> list[_Clustering]:
    """``2 × SEEDINGS`` k-means++ seedings of rows X (n, d) refined by ``LLOYD_STEPS``, for :func:`_judged` to
    pick from: half in the data's units, half in sphered units (the rows' covariance made the identity, so
    that neither a feature's scale nor the correlation of features hides the clusters).

    ``step`` is called after each seeding, with what was done.
    """
    values, vectors = np.linalg.eigh(np.atleast_2d(np.cov(X.T, aweights=w, bias=True)))
    # (rows that are all alike have no covariance to undo: they are left as they are, and refused later)
    values = np.maximum(values, values.max() * SPHERING_FLOOR) if values.max() > 0 else np.ones_like(values)
    units = [np.eye(X.shape[1]), vectors / np.sqrt(values)]
    clusterings = []
    count = SEEDINGS * len(units)
    for i in range(count):
        transform = units[i % len(units)]
        centres, _, labels = _kmeans_plusplus(X @ transform, w, k, rng)
        clusterings.append(_Clustering(transform, centres, labels))
        step(f"seeding {i + 1} of {count} and {LLOYD_STEPS} Lloyd steps")
    return clusterings


def _judged(X: np.ndarray, observed: np.ndarray, w: np.ndarray, clusterings: Sequence[_Clustering],
            spec: InitSpec) -> _Clustering:
    """The one of ``clusterings`` (of rows X (n, d), weights w (n,)) from whose start EM climbs highest on the
    same rows as ``observed`` (X before :func:`mean_filled`: NaN where a value is missing).

    Each start runs ``JUDGING_PASSES`` accelerated EM passes (fewer if it converges at ``JUDGING_TOL``).
    The highest mean log-likelihood wins, the first on a tie, but a spurious fit loses to any that is not:
    one that leaves a component fewer than d + 1 rows' worth of weight, or one the family finds at its floor
    (:meth:`~daskem.families.base.Family.at_floor`).  Its likelihood is high only because a component
    closes in on a few rows or on rows that share a value (a spurious maximum, McLachlan & Peel 2000, §3.10).
    """
    runs = [RunState(spec.family, _estimate(X, c.labels, w, spec)) for c in clusterings]
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ComponentCollapseWarning)  # a judging run's restarts are its own affair
        for iteration in range(1, JUDGING_PASSES + 1):
            for run in runs:
                if not run.converged:
                    run.step_em(spec.family.chunk_statistics(observed, run.params, 0, w), JUDGING_TOL,
                                iteration, ACCELERATIONS[0])
    least_rows = (X.shape[1] + 1) * w.sum() / np.count_nonzero(w)  # d + 1 average rows' weight

    def spurious(run: RunState) -> bool:
        thin = run.fitted.weights.min() * run.weight_sum < least_rows
        return bool(thin or spec.family.at_floor(run.fitted).any())

    return clusterings[min(range(len(runs)), key=lambda i: (spurious(runs[i]), -runs[i].history[-1]))]


def _kmeans(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    with one_blas_thread():
        return lloyd(X, kmeans_plusplus(X, k, rng, w), max_iter=300, weights=w)[1]


def _random(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    resp = rng.uniform(size=(len(X), k))
    return resp / resp.sum(axis=1, keepdims=True)


def _random_from_data(X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.full(len(X), -1)
    labels[rng.choice(len(X), size=k, replace=False, p=w / w.sum())] = np.arange(k)
    return labels


#: Sample-based methods: each assigns the sample rows to components, as labels (n,) (−1:
#: none) or, for "random", as responsibilities (n, K).
SAMPLE_METHODS: dict[str, Callable[[np.ndarray, np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "k-means++": _best_kmeans_plusplus,
    "kmeans": _kmeans,
    "random": _random,
    "random_from_data": _random_from_data,
}
INIT_METHODS = (*SAMPLE_METHODS, "k-means||")


def draw_sample(
    X: da.Array, sample_weight: da.Array | None, n_rows: int, rng: np.random.Generator, missing: bool = False,
    families: Sequence[Family] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """A uniform random sample of at most ``n_rows`` distinct rows, in row order.

    Reads chunk by chunk; only the sample is held in memory.  With
    ``missing``, NaN marks a missing value (kept; see :func:`mean_filled`),
    and rows with nothing observed get weight 0.

    Returns
    -------
    rows : (m, d) float64 with m = min(n_rows, N).
    weights : (m,) float64 sample weights of those rows (ones when unweighted).
    """
    n_total = X.shape[0]
    index = np.arange(n_total) if n_total <= n_rows else np.sort(rng.choice(n_total, size=n_rows, replace=False))
    weights = da.ones(n_total, chunks=X.chunks[0]) if sample_weight is None else sample_weight
    rows, w = dask.compute(X[index], weights[index])
    rows, w = np.asarray(rows, dtype=np.float64), check_weights(np.asarray(w, dtype=np.float64), len(index),
                                                                rows=index)
    gaps = np.isnan(rows) if missing else np.zeros(rows.shape, dtype=bool)
    bad = ~(np.isfinite(rows) | gaps).all(axis=1)
    if bad.any():
        raise NonFiniteDataError(
            f"the data hold {'infinite' if missing else 'NaN or infinite'} values, first seen at row "
            f"{int(index[bad][0])} while sampling rows to initialise; remove or impute them before fitting"
            + ("" if missing else " (or fit with missing='nan' to treat NaN as missing values)")
        )
    minimum = np.min(rows, axis=0, initial=np.inf, where=~gaps)
    maximum = np.max(rows, axis=0, initial=-np.inf, where=~gaps)
    raise_unobserved(minimum, maximum, f" in the {len(rows)} rows sampled to initialise")
    for family in families:  # each family's own words for a value outside its domain, before the generic check
        family.check_sample(rows, index)
    check_magnitude(minimum, maximum)
    return rows, np.where(gaps.all(axis=1), 0.0, w)


def mean_filled(rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sampled rows (m, d) with each missing value replaced by its feature's weighted mean over them —
    a start to cluster from, not an estimate."""
    gaps = np.isnan(rows)
    if not gaps.any():
        return rows
    seen = (~gaps) * weights[:, np.newaxis]
    unseen = np.flatnonzero(seen.sum(axis=0) == 0)
    if unseen.size:
        raise InputError(f"feature {unseen[0]} has no observed value in the {len(rows)} rows sampled to "
                         "initialise; drop it, or give means_init")
    return np.where(gaps, (np.where(gaps, 0.0, rows) * seen).sum(axis=0) / seen.sum(axis=0), rows)


def _estimate(X: np.ndarray, assignment: np.ndarray, weights: np.ndarray, spec: InitSpec) -> Params:
    """Parameters from an assignment of in-memory rows (see ``SAMPLE_METHODS``), sums about their mean."""
    reference = np.repeat(X.mean(axis=0, keepdims=True), spec.n_components, axis=0)
    return spec.family.params_from_assignment(
        spec.family.assignment_statistics(X, assignment, weights, reference), reference)


# ------------------------------------------------------------------ k-means||


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


def _kmeans_parallel(
    data: Blocks, specs: Sequence[InitSpec], starts: Sequence[tuple], rng: np.random.Generator,
    split_every: int, step: Callable[[str], None] = _no_progress,
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
        centres[key] = _weighted_centres(candidates, mass, _best_kmeans_plusplus(candidates, mass, k, rng), k)
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


# ------------------------------------------------------------------ together


def initial_params(
    X: da.Array,
    sample_weight: da.Array | None,
    specs: Sequence[InitSpec],
    *,
    rng: np.random.Generator,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    split_every: int = DEFAULT_SPLIT_EVERY,
) -> list[Params]:
    """Initial parameters of every candidate for the (N, d) rows of X.

    The sample is drawn once, and k-means|| passes are shared, for all specs.
    """
    starts = _shared_starts(specs)
    estimated: dict[int, Params] = {}
    from_sample = [i for i, s in enumerate(specs) if not s.fully_given and s.init_params in SAMPLE_METHODS]
    if from_sample:
        rows, weights = draw_sample(X, sample_weight, sample_rows, rng,
                                    missing=any(specs[i].family.takes_missing for i in from_sample),
                                    families=list(dict.fromkeys(specs[i].family for i in from_sample)))
        given_rows, rows = rows, mean_filled(rows, weights)
        positive = int(np.count_nonzero(weights > 0))
        # A judged start clusters, and judges its candidates, on at most JUDGING_ROWS of the sample.
        judging = slice(None) if JUDGING_ROWS >= len(rows) else np.sort(rng.choice(len(rows), JUDGING_ROWS,
                                                                                   replace=False))
        found: dict[tuple, np.ndarray | list[_Clustering]] = {}  # per start: an assignment, or ones to judge
        chosen: dict[tuple, np.ndarray] = {}  # the assignment kept, per start and kind of family
        for i in from_sample:
            spec = specs[i]
            if positive < spec.n_components:
                raise InputError(
                    f"the sample drawn to initialise holds {positive} rows of positive weight, fewer "
                    f"than n_components={spec.n_components}"
                )
            if starts[i] not in found:
                found[starts[i]] = _sample_start(rows, weights, spec, rng, judging)
            key = (starts[i], type(spec.family))  # judged under this spec's settings; a selection's covariance
            # types share the judgment, as they share the clustering: else each would pay for its own
            if key not in chosen:
                start = found[starts[i]]
                observed = given_rows if spec.family.takes_missing else rows
                chosen[key] = start if isinstance(start, np.ndarray) else _judged(
                    rows[judging], observed[judging], weights[judging], start, spec).assign(rows)
            estimated[i] = _estimate(rows, chosen[key], weights, spec)
    parallel = [i for i, s in enumerate(specs) if not s.fully_given and s.init_params == "k-means||"]
    if parallel:
        data = Blocks.of(X, sample_weight)
        work = X.shape[0] * max(specs[i].n_components for i in parallel)
        progress = _Progress("initialisation (k-means||)", KMEANS_PARALLEL_ROUNDS + 3, work >= LONG_INIT_WORK)
        logger.log(progress.level, "initialising with k-means|| over all %d rows: %d passes over the data",
                   X.shape[0], progress.steps)
        found = _kmeans_parallel(data, [specs[i] for i in parallel], [starts[i] for i in parallel], rng,
                                 split_every, progress.step)
        estimated.update(zip(parallel, found))
    return [spec.family.with_given(estimated.get(i), spec.given) for i, spec in enumerate(specs)]


def _sample_start(rows: np.ndarray, weights: np.ndarray, spec: InitSpec, rng: np.random.Generator,
                  judging: np.ndarray | slice) -> np.ndarray | list[_Clustering]:
    """The sample's assignment (see ``SAMPLE_METHODS``) for a start, or for a judged k-means++ start
    (K ≤ ``JUDGED_MAX_COMPONENTS``) the clusterings of its ``judging`` rows to judge (see :func:`_judged`).

    Announced, step by step, when it may take a while (K × sample rows): a long start is never silent.
    """
    k, method = spec.n_components, spec.init_params
    judged = method == "k-means++" and 1 < k <= JUDGED_MAX_COMPONENTS
    steps = (2 * SEEDINGS if judged else seedings(k)) if method == "k-means++" else 1
    progress = _Progress(f"initialisation ({method}, {k} components)", steps, k * len(rows) >= LONG_INIT_WORK)
    logger.log(progress.level, "initialising %d components with %s on %d sampled rows", k, method, len(rows))
    if judged:
        start = _judged_candidates(rows[judging], weights[judging], k, rng, progress.step)
    elif method == "k-means++":
        start = _best_kmeans_plusplus(rows, weights, k, rng, progress.step)
    else:
        start = SAMPLE_METHODS[method](rows, weights, k, rng)
    logger.log(progress.level, "initialised %d components in %.2f s", k, time.perf_counter() - progress.start)
    return start


def _shared_starts(specs: Sequence[InitSpec]) -> list[tuple[int, str, int]]:
    """A key per spec; specs with equal keys share one clustering.

    The j-th spec of a given (K, method, family) gets the key (K, method, j):
    random starts of one candidate differ, while candidates that differ only
    in family (or covariance type) share their starts, as the clustering does
    not depend on the family.
    """
    seen: dict[tuple[int, str, Family], int] = {}
    keys = []
    for spec in specs:
        shape = (spec.n_components, spec.init_params, spec.family)
        seen[shape] = seen.get(shape, -1) + 1
        keys.append((spec.n_components, spec.init_params, seen[shape]))
    return keys
