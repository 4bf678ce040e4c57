"""Hidden Markov models: daskem's Baum–Welch against hmmlearn's, in the same run, and out of core.

A Gaussian HMM (K = 6 states, d = 8 features, full covariances, sticky transitions) draws the steps; both
libraries start from the same parameters (hmmlearn's covariance prior and daskem's reg_covar at 0, so that
they take the same steps) and run a fixed number of iterations:

1. in memory, 10⁶ steps in 1,000 sequences, and one sequence of 10⁶ steps: median seconds per iteration of
   each, the ratio daskem ÷ hmmlearn, and the largest difference of the parameters after the last step
   (relative to each array's scale);
2. where the time of one pass goes: the three parts of the E-step timed apart on one chunk — the emissions'
   log densities (``Family.log_prob``), the scaled forward–backward (``kernels/hmm.piece_statistics``) and the
   emissions' statistics under the posteriors (``posterior_statistics``) — and the pass's useful flops ÷ the
   dgemm rate measured in the same run;
3. out of core (with ``--workdir``): a Zarr store of ``--zarr-steps`` steps (one sequence, or sequences of
   ``--sequence-length``) fitted on the local threaded scheduler: seconds per iteration and the peak memory of
   the process, which should not grow with the steps.

    python benchmarks/bench_hmm.py                                   # in memory (about 3 min)
    python benchmarks/bench_hmm.py --steps 100000 --sequences 100    # a quick run
    python benchmarks/bench_hmm.py --workdir /scratch --zarr-steps 100000000   # and 10⁸ steps from Zarr
"""

from __future__ import annotations

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

import daskem
from daskem.kernels import hmm as hmm_kernels

K, D = 6, 8


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


def daskem_fit(X, lengths, values, iterations: int) -> tuple[daskem.GaussianHMM, list[float]]:
    seconds: list[float] = []
    model = set_attributes(daskem.GaussianHMM(K, reg_covar=0.0, init_params="", max_iter=iterations, tol=0.0),
                           values)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths, callbacks=[lambda info: seconds.append(info.seconds)])
    return model, seconds


def hmmlearn_fit(X, lengths, values, iterations: int):
    from hmmlearn.hmm import GaussianHMM

    model = set_attributes(GaussianHMM(K, "full", covars_prior=0.0, init_params="", n_iter=1,
                                       implementation="scaling"), values)
    seconds = [timed(lambda: model.fit(X, lengths))[0] for _ in range(iterations)]  # one step per call
    return model, seconds


def largest_difference(ours: daskem.GaussianHMM, theirs) -> float:
    return max(np.abs(a - b).max() / max(1.0, np.abs(b).max()) for a, b in (
        (ours.startprob_, theirs.startprob_), (ours.transmat_, theirs.transmat_), (ours.means_, theirs.means_),
        (ours.covars_, theirs.covars_)))


def flops_per_step() -> int:
    """Useful flops of one step of a pass: the log densities (a triangular solve, d² per state), the forward
    and backward recursions and the expected transitions (about 7 K²), and the second moments under the
    posteriors (d² per state, multiply and add)."""
    return K * D * D + 7 * K * K + 2 * K * D * D


def profile(X: np.ndarray, model: daskem.GaussianHMM) -> list[tuple[str, float]]:
    """Seconds of the three parts of the E-step on the rows X (one chunk, one sequence)."""
    family, params = model._family(), model.params_
    parts = []
    seconds, log_emission = timed(lambda: family.log_emission(X, params, 0))
    parts.append(("log densities (Family.log_prob)", seconds))
    seconds, (_, posteriors, _, _) = timed(lambda: hmm_kernels.piece_statistics(
        log_emission, params.startprob, params.transmat))
    parts.append(("forward–backward (numba)", seconds))
    seconds, _ = timed(lambda: family.emission.posterior_statistics(X, posteriors, params.emission, 0))
    parts.append(("statistics under the posteriors", seconds))
    return parts


