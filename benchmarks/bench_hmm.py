"""Hidden Markov models: daskem's Baum–Welch against hmmlearn's, in the same run; where a pass's time goes;
and out of core.

A Gaussian HMM (K = 6 states, d = 8 features, full covariances, sticky transitions, well-separated means)
draws the steps; both libraries start from the same parameters (``init_params=""``; hmmlearn's
``covars_prior`` and daskem's ``reg_covar`` at 0, so that they take the same steps) and run a fixed number of
iterations (daskem ``tol=0``; hmmlearn one ``n_iter=1`` fit per iteration, ``implementation="scaling"``, with
one BLAS thread as daskem's tasks have: its products are d × d, and on a small shared machine a second OpenBLAS
thread made some of its iterations 10× slower, for many short sequences):

1. in memory, ``--steps`` (10⁶) steps in ``--sequences`` (1,000) sequences, and one sequence of as many steps,
   ``--rounds`` fits of each library in turn: median seconds per iteration of each (daskem: wall clock from
   one iteration's end to the next, M-step included), the ratio daskem ÷ hmmlearn, the largest difference of
   the parameters after the last step (relative to each array's scale) and the useful flops per second ÷ the
   dgemm rate of the same run;
2. where the time of one pass goes, on one chunk of the rows the fit reads (one BLAS thread, as in a task):
   the emissions' log densities (``Family.log_prob`` through ``HiddenMarkovFamily.log_emission``), the scaled
   forward recursion (``kernels/hmm.forward_message``), the backward recursion with the expected transitions
   (``kernels/hmm.piece_statistics`` less the forward), and the emissions' statistics under the posteriors
   (``posterior_statistics`` → ``weighted_moments``, the family's ``assignment_statistics`` for posteriors):
   seconds, share, useful flops per step and their rate ÷ one core's share of the dgemm rate.  Then the chunk's
   tasks as a pass runs them — a chunk of whole sequences (one task), and a chunk of a sequence split over
   chunks (a forward task and a backward task, which reads the chunk again and recomputes its log densities
   and forward messages) — and the seconds per iteration they predict for the fits of 1., against those
   measured (the rest is scheduling, the M-step and idle cores);
3. out of core (only with ``--workdir``, where the store goes; removed after): a Zarr store of ``--zarr-steps``
   (10⁸, 6.4 GB) steps, one sequence or sequences of ``--sequence-length``, in chunks of ``--chunk-rows``,
   fitted on the local threaded scheduler in a process of its own: seconds per iteration and the peak memory
   of that process, which should not grow with the steps (see also ``bench_memory.py --model hmm``).

    python benchmarks/bench_hmm.py                                    # in memory, 10⁶ steps (about 2 min)
    python benchmarks/bench_hmm.py --steps 100000 --sequences 100     # a quick run
    python benchmarks/bench_hmm.py --workdir /scratch                 # and 10⁸ steps from Zarr (5 min more)
    python benchmarks/bench_hmm.py --steps 100000 --workdir /scratch --zarr-steps 1000000 --chunk-rows 100000
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import zarr
from harness import add_workdir_option, dgemm_rate, parser, timed
from threadpoolctl import threadpool_limits

import daskem
from daskem.io.inputs import as_row_chunked
from daskem.kernels import hmm as hmm_kernels

K, D = 6, 8

#: Useful flops of one step of a pass, by part: the log densities (whitening, a triangular solve: d² per
#: state), the forward recursion (a K × K product), the backward recursion with the expected transitions (a
#: K × K product for β, three products per (j, k) for ξ), the emissions' second moments (a weighted outer
#: product: 2 d² per state).  Exponentials, normalisations and first moments (O(K d)) are left out.
FLOPS = {"log densities": K * D * D, "forward": 2 * K * K, "backward + transitions": 5 * K * K,
         "statistics": 2 * K * D * D}


def truth(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """The model that draws the steps: well-separated means, random covariances, sticky transitions."""
    factors = rng.normal(size=(K, D, D)) / np.sqrt(D) + np.eye(D)
    transmat = np.full((K, K), 0.05 / (K - 1)) + np.eye(K) * (0.95 - 0.05 / (K - 1))
    return {"startprob": np.full(K, 1.0 / K), "transmat": transmat, "means": rng.normal(scale=4.0, size=(K, D)),
            "cholesky": factors}


def draw(model: dict[str, np.ndarray], n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """``n_steps`` steps of one chain (the runs of a state are geometric: no loop over steps)."""
    stay = model["transmat"][0, 0]
    runs = rng.geometric(1.0 - stay, size=n_steps // 2 + 16)
    moves = rng.integers(1, K, size=len(runs))
    states = np.repeat((np.cumsum(moves) + rng.integers(K)) % K, runs)[:n_steps]
    noise = rng.standard_normal((n_steps, D))
    return np.einsum("nij,nj->ni", model["cholesky"][states], noise) + model["means"][states]


def start(model: dict[str, np.ndarray], X: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A start both libraries take: the true means moved by one unit, the data's covariance for every state,
    uniform start probabilities and mildly sticky transitions."""
    transmat = np.full((K, K), 1.0 / K) + 0.5 * np.eye(K)
    return {"startprob_": np.full(K, 1.0 / K), "transmat_": transmat / transmat.sum(axis=1, keepdims=True),
            "means_": model["means"] + rng.normal(size=(K, D)), "covars_": np.stack([np.cov(X[:100_000].T)] * K)}


