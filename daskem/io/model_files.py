"""Fitted models as xarray Datasets, written atomically, validated on load.

A model file is an ``xarray.Dataset`` with

- the family's arrays (:meth:`daskem.families.base.Family.dims`), float64:
  ``weights`` (component) and ``means`` (component, feature) for every
  family — a Bernoulli mixture's success probabilities, a Poisson mixture's
  rates — and for Gaussians ``covariances``: (component, feature, feature2)
  for full, (feature, feature2) for tied, (component, feature) for diag,
  (component) for spherical; for Bayesian mixtures the posterior's arrays
  (``weight_concentration`` (component), or (stick_end, component) under a
  Dirichlet process; Gaussians' ``mean_precision`` and ``degrees_of_freedom``;
  Bernoulli ``successes`` and ``failures``, Poisson ``events`` and
  ``exposures``, (component, feature)), ``weights`` being the expected ones;
- ``history`` (iteration): mean log-likelihood per row at each iteration;
- for a model that ``partial_fit`` has learnt with, stepwise EM's running
  statistics (:meth:`daskem.families.base.Family.stepwise_dims`: ``running_weights``
  and, for Gaussians, ``running_means`` and ``running_scatter``, for product
  families ``running_sums`` and ``running_unseen``) and the attributes ``decay``,
  ``n_batches`` and ``batches_blended`` (``lower_bound`` is then the running mean
  log-likelihood): all of them or none;
- coordinates ``component``, ``iteration`` and ``feature`` (the column names
  the model was fitted with, or 0 … d − 1), and CF-style ``long_name`` and
  ``units`` on every variable (:data:`VARIABLE_ATTRIBUTES`);
- attributes ``model`` (``daskem.GaussianMixture``, ``daskem.BernoulliMixture``,
  …), ``family``, the family's settings (``covariance_type`` and ``reg_covar``;
  ``min_probability``; ``min_rate``), ``format_version``, ``n_iter``,
  ``converged`` (0/1), ``lower_bound``, the counts of missing values and of
  absent chunks of the data (``n_absent_chunks``), the fit settings and
  ``daskem_version``.

The precision Cholesky factors are derived from the covariances on load, so
nothing derivable is stored.  Files are never pickled.  A file is trusted only
after :func:`params_from_dataset` has checked it: sizes (before anything is
read into memory), shapes against each other and the family, finite values,
weights that sum to one, parameters inside the family's space (symmetric
positive-definite covariances; probabilities and rates within their floor),
and a format version this daskem can read.  Files without a ``family``
attribute, from daskem before families, hold Gaussian mixtures.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from typing import Any

import numpy as np
import xarray as xr
import zarr
from zarr.abc.codec import BytesBytesCodec
from zarr.codecs import Crc32cCodec, ZstdCodec

from daskem.exceptions import InputError, InputNotFoundError, ModelFileError
from daskem.families.base import Family, Params
from daskem.families.hmm import HMM_FAMILIES
from daskem.families.registry import FAMILIES, family_class
from daskem.io import chunk_index
from daskem.io.existing import KIND_ATTRIBUTE, SELECTION_MODEL, describe, interrupted_write_note, output_kind
from daskem.io.outputs import atomic_path
from daskem.io.storage import incomplete_kind, is_remote, location, missing_bucket
from daskem.settings import is_integer

NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
#: The layout written here; files from a newer daskem are refused, not misread.
FORMAT_VERSION = 1
#: Most values a model file may hold (2 GiB of float64), checked before loading.
MAX_MODEL_VALUES = 2**28
#: How far weights may sum from one (rounding of K numbers written as decimals).
WEIGHT_SUM_TOLERANCE = 1e-9


#: CF-style ``long_name`` and ``units`` of every variable daskem writes (log-likelihoods are
#: natural logarithms: nats).
VARIABLE_ATTRIBUTES = {
    "weights": {"long_name": "mixing proportion of each component", "units": "1"},
    "means": {"long_name": "mean of each component", "units": "the units of each feature"},
    "covariances": {"long_name": "covariance of each component", "units": "the product of two features' units"},
    "history": {"long_name": "mean log-likelihood per row at the start of each EM iteration", "units": "nat"},
    "label": {"long_name": "most responsible component of each row", "units": "1"},
    "responsibility": {"long_name": "posterior probability of each component for each row", "units": "1"},
    "log_likelihood": {"long_name": "log-likelihood of each row, log p(x)", "units": "nat"},
    "startprob": {"long_name": "probability of each state at a sequence's first step", "units": "1"},
    "transmat": {"long_name": "probability of each state (component2) after each state (component)", "units": "1"},
    "component": {"long_name": "mixture component"},
    "component2": {"long_name": "hidden state at the next step"},
    "iteration": {"long_name": "EM iteration"},
    "feature": {"long_name": "feature (column of the data)"},
    "feature2": {"long_name": "feature (column of the data), second axis of a covariance"},
    "running_weights": {"long_name": "stepwise EM: running share of each component, per unit weight", "units": "1"},
    "running_means": {"long_name": "stepwise EM: running mean of each component", "units": "the units of each feature"},
    "running_scatter": {"long_name": "stepwise EM: running scatter about each component's mean, per unit weight",
                        "units": "the product of two features' units"},
    "running_sums": {"long_name": "stepwise EM: running responsibility-weighted sum of each observed feature, per "
                     "unit weight", "units": "the units of each feature"},
    "running_unseen": {"long_name": "stepwise EM: running responsibility-weighted count of missing values, per "
                       "unit weight", "units": "1"},
    "successes": {"long_name": "posterior Beta(a, b) of each probability: a, the prior's and the rows' successes",
                  "units": "1"},
    "failures": {"long_name": "posterior Beta(a, b) of each probability: b, the prior's and the rows' failures",
                 "units": "1"},
    "events": {"long_name": "posterior Gamma of each rate: its shape, the prior's and the rows' events",
               "units": "the units of each feature"},
    "exposures": {"long_name": "posterior Gamma of each rate: its rate, the prior's and the data's rows",
                  "units": "1"},
}


def described(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with :data:`VARIABLE_ATTRIBUTES` on each of its variables and coordinates that has them."""
    ds = ds.copy()
    for name, attributes in VARIABLE_ATTRIBUTES.items():
        if name in ds.variables:
            ds[name].attrs.update(attributes)
    return ds


