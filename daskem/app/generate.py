"""Synthetic mixture data (of any family) written to Zarr, chunk by chunk.

Each chunk is drawn from its own random stream (seeded by ``(seed, chunk)``),
so the data do not depend on the scheduler or on the order chunks are written,
and never need to fit in memory.
"""

from __future__ import annotations

import os
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from daskem.exceptions import InputError
from daskem.families.base import Family, Params
from daskem.families.registry import family_class
from daskem.io.model_files import params_to_dataset, write_dataset
from daskem.io.outputs import Output, reserved
from daskem.io.storage import location
from daskem.kernels.gaussian import GaussianParams

DEFAULT_CHUNK_ROWS = 50_000
#: The codecs of the rows: none.  Draws of continuous values barely compress, and a fit
#: decodes its rows at every iteration.  Measured with benchmarks/bench_read.py
#: (400,000 × 16 float64, K=8, 7 interleaved runs, seconds per iteration ÷ the same fit on
#: NumPy in memory): uncompressed 0.95 (read straight from the chunk files, see
#: daskem.io.zarr_rows._PlainChunks), Blosc LZ4 with bit-shuffle 1.60 (9 % smaller), LZ4 without
#: shuffle 1.36 (0 %), Zarr's default Zstandard 1.79 (3 %).  :func:`~daskem.io.model_files.write_dataset`
#: adds a CRC32C checksum to every array, which daskem's reader of the chunk files checks too.
ROWS_COMPRESSORS: list = []


def _draw_chunk(
    family: Family, params: Params, n_rows: int, seed: int, chunk: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, chunk])
    if not isinstance(params, GaussianParams):  # rows of each component, shuffled
        rows, labels = family.sample(params, n_rows, rng)
        order = rng.permutation(n_rows)
        return rows[order].astype(dtype), labels[order].astype(np.int32)
    labels = rng.choice(params.n_components, size=n_rows, p=params.weights)
    factors = np.linalg.cholesky(params.covariances)
    noise = rng.standard_normal((n_rows, params.n_features))
    rows = np.einsum("ij,ikj->ik", noise, factors[labels]) + params.means[labels]
    return rows.astype(dtype), labels.astype(np.int32)


def truth_path(path: str | os.PathLike) -> Any:
    """Where :func:`generate` saves the true parameters: ``data.zarr`` → ``data.truth.zarr``."""
    path = location(path)
    return path.with_name(f"{path.stem}.truth{path.suffix or '.zarr'}")


def generate(
    path: str | os.PathLike,
    *,
    n_samples: int,
    n_features: int,
    n_components: int,
    seed: int = 0,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    dtype: str = "float64",
    family: str = "gaussian",
    overwrite: bool = False,
) -> Params:
    """Write rows drawn from a random mixture of ``family`` to a Zarr group, and the truth beside it.

    The group at ``path`` holds ``X`` (sample, feature) and ``labels``
    (sample); the true parameters go to :func:`truth_path` as a model file.
    Bernoulli rows hold 0 and 1, Poisson rows counts, both as floats of ``dtype``.
    With ``overwrite``, only data and a truth file that daskem generated are
    replaced (see :mod:`daskem.io.outputs`).

    Returns the true parameters.
    """
    for name, value, low in (
        ("n_samples", n_samples, 1),
        ("n_features", n_features, 1),
        ("n_components", n_components, 1),
        ("chunk_rows", chunk_rows, 1),
    ):
        if value < low:
            raise InputError(f"{name} must be >= {low}, got {value}")
    if dtype not in ("float32", "float64"):
        raise InputError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    components = family_class(family)()
    params = components.random_params(n_components, n_features, np.random.default_rng(seed))
    sizes = [min(chunk_rows, n_samples - start) for start in range(0, n_samples, chunk_rows)]
    draw = dask.delayed(_draw_chunk, nout=2, pure=True)
    chunks = [draw(components, params, size, seed, i, np.dtype(dtype)) for i, size in enumerate(sizes)]
    rows = da.concatenate(
        [da.from_delayed(c[0], (size, n_features), dtype=dtype) for c, size in zip(chunks, sizes)]
    )
    labels = da.concatenate(
        [da.from_delayed(c[1], (size,), dtype=np.int32) for c, size in zip(chunks, sizes)]
    )
    data = xr.Dataset(
        {"X": (("sample", "feature"), rows, {"long_name": f"rows drawn from a {components.name.capitalize()} "
                                                          "mixture", "units": "1"}),
         "labels": ("sample", labels, {"long_name": "component each row was drawn from", "units": "1"})},
        attrs={"description": f"{n_samples} rows drawn from a random {n_components}-component "
               f"{components.name.capitalize()} mixture in {n_features} dimensions (seed {seed})"},
    )
    truth = params_to_dataset(components, params, np.empty(0), {"description": "true parameters", "seed": seed})
    outputs = [Output.of(path, "data", "path"), Output.of(truth_path(path), "model", "truth file")]
    with reserved(outputs, overwrite=overwrite):
        write_dataset(truth, truth_path(path), "model", overwrite=overwrite, label="truth file")
        write_dataset(data, path, "data", overwrite=overwrite, label="path",
                      encoding={"X": {"compressors": ROWS_COMPRESSORS}})
    return params
