"""The EM loop.

Each EM iteration is one pass (:mod:`daskem.engine.passes`): the E-step mapped
over the row chunks — once per chunk, for every candidate mixture still
iterating — and a tree reduction of their statistics.  The M-step runs on the
driver (:meth:`RunState.advance`, through the family's ``m_step``).  The pass that computes the
statistics for the next parameters also gives the log-likelihood of the
current ones, so each iteration reads the data once, however many candidates
(random starts, numbers of components, covariance types) advance together.

The engine knows nothing of files or command lines.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dask
import numpy as np
from dask.delayed import Delayed

from daskem.engine.acceleration import (
    ACCELERATIONS,
    NEAR_CYCLES,
    REMAINING_FRACTION,
    extrapolate,
    next_step_max,
    remaining_after,
)
from daskem.engine.passes import DEFAULT_SPLIT_EVERY, Blocks, Candidate, one_blas_thread, statistics_pass
from daskem.exceptions import ComponentCollapseWarning, DataChangedError
from daskem.families.base import Family, Params, Statistics

#: Most candidate runs that iterate together (random starts × candidates); each costs a
#: kernel call per chunk and per pass.
MAX_RUNS = 10_000
#: How often one component may be restarted after collapsing, per fit.
MAX_RESEEDS = 2

logger = logging.getLogger("daskem")


@dataclass(frozen=True, eq=False)
class IterationInfo:
    """What one pass over the data (an iteration) did for one candidate, as passed to callbacks.

    ``mean_log_likelihood`` (nats per unit weight; the evidence lower bound for a variational family, see
    :attr:`~daskem.families.base.Statistics.objective`) belongs to the parameters
    the pass started from (the last one again where the pass refused an
    extrapolated point, see :mod:`daskem.engine.acceleration`); ``params`` are the
    ones the fit stands at after it (see :attr:`RunState.fitted`);
    ``reseeded`` lists the (component, row) restarts it made; ``remaining``
    estimates how much the mean log-likelihood may still gain (nats per unit
    weight; NaN while it cannot be told, see :func:`remaining_gain`).
    """

    iteration: int
    mean_log_likelihood: float
    change: float
    seconds: float
    params: Params
    candidate: int = 0
    reseeded: tuple[tuple[int, int], ...] = ()
    remaining: float = float("nan")


def remaining_gain(history: Sequence[float]) -> float:
    """Aitken's estimate of the gain still to come after the last of the mean log-likelihoods ``history``
    (n,) of successive EM iterations, in the same units (McLachlan & Krishnan, *The EM Algorithm and
    Extensions*, §4.9).

    EM converges linearly: near the optimum each change is the previous one
    times a rate c < 1, so with the last changes Δₜ and Δₜ₋₁, c = Δₜ / Δₜ₋₁
    and the changes still to come add up to Δₜ · c / (1 − c).  NaN with
    fewer than three values, or while the changes do not shrink that way (a
    rise after a restart, a change that grows); 0 once a change is 0.
    """
    if len(history) < 3:
        return float("nan")
    last, before = history[-1] - history[-2], history[-2] - history[-3]
    if last == 0:
        return 0.0
    if not (last > 0 and before > 0 and last < before):
        return float("nan")
    rate = last / before
    return last * rate / (1.0 - rate)


@dataclass(frozen=True, eq=False)
class EMResult:
    """Outcome of EM for one candidate.

    ``history`` (n_iter,) holds the mean log-likelihood per unit weight (nats)
    at the start of each pass (see :class:`IterationInfo`); ``lower_bound`` is its last entry;
    ``weight_sum`` is the total weight of the rows (their number when
    unweighted); ``reseeded`` lists (iteration, component, row) for every
    restart; ``missing`` counts the values missing, the rows with a missing
    value and the rows with nothing observed (left out), as the last pass saw
    them; ``run`` is the run's final state, which a warm start continues
    (see :meth:`RunState.continued`).
    """

    params: Params
    n_iter: int
    converged: bool
    history: np.ndarray
    weight_sum: float
    reseeded: list[tuple[int, int, int]] = field(default_factory=list)
    missing: tuple[int, int, int] = (0, 0, 0)
    run: RunState | None = None

    @property
    def lower_bound(self) -> float:
        """The last mean log-likelihood; −inf before any iteration (``max_iter=0``), as scikit-learn."""
        return float(self.history[-1]) if len(self.history) else -np.inf


#: Where a run stands in a SQUAREM cycle (see :mod:`daskem.engine.acceleration`): its next pass starts from
#: θ₀, from θ₁ = F(θ₀), or from an extrapolated point θ′ to check (θ₂ held to fall back on).
START, SECOND, CHECK = 0, 1, 2


@dataclass(eq=False)
class RunState:
    """The state of one candidate while EM iterates: everything a restart needs.

    ``params`` are those the next pass starts from.  Under acceleration,
    ``phase`` is where the SQUAREM cycle stands, ``anchor`` holds θ₀ (phase
    SECOND) or θ₂ (phase CHECK), ``step`` the step length of the point to
    check, ``step_max`` the current bound on it, ``gap`` the estimated gain
    still to come as of mean log-likelihood ``gap_from``, and ``near`` how
    many cycles in a row found the fit near the optimum.
    """

    family: Family
    params: Params
    weight_sum: float = 0.0
    previous: float = -np.inf
    converged: bool = False
    history: list[float] = field(default_factory=list)
    reseeded: list[tuple[int, int, int]] = field(default_factory=list)
    reseeds_left: np.ndarray | None = None
    warned: set[int] = field(default_factory=set)
    missing: tuple[int, int, int] = (0, 0, 0)
    phase: int = START
    anchor: Params | None = None
    step: float = 1.0
    step_max: float = 1.0
    gap: float = np.nan
    gap_from: float = np.nan
    near: int = 0

    def step_em(self, stats: Statistics, tol: float, iteration: int, acceleration: str) -> tuple[float, tuple]:
        """Take the M-step of a pass (or refuse the point it checked); return the change of log-likelihood
        and the restarts made.

        The change is from the previous pass's log-likelihood (inf on the
        first).  After a restart the next pass cannot converge, whatever its
        change.  A refused extrapolated point records the last log-likelihood
        again (the fit never stood there) and falls back to θ₂.
        """
        if self.reseeds_left is None:
            self.reseeds_left = np.full(self.params.n_components, MAX_RESEEDS)
        current = stats.objective
        self.weight_sum, self.missing = stats.weight_sum, tuple(stats.missing)
        if self.phase == CHECK and not current >= self.previous:  # previous: θ₁'s log-likelihood
            self.history.append(self.previous)
            self.params, self.anchor, self.phase = self.anchor, None, START
            self.step_max = next_step_max(self.step_max, self.step, kept=False)
            return 0.0, ()
        change = current - (self.history[-1] if self.history else -np.inf)
        gain = current - self.previous  # previous is -inf after a restart; a warm start's is the last fit's
        converged = abs(gain) < tol
        evaluated = self.params
        self.params, reseeded = self.family.m_step(stats, may_reseed=self.reseeds_left > 0)
        self.history.append(current)
        for component, row in reseeded:
            self.reseeds_left[component] -= 1
            self.reseeded.append((iteration, component, row))
        for component in set(stats.collapsed().tolist()) - {c for c, _ in reseeded} - self.warned:
            self.warned.add(component)
            warnings.warn(
                f"component {component} collapsed again at iteration {iteration} after "
                f"{MAX_RESEEDS} restarts; it is kept with a weight near zero. Fewer "
                "components may suit these data better",
                ComponentCollapseWarning,
                stacklevel=4,
            )
        # A restart moves the parameters by far more than tol: never converge on it.
        self.previous = -np.inf if reseeded else current
        if acceleration == "none":
            self.converged = converged and not reseeded
        elif reseeded:  # a restart starts a new cycle
            self.phase, self.anchor, self.gap, self.near = START, None, np.nan, 0
        else:
            self._squarem(evaluated, gain, tol)
        return change, tuple(reseeded)

    def _squarem(self, evaluated: Params, gain: float, tol: float) -> None:
        """Advance the SQUAREM cycle after the M-step from ``evaluated`` (now ``params`` is F(evaluated)),
        whose log-likelihood is ``gain`` above the last pass's."""
        if self.phase != SECOND:  # evaluated is a cycle's θ₀: a start, or a checked point kept
            if self.phase == CHECK:
                self.step_max = next_step_max(self.step_max, self.step, kept=True)
            self.phase, self.anchor = SECOND, evaluated
            return
        theta0, theta1, theta2 = self.anchor, evaluated, self.params
        self.gap = remaining_after(gain, self.history[-1] - gain, self.family, theta0, theta1, theta2)
        self.gap_from = self.history[-1]
        near = gain < tol and self.gap < tol * REMAINING_FRACTION
        self.near = self.near + 1 if near else 0
        self.converged = self.near >= NEAR_CYCLES
        point, self.step = extrapolate(self.family, theta0, theta1, theta2, self.step_max)
        if self.converged or self.step == 1.0 or point is None:  # the next cycle starts from θ₂
            self.step_max = next_step_max(self.step_max, self.step, kept=point is not None)
            self.phase, self.anchor = START, None
        else:
            self.phase, self.anchor, self.params = CHECK, theta2, point

    def remaining(self, acceleration: str) -> float:
        """The estimated gain of mean log-likelihood still to come (NaN while it cannot be told)."""
        if acceleration == "none":
            return remaining_gain(self.history)
        return max(0.0, self.gap - (self.history[-1] - self.gap_from)) if np.isfinite(self.gap) else np.nan

    @property
    def fitted(self) -> Params:
        """Where the fit stands: ``params``, or while a point waits to be checked, the EM point θ₂ it was
        extrapolated from."""
        return self.anchor if self.phase == CHECK else self.params

    def continued(self) -> RunState:
        """A run that goes on from this one where a warm start continues it: the same point and SQUAREM
        cycle, a fresh history and fresh restarts (as a new fit's)."""
        return RunState(self.family, self.params, previous=self.previous, phase=self.phase, anchor=self.anchor,
                        step=self.step, step_max=self.step_max, gap=self.gap, gap_from=self.gap_from, near=self.near)

    def result(self) -> EMResult:
        return EMResult(self.fitted, len(self.history), self.converged, np.asarray(self.history),
                        self.weight_sum, list(self.reseeded), self.missing, self)


