"""Model files, the part of :class:`~daskem.estimators.base.BaseMixture` that saves and loads a fit.

A fitted estimator as an :class:`xarray.Dataset` (see :mod:`daskem.io.model_files`
for the layout and the checks), written to Zarr or netCDF atomically, and back.
"""

from __future__ import annotations

import os
from typing import Any, Self

import numpy as np
import xarray as xr

from daskem.estimators.settings import DECAY, RECORDED
from daskem.estimators.streaming import Stream
from daskem.exceptions import ModelFileError
from daskem.families.base import Family
from daskem.io.model_files import (
    model_attributes,
    params_from_dataset,
    params_history,
    params_to_dataset,
    running_from_dataset,
    stored_feature_names,
    write_dataset,
)
from daskem.settings import is_integer, is_number
from daskem.version import __version__

#: The fitted attributes that count missing values: values, rows with one, rows with nothing
#: observed (left out of the fit), as the last pass saw them.
MISSING_COUNTS = ("n_missing_values_", "n_incomplete_rows_", "n_empty_rows_")


class ModelFile:
    """Saving a fitted estimator and reading it back (see :class:`~daskem.estimators.base.BaseMixture`)."""

    @classmethod
    def recorded_setting_names(cls) -> tuple[str, ...]:
        """The settings a model file records besides the family's: the shared ones that shape a fit's
        outcome, and the estimator's own."""
        return (*RECORDED, *cls.own_setting_names())

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model to Zarr (or netCDF for a .nc suffix), atomically.

        An existing ``path`` is replaced only with ``overwrite=True``, and only
        if it is a daskem model (see :mod:`daskem.io.outputs`).
        """
        write_dataset(self.to_dataset(), path, "model", overwrite=overwrite, label="path")

    def to_dataset(self) -> xr.Dataset:
        """The fitted model as an :class:`xarray.Dataset` (see :mod:`daskem.io.model_files`)."""
        params = self.params
        attrs = {
            "n_iter": int(self.n_iter_),
            "converged": int(self.converged_),
            "lower_bound": float(self.lower_bound_),
            "weight_sum": float(self._weight_sum),
            **{name.rstrip("_"): int(getattr(self, name)) for name in MISSING_COUNTS},
            "n_absent_chunks": int(self.n_absent_chunks_),
            **{name: _attribute(getattr(self, name)) for name in self.recorded_setting_names()},
            "daskem_version": __version__,
        }
        if is_integer(self.random_state):
            attrs["random_state"] = int(self.random_state)
        stream = getattr(self, "_stream", None)
        if stream is not None:  # stepwise EM's state (see partial_fit); lower_bound is its log-likelihood
            attrs.update(decay=float(self.decay), n_batches=stream.n_batches, batches_blended=stream.blended)
        return params_to_dataset(self.family_, params, self.history_, attrs,
                                 getattr(self, "feature_names_in_", None),
                                 None if stream is None else stream.running)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset, source: str = "the model file") -> Self:
        """The model stored in a Dataset made by :meth:`to_dataset`, checked (see :mod:`daskem.io.model_files`)."""
        family, params = params_from_dataset(ds, source)
        if family.name != cls.FAMILY.name:
            raise ModelFileError(f"{source} holds a {family.name} mixture, not one for {cls.__name__}; "
                                 "read it with daskem.load")
        attrs = model_attributes(ds, source)
        taken = {setting.name for setting in cls.SETTINGS}
        settings = {name: attrs[name] for name in (*cls.recorded_setting_names(), "random_state", "decay")
                    if name in attrs and name in taken}
        model = cls(n_components=params.n_components, **family.settings(), **settings)
        model._stream = _stored_stream(ds, family, attrs, source)
        model._params, model.family_ = params, family
        model.history_ = params_history(ds)
        model.n_iter_ = attrs.get("n_iter", len(model.history_))
        if len(model.history_) and model.n_iter_ != len(model.history_):
            raise ModelFileError(f"{source}: n_iter is {model.n_iter_} but the history has "
                                 f"{len(model.history_)} iterations")
        model.converged_ = attrs.get("converged", False)
        model.lower_bound_ = attrs.get("lower_bound", np.nan)
        model._weight_sum = attrs.get("weight_sum", np.nan)
        model.reseeded_ = []
        for name in MISSING_COUNTS:
            setattr(model, name, attrs.get(name.rstrip("_"), 0))
        model.n_absent_chunks_ = attrs.get("n_absent_chunks", 0)
        model.n_features_in_ = params.n_features
        names = stored_feature_names(ds)
        if names is not None:
            model.feature_names_in_ = names
        return model


def _stored_stream(ds: xr.Dataset, family: Family, attrs: dict[str, Any], source: str) -> Stream | None:
    """The state of stepwise EM that a model file holds (None for a model from ``fit``), checked."""
    running = running_from_dataset(ds, family, source)
    if running is None:
        return None
    absent = [name for name in ("decay", "n_batches", "batches_blended", "lower_bound") if name not in attrs]
    if absent:
        raise ModelFileError(f"{source} holds running statistics but not the attribute(s) {', '.join(absent)}")
    if not DECAY.valid(attrs["decay"]):
        raise ModelFileError(f"{source}: attribute decay is {attrs['decay']!r}, not {DECAY.describe()}")
    if not np.isfinite(attrs["lower_bound"]):
        raise ModelFileError(f"{source}: attribute lower_bound is {attrs['lower_bound']!r}, not finite")
    return Stream(running, attrs["lower_bound"], attrs["batches_blended"], attrs["n_batches"])


def _attribute(value: Any) -> int | float | str:
    """A setting as a model file's attribute: a Python int, float or str."""
    if is_integer(value):
        return int(value)
    return float(value) if is_number(value) else str(value)