def set_attributes(estimator, values):
    for name, value in values.items():
        setattr(estimator, name, value)
    return estimator


def daskem_fit(X, lengths, values, iterations: int, **settings) -> tuple[daskem.GaussianHMM, list[float]]:
    """A fit of ``iterations`` Baum–Welch steps from ``values``; the model and each iteration's wall seconds."""
    ends = [time.perf_counter()]
    model = set_attributes(daskem.GaussianHMM(K, reg_covar=0.0, init_params="", max_iter=iterations, tol=0.0,
                                              **settings), values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths, callbacks=[lambda info: ends.append(time.perf_counter())])
    return model, np.diff(ends).tolist()


def hmmlearn_fit(X, lengths, values, iterations: int):
    from hmmlearn.hmm import GaussianHMM

    model = set_attributes(GaussianHMM(K, "full", covars_prior=0.0, init_params="", n_iter=1,
                                       implementation="scaling"), values)
    with threadpool_limits(limits=1, user_api="blas"):  # as daskem's tasks run (see the module's notes)
        seconds = [timed(lambda: model.fit(X, lengths))[0] for _ in range(iterations)]  # one step per call
    return model, seconds


def largest_difference(ours: daskem.GaussianHMM, theirs) -> float:
    return max(np.abs(a - b).max() / max(1.0, np.abs(b).max()) for a, b in (
        (ours.startprob_, theirs.startprob_), (ours.transmat_, theirs.transmat_), (ours.means_, theirs.means_),
        (ours.covars_, theirs.covars_)))


def median_run(work, repeats: int) -> tuple[float, object]:
    """The median seconds of ``repeats`` runs of ``work()``, and what the last returned."""
    runs = [timed(work) for _ in range(repeats)]
    return statistics.median(seconds for seconds, _ in runs), runs[-1][1]


def profile(X: np.ndarray, model: daskem.GaussianHMM, length: int, repeats: int
            ) -> tuple[list[tuple[str, float]], dict]:
    """Median seconds of the parts of the E-step on the rows X (one chunk, one sequence, one BLAS thread), and
    of the chunk's tasks as a pass runs them (whole sequences of ``length`` steps, or a piece of one)."""
    family, params = model._family(), model.params_
    start_, transmat = params.startprob, params.transmat
    lengths = in_lengths(len(X), length) or [len(X)]
    with threadpool_limits(limits=1, user_api="blas"):
        densities, log_emission = median_run(lambda: family.log_emission(X, params, 0), repeats)
        forward, (_, incoming) = median_run(
            lambda: hmm_kernels.forward_message(log_emission, start_, transmat), repeats)
        both, (_, posteriors, _, beta) = median_run(
            lambda: hmm_kernels.piece_statistics(log_emission, start_, transmat), repeats)
        moments = median_run(
            lambda: family.emission.posterior_statistics(X, posteriors, params.emission, 0), repeats)[0]
        tasks = {
            "whole": median_run(lambda: family.sequences_statistics(X, params, 0, lengths), repeats)[0],
            "forward task": median_run(lambda: family.forward_message(X, params, 0, incoming), repeats)[0],
            "backward task": median_run(lambda: family.piece_statistics(X, params, 0, incoming, beta), repeats)[0]}
    parts = [("log densities", densities), ("forward", forward), ("backward + transitions", both - forward),
             ("statistics", moments)]
    return parts, tasks


