"""Layer 4: fitted models as xarray Datasets, written atomically to Zarr or netCDF.

A model file is an ``xarray.Dataset`` with

- ``weights`` (component), ``means`` (component, feature) and ``covariances``
  — (component, feature, feature2) for full, (feature, feature2) for tied,
  (component, feature) for diag, (component) for spherical — float64;
- ``history`` (iteration): mean log-likelihood per row at each iteration;
- attributes ``model``, ``covariance_type``, ``n_iter``, ``converged`` (0/1),
  ``lower_bound``, the fit settings and ``daskem_version``.

The precision Cholesky factors are derived from the covariances on load, so
nothing derivable is stored.  Files are never pickled.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xarray as xr

from daskem.exceptions import DaskemError, InputError, InputNotFoundError, OutputExistsError
from daskem.kernels.gaussian import GaussianParams

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
MODEL_KIND = "daskem.GaussianMixture"


#: Dimensions of ``covariances`` for each covariance type.
COVARIANCE_DIMS = {
    "full": ("component", "feature", "feature2"),
    "tied": ("feature", "feature2"),
    "diag": ("component", "feature"),
    "spherical": ("component",),
}


def params_to_dataset(
    params: GaussianParams, history: np.ndarray, attrs: dict[str, object]
) -> xr.Dataset:
    """The Dataset of a model: parameters, history and attributes."""
    return xr.Dataset(
        {
            "weights": ("component", params.weights),
            "means": (("component", "feature"), params.means),
            "covariances": (COVARIANCE_DIMS[params.covariance_type], params.covariances),
            "history": ("iteration", np.asarray(history, dtype=np.float64)),
        },
        coords={
            "component": np.arange(params.n_components),
            "iteration": np.arange(1, len(history) + 1),
        },
        attrs={"model": MODEL_KIND, "covariance_type": params.covariance_type, **attrs},
    )


def params_from_dataset(ds: xr.Dataset) -> GaussianParams:
    """The parameters stored in a model Dataset (see :func:`params_to_dataset`)."""
    missing = [v for v in ("weights", "means", "covariances") if v not in ds]
    covariance_type = ds.attrs.get("covariance_type")
    if missing or ds.attrs.get("model") != MODEL_KIND or covariance_type not in COVARIANCE_DIMS:
        raise InputError(
            f"this is not a daskem model file (missing {missing or 'the model or covariance_type attribute'})"
        )
    return GaussianParams.from_covariances(
        ds["weights"].values, ds["means"].values, ds["covariances"].values, covariance_type
    )


def is_netcdf(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in NETCDF_SUFFIXES


def write_dataset(ds: xr.Dataset, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to Zarr, or netCDF when the suffix is .nc, all or nothing (see :func:`atomic_path`)."""
    with atomic_path(path, overwrite=overwrite) as temporary:
        if is_netcdf(path):
            ds.to_netcdf(temporary)
        else:
            ds.to_zarr(temporary, mode="w-", zarr_format=3, consolidated=False)
    return Path(path)


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> None:
    """Fail early, before any heavy work, if ``path`` cannot be written later.

    Raises
    ------
    OutputExistsError
        If ``path`` exists and ``overwrite`` is False.
    DaskemError
        If its folder cannot be created or written to.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{str(path)!r} exists; pass overwrite=True (--overwrite) to replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe = path.with_name(f".{path.name}.probe-{uuid.uuid4().hex[:12]}")
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise DaskemError(f"cannot write {str(path)!r}: {error.strerror or error}") from None


@contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` that is renamed onto it if the block succeeds.

    A failed block leaves neither a partial output nor a temporary behind; an
    existing ``path`` is replaced only with ``overwrite=True``.  Missing parent
    folders are created.
    """
    path = Path(path)
    check_writable(path, overwrite=overwrite)
    token = uuid.uuid4().hex[:12]
    temporary = path.with_name(f".{path.name}.tmp-{token}")
    try:
        yield temporary
        _replace(temporary, path, token)
    except PermissionError as error:
        raise DaskemError(f"cannot write {str(path)!r}: {error.strerror}") from None
    finally:
        _remove(temporary)


def _replace(source: Path, target: Path, token: str) -> None:
    """Rename ``source`` onto ``target``; an existing folder is moved aside first."""
    if target.is_dir() and not target.is_symlink():
        aside = target.with_name(f".{target.name}.old-{token}")
        os.replace(target, aside)
        os.replace(source, target)
        _remove(aside)
    else:
        if target.exists() and source.is_dir():
            target.unlink()
        os.replace(source, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Read a Dataset written by :func:`write_dataset` fully into memory."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"no such file or directory: {str(path)!r}")
    try:
        if is_netcdf(path):
            with xr.open_dataset(path) as ds:
                return ds.load()
        with xr.open_zarr(path, consolidated=False) as ds:
            return ds.load()
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"cannot read {str(path)!r} as a daskem model file ({error})") from None