@dataclass(eq=False)
class EMState:
    """Where EM stands after ``iteration`` iterations: enough to resume exactly.

    ``last_pass`` holds a candidate that the last pass evaluated (the first
    still iterating: its family and parameters) and the mean log-likelihood
    it found for it: the first pass after a resume evaluates it again, and the
    two must agree, or the data have changed.
    """

    iteration: int
    runs: list[RunState]
    last_pass: tuple[Candidate, float] | None = None


def run_em(
    data: Blocks | Callable[[Sequence[Candidate]], Delayed],
    starts: Sequence[Candidate] | EMState,
    *,
    tol: float,
    max_iter: int,
    acceleration: str = ACCELERATIONS[0],
    split_every: int = DEFAULT_SPLIT_EVERY,
    callbacks: Sequence[Callable[[IterationInfo], None]] = (),
    on_iteration: Callable[[EMState], None] | None = None,
) -> list[EMResult]:
    """Iterate EM from each of ``starts`` until its mean log-likelihood converges.

    All candidates advance together: each iteration reads the data once and
    computes the statistics of every candidate still iterating.

    Parameters
    ----------
    data : the row chunks (and weights) of the data, or the passes to run: a function of the candidates
        giving their statistics lazily (a hidden Markov model's, :mod:`daskem.engine.sequences`).
    starts : each candidate's family and initial parameters, or the
        :class:`EMState` of an interrupted run to resume (ending bitwise as it
        would have).
    tol : under ``acceleration="none"`` a candidate stops when the change of
        its mean log-likelihood per unit weight (nats) between two passes is
        below ``tol``; under ``"squarem"`` when an EM step gained less than
        ``tol`` and the gain still to come is estimated below
        ``tol × REMAINING_FRACTION`` (see :mod:`daskem.engine.acceleration`).
    max_iter : at most this many passes over the data.
    acceleration : ``"squarem"`` (the default) or ``"none"``, textbook EM:
        one EM step (E-step + M-step) per pass.  Either way each pass
        evaluates one point per candidate and records one log-likelihood.
    callbacks : called after every iteration of every candidate with an
        :class:`IterationInfo`.
    on_iteration : called with the :class:`EMState` after every iteration
        (to checkpoint it).

    Returns
    -------
    One :class:`EMResult` per start, in order.  Components that collapse
    (less responsibility than one average row) restart at the worst-explained
    rows with a :class:`ComponentCollapseWarning`, at most ``MAX_RESEEDS``
    times each.
    """
    if acceleration not in ACCELERATIONS:
        raise ValueError(f"acceleration={acceleration!r} is not one of {ACCELERATIONS}")
    resumed = isinstance(starts, EMState)
    state = starts if resumed else EMState(0, [RunState(family, params) for family, params in starts])
    runs = state.runs
    if acceleration != "none" and not all(run.family.accelerates for run in runs):
        raise ValueError(f"acceleration={acceleration!r} cannot extrapolate the parameters of "
                         f"{[run.family.name for run in runs if not run.family.accelerates][0]} mixtures")
    active = [i for i, run in enumerate(runs) if not run.converged and state.iteration < max_iter]
    check = state.last_pass if resumed else None
    # One BLAS thread per task for the whole loop, M-steps included: entering the limit
    # scans the loaded libraries (ms), and BLAS threads left spinning would take cores from Dask's.
    next_pass = statistics_pass(data, split_every) if isinstance(data, Blocks) else data
    with one_blas_thread():
        checked = [] if check is None else [check[0]]
        if checked and not active:  # a finished run: one pass proves the data are the same
            (batch,) = dask.compute(next_pass(checked))
            _check_same_data(batch[0], check[1])
        for iteration in range(state.iteration + 1, max_iter + 1):
            if not active:
                break
            start = time.perf_counter()
            candidates = [(runs[i].family, runs[i].params) for i in active]
            (batch,) = dask.compute(next_pass(checked + candidates))
            seconds = time.perf_counter() - start
            if checked:  # the first pass after a resume
                _check_same_data(batch[0], check[1])
                batch, checked = batch[1:], []
            if iteration == 1:
                for (family, _), stats in zip(candidates, batch):
                    family.check_first_pass(stats)
            state.last_pass = (candidates[0], batch[0].objective)
            for i, stats in zip(active, batch):
                change, reseeded = runs[i].step_em(stats, tol, iteration, acceleration)
                for component, row in reseeded:
                    warnings.warn(
                        f"component {component} collapsed at iteration {iteration}; restarted at "
                        f"row {row}, the row the mixture explained worst",
                        ComponentCollapseWarning,
                        stacklevel=2,
                    )
                info = IterationInfo(iteration, runs[i].history[-1], change, seconds, runs[i].fitted, i,
                                     reseeded, runs[i].remaining(acceleration))
                for callback in callbacks:
                    callback(info)
            _log_iteration(iteration, [runs[i] for i in active], seconds, len(runs), acceleration)
            active = [i for i in active if not runs[i].converged]
            state.iteration = iteration
            if on_iteration is not None:
                on_iteration(state)
    return [run.result() for run in runs]


