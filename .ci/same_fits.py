"""Check that a change leaves every fit bitwise the same: fit at two commits, compare what they wrote.

    python .ci/same_fits.py write OUT      # fit every case with the daskem on the path, write to OUT
    python .ci/same_fits.py compare A B    # exit 1 unless A and B hold the same bits

Only the public API is used (estimators, ``select``, ``load``, the command line), so the script runs
unchanged against a commit whose modules are laid out differently:

    git worktree add /tmp/before <commit>
    PYTHONPATH=/tmp/before .venv/bin/python .ci/same_fits.py write /tmp/fits-before
    .venv/bin/python .ci/same_fits.py write /tmp/fits-after
    .venv/bin/python .ci/same_fits.py compare /tmp/fits-before /tmp/fits-after

Cases: every family, the four covariance types, float32 data, missing values, weights, n_init,
textbook and accelerated EM, a warm start, ``select`` over families, scoring and imputation, and
the command line's fit and select on a Zarr store.  Each model is written as a model file; scores
as ``.npy``.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

import daskem

SEED = 0


def gaussian_rows(n: int = 3000, d: int = 4, k: int = 3) -> np.ndarray:
    """Overlapping Gaussian blobs far from the origin (where rounding shows)."""
    rng = np.random.default_rng(SEED)
    centres = rng.normal(0.0, 3.0, (k, d)) + 1e3
    return centres[rng.integers(0, k, n)] + rng.normal(0.0, 1.0, (n, d))


def with_holes(X: np.ndarray, fraction: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(SEED + 1)
    X = X.copy()
    X[rng.random(X.shape) < fraction] = np.nan
    return X


def binary_rows(n: int = 3000, d: int = 8) -> np.ndarray:
    rng = np.random.default_rng(SEED + 2)
    p = rng.uniform(0.05, 0.95, (3, d))
    return (rng.random((n, d)) < p[rng.integers(0, 3, n)]).astype(np.float64)


def count_rows(n: int = 3000, d: int = 5) -> np.ndarray:
    rng = np.random.default_rng(SEED + 3)
    rates = rng.uniform(0.5, 20.0, (3, d))
    return rng.poisson(rates[rng.integers(0, 3, n)]).astype(np.float64)


def fits() -> dict[str, daskem.GaussianMixture]:
    """Every case's fitted model, by name."""
    X, B, C = gaussian_rows(), binary_rows(), count_rows()
    weights = np.random.default_rng(SEED + 4).uniform(0.5, 2.0, len(X))
    common = dict(random_state=SEED, chunk_rows=700)
    models = {}
    for covariance_type in ("full", "tied", "diag", "spherical"):
        for acceleration in ("squarem", "none"):
            models[f"gaussian-{covariance_type}-{acceleration}"] = daskem.GaussianMixture(
                3, covariance_type=covariance_type, acceleration=acceleration, **common).fit(X)
        models[f"gaussian-{covariance_type}-missing"] = daskem.GaussianMixture(
            3, covariance_type=covariance_type, **common).fit(with_holes(X))
    models["gaussian-float32"] = daskem.GaussianMixture(3, **common).fit(X.astype(np.float32) - 1e3)
    models["gaussian-weighted"] = daskem.GaussianMixture(3, **common).fit(X, sample_weight=weights)
    models["gaussian-n-init"] = daskem.GaussianMixture(3, n_init=3, init_params="kmeans", **common).fit(X)
    models["gaussian-k20-random"] = daskem.GaussianMixture(20, init_params="random", covariance_type="diag",
                                                           max_iter=20, **common).fit(X)
    warm = daskem.GaussianMixture(3, max_iter=4, warm_start=True, **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm.fit(X)
        models["gaussian-warm"] = warm.fit(X)
    for acceleration in ("squarem", "none"):
        models[f"bernoulli-{acceleration}"] = daskem.BernoulliMixture(3, acceleration=acceleration,
                                                                      **common).fit(B)
        models[f"poisson-{acceleration}"] = daskem.PoissonMixture(3, acceleration=acceleration, **common).fit(C)
    models["bernoulli-missing"] = daskem.BernoulliMixture(3, **common).fit(with_holes(B))
    models["poisson-missing"] = daskem.PoissonMixture(3, min_rate=1e-3, **common).fit(with_holes(C))
    selection = daskem.select(with_holes(C), n_components=[1, 2, 3, 4],
                              families=["gaussian", "poisson"], covariance_types=("full", "diag"), **common)
    models["select-best"] = selection.best_
    for i, model in enumerate(selection.models):
        models[f"select-{i:02d}"] = model
    return models


def write(out: Path) -> None:
    out.mkdir(parents=True)
    models = fits()
    X = with_holes(gaussian_rows())
    for name, model in models.items():
        model.save(out / f"{name}.zarr")
    for name in ("gaussian-full-missing", "gaussian-diag-missing", "bernoulli-missing"):
        model = models[name]
        rows = X if name.startswith("gaussian") else with_holes(binary_rows())
        np.save(out / f"{name}.score_samples.npy", model.score_samples(rows))
        np.save(out / f"{name}.predict_proba.npy", model.predict_proba(rows))
        np.save(out / f"{name}.impute.npy", model.impute(rows))
    # the command line, on a Zarr store
    store = out / "cli-data.zarr"
    zarr.open_group(store, mode="w").create_array("X", data=gaussian_rows(), chunks=(500, 4))
    cli = [sys.executable, "-m", "daskem", "--quiet"]
    subprocess.run([*cli, "fit", str(store), "-v", "X", "-k", "3", "--covariance-type", "diag",
                    "--out", str(out / "cli-fit.zarr")], check=True)
    subprocess.run([*cli, "select", str(store), "-v", "X", "-k", "1-4", "--covariance-types", "full,spherical",
                    "--out", str(out / "cli-select")], check=True)
    subprocess.run([*cli, "predict", str(out / "cli-fit.zarr"), str(store), "-v", "X",
                    "--out", str(out / "cli-scores.zarr")], check=True)
    print(f"wrote {len(models)} models (daskem from {Path(daskem.__file__).parent}) and the command line's outputs to {out}")


def same_dataset(a: xr.Dataset, b: xr.Dataset) -> list[str]:
    """What differs between two datasets, bit for bit (values, dtypes, coordinates, attributes)."""
    problems = []
    if set(a.variables) != set(b.variables):
        problems.append(f"variables {sorted(a.variables)} != {sorted(b.variables)}")
    for name in set(a.variables) & set(b.variables):
        x, y = a[name].values, b[name].values
        if x.dtype != y.dtype or x.shape != y.shape:
            problems.append(f"{name}: {x.dtype}{x.shape} != {y.dtype}{y.shape}")
        elif x.dtype.kind in "OUS" and not np.array_equal(x, y):
            problems.append(f"{name}: values differ")
        elif x.dtype.kind not in "OUS" and x.tobytes() != y.tobytes():
            problems.append(f"{name}: bits differ (largest difference {np.nanmax(np.abs(x - y))!r})")
        if a[name].attrs != b[name].attrs:
            problems.append(f"{name}: attributes differ")
    if a.attrs != b.attrs:
        keys = {key for key in a.attrs.keys() | b.attrs.keys() if a.attrs.get(key) != b.attrs.get(key)}
        problems.append(f"attributes differ: {sorted(keys)}")
    return problems


def outputs(folder: Path) -> list[Path]:
    """The outputs under ``folder`` (relative to it): model and score files, tables, arrays."""
    return sorted(
        path.relative_to(folder) for path in folder.rglob("*")
        if path.suffix in (".zarr", ".npy", ".csv") and path.name != "cli-data.zarr"
        and not any(parent.suffix == ".zarr" for parent in path.relative_to(folder).parents)
    )


def compare(first: Path, second: Path) -> int:
    names, others = outputs(first), outputs(second)
    failures = [f"files differ: {sorted(set(map(str, names)) ^ set(map(str, others)))}"] if names != others else []
    for name in names:
        a, b = first / name, second / name
        if name.suffix == ".npy":
            x, y = np.load(a), np.load(b)
            problems = [] if x.dtype == y.dtype and x.tobytes() == y.tobytes() else ["bits differ"]
        elif name.suffix == ".csv":
            problems = [] if a.read_bytes() == b.read_bytes() else ["text differs"]
        else:
            with xr.open_zarr(a, consolidated=False) as x, xr.open_zarr(b, consolidated=False) as y:
                problems = same_dataset(x.load(), y.load())
        failures += [f"{name}: {problem}" for problem in problems]
    print("\n".join(failures) if failures else f"all {len(names)} outputs are bitwise the same")
    return 1 if failures else 0


if __name__ == "__main__":
    command, *paths = sys.argv[1:]
    if command == "write":
        write(Path(paths[0]))
    elif command == "compare":
        sys.exit(compare(Path(paths[0]), Path(paths[1])))
    else:
        sys.exit(__doc__)
