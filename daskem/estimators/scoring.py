"""Scoring, the part of :class:`~daskem.estimators.base.BaseMixture` that applies a fitted mixture to rows.

Log-likelihoods, responsibilities, labels, imputed values and the information
criteria, in memory for NumPy input and lazily (Dask) otherwise; each block of
rows goes through the family's ``e_step`` or ``impute``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from daskem.engine.passes import Blocks
from daskem.exceptions import InputError
from daskem.families.base import Family, Params
from daskem.io.inputs import as_row_chunked, as_rows, feature_names, in_memory_rows, row_coordinate, stacked_dims
from daskem.io.model_files import described
from daskem.io.zarr_rows import check_stored_chunks
from daskem.version import __version__


class Scoring:
    """Scoring rows with the fitted ``params`` and ``family_`` (see :class:`~daskem.estimators.base.BaseMixture`)."""

    def score_samples(self, X: Any, *, variable: str | None = None) -> Any:
        """Log-likelihood of each row, ``log p(x_i)`` in nats: (n_samples,)."""
        return self._map_rows(X, variable, _log_prob_norm, row_shape=(), dtype=np.float64)

    def predict_proba(self, X: Any, *, variable: str | None = None) -> Any:
        """Responsibilities of each component for each row: (n_samples, n_components)."""
        return self._map_rows(
            X, variable, _responsibilities, row_shape=(self.params.n_components,), dtype=np.float64
        )

    def predict(self, X: Any, *, variable: str | None = None) -> Any:
        """Most responsible component of each row: (n_samples,) int64."""
        return self._map_rows(X, variable, _labels, row_shape=(), dtype=np.int64)

    def impute(self, X: Any, *, variable: str | None = None) -> Any:
        """The rows with each missing value (NaN) replaced by its conditional expectation under the
        fitted mixture given the row's observed values: (n_samples, n_features) float64, lazy (Dask)
        for Dask, xarray and Zarr inputs.  For Gaussians ``Σ_k r_k (μ_m + Σ_mo Σ_oo⁻¹ (x_o − μ_o))``
        with r the responsibilities given the observed values; rows with nothing observed take the
        mixture's mean."""
        return self._map_rows(X, variable, _imputed, row_shape=(self.params.n_features,), dtype=np.float64)

    def score(self, X: Any, y: None = None, *, variable: str | None = None) -> float:
        """Mean log-likelihood per row, in nats."""
        return float(np.mean(self.score_samples(X, variable=variable)))

    def bic(self, X: Any, *, variable: str | None = None) -> float:
        """Bayesian information criterion on X (lower is better)."""
        n_samples = self._n_rows(X, variable)
        return -2 * self.score(X, variable=variable) * n_samples + self._n_parameters() * np.log(n_samples)

    def aic(self, X: Any, *, variable: str | None = None) -> float:
        """Akaike information criterion on X (lower is better)."""
        n_samples = self._n_rows(X, variable)
        return -2 * self.score(X, variable=variable) * n_samples + 2 * self._n_parameters()

    def _rows(self, X: Any, variable: str | None) -> tuple[Any, str | None]:
        """X as :func:`daskem.io.inputs.as_rows` sees it with this model's dims, and the variable still to pick."""
        rows = as_rows(X, variable, sample_dim=self.sample_dim, feature_dim=self.feature_dim)
        return (X, variable) if rows is X else (rows, None)

    def _n_rows(self, X: Any, variable: str | None) -> int:
        X, variable = self._rows(X, variable)
        rows = in_memory_rows(X, variable)
        return len(rows) if rows is not None else as_row_chunked(X, variable).shape[0]

    def _map_rows(
        self,
        X: Any,
        variable: str | None,
        kernel: Callable[[np.ndarray, Family, Params, int], np.ndarray],
        row_shape: tuple[int, ...],
        dtype: type,
    ) -> Any:
        """Apply a per-row kernel: in memory for NumPy input, lazily otherwise."""
        params, family = self.params, self.family_
        check_stored_chunks(X, variable, strict=self.strict_chunks)
        X, variable = self._rows(X, variable)
        rows = in_memory_rows(X, variable)
        if rows is not None:
            self._check_features(X, rows.shape[1])
            return kernel(rows, family, params, 0)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])

        def block_kernel(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
            first_row = block_info[0]["array-location"][0][0] if block_info else 0
            return kernel(block, family, params, first_row)

        if row_shape:
            return data.map_blocks(block_kernel, chunks=(data.chunks[0], row_shape), dtype=dtype)
        return data.map_blocks(block_kernel, drop_axis=1, dtype=dtype)

    def score_dataset(self, X: Any, *, variable: str | None = None) -> xr.Dataset:
        """Labels, responsibilities and log-likelihood of every row, lazily.

        The result is an :class:`xarray.Dataset` of Dask arrays chunked like
        the input rows — ``label`` (row), ``responsibility`` (row, component)
        and ``log_likelihood`` (row, nats) — with the input's row coordinate
        when it has one.  Computing (or ``to_zarr``) reads each chunk once for
        all three.
        """
        params, family = self.params, self.family_
        check_stored_chunks(X, variable, strict=self.strict_chunks)
        X, variable = self._rows(X, variable)
        data = as_row_chunked(X, variable, chunk_rows=self.chunk_rows)
        self._check_features(X, data.shape[1])
        dim, coordinate = row_coordinate(X, variable)
        stacked = stacked_dims(X)
        if dim == "component":  # the scores' own dimension: the rows take the default name
            dim = "sample"
        blocks = Blocks.of(data)
        shared = dask.delayed((family, params), traverse=False)
        parts = [dask.delayed(_score_block, nout=3, pure=True)(rows, shared, first_row)
                 for rows, first_row in zip(blocks.rows, blocks.first_rows)]
        k = params.n_components
        columns = [
            da.concatenate([da.from_delayed(part[i], (n, *shape), dtype=dtype)
                            for part, n in zip(parts, data.chunks[0])])
            for i, (shape, dtype) in enumerate((((), np.int64), ((k,), np.float64), ((), np.float64)))
        ]
        coords = {"component": np.arange(k)}
        if coordinate is not None and not stacked:
            coords[dim] = coordinate
        scores = xr.Dataset(
            {
                "label": (dim, columns[0]),
                "responsibility": ((dim, "component"), columns[1]),
                "log_likelihood": (dim, columns[2]),
            },
            coords=coords,
            attrs={"description": f"scores of the rows under a daskem {type(self).__name__}",
                   "daskem_version": __version__},
        )
        if stacked:  # back to the input's own dimensions and coordinates: a (y, x) label map
            index = xr.Coordinates.from_pandas_multiindex(X.indexes[dim], dim)
            scores = scores.assign_coords(index).unstack(dim).transpose(*stacked, "component")
        return described(scores)

    def _check_features(self, X: Any, n_features: int) -> None:
        """X's number of features and, as scikit-learn checks them, its column names against the fit's."""
        if n_features != self.params.n_features:
            raise InputError(
                f"X has {n_features} features, but {type(self).__name__} is expecting {self.params.n_features} "
                "features as input (the number it was fitted on)"
            )
        names, fitted = feature_names(X), getattr(self, "feature_names_in_", None)
        if names is not None and fitted is not None and not np.array_equal(names, fitted):
            raise InputError(
                "The feature names should match those that were passed during fit: the model was fitted on "
                f"{list(fitted)}, X has {list(names)}; select X[model.feature_names_in_] to reorder them"
            )
        if (names is None) != (fitted is None):
            name = type(self).__name__
            warnings.warn(
                f"X does not have valid feature names, but {name} was fitted with feature names"
                if names is None else f"X has feature names, but {name} was fitted without feature names",
                UserWarning,
                stacklevel=3,
            )


def _log_prob_norm(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.e_step(X, params, first_row)[0]


def _responsibilities(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return np.exp(family.e_step(X, params, first_row)[1])


def _labels(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.e_step(X, params, first_row)[1].argmax(axis=1)


def _imputed(X: np.ndarray, family: Family, params: Params, first_row: int) -> np.ndarray:
    return family.impute(X, params, first_row)


def _score_block(
    X: np.ndarray, model: tuple[Family, Params], first_row: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    family, params = model
    log_prob_norm, log_resp = family.e_step(X, params, first_row)
    return log_resp.argmax(axis=1), np.exp(log_resp), log_prob_norm