#: How far the log-likelihood of the checkpointed parameters may move on resume
#: (relative to 1 + its size): the same data and chunks give the same bits on
#: one machine; this allows only for another machine's BLAS rounding.
RESUME_TOLERANCE = 1e-12


def _check_same_data(stats: Statistics, expected: float) -> None:
    """Refuse to resume on data that give the checkpointed parameters another log-likelihood."""
    found = stats.objective
    if not abs(found - expected) <= RESUME_TOLERANCE * (1.0 + abs(expected)):
        raise DataChangedError(
            "the data are not those the checkpoint was written for: the parameters of its last pass have a "
            f"mean log-likelihood of {found!r} on them, {expected!r} when it was written; "
            "fit afresh with another checkpoint folder"
        )


def best_run(results: Sequence[EMResult]) -> EMResult:
    """The run with the highest lower bound (the first of equals, as scikit-learn)."""
    best = results[0]
    for result in results[1:]:
        if result.lower_bound > best.lower_bound:
            best = result
    return best


def _log_iteration(iteration: int, runs: list[RunState], seconds: float, total: int, acceleration: str) -> None:
    climbed = objective_name(runs[0].family)
    if total == 1:
        run = runs[0]
        change = run.history[-1] - (run.history[-2] if len(run.history) > 1 else -np.inf)
        remaining = run.remaining(acceleration)
        logger.info(
            "iteration %4d  %s %.8g  change %.3g  to go %s  %.2f s",
            iteration, climbed, run.history[-1], change, "?" if np.isnan(remaining) else f"~{remaining:.2g}", seconds,
        )
    else:
        logger.info(
            "iteration %4d  %d of %d candidates iterating  best %s %.8g  %.2f s",
            iteration, len(runs), total, climbed, max(run.history[-1] for run in runs), seconds,
        )


def objective_name(family: Family) -> str:
    """What EM climbs for ``family``, per unit weight, in words (see :attr:`Statistics.objective`)."""
    return "lower bound per row" if family.variational else "mean log-likelihood"
