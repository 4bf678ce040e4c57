"""What each command does, as functions that return plain reports.

Each function does the work of one ``daskem`` command and returns a report —
a dict of JSON-able values — that the command line prints as a table or as
JSON, and that job files (:mod:`daskem.app.jobs`) save.  Outputs are checked
against the inputs and reserved before any heavy work, and written atomically
(see :mod:`daskem.io.outputs`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from daskem.app.generate import generate as generate_data
from daskem.app.generate import truth_path
from daskem.engine.em import IterationInfo
from daskem.engine.passes import one_blas_thread
from daskem.estimators.base import BaseMixture
from daskem.estimators.hmm import HiddenMarkovModel
from daskem.estimators.registry import estimator_from_settings, from_dataset, hmm_from_settings, load, taken_settings
from daskem.estimators.selection import select as select_models
from daskem.exceptions import InputError
from daskem.io.checkpoints import fingerprint
from daskem.io.existing import leftovers
from daskem.io.inputs import as_row_chunked, as_rows, fit_inputs
from daskem.io.model_files import read_dataset, write_dataset
from daskem.io.outputs import Output, reserved
from daskem.io.storage import location
from daskem.io.zarr_rows import check_stored_chunks
from daskem.redaction import redact
from daskem.version import __version__


def model_summary(model: BaseMixture | HiddenMarkovModel) -> dict[str, Any]:
    """A fitted model as JSON-able values; ``rms_sd`` is each component's root-mean-square standard
    deviation over the features."""
    if isinstance(model, HiddenMarkovModel):
        return hmm_summary(model)
    params, family = model.params, model.family_
    spreads = np.sqrt(family.variances(params).mean(axis=1))
    covariance_type = getattr(family, "covariance_type", None)
    bound = model.history_[-1] if family.variational and len(model.history_) else model.lower_bound_
    return {
        "n_components": params.n_components,
        "family": family.name,
        "covariance_type": covariance_type,
        "description": (f"{params.n_components} {'Bayesian ' if family.variational else ''}components, "
                        f"{covariance_type} covariance" if covariance_type
                        else f"{params.n_components} {family.label} components"),
        "n_features": params.n_features,
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "objective": "evidence lower bound" if family.variational else "log-likelihood",
        "lower_bound": float(bound),
        "missing": [int(model.n_missing_values_), int(model.n_incomplete_rows_), int(model.n_empty_rows_)],
        "weights": params.weights.tolist(),
        "means": params.means.tolist(),
        "rms_sd": spreads.tolist(),
    }


def hmm_summary(model: HiddenMarkovModel) -> dict[str, Any]:
    """A fitted hidden Markov model as JSON-able values: its states (start probabilities, means, ``rms_sd`` as
    for a mixture) and transition matrix."""
    params, family = model.params_, model._family()
    covariance_type = getattr(family.emission, "covariance_type", None)
    return {
        "estimator": type(model).__name__,
        "n_components": params.n_components,
        "family": family.name,
        "description": f"{params.n_components} hidden states, {family.emission.name.title()} emissions"
                       + (f" ({covariance_type} covariance)" if covariance_type else ""),
        "n_features": params.n_features,
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "objective": "log-likelihood",
        "lower_bound": float(model.lower_bound_),
        "startprob": params.startprob.tolist(),
        "transmat": params.transmat.tolist(),
        "means": params.means.tolist(),
        "rms_sd": np.sqrt(family.emission.variances(params.emission).mean(axis=1)).tolist(),
    }


def _data_summary(path: str, variable: str | None, settings: dict[str, Any], model: BaseMixture) -> dict[str, Any]:
    """Shape, dtype and chunks of data that a fit of ``model`` has just read (rows after any stacking by
    ``sample_dim``), and how many of their stored chunks were absent (read as the fill value)."""
    rows = as_rows(path, variable, sample_dim=settings.get("sample_dim"), feature_dim=settings.get("feature_dim"))
    data = as_row_chunked(rows, None if rows is not path else variable, chunk_rows=settings.get("chunk_rows"))
    return {"path": str(path), "variable": variable, "rows": int(data.shape[0]), "features": int(data.shape[1]),
            "dtype": str(data.dtype), "chunks": int(data.numblocks[0]), "absent_chunks": int(model.n_absent_chunks_)}


def generate(path: str | Path, *, overwrite: bool = False, **settings: Any) -> dict[str, Any]:
    """``daskem generate``: synthetic mixture rows to Zarr, the truth beside them."""
    start = time.perf_counter()
    generate_data(path, overwrite=overwrite, **settings)
    return {"command": "generate", "path": str(path), "variable": "X", "truth": str(truth_path(path)),
            "seconds": time.perf_counter() - start, **settings}


def fit(
    path: str, *, variable: str | None = None, sample_weight: str | None = None, settings: dict[str, Any],
    out: str | Path | None = None, checkpoint: str | Path | None = None, overwrite: bool = False,
) -> dict[str, Any]:
    """``daskem fit``: fit one mixture, save it to ``out``.

    ``settings`` are the estimator's, with ``family`` naming it (see
    :func:`daskem.estimators.registry.estimator`).  ``out`` and ``checkpoint`` are checked
    against the data and each other and reserved before any work (see
    :mod:`daskem.io.outputs`).
    """
    model = estimator_from_settings(**settings)
    iterations: list[IterationInfo] = []
    outputs = [Output.of(out, "model", "--out"), Output.of(checkpoint, "checkpoint", "--checkpoint")]
    with reserved(outputs, [path], overwrite=overwrite):
        start = time.perf_counter()
        model.fit(path, variable=variable, sample_weight=sample_weight, callbacks=[iterations.append],
                  checkpoint=checkpoint)
        seconds = time.perf_counter() - start
        if out is not None:
            model.save(out, overwrite=overwrite)
    pass_seconds = {info.iteration: info.seconds for info in iterations}  # runs share each pass
    em_seconds, passes = sum(pass_seconds.values()), len(pass_seconds)
    data = _data_summary(path, variable, settings, model)
    return {
        "command": "fit",
        "data": data,
        "model": model_summary(model),
        "tol": model.tol,
        "acceleration": model.acceleration,
        "seconds": seconds,
        "initialisation_seconds": seconds - em_seconds,
        "passes": passes,
        "seconds_per_pass": em_seconds / passes if passes else None,
        "rows_per_second": data["rows"] * passes / em_seconds if passes else None,
        "out": None if out is None else str(out),
    }


def hmm(
    path: str, *, variable: str | None = None, lengths: str | None = None, sequence_ids: str | None = None,
    settings: dict[str, Any], out: str | Path | None = None, checkpoint: str | Path | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """``daskem hmm``: fit a hidden Markov model to the steps at ``path`` (sequences given by the arrays
    ``lengths`` or ``sequence_ids`` of the group, else one sequence), save it to ``out``.

    ``settings`` are the estimator's, with ``emission`` naming its family (see
    :func:`daskem.estimators.registry.hmm_from_settings`).
    """
    model = hmm_from_settings(**settings)
    iterations: list[IterationInfo] = []
    outputs = [Output.of(out, "model", "--out"), Output.of(checkpoint, "checkpoint", "--checkpoint")]
    with reserved(outputs, [path], overwrite=overwrite):
        start = time.perf_counter()
        model.fit(path, lengths, variable=variable, sequence_ids=sequence_ids, callbacks=[iterations.append],
                  checkpoint=checkpoint)
        seconds = time.perf_counter() - start
        if out is not None:
            model.save(out, overwrite=overwrite)
    pass_seconds = {info.iteration: info.seconds for info in iterations}
    em_seconds, passes = sum(pass_seconds.values()), len(pass_seconds)
    return {
        "command": "hmm",
        "data": {"path": redact(str(path)), "variable": variable, "lengths": lengths, "sequence_ids": sequence_ids},
        "model": hmm_summary(model),
        "tol": model.tol,
        "seconds": seconds,
        "passes": passes,
        "seconds_per_pass": em_seconds / passes if passes else None,
        "out": None if out is None else str(out),
    }


def decode(
    model_path: str | Path, path: str, *, variable: str | None = None, lengths: str | None = None,
    sequence_ids: str | None = None, out: str | Path, chunk_rows: int | None = None, overwrite: bool = False,
) -> dict[str, Any]:
    """``daskem decode``: every step's hidden state and posteriors under the hidden Markov model at
    ``model_path``, to Zarr, chunk by chunk (see :meth:`~daskem.estimators.hmm.HiddenMarkovModel.decode_dataset`)."""
    with reserved([Output.of(out, "scores", "--out")], [model_path, path], overwrite=overwrite):
        model = load(model_path)
        if not isinstance(model, HiddenMarkovModel):
            raise InputError(f"{model_path} holds a mixture, not a hidden Markov model: score its rows with daskem "
                             "predict")
        decoded = model.set_params(chunk_rows=chunk_rows).decode_dataset(path, lengths, variable=variable,
                                                                        sequence_ids=sequence_ids)
        start = time.perf_counter()
        with one_blas_thread():
            write_dataset(decoded, out, "scores", overwrite=overwrite, label="--out")
    return {"command": "decode", "model": str(model_path), "data": str(path), "variable": variable,
            "steps": int(decoded["state"].size), "algorithm": model.algorithm,
            "seconds": time.perf_counter() - start, "out": str(out)}


def _mixture(model_path: str | Path, command: str) -> BaseMixture:
    """The mixture saved at ``model_path``; an :class:`InputError` for a hidden Markov model, which ``command``
    does not take."""
    model = load(model_path)
    if isinstance(model, HiddenMarkovModel):
        raise InputError(f"{model_path} holds a hidden Markov model ({type(model).__name__}), which daskem {command} "
                         "does not take: decode its sequences with daskem decode")
    return model


#: The model-file attribute that lists the fingerprints of the data an updated model has absorbed
#: (see :func:`update`), separated by spaces.
ABSORBED = "absorbed"
#: Settings of a run that shape how data are read, not the model: an updated model takes the run's.
_READING = ("chunk_rows", "split_every", "sample_dim", "feature_dim", "strict_chunks")


def update(
    path: str, *, variable: str | None = None, sample_weight: str | None = None, settings: dict[str, Any],
    previous: str | Path | None, out: str | Path, overwrite: bool = False,
) -> dict[str, Any]:
    """A job's ``update: true``: the model at ``previous`` learns from the data (``partial_fit``, one pass)
    and is saved to ``out``; without a model at ``previous`` (the first run), a fit on the data starts one.

    Idempotent: the model file records the fingerprint of every data set it
    has absorbed (:func:`daskem.io.checkpoints.fingerprint`: shape, chunks,
    first and last rows, in the attribute :data:`ABSORBED`), and data already
    absorbed are not learnt from again (the model is saved unchanged).
    ``settings`` are the job's fit settings; the previous model must be of
    their family, components and family settings.
    """
    rows, data, weights = fit_inputs(path, variable, sample_weight, sample_dim=settings.get("sample_dim"),
                                     feature_dim=settings.get("feature_dim"), chunk_rows=settings.get("chunk_rows"))
    digest = fingerprint(data, weights)
    if previous is not None and location(previous).exists():
        source = f"the previous model {str(previous)!r}"
        with read_dataset(previous) as ds:
            model = from_dataset(ds, source)
            absorbed = str(ds.attrs.get(ABSORBED, "")).split()
        _check_same_kind(model, settings, source)
        model.set_params(**{name: settings[name] for name in _READING if name in settings})
    else:
        previous, absorbed = None, []
        model = estimator_from_settings(**settings)
    learnt = digest not in absorbed
    with reserved([Output.of(out, "model", "outputs.model")], [path], overwrite=overwrite):
        start = time.perf_counter()
        if learnt:
            model.partial_fit(path, variable=variable, sample_weight=sample_weight)
            absorbed.append(digest)
        seconds = time.perf_counter() - start
        ds = model.to_dataset()
        write_dataset(ds.assign_attrs({ABSORBED: " ".join(absorbed)}), out, "model", overwrite=overwrite,
                      label="outputs.model")
    return {
        "command": "update",
        "data": _data_summary(path, variable, settings, model),
        "previous": None if previous is None else str(previous),
        "fingerprint": digest,
        "learnt": learnt,
        "n_batches": int(model.n_batches_),
        "model": model_summary(model),
        "seconds": seconds,
        "out": str(out),
    }


def _check_same_kind(model: BaseMixture, settings: dict[str, Any], source: str) -> None:
    """Refuse a previous model of another family, number of components or family settings than a job's."""
    family = model.family_
    wanted = {"family": settings.get("family", "gaussian"), "n_components": settings["n_components"],
              **{name: settings[name] for name in family.setting_names() if name in settings}}
    found = {"family": family.name, "n_components": model.n_components, **family.settings()}
    differ = [f"{name} {found[name]!r} (the job asks for {value!r})" for name, value in wanted.items()
              if found.get(name) != value]
    if differ:
        raise InputError(f"{source} has {', '.join(differ)}; give the job the previous model's settings, or "
                         "start a new model (another outputs.model and previous)")


