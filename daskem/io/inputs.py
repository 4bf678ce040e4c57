"""Turn what users pass into a row-chunked 2-D Dask array.

Accepted inputs: a NumPy array (or anything ``np.asarray`` takes), a Dask
array, an xarray DataArray, an xarray Dataset with ``variable=``, or a Zarr
path/URL (``variable=`` names the array when the store is a group).  Every
check that can be made without reading the data is made here, before any
heavy work, with a message that says what is wrong and what to do.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse
import xarray as xr
import zarr
import zarr.storage

from daskem.exceptions import (
    InputError,
    InputNotFoundError,
    InputTypeError,
)
from daskem.io.zarr_rows import PathLike, is_path, merged_rows, open_rows, open_zarr_array
from daskem.kernels.checks import check_weights

#: Names of a feature dimension recognised without ``feature_dim=`` (compared in lower case).
FEATURE_DIMS = ("feature", "features", "band", "bands", "channel", "channels", "variable", "variables")
#: The row dimension that dimensions stacked into rows become.
STACKED_DIM = "sample"

SampleDim = str | Sequence[str] | None


def as_rows(X: Any, variable: str | None = None, *, sample_dim: SampleDim = None,
            feature_dim: str | None = None) -> Any:
    """An xarray input (or a Zarr group, when dims are named) as a 2-D (row, feature) DataArray.

    Parameters
    ----------
    X : any input of :func:`as_row_chunked`; only xarray objects, and Zarr
        paths when ``sample_dim`` or ``feature_dim`` is given, are changed.
    sample_dim : the dimension of the rows; several (a tuple) are stacked into
        one row dimension, ``"sample"``, in row-major order (a (y, x, band)
        image: ``("y", "x")``).  By default, every dimension but the features.
    feature_dim : the dimension of the features.  By default the one other
        than ``sample_dim``, else the one named like a feature dimension
        (``FEATURE_DIMS``: band, channel, feature, …), else the second of two.

    Other inputs are returned as they are.

    Raises
    ------
    InputError
        A named dimension is missing, or the roles of the dimensions cannot be
        told without ``sample_dim``/``feature_dim``: the message says which to give.
    """
    named = sample_dim is not None or feature_dim is not None
    if is_path(X) and named:
        X = _xarray_group(X, variable)
    if isinstance(X, xr.Dataset):
        X = X[_dataset_variable(X, variable)]
    if not isinstance(X, xr.DataArray):
        if named:
            raise InputError("sample_dim and feature_dim name dimensions of xarray inputs (or of a Zarr group "
                             f"opened with xarray); X is a {type(X).__name__}")
        return X
    dims = [str(d) for d in X.dims]
    if not (sample_dim is None or isinstance(sample_dim, (str, Sequence))):
        raise InputError(f"sample_dim must name a dimension or a sequence of them, like ('y', 'x'); "
                         f"got {sample_dim!r}")
    samples = [sample_dim] if isinstance(sample_dim, str) else list(sample_dim or ())
    repeated = list(dict.fromkeys(d for d in samples if samples.count(d) > 1))
    if repeated:
        raise InputError(f"sample_dim names {', '.join(map(repr, repeated))} more than once "
                         f"({tuple(samples)}): name each dimension of the rows once")
    missing = [d for d in [*samples, *([feature_dim] if feature_dim else [])] if d not in dims]
    if missing:
        raise InputError(f"X has the dimensions {tuple(dims)}, not {', '.join(map(repr, missing))}")
    if feature_dim is None:
        rest = [d for d in dims if d not in samples]
        known = [d for d in rest if d.lower() in FEATURE_DIMS]
        if samples and len(rest) == 1:
            feature_dim = rest[0]
        elif len(known) == 1:
            feature_dim = known[0]
        elif len(dims) == 2 and not samples:
            feature_dim = dims[1]  # rows first, as in NumPy
        else:
            raise InputError(f"X has the dimensions {tuple(dims)}: say which holds the features with "
                             "feature_dim= (--feature-dim)")
    if not samples:
        samples = [d for d in dims if d != feature_dim]
        if len(samples) > 1:
            raise InputError(
                f"X has the dimensions {tuple(dims)}, with features along {feature_dim!r}: to fit every "
                f"{' × '.join(samples)} position as a row, say sample_dim={tuple(samples)} (--sample-dim "
                f"{','.join(samples)}); the scores then keep those dimensions (a label map)")
    if feature_dim in samples or len(samples) + 1 != len(dims):
        raise InputError(f"X has the dimensions {tuple(dims)}: sample_dim {tuple(samples)} and feature_dim "
                         f"{feature_dim!r} must name each of them once")
    if len(samples) == 1:
        return X.transpose(samples[0], feature_dim)
    if STACKED_DIM in dims:
        raise InputError(f"X already has a dimension {STACKED_DIM!r}, which stacking {tuple(samples)} would "
                         "make; rename it")
    return X.stack({STACKED_DIM: samples}).transpose(STACKED_DIM, feature_dim)


def stacked_dims(X: Any) -> list[str]:
    """The dimensions that :func:`as_rows` stacked into the rows of X (none if it stacked nothing)."""
    if isinstance(X, xr.DataArray) and isinstance(X.indexes.get(STACKED_DIM), pd.MultiIndex):
        return [str(name) for name in X.indexes[STACKED_DIM].names]
    return []


def _xarray_group(path: PathLike, variable: str | None) -> xr.DataArray:
    """The array ``variable`` of the Zarr group at ``path``, opened with xarray (lazily, with coordinates)."""
    open_zarr_array(path, variable)  # the same checks and messages as any Zarr input
    location = os.fspath(path) if not hasattr(path, "fs") else str(path)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=RuntimeWarning, message=".*consolidated metadata.*")
        group = xr.open_zarr(location)
    return group[_dataset_variable(group, variable)]


def _dataset_variable(ds: xr.Dataset, variable: str | None) -> str:
    """``variable`` when the Dataset holds it (or its only variable), else an error naming what it holds."""
    names = sorted(map(str, ds.data_vars))
    if variable in ds.data_vars:
        return variable
    if variable is None and len(names) == 1:
        return names[0]
    what = "say which to fit with variable=" if variable is None else f"{variable!r} is not one of them"
    raise InputNotFoundError(f"the Dataset holds the variables {names}; {what}")


def stacked_weights(sample_weight: Any, rows: Any) -> Any:
    """A DataArray of weights over the dimensions stacked into ``rows`` (see :func:`as_rows`), stacked alike."""
    dims = stacked_dims(rows)
    if dims and isinstance(sample_weight, xr.DataArray) and set(sample_weight.dims) == set(dims):
        return sample_weight.stack({STACKED_DIM: dims})
    return sample_weight


def as_row_chunked(X: Any, variable: str | None = None, *, chunk_rows: int | None = None) -> da.Array:
    """A 2-D Dask array of rows, chunked along rows only.

    Parameters
    ----------
    X : NumPy array, Dask array, xarray DataArray or Dataset, or Zarr path/URL.
    variable : the variable of a Dataset or the array of a Zarr group.
    chunk_rows : rows per chunk.  By default a Zarr store's row chunks are kept
        (merged into multiples of themselves up to about 16 MiB when smaller),
        a Dask array's row chunks are kept, and in-memory data are cut into
        chunks of about 16 MiB.

    Returns
    -------
    (n_samples, n_features) Dask array with one chunk along features.
    """
    if is_path(X):
        rows = open_rows(X, variable, chunk_rows)
        _check_shape_and_dtype(rows.shape, rows.dtype)
        return rows
    X = _unwrap(X, variable)
    if not isinstance(X, da.Array):
        X = checked_array(X)
        rows = chunk_rows or merged_rows(1, n_features=X.shape[1], n_rows=X.shape[0])
        return da.from_array(X, chunks=(rows, X.shape[1]))
    _check_shape_and_dtype(X.shape, X.dtype)
    if any(np.isnan(c) for c in X.chunks[0]):
        raise InputError(
            "the Dask array's row chunk sizes are unknown; call X.compute_chunk_sizes() first"
        )
    return X.rechunk({0: chunk_rows or X.chunks[0], 1: -1})


def fit_inputs(
    X: Any, variable: str | None, sample_weight: Any, *, sample_dim: SampleDim = None,
    feature_dim: str | None = None, chunk_rows: int | None = None,
) -> tuple[Any, da.Array, da.Array | None]:
    """What a fit reads: X as :func:`as_rows` sees it, its rows (:func:`as_row_chunked`) and their weights.

    ``sample_weight`` may name a variable of the Dataset (or an array of the
    Zarr group) X comes from; weights over dimensions stacked into rows are
    stacked alike.
    """
    if isinstance(sample_weight, str) and isinstance(X, xr.Dataset) and sample_weight in X.data_vars:
        sample_weight = X[sample_weight]
    rows = as_rows(X, variable, sample_dim=sample_dim, feature_dim=feature_dim)
    data = as_row_chunked(rows, variable if rows is X else None, chunk_rows=chunk_rows)
    return rows, data, as_row_weights(stacked_weights(sample_weight, rows), X, data)


def named_beside(value: Any, X: Any, name: str, noun: str) -> Any:
    """``value`` (the argument ``name``), or where it is a string, the variable of the Dataset (or the array of
    the Zarr group) that X comes from that it names; ``noun`` says what it holds, in the error where X has no
    such variables."""
    if not isinstance(value, str):
        return value
    if is_path(X):
        return open_rows(X, value)
    if isinstance(X, xr.Dataset):
        return _unwrap(X, value)
    raise InputError(f"{name} names a variable, which needs X to be a Zarr path or an xarray Dataset; pass the "
                     f"{noun} themselves instead")


def as_row_weights(sample_weight: Any, X: Any, rows: da.Array) -> da.Array | None:
    """Sample weights as a 1-D Dask array chunked like ``rows``.

    Parameters
    ----------
    sample_weight : None; a NumPy, Dask or xarray array of shape (N,); or the
        name of a variable of the Dataset, or of an array of the Zarr group,
        that X comes from.
    X : the data as the user passed them (to resolve a name).
    rows : the data as :func:`as_row_chunked` returned them.

    NumPy weights are checked at once; lazy ones as each chunk is read.
    """
    if sample_weight is None:
        return None
    sample_weight = named_beside(sample_weight, X, "sample_weight", "weights")
    if isinstance(sample_weight, xr.DataArray):
        sample_weight = sample_weight.data
    if not isinstance(sample_weight, da.Array):
        sample_weight = np.asarray(sample_weight)
    n_rows = rows.shape[0]
    if sample_weight.shape != (n_rows,):
        raise InputError(
            f"sample_weight must have shape ({n_rows},), one weight per row, got {sample_weight.shape}"
        )
    if not (np.issubdtype(sample_weight.dtype, np.integer) or np.issubdtype(sample_weight.dtype, np.floating)):
        raise InputError(f"sample_weight must be numeric, got dtype {sample_weight.dtype}")
    if isinstance(sample_weight, np.ndarray):
        check_weights(sample_weight, n_rows)
        if not sample_weight.sum() > 0:
            raise InputError("sample_weight sums to zero; at least one row needs a positive weight")
        sample_weight = da.from_array(sample_weight, chunks=(rows.chunks[0],))
    if any(np.isnan(c) for c in sample_weight.chunks[0]):
        raise InputError("sample_weight's chunk sizes are unknown; call compute_chunk_sizes() first")
    return sample_weight.rechunk((rows.chunks[0],))


def feature_names(X: Any) -> np.ndarray | None:
    """The column names of a pandas or Dask DataFrame, or the feature coordinate of a 2-D DataArray,
    when all are strings, else None.

    scikit-learn's rule for ``feature_names_in_``: (n_features,) object array.
    """
    if isinstance(X, xr.DataArray) and X.ndim == 2 and X.dims[1] in X.coords:
        columns = X[X.dims[1]].values  # the feature coordinate (as_rows puts the features second)
    else:
        columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = [str(n) if isinstance(n, str) else n for n in columns]  # NumPy's str_ as plain str
    return np.asarray(names, dtype=object) if names and all(isinstance(n, str) for n in names) else None


def row_coordinate(X: Any, variable: str | None = None) -> tuple[str, Any]:
    """The name of the row dimension of X and its coordinate values (None if it has none).

    xarray inputs keep their row dimension and coordinate; a Zarr array keeps
    its first ``dimension_names`` entry and, if the group holds an array of
    that name, reads it lazily as the coordinate.  Otherwise ``("sample", None)``.
    """
    if is_path(X):
        array = open_zarr_array(X, variable)
        names = getattr(array.metadata, "dimension_names", None)
        if not names or names[0] is None:
            return "sample", None
        dim = names[0]
        if variable is not None:
            group = zarr.open_group(os.fspath(X), mode="r")
            if dim in group and dim != variable and group[dim].shape == (array.shape[0],):
                return dim, da.from_zarr(group[dim])
        return dim, None
    if isinstance(X, xr.Dataset):
        X = X[variable] if variable in X.data_vars else X
    if isinstance(X, xr.DataArray):
        dim = str(X.dims[0])
        return dim, (X[dim].data if dim in X.coords else None)
    return "sample", None


def in_memory_rows(X: Any, variable: str | None = None) -> np.ndarray | None:
    """The rows as a checked NumPy array when X holds them in memory, else None.

    Paths and Dask-backed inputs (also inside xarray objects) give None.
    """
    if is_path(X):
        return None
    X = _unwrap(X, variable)
    return None if isinstance(X, da.Array) else checked_array(X)


def checked_array(X: Any) -> np.ndarray:
    """``np.asarray(X)``, checked to be a non-empty 2-D numeric array.

    Sparse matrices are refused; objects that hold numbers (an object array,
    a DataFrame of pandas' nullable ``Float64`` or ``Int64``, whose missing
    values become NaN) become float64.
    """
    if scipy.sparse.issparse(X):
        raise InputError(
            f"sparse input ({type(X).__name__}) is not supported: a Gaussian mixture needs dense rows; "
            "convert with X.toarray(), or store the rows densely in Zarr"
        )
    if isinstance(X, pd.DataFrame) and all(
        pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype) for dtype in X.dtypes
    ):  # also pandas' nullable dtypes (Float64, Int64), whose missing values become NaN
        X = X.to_numpy(dtype=np.float64, na_value=np.nan)
    X = np.asarray(X)
    if X.dtype == object:
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as error:
            raise InputTypeError(
                f"expected numeric data, but a value could not be converted to a number ({error}); "
                "convert or encode the features as numbers first"
            ) from None
    _check_shape_and_dtype(X.shape, X.dtype)
    return X


def _unwrap(X: Any, variable: str | None) -> Any:
    """The array inside an xarray Dataset (``variable``) or DataArray, or a Dask DataFrame's rows."""
    if isinstance(X, xr.Dataset):
        X = X[_dataset_variable(X, variable)]
    if _is_dask_dataframe(X):
        return _dask_dataframe_rows(X)
    return X.data if isinstance(X, xr.DataArray) else X


