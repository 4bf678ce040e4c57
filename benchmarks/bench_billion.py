"""A billion rows on one small machine: 1,000,000,000 × 8 float32 rows, K = 4, full covariance.

The script writes the rows to a Zarr store on local disk with ``daskem
generate`` (timed), then fits them on a LocalCluster of 2 single-threaded
workers with a 4 GiB memory limit each, for 10 EM iterations with ``tol=0``
from fixed initial parameters.  It prints seconds per iteration (median),
rows per second per core, the peak memory of any worker (sampled every 0.2 s),
and the per-row cost at N ÷ the per-row cost at 10,000,000 rows fitted the same
way on the same cluster (the claim: memory bounded by the chunk and cost linear
in N, so this ratio stays near 1).

If the disk cannot hold the store (N × 36 bytes: rows and labels), the script
uses the largest N that fits, with a margin, and says so.

    python benchmarks/bench_billion.py --workdir /big/disk          # N = 1e9
    python benchmarks/bench_billion.py --workdir /tmp --n-samples 100000000
    python benchmarks/bench_billion.py --workdir /big/disk --reuse  # keep a store written earlier

The stores stay in ``--workdir`` (``billion-N.zarr``, ``billion-10000000.zarr``)
so that a second run can reuse them; delete them when done.
"""

from __future__ import annotations

import shutil
import statistics
import threading
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import psutil
from distributed import Client, LocalCluster
from harness import add_workdir_option, initial_parameters, parser, read_rows, timed

import daskem
from daskem.app.generate import generate, truth_path

N_FEATURES, N_COMPONENTS, CHUNK_ROWS = 8, 4, 500_000
BASELINE_ROWS = 10_000_000
BYTES_PER_ROW = N_FEATURES * 4 + 4  # float32 features and an int32 label
DISK_MARGIN = 0.9


def main() -> None:
    options = parser(__doc__)
    add_workdir_option(options, "a folder on local disk for the stores", required=True)
    options.add_argument("--n-samples", type=float, default=1e9)
    options.add_argument("--iterations", type=int, default=10)
    options.add_argument("--workers", type=int, default=2)
    options.add_argument("--memory-limit", default="4GiB")
    options.add_argument("--reuse", action="store_true", help="reuse stores this script wrote before")
    args = options.parse_args()
    n_samples = int(args.n_samples)
    stores = {n: args.workdir / f"billion-{n}.zarr" for n in (BASELINE_ROWS, n_samples)}
    fitting = largest_that_fits(args.workdir, n_samples, stores, args.reuse)
    if fitting != n_samples:
        print(f"the disk holds {fitting:,} rows, not {n_samples:,}: fitting {fitting:,}")
        stores[fitting] = args.workdir / f"billion-{fitting}.zarr"
        del stores[n_samples]
        n_samples = fitting

    generated = {}
    for n, path in stores.items():
        if args.reuse and path.exists():
            continue
        for old in (path, truth_path(path)):
            if old.exists():
                raise SystemExit(f"{old} exists: pass --reuse, or delete it")
        generated[n] = timed(partial(generate, path, n_samples=n, n_features=N_FEATURES, n_components=N_COMPONENTS,
                                     seed=0, chunk_rows=CHUNK_ROWS, dtype="float32"))[0]
        print(f"generated {n:,} rows in {generated[n]:.0f} s", flush=True)

    # the start: from the first chunk of the baseline store, in float64
    inits = initial_parameters(read_rows(stores[BASELINE_ROWS], CHUNK_ROWS).astype(np.float64), N_COMPONENTS)
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, memory_limit=args.memory_limit,
                      processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        results = {n: fit(client, path, inits, args.iterations) for n, path in sorted(stores.items())}

    cores = args.workers
    print(f"\n{n_samples:,} × {N_FEATURES} float32, K={N_COMPONENTS}, full covariance, {args.iterations} iterations, "
          f"tol=0; LocalCluster of {args.workers} single-threaded workers, {args.memory_limit} each")
    print(f"{'rows':>15}{'s/iteration':>13}{'rows/s/core':>14}{'peak worker MiB':>17}{'generate s':>12}")
    for n, (seconds, peak) in results.items():
        made = f"{generated[n]:.0f}" if n in generated else "reused"
        print(f"{n:>15,}{seconds:13.2f}{n / seconds / cores:14.3g}{peak / 2**20:17.0f}{made:>12}")
    small, large = results[BASELINE_ROWS][0] / BASELINE_ROWS, results[n_samples][0] / n_samples
    print(f"per-row cost at {n_samples:,} ÷ at {BASELINE_ROWS:,}: {large / small:.2f}")


def largest_that_fits(workdir: Path, n_samples: int, stores: dict[int, Path], reuse: bool) -> int:
    """``n_samples``, or the most rows (whole chunks) the free disk space holds."""
    needed = sum(n * BYTES_PER_ROW for n, path in stores.items() if not (reuse and path.exists()))
    free = shutil.disk_usage(workdir).free * DISK_MARGIN
    if needed <= free:
        return n_samples
    room = free - (0 if reuse and stores[BASELINE_ROWS].exists() else BASELINE_ROWS * BYTES_PER_ROW)
    return int(room // BYTES_PER_ROW) // CHUNK_ROWS * CHUNK_ROWS


def fit(client: Client, path: Path, inits: dict[str, np.ndarray], iterations: int) -> tuple[float, int]:
    """Median seconds per iteration and the peak memory (bytes) of any worker during the fit."""
    seconds: list[float] = []
    peak, done = [0], threading.Event()

    def sample_memory() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], max(client.run(lambda: psutil.Process().memory_info().rss).values()))
            done.wait(0.2)

    def record(iteration_seconds: float) -> None:
        seconds.append(iteration_seconds)
        print(f"  {path.name} iteration {len(seconds)}: {iteration_seconds:.2f} s, "
              f"peak worker memory so far {peak[0] / 2**20:.0f} MiB", flush=True)

    sampler = threading.Thread(target=sample_memory, daemon=True)
    sampler.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", daskem.ConvergenceWarning)
            model = daskem.GaussianMixture(N_COMPONENTS, tol=0, max_iter=iterations, **inits)
            model.fit(str(path), variable="X", callbacks=[lambda info: record(info.seconds)])
    finally:
        done.set()
        sampler.join()
    print(f"fitted {path.name}: {statistics.median(seconds):.2f} s per iteration, "
          f"peak worker memory {peak[0] / 2**20:.0f} MiB", flush=True)
    return statistics.median(seconds), peak[0]


if __name__ == "__main__":
    main()
