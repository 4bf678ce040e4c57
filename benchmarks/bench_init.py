"""What initialisation costs at many components, in EM iterations of the same fit.

For each case, daskem fits a Zarr store on disk with its default start
(k-means++ on a sample of rows), and the script times, interleaved:

- the start: a fit with ``max_iter=0`` (open the store, draw the sample, seed
  and refine k-means, estimate the parameters: all that comes before the
  first iteration);
- an iteration: (T(max_iter=1 + M) − T(max_iter=1)) / M, from the same start.

It prints the medians and the start ÷ iteration ratio.  For scale, the first
case also times scikit-learn's own start of a GaussianMixture
(``init_params="kmeans"``: KMeans with one seeding on every row), on the rows
in memory.  daskem's progress lines for its start are shown (INFO level).

    python benchmarks/bench_init.py                      # K=256 diag (200,000 × 8), K=2000 full (400,000 × 16)
    python benchmarks/bench_init.py --repeats 7 --skip-large
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import warnings
from pathlib import Path

import zarr
from bench_vs_sklearn import timed
from sklearn.cluster import KMeans

import daskem
from daskem.generate import generate

#: (rows, features, components, covariance type, iterations M per timed fit)
CASES = [(200_000, 8, 256, "diag", 4), (400_000, 16, 2000, "full", 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each (K=2000: at most 2)")
    parser.add_argument("--skip-large", action="store_true", help="only the K=256 case")
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the Zarr stores")
    args = parser.parse_args()
    logging.basicConfig(format="    %(message)s")
    logger = logging.getLogger("daskem")
    logger.setLevel(logging.INFO)
    logger.addFilter(lambda record: record.getMessage().startswith("initialis"))  # the start's lines only

    for number, (n_samples, n_features, n_components, covariance_type, iterations) in enumerate(CASES):
        if number and args.skip_large:
            break
        with tempfile.TemporaryDirectory(dir=args.workdir) as folder:
            path = str(Path(folder) / "bench.zarr")
            generate(path, n_samples=n_samples, n_features=n_features, n_components=n_components, seed=0)
            print(f"{n_samples:,} × {n_features}, K = {n_components}, {covariance_type}:")

            def fit(max_iter: int) -> float:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", daskem.ConvergenceWarning)
                    model = daskem.GaussianMixture(n_components, covariance_type=covariance_type, tol=0,
                                                   max_iter=max_iter, random_state=0)
                    return timed(lambda: model.fit(path, variable="X"))[0]

            fit(0)  # compiles nothing new, but warms the page cache and the imports
            starts, steps, theirs = [], [], []
            for _ in range(args.repeats if number == 0 else min(args.repeats, 2)):
                starts.append(fit(0))
                steps.append((fit(1 + iterations) - fit(1)) / iterations)
                if number == 0:
                    X = zarr.open_group(path, mode="r")["X"][:]
                    theirs.append(timed(lambda: KMeans(n_components, n_init=1, random_state=0).fit(X))[0])
            start, step = statistics.median(starts), statistics.median(steps)
            print(f"  daskem start {start:.3f} s, iteration {step:.3f} s: the start costs {start / step:.2f} "
                  f"iterations (medians of {len(starts)})")
            if theirs:
                reference = statistics.median(theirs)
                print(f"  scikit-learn's start (KMeans, one seeding, all rows in memory) {reference:.2f} s: "
                      f"daskem's ÷ scikit-learn's = {start / reference:.3f}")


if __name__ == "__main__":
    main()