def write_store(path: Path, model: dict[str, np.ndarray], n_steps: int, chunk_rows: int,
                rng: np.random.Generator) -> None:
    array = zarr.open_group(path, mode="w").create_array("X", shape=(n_steps, D), chunks=(chunk_rows, D),
                                                         dtype="float64", compressors=None)
    for first in range(0, n_steps, chunk_rows):
        array[first : first + chunk_rows] = draw(model, min(chunk_rows, n_steps - first), rng)


def peak_memory() -> float:
    """The peak resident memory (GiB) of this process's own memory map: ``VmHWM``, which an ``exec`` starts
    afresh (``ru_maxrss`` keeps that of the process it was forked from); ``ru_maxrss`` where there is no
    ``/proc``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**20  # kB → GiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def out_of_core(path: str, lengths, values, iterations: int, warm: np.ndarray) -> tuple[list[float], float, float]:
    """In a process of its own: the fit's seconds per iteration, and the process's peak memory (GiB) before
    the fit (imports, the parameters, a fit of the few rows ``warm`` that loads numba's kernels) and over all
    of it."""
    daskem_fit(warm, None, values, 1)
    before = peak_memory()
    seconds = daskem_fit(path, lengths, values, iterations)[1]
    return seconds, before, peak_memory()


def in_lengths(n_steps: int, length: int | None) -> list[int] | None:
    if length is None or length >= n_steps:
        return None
    lengths = [length] * (n_steps // length)
    lengths[-1] += n_steps - sum(lengths)
    return lengths


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--steps", type=int, default=1_000_000, help="steps of the in-memory data")
    options.add_argument("--sequences", type=int, default=1_000, help="how many sequences they make (first case)")
    options.add_argument("--iterations", type=int, default=3)
    options.add_argument("--rounds", type=int, default=2, help="fits of each library per case, in turn")
    options.add_argument("--repeats", type=int, default=5, help="runs of each part timed in the profile")
    options.add_argument("--zarr-steps", type=int, default=100_000_000, help="steps of the Zarr store")
    options.add_argument("--sequence-length", type=int, default=None, help="of the Zarr data (default: one)")
    options.add_argument("--chunk-rows", type=int, default=250_000, help="rows per chunk of the Zarr store")
    add_workdir_option(options, "where to write the Zarr store (default: no out-of-core case)")
    args = options.parse_args()
    rng = np.random.default_rng(0)
    model = truth(rng)
    X = draw(model, args.steps, rng)
    values = start(model, X, rng)
    rate, cores = dgemm_rate(), os.cpu_count() or 1
    daskem_fit(X[:2000], [1000, 1000], values, 1)  # numba's compiled kernels loaded before any clock runs
    hmmlearn_fit(X[:2000], [1000, 1000], values, 2)  # and hmmlearn's first fit's costs paid
    print(f"{args.steps:,} steps × {D} features, K = {K}, full covariance; {args.iterations} iterations from the "
          f"same start; dgemm {rate / 1e9:.0f} GFLOP/s ({cores} cores) in this run\n")
    print(f"{'in memory':28}{'daskem s/iter':>14}{'hmmlearn':>10}{'ratio':>8}{'largest diff':>14}{'÷ dgemm':>9}")
    measured, length = {}, args.steps // args.sequences
    for name, lengths in (("whole", in_lengths(args.steps, length)), ("split", None)):
        our_seconds, their_seconds = [], []
        for _ in range(args.rounds):  # the libraries in turn, so that both see the machine's load
            ours, seconds = daskem_fit(X, lengths, values, args.iterations)
            our_seconds += seconds
            theirs, seconds = hmmlearn_fit(X, lengths, values, args.iterations)
            their_seconds += seconds
        mine, others = statistics.median(our_seconds), statistics.median(their_seconds)
        measured[name] = mine
        label = f"{len(lengths):,} sequences" if lengths else "one sequence"
        print(f"{label:28}{mine:14.3f}{others:10.3f}{mine / others:8.3f}{largest_difference(ours, theirs):14.1e}"
              f"{sum(FLOPS.values()) * args.steps / mine / rate:9.4f}")
    chunks = as_row_chunked(X).chunks[0]
    chunk = X[: chunks[0]]
    parts, tasks = profile(chunk, ours, min(length, len(chunk)), args.repeats)
    total, n = sum(seconds for _, seconds in parts), len(chunk)
    print(f"\nwhere a pass's time goes: one chunk of {n:,} steps (of {len(chunks)} the fit reads), one BLAS thread; "
          f"median of {args.repeats}; one core's share of dgemm {rate / cores / 1e9:.1f} GFLOP/s")
    print(f"{'part':28}{'s':>8}{'share':>8}{'ns/step':>9}{'flops/step':>12}{'GFLOP/s':>9}{'÷ dgemm/core':>14}")
    for name, seconds in parts:
        flops = FLOPS[name] * n / seconds
        print(f"{name:28}{seconds:8.3f}{seconds / total:8.1%}{seconds / n * 1e9:9.0f}{FLOPS[name]:12,}"
              f"{flops / 1e9:9.2f}{flops / (rate / cores):14.4f}")
    print(f"{'sum of the parts':28}{total:8.3f}{1:8.1%}{total / n * 1e9:9.0f}{sum(FLOPS.values()):12,}"
          f"{sum(FLOPS.values()) * n / total / 1e9:9.2f}{sum(FLOPS.values()) * n / total / (rate / cores):14.4f}")
    print(f"\nthe chunk's tasks (s): whole sequences of {min(length, n):,} steps {tasks['whole']:.3f} (sum of the "
          f"parts {total:.3f}); a split sequence's forward task {tasks['forward task']:.3f} + backward task "
          f"{tasks['backward task']:.3f} = "
          f"{tasks['forward task'] + tasks['backward task']:.3f}")
    # Whole sequences: the chunks' tasks share the cores; one sequence: its forward chain, then its backward
    # chain, one task at a time (the last chunk has no forward task).
    predicted = {"whole": len(chunks) * tasks["whole"] / min(cores, len(chunks)),
                 "split": (len(chunks) - 1) * tasks["forward task"] + len(chunks) * tasks["backward task"]}
    print(f"{'s/iter':28}{'tasks predict':>14}{'measured':>10}{'rest':>8}")
    for name, label in (("whole", f"{args.sequences:,} sequences"), ("split", "one sequence")):
        print(f"{label:28}{predicted[name]:14.3f}{measured[name]:10.3f}{1 - predicted[name] / measured[name]:8.1%}")
    if args.workdir is None:
        return
    folder = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        path = folder / "steps.zarr"
        written = timed(lambda: write_store(path, model, args.zarr_steps, args.chunk_rows, rng))[0]
        lengths = in_lengths(args.zarr_steps, args.sequence_length)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            seconds, before, peak = pool.apply(out_of_core, (str(path), lengths, values, args.iterations, X[:2000]))
        size = args.zarr_steps * D * 8 / 2**30
        print(f"\nout of core: {args.zarr_steps:,} steps ({size:.1f} GiB, written in {written:.0f} s) from Zarr, "
              f"{'one sequence' if lengths is None else f'{len(lengths):,} sequences'}, chunks of "
              f"{args.chunk_rows:,} ({args.chunk_rows * D * 8 / 2**20:.0f} MiB), local threaded scheduler")
        print(f"{'s/iter median':>14}{'min':>8}{'max':>8}{'steps/s':>12}{'÷ dgemm':>9}{'peak GiB':>10}"
              f"{'before fit':>12}")
        median = statistics.median(seconds)
        print(f"{median:14.1f}{min(seconds):8.1f}{max(seconds):8.1f}{args.zarr_steps / median:12.3g}"
              f"{sum(FLOPS.values()) * args.zarr_steps / median / rate:9.4f}{peak:10.2f}{before:12.2f}")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