def model_kind(family: str) -> str:
    """The ``model`` attribute of a model file of the family called ``family`` ("daskem.GaussianMixture",
    "daskem.BayesianGaussianMixture"; for a hidden Markov model's, "gaussian_hmm", "daskem.GaussianHMM")."""
    if family in HMM_FAMILIES:
        return f"daskem.{HMM_FAMILIES[family].EMISSION.name.capitalize()}HMM"
    return f"daskem.{''.join(part.capitalize() for part in family.split('_'))}Mixture"


def params_to_dataset(
    family: Family, params: Params, history: np.ndarray, attrs: dict[str, object],
    features: np.ndarray | None = None, running: dict[str, np.ndarray] | None = None,
) -> xr.Dataset:
    """The Dataset of a model: the family's arrays and settings, history and attributes.

    ``features`` (d,) labels the feature axes (the column names a model was
    fitted with); by default 0 … d − 1.  ``running``: the running statistics of
    stepwise EM (:meth:`~daskem.families.base.Family.stepwise_dims`), stored beside
    the parameters when given.
    """
    variables = family.variables(params)
    if running is not None:
        variables.update({name: (dims, running[name]) for name, dims in family.stepwise_dims().items()})
    features = np.arange(params.n_features) if features is None else np.asarray(features)
    coords = {
        "component": np.arange(params.n_components),
        "iteration": np.arange(1, len(history) + 1),
        "feature": features,
    }
    if any("feature2" in dims for dims, _ in variables.values()):
        coords["feature2"] = features
    if any("component2" in dims for dims, _ in variables.values()):
        coords["component2"] = coords["component"]
    return described(xr.Dataset(
        {**variables, "history": ("iteration", np.asarray(history, dtype=np.float64))},
        coords=coords,
        attrs={"model": model_kind(family.name), "format_version": FORMAT_VERSION, "family": family.name,
               **family.settings(), **attrs},
    ))


def stored_feature_names(ds: xr.Dataset) -> np.ndarray | None:
    """The feature names a model Dataset's ``feature`` coordinate holds (None when it numbers them)."""
    if "feature" not in ds.coords or ds["feature"].dtype.kind not in "OUST":  # T: NumPy 2 StringDType
        return None
    return np.asarray([str(name) for name in ds["feature"].values], dtype=object)


def params_from_dataset(ds: xr.Dataset, source: str = "the model file") -> tuple[Family, Params]:
    """The family and parameters stored in a model Dataset, after checking everything about them.

    ``ds`` may be lazy: its sizes are checked before any values are read.
    ``source`` names it in messages.  Files without a ``family`` attribute
    (daskem before families) hold Gaussian mixtures.

    Raises
    ------
    ModelFileError
        Naming what is wrong: not a model, a newer format, an unknown family
        or family setting, missing or misshapen arrays, too large, values not
        finite, weights negative or not summing to one, or parameters outside
        the family's space (a covariance not symmetric).
    CovarianceError
        A covariance is not positive definite (naming the component).
    """
    family = _stored_family(ds, source)
    _check_layout(ds, family, source)
    return family, family.from_variables(_stored_arrays(ds, family, source), source)


