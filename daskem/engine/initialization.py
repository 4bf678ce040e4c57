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
from daskem.engine.kmeans_parallel import KMEANS_PARALLEL_ROUNDS, kmeans_parallel
from daskem.engine.passes import DEFAULT_SPLIT_EVERY, Blocks, one_blas_thread
from daskem.engine.seeding import (
    DEFAULT_SAMPLE_ROWS,
    LLOYD_STEPS,
    SAMPLE_METHODS,
    SEEDINGS,
    Progress,
    best_kmeans_plusplus,
    kmeans_plusplus_refined,
    no_progress,
    seedings,
)
from daskem.exceptions import ComponentCollapseWarning, InputError, NonFiniteDataError
from daskem.families.base import Family, Params
from daskem.kernels.checks import check_magnitude, check_weights, raise_unobserved
from daskem.kernels.kmeans import squared_distances

logger = logging.getLogger("daskem")

#: Components up to which the k-means++ start is judged: on at most ``JUDGING_ROWS`` of the sampled rows, it
#: tries ``SEEDINGS`` seedings in the data's units and as many in sphered units, and keeps the one from which
#: ``JUDGING_PASSES`` accelerated EM passes reach the highest log-likelihood (see :func:`_judged`).
JUDGED_MAX_COMPONENTS = 16
JUDGING_ROWS = 4000
JUDGING_PASSES = 60
JUDGING_TOL = 1e-4
#: The least variance sphering divides by, relative to the largest (a constant feature is left as it is).
SPHERING_FLOOR = 1e-12
#: Components × sample rows from which initialisation logs its progress at INFO level
#: (K=200 on 50,000 rows takes about a second).
LONG_INIT_WORK = 10**7


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
        shapes = self.family.given_shapes(self.n_components, 1)
        return bool(shapes) and all(self.given.get(name) is not None for name in shapes)


def random_generator(random_state: int | np.random.RandomState | np.random.Generator | None) -> np.random.Generator:
    """The Generator a ``random_state`` stands for, as scikit-learn's ``check_random_state`` reads it.

    None: fresh entropy; an integer: that seed; a Generator: itself (draws advance it);
    a ``RandomState``: a Generator seeded from one draw of it (so that it advances too).
    """
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


# ----------------------------------------------------------------- on a sample


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
    X: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator, step: Callable[[str], None] = no_progress,
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
        centres, _, labels = kmeans_plusplus_refined(X @ transform, w, k, rng)
        clusterings.append(_Clustering(transform, centres, labels))
        step(f"seeding {i + 1} of {count} and {LLOYD_STEPS} Lloyd steps")
    return clusterings


def _judged(X: np.ndarray, observed: np.ndarray, w: np.ndarray, clusterings: Sequence[_Clustering],
            spec: InitSpec) -> _Clustering:
    """The one of ``clusterings`` (of rows X (n, d), weights w (n,)) from whose start EM climbs highest on the
    same rows as ``observed`` (X before :func:`mean_filled`: NaN where a value is missing).

    Each start runs ``JUDGING_PASSES`` accelerated EM passes (textbook ones for a family that cannot be
    extrapolated; fewer if it converges at ``JUDGING_TOL``).
    The highest mean log-likelihood wins, the first on a tie, but a spurious fit loses to any that is not:
    one that leaves a component fewer than d + 1 rows' worth of weight, or one the family finds at its floor
    (:meth:`~daskem.families.base.Family.at_floor`).  Its likelihood is high only because a component
    closes in on a few rows or on rows that share a value (a spurious maximum, McLachlan & Peel 2000, §3.10).
    """
    runs = [RunState(spec.family, _estimate(X, c.labels, w, spec)) for c in clusterings]
    acceleration = ACCELERATIONS[0] if spec.family.accelerates else "none"
    with warnings.catch_warnings(), one_blas_thread():
        warnings.simplefilter("ignore", ComponentCollapseWarning)  # a judging run's restarts are its own affair
        for iteration in range(1, JUDGING_PASSES + 1):
            for run in runs:
                if not run.converged:
                    run.step_em(spec.family.chunk_statistics(observed, run.params, 0, w), JUDGING_TOL,
                                iteration, acceleration)
    least_rows = (X.shape[1] + 1) * w.sum() / np.count_nonzero(w)  # d + 1 average rows' weight

    def spurious(run: RunState) -> bool:
        thin = run.fitted.weights.min() * run.weight_sum < least_rows
        return bool(thin or spec.family.at_floor(run.fitted).any())

    return clusterings[min(range(len(runs)), key=lambda i: (spurious(runs[i]), -runs[i].history[-1]))]


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
            + ("" if missing else (families[0] if families else Family).nan_hint)
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
        progress = Progress("initialisation (k-means||)", KMEANS_PARALLEL_ROUNDS + 3, work >= LONG_INIT_WORK)
        logger.log(progress.level, "initialising with k-means|| over all %d rows: %d passes over the data",
                   X.shape[0], progress.steps)
        found = kmeans_parallel(data, [specs[i] for i in parallel], [starts[i] for i in parallel], rng,
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
    progress = Progress(f"initialisation ({method}, {k} components)", steps, k * len(rows) >= LONG_INIT_WORK)
    logger.log(progress.level, "initialising %d components with %s on %d sampled rows", k, method, len(rows))
    if judged:
        start = _judged_candidates(rows[judging], weights[judging], k, rng, progress.step)
    elif method == "k-means++":
        start = best_kmeans_plusplus(rows, weights, k, rng, progress.step)
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