def select(
    path: str, *, variable: str | None = None, sample_weight: str | None = None, n_components: list[int],
    covariance_types: list[str], families: list[str] = ("gaussian",), criterion: str = "bic",
    settings: dict[str, Any],
    out: str | Path | None = None, checkpoint: str | Path | None = None, overwrite: bool = False,
) -> dict[str, Any]:
    """``daskem select``: fit every candidate in shared passes; save the table and best model to ``out``."""
    outputs = [Output.of(out, "selection", "--out"), Output.of(checkpoint, "checkpoint", "--checkpoint")]
    with reserved(outputs, [path], overwrite=overwrite):
        start = time.perf_counter()
        selection = select_models(path, n_components, covariance_types, families=list(families), variable=variable,
                                  sample_weight=sample_weight, criterion=criterion, checkpoint=checkpoint,
                                  **taken_settings(families, settings))
        seconds = time.perf_counter() - start
        if out is not None:
            selection.save(out, overwrite=overwrite)
    return {
        "command": "select",
        "data": _data_summary(path, variable, settings, selection.best_),
        "criterion": criterion,
        "table": selection.table.to_dict(orient="records"),
        "best": model_summary(selection.best_),
        "passes": selection.n_passes,
        "seconds": seconds,
        "out": None if out is None else str(out),
    }