def _stored_family(ds: xr.Dataset, source: str) -> Family:
    """The family a model Dataset names, with its settings: refuses what is not a daskem model, a newer
    format, and attributes that disagree."""
    name = ds.attrs.get("family", "gaussian")
    model = ds.attrs.get("model")
    first = "startprob" if name in HMM_FAMILIES else "weights"  # a hidden Markov model has no weights
    if model is None or not {first, "means"} <= set(ds):
        missing = [v for v in (first, "means") if v not in ds]
        raise ModelFileError(f"{source} is not a daskem model file (missing {missing or 'the model attribute'})")
    if not str(model).startswith("daskem."):
        raise ModelFileError(f"{source} is not a daskem model file (its model attribute is {model!r})")
    if not isinstance(name, str) or model != model_kind(name):
        raise ModelFileError(
            f"{source} is damaged or edited: its attribute family is {name!r} but its attribute model is "
            f"{model!r}, which disagree; write the model again (daskem fit … --out)"
        )
    version = ds.attrs.get("format_version", 1)  # files from before the version was recorded
    if not is_integer(version):
        raise ModelFileError(f"{source} has format_version {version!r}, not an integer")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"{source} was written by a newer daskem (format {version}; this daskem reads format "
            f"{FORMAT_VERSION} and older): upgrade daskem to read it"
        )
    try:
        kind = HMM_FAMILIES[name] if name in HMM_FAMILIES else family_class(name)
        family = kind.from_settings({key: ds.attrs[key] for key in kind.setting_names() if key in ds.attrs})
    except InputError as error:
        raise ModelFileError(f"{source}: {error}") from None
    return family


def _check_layout(ds: xr.Dataset, family: Family, source: str) -> None:
    """Refuse a model Dataset whose arrays are not ``family``'s, of the dimensions and sizes it has."""
    expected = family.dims()
    streamed = family.stepwise_dims()
    foreign = sorted((_model_arrays() - set(expected) - set(streamed)) & set(ds.data_vars))
    if foreign:
        raise ModelFileError(
            f"{source} is damaged or edited: it holds {', '.join(foreign)}, which a {family.label} model does not "
            f"have, so its family ({family.name!r}) does not match its arrays; write the model again (daskem fit … --out)"
        )
    for variable in expected:
        if variable not in ds:
            raise ModelFileError(f"{source} is not a daskem model file (a {family.label} model has {variable})")
    present = [name for name in streamed if name in ds]
    if present:
        absent = [name for name in streamed if name not in ds]
        if absent:
            raise ModelFileError(f"{source} is damaged or edited: it holds {', '.join(present)} but not "
                                 f"{', '.join(absent)}; a model that partial_fit wrote holds all of them")
        expected = {**expected, **streamed}
    for variable, dims in expected.items():
        if ds[variable].dims != dims:
            raise ModelFileError(
                f"{source}: {variable} has dimensions {ds[variable].dims}, but a {family.label!r} model has {dims}"
            )
    if "history" in ds and ds["history"].dims != ("iteration",):
        raise ModelFileError(f"{source}: history has dimensions {ds['history'].dims}, expected ('iteration',)")
    sizes = dict(ds.sizes)
    if "feature2" in sizes and sizes["feature2"] != sizes["feature"]:
        raise ModelFileError(
            f"{source}: the covariances are {sizes['feature']} × {sizes['feature2']}, not square"
        )
    if sizes["component"] < 1 or sizes["feature"] < 1:
        raise ModelFileError(f"{source} holds {sizes['component']} components of {sizes['feature']} features")
    values = sum(math.prod(ds[variable].shape) for variable in ds.data_vars)
    if values > MAX_MODEL_VALUES:
        raise ModelFileError(
            f"{source} declares {sizes['component']:,} components × {sizes['feature']:,} features "
            f"({values:,} values, {values * 8 / 2**30:.1f} GiB), more than daskem loads "
            f"({MAX_MODEL_VALUES:,} values); it is damaged or not meant for this tool"
        )


def running_from_dataset(
    ds: xr.Dataset, family: Family, source: str = "the model file"
) -> dict[str, np.ndarray] | None:
    """The running statistics of stepwise EM in a model Dataset checked by :func:`params_from_dataset`, as
    finite float64 (running weights not negative), or None where it holds none (a model from ``fit``)."""
    names = tuple(family.stepwise_dims())
    if names[0] not in ds:
        return None
    running = _finite_arrays(ds, names, source)
    if running["running_weights"].min() < 0:
        raise ModelFileError(f"{source}: running_weights holds a negative value")
    return running