def write_store(path: Path, model: dict[str, np.ndarray], n_steps: int, chunk_rows: int,
                rng: np.random.Generator) -> None:
    array = zarr.open_group(path, mode="w").create_array("X", shape=(n_steps, D), chunks=(chunk_rows, D),
                                                         dtype="float64")
    for first in range(0, n_steps, chunk_rows):
        array[first : first + chunk_rows] = draw(model, min(chunk_rows, n_steps - first), rng)


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--steps", type=int, default=1_000_000, help="steps of the in-memory data")
    options.add_argument("--sequences", type=int, default=1_000, help="how many sequences they make (first case)")
    options.add_argument("--iterations", type=int, default=3)
    options.add_argument("--zarr-steps", type=int, default=10_000_000)
    options.add_argument("--sequence-length", type=int, default=None, help="of the Zarr data (default: one)")
    options.add_argument("--chunk-rows", type=int, default=250_000, help="of the Zarr store")
    add_workdir_option(options, "where to write the Zarr store (default: no out-of-core case)")
    args = options.parse_args()
    rng = np.random.default_rng(0)
    model = truth(rng)
    X = draw(model, args.steps, rng)
    values = start(model, X, rng)
    rate = dgemm_rate()
    daskem_fit(X[:2000], [1000, 1000], values, 1)  # numba's compiled kernels loaded before any clock runs
    print(f"{args.steps:,} steps × {D} features, K = {K}, full covariance; {args.iterations} iterations from the "
          f"same start; dgemm {rate / 1e9:.0f} GFLOP/s in this run\n")
    print(f"{'case':34}{'daskem s/iter':>14}{'hmmlearn':>10}{'ratio':>8}{'largest diff':>14}{'÷ dgemm':>9}")
    for name, lengths in ((f"{args.sequences:,} sequences", [args.steps // args.sequences] * args.sequences),
                          ("one sequence", None)):
        if lengths is not None:
            lengths[-1] += args.steps - sum(lengths)
        ours, our_seconds = daskem_fit(X, lengths, values, args.iterations)
        theirs, their_seconds = hmmlearn_fit(X, lengths, values, args.iterations)
        mine, others = statistics.median(our_seconds), statistics.median(their_seconds)
        print(f"{name:34}{mine:14.3f}{others:10.3f}{mine / others:8.3f}{largest_difference(ours, theirs):14.1e}"
              f"{flops_per_step() * args.steps / mine / rate:9.3f}")
    chunk = X[:250_000]
    parts = profile(chunk, ours)
    total = sum(seconds for _, seconds in parts)
    print(f"\nwhere one pass's time goes ({len(chunk):,} steps, one thread):")
    for name, seconds in parts:
        print(f"  {name:36}{seconds:8.3f} s  {seconds / total:6.1%}")
    if args.workdir is None:
        return
    folder = Path(tempfile.mkdtemp(dir=args.workdir))
    try:
        path = folder / "steps.zarr"
        written = timed(lambda: write_store(path, model, args.zarr_steps, args.chunk_rows, rng))[0]
        lengths = None
        if args.sequence_length is not None:
            lengths = [args.sequence_length] * (args.zarr_steps // args.sequence_length)
            lengths[-1] += args.zarr_steps - sum(lengths)
        before = time.perf_counter()
        ours, our_seconds = daskem_fit(str(path), lengths, values, args.iterations)
        fitted = time.perf_counter() - before
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB → GiB
        size = args.zarr_steps * D * 8 / 2**30
        print(f"\nout of core: {args.zarr_steps:,} steps ({size:.1f} GiB, written in {written:.0f} s) from Zarr, "
              f"{'one sequence' if lengths is None else f'{len(lengths):,} sequences'}, chunks of "
              f"{args.chunk_rows:,}: median {statistics.median(our_seconds):.1f} s per iteration "
              f"({fitted:.0f} s in all), peak memory of the process {peak:.2f} GiB")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