def predict(
    model_path: str | Path, path: str, *, variable: str | None = None, out: str | Path,
    chunk_rows: int | None = None, overwrite: bool = False, dims: dict[str, Any] | None = None,
    strict_chunks: bool = False,
) -> dict[str, Any]:
    """``daskem predict``: labels, responsibilities and log-likelihood of every row, to Zarr.

    ``dims``: ``sample_dim`` and ``feature_dim`` for the data; ``strict_chunks``: refuse data whose store
    lacks chunks (see :class:`GaussianMixture`).
    """
    with reserved([Output.of(out, "scores", "--out")], [model_path, path], overwrite=overwrite):
        model = _mixture(model_path, "predict").set_params(chunk_rows=chunk_rows, strict_chunks=strict_chunks,
                                                           **(dims or {}))
        scores = model.score_dataset(path, variable=variable)
        start = time.perf_counter()
        with one_blas_thread():
            write_dataset(scores, out, "scores", overwrite=overwrite, label="--out")
    rows = int(scores["label"].size)  # over every dimension the rows were stacked from
    return {"command": "predict", "model": str(model_path), "data": str(path), "variable": variable,
            "rows": rows, "seconds": time.perf_counter() - start, "out": str(out)}


def impute(
    model_path: str | Path, path: str, *, variable: str | None = None, out: str | Path,
    chunk_rows: int | None = None, overwrite: bool = False, strict_chunks: bool = False,
) -> dict[str, Any]:
    """``daskem impute``: the rows of the data with each missing value replaced by its conditional
    expectation under the model, chunk by chunk, to the Zarr array ``X`` at ``out`` (``strict_chunks``:
    refuse data whose store lacks chunks)."""
    with reserved([Output.of(out, "data", "--out")], [model_path, path], overwrite=overwrite):
        model = _mixture(model_path, "impute").set_params(chunk_rows=chunk_rows)
        check_stored_chunks(path, variable, strict=strict_chunks)
        rows = as_row_chunked(path, variable, chunk_rows=chunk_rows)
        imputed = model.impute(rows)
        data = xr.Dataset(
            {"X": (("sample", "feature"), imputed, {"long_name": "rows with each missing value replaced by its "
                                                   "conditional expectation under the model", "units": "1"})},
            attrs={"description": redact(f"{path} ({variable or 'its rows'}) imputed by the daskem model "
                                         f"{model_path}")},
        )
        start = time.perf_counter()
        with one_blas_thread():
            write_dataset(data, out, "data", overwrite=overwrite, label="--out")
    return {"command": "impute", "model": str(model_path), "data": str(path), "variable": variable,
            "rows": int(rows.shape[0]), "seconds": time.perf_counter() - start, "out": str(out)}