def _stored_arrays(ds: xr.Dataset, family: Family, source: str) -> dict[str, np.ndarray]:
    """The family's arrays (and the history) of a model Dataset as finite float64, the weights a
    distribution."""
    expected = family.dims()
    arrays = _finite_arrays(ds, (*expected, *(("history",) if "history" in ds else ())), source)
    if "weights" not in arrays:  # a hidden Markov model: its family checks its probabilities
        return arrays
    weights = arrays["weights"]
    if weights.min() < 0 or abs(weights.sum() - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise ModelFileError(
            f"{source}: the weights must be non-negative and sum to 1; they sum to {weights.sum():.12g} "
            f"(smallest {weights.min():.6g})"
        )
    if arrays["means"].shape[0] != len(weights):
        raise ModelFileError(f"{source}: cannot read means ({arrays['means'].shape[0]} rows for "
                             f"{len(weights)} weights)")
    return arrays


def _finite_arrays(ds: xr.Dataset, variables: tuple[str, ...], source: str) -> dict[str, np.ndarray]:
    """The ``variables`` of a model Dataset as finite float64."""
    arrays = {}
    for variable in variables:
        try:
            array = np.asarray(ds[variable].values)
        except Exception as error:  # a damaged store raises whatever its codec raises
            raise ModelFileError(f"{source}: cannot read {variable} ({type(error).__name__}: {error})") from None
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ModelFileError(f"{source}: {variable} has dtype {array.dtype}, not numbers")
        array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ModelFileError(f"{source}: {variable} hold {int(np.count_nonzero(~np.isfinite(array)))} NaN or "
                                 "infinite value(s)")
        arrays[variable] = array
    return arrays


def _model_arrays() -> set[str]:
    """The names of the parameter arrays (and running statistics) of every family (with its default
    settings)."""
    return {name for kind in (*FAMILIES.values(), *HMM_FAMILIES.values())
            for name in (*kind().dims(), *kind().stepwise_dims())}


def params_history(ds: xr.Dataset) -> np.ndarray:
    """The history (n_iter,) of a model Dataset checked by :func:`params_from_dataset` (empty if absent)."""
    return ds["history"].values.astype(np.float64) if "history" in ds else np.empty(0)


#: Attributes of a model file: name → (type, smallest value or None).
_ATTRIBUTES = {
    "n_iter": (int, 0), "converged": (bool, None), "lower_bound": (float, None), "weight_sum": (float, 0.0), "tol": (float, 0.0),
    "max_iter": (int, 0), "acceleration": (str, None), "n_init": (int, 1), "init_params": (str, None),
    "random_state": (int, None),
    "precision": (str, None), "n_missing_values": (int, 0), "n_incomplete_rows": (int, 0), "n_empty_rows": (int, 0),
    "n_absent_chunks": (int, 0), "decay": (float, None), "n_batches": (int, 0), "batches_blended": (int, 0),
    "init_method": (str, None), "algorithm": (str, None),
}


def model_attributes(ds: xr.Dataset, source: str = "the model file") -> dict[str, Any]:
    """The fit attributes of a model Dataset that are present, checked and typed.

    Raises
    ------
    ModelFileError
        An attribute has the wrong type or an impossible value.
    """
    found: dict[str, Any] = {}
    for name, (kind, low) in _ATTRIBUTES.items():
        if name not in ds.attrs:
            continue
        value = ds.attrs[name]
        if kind is str:
            ok = isinstance(value, str)
        elif kind is bool:
            ok = is_integer(value) and value in (0, 1) or isinstance(value, (bool, np.bool_))
        elif kind is int:
            ok = is_integer(value)
        else:
            ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and (
                name == "lower_bound" or math.isfinite(value))
        if not ok or (low is not None and value < low):
            wanted = {int: "an integer", float: "a finite number", bool: "0 or 1", str: "text"}[kind]
            at_least = f" >= {low}" if low is not None else ""
            raise ModelFileError(f"{source}: attribute {name} is {value!r}, not {wanted}{at_least}")
        found[name] = kind(value)
    return found


def is_netcdf(path: Any) -> bool:
    return location(path).suffix.lower() in NETCDF_SUFFIXES


def write_dataset(
    ds: xr.Dataset, path: str | os.PathLike, kind: str, *, overwrite: bool = False, label: str = "output",
    encoding: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """Write ``ds`` as a daskem output of ``kind`` (see :mod:`daskem.io.outputs`).

    Zarr, or netCDF when the suffix is .nc; all or nothing; the kind is
    recorded in the attribute ``daskem_output``.  ``encoding`` (Zarr only)
    is xarray's per-variable encoding, such as ``compressors``; every Zarr
    array is written with a checksum (see :func:`checksum_encoding`).
    """
    ds = ds.assign_attrs({KIND_ATTRIBUTE: kind})
    if is_netcdf(path) and is_remote(location(path)):
        raise ModelFileError(f"{label} {str(path)!r}: netCDF is written to local files only; "
                             "on object storage, write Zarr (a .zarr suffix)")
    with atomic_path(path, kind, overwrite=overwrite, label=label) as temporary:
        if is_netcdf(path):
            ds.to_netcdf(temporary)
        else:
            # Consolidated metadata, so that xarray opens the store in one read and without a
            # warning; every array's own metadata is written too, for readers that ignore it.
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Consolidated metadata is currently not part", UserWarning)
                ds.to_zarr(str(temporary), mode="w-", zarr_format=3, consolidated=True,
                           encoding=checksum_encoding(ds, encoding))
            chunk_index.record(str(temporary))  # where each chunk belongs, for rows read from their files
    return location(path)


def checksum_encoding(
    ds: xr.Dataset, encoding: dict[Any, dict[str, Any]] | None = None
) -> dict[Any, dict[str, Any]]:
    """xarray's Zarr encoding of every variable of ``ds``: ``encoding``'s, with a ``crc32c`` codec last.

    Each stored chunk then ends in the CRC32C of its bytes, which every Zarr 3
    reader checks, so a damaged chunk is an error instead of wrong values.  The
    compressors before it are those ``encoding`` names, else the variable's
    own (from the store it was read from), else Zarr's default (Zstandard).
    """
    result = {}
    for name, variable in ds.variables.items():
        given = (encoding or {}).get(name, {})
        compressors = given.get("compressors", variable.encoding.get("compressors", "auto"))
        if compressors is None:
            compressors = ()
        elif isinstance(compressors, str):  # "auto"
            compressors = (ZstdCodec(),)
        elif isinstance(compressors, (BytesBytesCodec, dict)):
            compressors = (compressors,)
        codecs = tuple(compressors)
        checksummed = codecs if codecs[-1:] == (Crc32cCodec(),) else (*codecs, Crc32cCodec())
        result[name] = {**given, "compressors": checksummed}
    return result


def read_dataset(path: str | os.PathLike) -> xr.Dataset:
    """Open a Dataset written by :func:`write_dataset`, lazily (values are read on use)."""
    path = location(path)
    if not path.exists():
        bucket = missing_bucket(path) if is_remote(path) else None
        if bucket:
            raise InputNotFoundError(f"cannot read {str(path)!r}: {bucket}")
        raise InputNotFoundError(f"no such file or directory: {str(path)!r}{interrupted_write_note(path)}")
    if is_remote(path) and incomplete_kind(path) is not None:
        raise InputNotFoundError(f"{str(path)!r} holds an interrupted write, not a whole output; "
                                 "write it again (the next write of this path replaces it)")
    kind = output_kind(path)
    if kind == "selection":
        raise ModelFileError(f"{str(path)!r} is a daskem selection, not a model; its best model is "
                             f"{str(path / SELECTION_MODEL)!r}")
    if kind not in (None, "model"):
        raise ModelFileError(f"{str(path)!r} is a daskem {kind} output, not a daskem model file; give a model "
                             "that daskem fit --out (or select --out: its best.zarr) wrote")
    try:
        if is_netcdf(path):
            return xr.open_dataset(path)
        _check_stored_size(path)  # xarray reads coordinates when it opens a store: check their size first
        return xr.open_zarr(str(path), consolidated=False)
    except ModelFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelFileError(f"cannot read {str(path)!r} as a daskem model file: it is {describe(path)} "
                             f"({error})") from None


def _check_stored_size(path: Any) -> None:
    """Refuse a Zarr store whose arrays declare more than ``MAX_MODEL_VALUES`` values (reads metadata only)."""
    group = zarr.open_group(str(path), mode="r", use_consolidated=False)  # what is stored, not a summary of it
    values = sum(math.prod(array.shape) for _, array in group.arrays())
    if values > MAX_MODEL_VALUES:
        raise ModelFileError(
            f"the model file {str(path)!r} declares arrays of {values:,} values ({values * 8 / 2**30:.1f} GiB), "
            f"more than daskem loads ({MAX_MODEL_VALUES:,} values); it is damaged or not meant for this tool"
        )
