"""Memory stays bounded: peak worker memory at 1×, 10× and 100× the rows.

Writes Zarr stores of N, 10·N and 100·N rows × 16 float64 (same chunk size;
the largest is 5.1 GB at the default N = 400,000) and fits each on a
LocalCluster whose workers may use 1 GiB each. For each size it reports the
peak memory of any worker (sampled from the scheduler every 0.1 s), whether a
worker spilled to disk, and whether a worker process died. Peak memory should
not grow with the number of rows.

    python benchmarks/bench_memory.py                  # needs ~5 GB of disk
    python benchmarks/bench_memory.py --base-rows 40000 --workdir /scratch
    python benchmarks/bench_memory.py --model hmm      # a Gaussian HMM: all the rows one sequence

With ``--model hmm`` the fit is a ``GaussianHMM`` (8 states) whose one sequence
spans every chunk: its forward and backward chains of tasks run over all of them,
one task per stored chunk (``chunk_rows``) at every scale.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from functools import partial
from pathlib import Path

from distributed import Client, LocalCluster
from harness import CHUNK_ROWS, add_workdir_option, parser, timed

import daskem
from daskem.app.generate import generate
from daskem.io.inputs import as_row_chunked


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--base-rows", type=int, default=400_000)
    options.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    options.add_argument("--n-features", type=int, default=16)
    options.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    options.add_argument("--iterations", type=int, default=3)
    options.add_argument("--memory-limit", default="1GiB")
    options.add_argument("--model", choices=["mixture", "hmm"], default="mixture",
                         help="a GaussianMixture (8 components), or a GaussianHMM (8 states) of one sequence")
    add_workdir_option(options, None)
    args = options.parse_args()

    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
        for scale in args.scales:
            n_samples = args.base_rows * scale
            path = Path(folder) / f"x{scale}.zarr"
            written = timed(partial(generate, path, n_samples=n_samples, n_features=args.n_features, n_components=8,
                                    seed=0, chunk_rows=args.chunk_rows))[0]
            gigabytes = n_samples * args.n_features * 8 / 1e9
            peak, spilled, died, seconds, chunks = fit_watched(str(path), args)
            rows.append((scale, n_samples, gigabytes, chunks, peak, spilled, died, seconds, written))
            print(f"{scale:>4}×: {n_samples:,} rows ({gigabytes:.2f} GB) written in {written:.0f} s, "
                  f"fitted in {seconds:.0f} s; peak worker memory {peak / 2**20:.0f} MiB", flush=True)

    print()
    print(f"{'GaussianHMM, one sequence' if args.model == 'hmm' else 'GaussianMixture'}; LocalCluster: 2 workers × "
          f"1 thread, memory limit {args.memory_limit} each; {args.iterations} EM iterations; Zarr chunks of "
          f"{args.chunk_rows:,} rows")
    print(f"{'scale':>6}{'rows':>14}{'GB':>8}{'chunks':>8}{'peak MiB':>10}{'spilled':>9}{'died':>6}{'fit s':>8}")
    for scale, n, gb, chunks, peak, spilled, died, seconds, _ in rows:
        print(f"{scale:>5}×{n:>14,}{gb:>8.2f}{chunks:>8}{peak / 2**20:>10.0f}{'yes' if spilled else 'no':>9}"
              f"{'yes' if died else 'no':>6}{seconds:>8.0f}")
    growth = rows[-1][4] / rows[0][4]
    print(f"peak memory at {rows[-1][0]}× the rows / at {rows[0][0]}×: {growth:.2f}")


def fit_watched(path: str, args) -> tuple[int, bool, bool, float, int]:
    """Fit on a fresh LocalCluster; return peak worker memory, spilled?, died?, seconds, chunks."""
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=args.memory_limit,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = client.run(lambda: __import__("os").getpid())
        peak, done = [0], threading.Event()

        def sample() -> None:
            while not done.is_set():
                for worker in client.scheduler_info()["workers"].values():
                    peak[0] = max(peak[0], worker["metrics"]["memory"])
                done.wait(0.1)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", daskem.ConvergenceWarning)
            if args.model == "hmm":  # tasks of the stored chunks at every scale: the chain's links the same
                model = daskem.GaussianHMM(8, tol=0, max_iter=args.iterations, random_state=0,
                                           chunk_rows=args.chunk_rows)
            else:
                model = daskem.GaussianMixture(8, tol=0, max_iter=args.iterations, random_state=0)
            seconds = timed(lambda: model.fit(path, variable="X"))[0]
        done.set()
        watcher.join()
        spilled = any(size.disk > 0 for size in client.run(lambda dask_worker: dask_worker.data.spilled_total).values())
        died = client.run(lambda: __import__("os").getpid()) != pids
        chunks = as_row_chunked(path, "X", chunk_rows=args.chunk_rows if args.model == "hmm" else None).numblocks[0]
    return peak[0], spilled, died, seconds, chunks


if __name__ == "__main__":
    main()