def score(
    model_path: str | Path, path: str, *, variable: str | None = None, dims: dict[str, Any] | None = None,
    strict_chunks: bool = False,
) -> dict[str, Any]:
    """``daskem score``: the mean log-likelihood per row of the data under a saved model."""
    model = _mixture(model_path, "score").set_params(strict_chunks=strict_chunks, **(dims or {}))
    with one_blas_thread():
        mean = model.score(path, variable=variable)
    return {"command": "score", "model": str(model_path), "data": str(path), "variable": variable,
            "mean_log_likelihood": mean}


def info(path: str | Path) -> dict[str, Any]:
    """``daskem info``: a saved model, and what interrupted writes of it left beside it."""
    with read_dataset(path) as ds:
        model = from_dataset(ds, f"the model file {str(path)!r}")
        written_by = str(ds.attrs.get("daskem_version", "unknown"))
    return {"command": "info", "path": str(path), "model": model_summary(model), "daskem_version": written_by,
            "reader_version": __version__, "leftovers": leftovers(path)}


def picture(
    draw: Callable[[], Any], out: str | Path, *, inputs: list[Any], overwrite: bool = False
) -> dict[str, Any]:
    """``daskem plot …``: ``draw()`` a figure (it may read the inputs) and save it to ``out`` as PNG."""
    from daskem.app import plots

    with reserved([Output.of(out, "picture", "--out")], inputs, overwrite=overwrite):
        plots.save(draw(), out, overwrite=overwrite)
    return {"command": "plot", "out": str(out)}
