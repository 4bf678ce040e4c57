"""The read path: what a Zarr codec costs a fit, against the same rows in memory.

The same rows (drawn from a random mixture, as ``daskem generate`` draws them)
are written to Zarr stores with several codecs.  For each the script prints
the compression ratio and the time to decode one chunk, then fits K
components from the same start (``tol=0``) to the rows in memory and to each
store (page-cached after the first read), interleaved, and prints the median
seconds per iteration and the ratio store ÷ memory.  Last, the cost of the
CRC32C checksum that ``daskem generate`` writes: the median, over the runs,
of each run's ratio checksummed ÷ plain uncompressed store (the two fits of a
run follow each other, so slow spells of a shared machine hit both).

    python benchmarks/bench_read.py                   # 400,000 × 16 float64, K = 8
    python benchmarks/bench_read.py --dtype float32
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import numpy as np
import zarr
from harness import (
    CHUNK_ROWS,
    add_dtype_option,
    add_shape_options,
    initial_parameters,
    mixture_rows,
    n_chunks,
    parser,
    timed,
)
from zarr.codecs import BloscCodec, Crc32cCodec, ZstdCodec

import daskem

PLAIN, CHECKSUMMED = "none", "none + crc32c (generate)"
CODECS = {
    PLAIN: None,
    CHECKSUMMED: Crc32cCodec(),
    "zstd (Zarr's default)": ZstdCodec(level=0),
    "blosc lz4 bitshuffle": BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),
    "blosc lz4, no shuffle": BloscCodec(cname="lz4", clevel=5, shuffle="noshuffle"),
}


def main() -> None:
    options = parser(__doc__)
    add_shape_options(options)
    options.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    options.add_argument("--iterations", type=int, default=5)
    options.add_argument("--repeats", type=int, default=3)
    add_dtype_option(options)
    args = options.parse_args()

    X, _ = mixture_rows(args.n_samples, args.n_features, args.n_components, np.random.default_rng(0))
    X = X.astype(args.dtype)
    inits = initial_parameters(X.astype(np.float64), args.n_components)
    with tempfile.TemporaryDirectory() as folder:
        stores = {}
        print(f"{args.n_samples:,} × {args.n_features} {args.dtype}, chunks of {args.chunk_rows:,} rows, "
              f"K = {args.n_components}, {args.iterations} iterations, {args.repeats} interleaved runs")
        print()
        print(f"{'codec':<34} {'ratio':>6} {'decode ms/chunk':>16}")
        for name, codec in CODECS.items():
            path = Path(folder) / f"{len(stores)}.zarr"
            array = zarr.create_array(path, shape=X.shape, chunks=(args.chunk_rows, X.shape[1]), dtype=X.dtype,
                                      compressors=codec)
            array[:] = X
            size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            chunks = n_chunks(len(X), args.chunk_rows)
            decode = statistics.median(timed(lambda a=array: a[:])[0] for _ in range(5)) / chunks
            print(f"{name:<34} {X.nbytes / size:6.2f} {decode * 1e3:16.1f}")
            stores[name] = str(path)
        times: dict[str, list[float]] = {"memory": [], **{name: [] for name in stores}}
        for _ in range(args.repeats):
            times["memory"].append(fit(X, inits, args))
            for name, path in stores.items():
                times[name].append(fit(path, inits, args))
    memory = statistics.median(times["memory"])
    print()
    print(f"{'input':<34} {'s/iteration':>12} {'÷ memory':>9}")
    for name, seconds in times.items():
        print(f"{name:<34} {statistics.median(seconds):12.3f} {statistics.median(seconds) / memory:9.2f}")
    paired = [checked / plain for checked, plain in zip(times[CHECKSUMMED], times[PLAIN])]
    print()
    print(f"checksum cost, {CHECKSUMMED} ÷ {PLAIN} per run: median {statistics.median(paired):.3f} "
          f"(runs {', '.join(f'{ratio:.3f}' for ratio in paired)})")


def fit(data, inits: dict, args: argparse.Namespace) -> float:
    model = daskem.GaussianMixture(args.n_components, tol=0, max_iter=args.iterations, chunk_rows=args.chunk_rows,
                                   **inits)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        return timed(lambda: model.fit(data))[0] / args.iterations


if __name__ == "__main__":
    main()