def _is_dask_dataframe(X: Any) -> bool:
    return hasattr(X, "to_dask_array") and hasattr(X, "npartitions")


def _dask_dataframe_rows(frame: Any) -> da.Array:
    """A Dask DataFrame's rows as a Dask array, one chunk per partition, never all in memory.

    Its partitions' lengths are counted first (one pass, as Dask needs them);
    float32 columns stay float32, other numeric ones (also pandas' nullable
    dtypes, whose missing values become NaN) become float64.
    """
    dtypes = dict(frame.dtypes.items())
    not_numeric = [str(name) for name, dtype in dtypes.items()
                   if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)]
    if not_numeric:
        raise InputError(f"the DataFrame's column(s) {not_numeric} are not numeric; "
                         "convert or encode the features as numbers first")
    target = np.float32 if all(dtype == np.float32 for dtype in dtypes.values()) else np.float64
    return frame.astype(target).to_dask_array(lengths=True)


def _check_shape_and_dtype(shape: tuple[int, ...], dtype: np.dtype) -> None:
    if len(shape) != 2:
        hint = (" (Reshape your data: X.reshape(-1, 1) for a single feature, X.reshape(1, -1) for a single row)"
                if len(shape) == 1 else
                "; for an image or another N-D array in xarray or a Zarr group, name the dimensions of the rows "
                "with sample_dim= (--sample-dim y,x): they are stacked into rows and the scores keep them")
        raise InputError(
            f"expected a 2-D array of shape (n_samples, n_features), got {len(shape)}-D "
            f"shape {tuple(shape)}{hint}"
        )
    if np.issubdtype(dtype, np.complexfloating):
        raise InputError(f"Complex data not supported (dtype {dtype}); give real and imaginary parts as features")
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(
            f"expected numeric (integer or floating-point) data, got dtype {dtype}; "
            "convert or encode the features as numbers first"
        )
    for axis, what in enumerate(("sample", "feature")):
        if shape[axis] == 0:  # scikit-learn's wording
            raise InputError(
                f"the data are empty: found 0 {what}(s) (shape={tuple(shape)}) while a minimum of 1 is required."
            )
