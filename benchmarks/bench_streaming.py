"""Learning from each new batch: ``partial_fit`` over a stream against ``fit`` on all of it.

A Zarr store of ``--n-samples`` rows (10⁷ by default) drawn from a Gaussian mixture is read as
``--batches`` batches (100) of consecutive rows, and the script prints, in the same run:

- the batch fit: ``GaussianMixture.fit`` on the whole store — its passes over the data, seconds, the
  seconds of one full pass (a ``score`` of the store: read, E-step, sums), and its held-out mean
  log-likelihood (on rows drawn apart from the same mixture);
- the stream: ``partial_fit`` on each batch in turn (the first fits on its batch) — seconds in all, the
  median seconds per batch after the first, and the held-out mean log-likelihood after 10 %, 50 % and all
  of the batches;
- the ratios that matter: a batch's time ÷ a full pass's (ideally 1 / batches), and how many of the batch
  fit's passes reach the log-likelihood (on the whole data) that the stream reached after reading it once.

    python benchmarks/bench_streaming.py --workdir /tmp                        # 10⁷ × 8, K = 8, 100 batches
    python benchmarks/bench_streaming.py --workdir /tmp --n-samples 1000000 --decay 1.0
"""

from __future__ import annotations

import statistics
import warnings

import dask.array as da
import harness
import numpy as np

import daskem
from daskem.kernels.gaussian import random_mixture, sample


def main() -> None:
    parser = harness.parser(__doc__)
    harness.add_shape_options(parser, n_samples=10_000_000, n_features=8, n_components=8)
    harness.add_workdir_option(parser, required=True)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--decay", type=float, default=0.7)
    parser.add_argument("--held-out", type=int, default=200_000, help="rows drawn apart to score the models on")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    truth = random_mixture(args.n_components, args.n_features, rng, separation=3.0)
    path = args.workdir / f"stream-{args.n_samples}.zarr"
    batch_rows = args.n_samples // args.batches
    if not path.exists():
        X, _ = sample(truth, args.n_samples, rng)
        X = X[rng.permutation(len(X))]  # a stationary stream: every batch drawn from the whole mixture
        harness.write_rows(path, X, chunk_rows=batch_rows)
        del X
    held_out, _ = sample(truth, args.held_out, np.random.default_rng(1))
    rows = da.from_zarr(str(path), component="X")
    settings = dict(n_components=args.n_components, random_state=0, chunk_rows=batch_rows)
    print(f"{args.n_samples:,} rows × {args.n_features} features, K = {args.n_components} (full), "
          f"{args.batches} batches of {batch_rows:,} rows, decay {args.decay}; held out: {args.held_out:,} rows")

    fit_seconds, batch = harness.timed(lambda: daskem.GaussianMixture(**settings, tol=1e-6, max_iter=500).fit(
        str(path), variable="X"))
    per_pass, _ = harness.timed(lambda: batch.score(str(path), variable="X"))  # one pass: read, E-step, sum
    print(f"fit:     {batch.n_iter_} passes, {fit_seconds:.1f} s; one full pass {per_pass:.2f} s; "
          f"held-out {batch.score(held_out):.6f} per row")

    stream = daskem.GaussianMixture(**settings, decay=args.decay)
    times, checkpoints = [], {max(1, args.batches // 10), args.batches // 2, args.batches}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", daskem.ConvergenceWarning)
        for i in range(args.batches):
            seconds, _ = harness.timed(lambda: stream.partial_fit(rows[i * batch_rows : (i + 1) * batch_rows]))
            times.append(seconds)
            if i + 1 in checkpoints:
                print(f"stream:  after {i + 1:>4} batches ({sum(times):.1f} s): held-out "
                      f"{stream.score(held_out):.6f} per row")
    typical = statistics.median(times[1:])
    print(f"stream:  {sum(times):.1f} s in all, of which {times[0]:.1f} s the first batch's fit; "
          f"{typical:.3f} s per later batch (median)")
    reached = stream.score(str(path), variable="X")
    passes = next((i + 1 for i, value in enumerate(batch.history_) if value >= reached), None)
    print(f"ratios:  a batch's time / a full pass's {typical / per_pass:.4f} (1 / batches = {1 / args.batches:.4f}); "
          f"held-out gap to the batch fit {batch.score(held_out) - stream.score(held_out):.2e} per row; "
          f"the batch fit reaches the stream's log-likelihood on all rows ({reached:.6f}) "
          + (f"after {passes} passes" if passes else "never"))


if __name__ == "__main__":
    main()
