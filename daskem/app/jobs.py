"""Job files — a whole fit (or selection), with its outputs, in one YAML file.

::

    data:    {path: data.zarr, variable: X}
    fit:     {n_components: 8}            # family: bernoulli, or select: {n_components: 1-10, families: [...]}
                                          # update: true, previous: runs/{yesterday}/model.zarr: learn from new data
                                          # or hmm: {n_components: 4, emission: gaussian}, with data.lengths
                                          # (or data.sequence_ids) naming an array of the group
    cluster: ../cluster_configs/local-threads.yaml
    checkpoint: runs/{date}/checkpoint
    outputs: {model: runs/{date}/model.zarr, scores: runs/{date}/scores.zarr, report: runs/{date}/report.json}

Relative paths are relative to the job file; ``{date}`` stands for the run's
date (today, or ``--date``), so a nightly job writes a folder per night, and
``{yesterday}`` for the day before.

With ``update: true`` under ``fit:``, the job does not fit afresh: the model
at ``fit.previous`` (the last run's, or the job's own ``outputs.model``,
updated in place) learns from the data by ``partial_fit`` — one pass — and is
written to ``outputs.model``; where there is no model at ``previous`` yet, a fit
on the data starts one.  The model file records the fingerprint of each data
set it has absorbed, and data it has absorbed already are skipped (the model
is written unchanged), so running such a job twice learns once.  Its ``fit``
settings must be the previous model's; it takes no checkpoint.  The
file is validated before any work (unknown keys, wrong types, missing inputs).
The report is written last: a job whose report exists is done, and running it
again does nothing unless forced.  A job that crashed resumes from its
checkpoint; a finished job's checkpoint is removed.  Every output is written
atomically.

Outputs obey :mod:`daskem.io.outputs`: none may be or hold an input (the job
file, the data, the cluster config), and an existing output is replaced only
if it is a daskem output of the same kind and either ``overwrite: true`` is
set or it is the job's own — written by an interrupted run of the same job
(recorded in a hidden ``.REPORT.outputs.json`` beside the report until the
report is written) or, with ``--force``, listed in the job's earlier report.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from daskem.app import commands
from daskem.app.cluster import load_config, running_on
from daskem.app.options import em_fields, field, help_text
from daskem.estimators.registry import HMM_ESTIMATORS, HMM_RUN_SETTINGS
from daskem.estimators.settings import FEATURE_DIM, N_COMPONENTS, SAMPLE_DIM
from daskem.exceptions import DaskemError, OutputExistsError
from daskem.families.gaussian import COVARIANCE_TYPE
from daskem.families.registry import FAMILIES
from daskem.io.atomic import replace_text
from daskem.io.checkpoints import remove_checkpoints
from daskem.io.existing import KIND_ATTRIBUTE, SELECTION_MODEL, output_kind
from daskem.io.outputs import Output, atomic_path, check_outputs, reserved
from daskem.io.storage import location
from daskem.io.yaml_files import describe, read_mapping
from daskem.redaction import redact_all, remember
from daskem.version import __version__

CovarianceType = Literal[COVARIANCE_TYPE.choices]  # type: ignore[valid-type]
FamilyName = Literal[tuple(FAMILIES)]  # type: ignore[valid-type]


#: Most integers a list like "1-10,20" may hold.
MAX_INTEGERS = 1000


def parse_integers(text: str) -> list[int]:
    """``"1-3,5"`` → ``[1, 2, 3, 5]``.

    Raises
    ------
    ValueError
        Unless every integer is >= 1 and there are at most ``MAX_INTEGERS``
        (counted before any range is expanded).
    """
    numbers: set[int] = set()
    for part in text.split(","):
        low, _, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"{text!r} is not a list like 3, 1-10 or 2,4,8 of integers >= 1") from None
        if first < 1 or last < first:
            raise ValueError(f"{text!r} is not a list like 3, 1-10 or 2,4,8 of integers >= 1")
        if last - first + 1 + len(numbers) > MAX_INTEGERS:
            raise ValueError(f"{text!r} holds more than {MAX_INTEGERS} integers; give fewer")
        numbers.update(range(first, last + 1))
    return sorted(numbers)


class JobError(DaskemError, ValueError):
    """A job file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Data(_Strict):
    path: str
    variable: str | None = None
    sample_weight: str | None = None
    #: A hidden Markov model's sequences: the array of the group holding each one's steps, or one id per row.
    lengths: str | None = Field(None, description="Array of the group holding each sequence's number of steps "
                                "(an hmm job; default: one sequence).")
    sequence_ids: str | None = Field(None, description="Array of the group holding one sequence id per row (an hmm "
                                     "job, instead of lengths).")
    #: The roles of the dimensions of an N-D array (see GaussianMixture's sample_dim, feature_dim).
    sample_dim: str | list[str] | None = Field(SAMPLE_DIM.default, description=SAMPLE_DIM.help)
    feature_dim: str | None = Field(FEATURE_DIM.default, description=FEATURE_DIM.help)

    def dims(self) -> dict[str, Any]:
        """``sample_dim`` and ``feature_dim`` as GaussianMixture takes them."""
        sample_dim = tuple(self.sample_dim) if isinstance(self.sample_dim, list) else self.sample_dim
        return {"sample_dim": sample_dim, "feature_dim": self.feature_dim}


#: The EM settings of a fit or a selection, each as declared (see :mod:`daskem.app.options`).
_EMSettings = create_model("_EMSettings", __base__=_Strict, **em_fields())


class Fit(_EMSettings):
    n_components: int = Field(ge=N_COMPONENTS.ge, description=N_COMPONENTS.help)
    family: FamilyName = "gaussian"
    covariance_type: CovarianceType = Field(COVARIANCE_TYPE.default, description=help_text(COVARIANCE_TYPE))
    update: bool = Field(False, description="Learn from the data by partial_fit, starting from the model at "
                         "previous (a fit starts one where there is none); data already absorbed are skipped.")
    previous: str | None = Field(None, description="The model that update: true continues, such as "
                                 "runs/{yesterday}/model.zarr, or the job's own outputs.model.")

    @model_validator(mode="after")
    def _previous(self) -> Fit:
        if self.previous is not None and not self.update:
            raise ValueError("fit.previous is the model that update: true continues; set update: true")
        return self

    def settings(self) -> dict[str, Any]:
        """The estimator's settings (those of a run, as :func:`daskem.app.commands.fit` takes them)."""
        return self.model_dump(exclude={"update", "previous"})


class Select(_EMSettings):
    n_components: list[Annotated[int, Field(ge=N_COMPONENTS.ge)]] | str = Field(
        description="Numbers of components to try: a list, or text like 1-10 or 2,4,8.")
    families: list[FamilyName] = ["gaussian"]
    covariance_types: list[CovarianceType] = [COVARIANCE_TYPE.default]
    criterion: Literal["bic", "aic"] = "bic"

    @model_validator(mode="after")
    def _components(self) -> Select:
        if isinstance(self.n_components, str):
            try:
                parse_integers(self.n_components)
            except ValueError as error:
                raise ValueError(f"n_components {error}") from None
        elif len(self.n_components) > MAX_INTEGERS:
            raise ValueError(f"n_components lists more than {MAX_INTEGERS} numbers; give fewer")
        return self

    def components(self) -> list[int]:
        return parse_integers(self.n_components) if isinstance(self.n_components, str) else self.n_components


class Hmm(create_model("_HmmSettings", __base__=_Strict,  # type: ignore[misc]
                        **{name: field(setting) for name, setting in HMM_RUN_SETTINGS.items()})):
    n_components: int = Field(ge=N_COMPONENTS.ge, description="Number of hidden states.")
    emission: Literal[tuple(name.removesuffix("_hmm") for name in HMM_ESTIMATORS)] = "gaussian"  # type: ignore

    def settings(self) -> dict[str, Any]:
        """The estimator's settings, as :func:`daskem.app.commands.hmm` takes them."""
        return self.model_dump()


class Outputs(_Strict):
    model: str | None = None
    selection: str | None = None
    scores: str | None = None
    report: str


class Job(_Strict):
    data: Data
    fit: Fit | None = None
    select: Select | None = None
    hmm: Hmm | None = None
    cluster: str | None = None
    checkpoint: str | None = None
    outputs: Outputs
    overwrite: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Job:
        if sum(stage is not None for stage in (self.fit, self.select, self.hmm)) != 1:
            raise ValueError("give exactly one of fit, select and hmm")
        if (self.fit is not None or self.hmm is not None) and self.outputs.model is None:
            raise ValueError(f"a{' fit' if self.fit is not None else 'n hmm'} job needs outputs.model")
        if self.hmm is None and (self.data.lengths is not None or self.data.sequence_ids is not None):
            raise ValueError("data.lengths and data.sequence_ids give a hidden Markov model's sequences: use them "
                             "with hmm")
        if self.hmm is not None and self.data.sample_weight is not None:
            raise ValueError("a hidden Markov model takes no row weights: leave data.sample_weight out")
        if self.fit is not None and self.fit.update and self.checkpoint is not None:
            raise ValueError("a job with update: true reads its data once and takes no checkpoint")
        if self.select is not None:
            if self.outputs.selection is None:
                raise ValueError("a select job needs outputs.selection")
        return self

    def model_path(self) -> str:
        """Where the model the job produces lies (a select job's best model)."""
        return self.outputs.model or str(location(self.outputs.selection) / SELECTION_MODEL)

    def previous_model(self) -> str | None:
        """The model an update continues, where one is given and exists (None for a first run)."""
        previous = self.fit.previous if self.fit is not None and self.fit.update else None
        return previous if previous is not None and location(previous).exists() else None

    def planned_outputs(self) -> list[Output]:
        """Everything the job writes, the checkpoint folder included."""
        planned = [Output.of(getattr(self.outputs, name), kind, f"outputs.{name}")
                   for name, kind in (("model", "model"), ("selection", "selection"), ("scores", "scores"),
                                      ("report", "report"))]
        return [o for o in [*planned, Output.of(self.checkpoint, "checkpoint", "checkpoint")] if o is not None]


def load_job(path: str | os.PathLike, date: str | None = None) -> Job:
    """Read and validate a job file, resolving paths and ``{date}``; check its inputs exist.

    Raises
    ------
    JobError
        Naming the file and every problem found in it.
    """
    path = Path(path)
    if date is not None and not _is_iso_date(date):
        raise JobError(f"--date {date!r} is not a date: give it as YYYY-MM-DD (for example "
                       f"{datetime.date.today().isoformat()}); it names the run's folders")
    document = read_mapping(path, "job file", "data, fit or select, and outputs", JobError)
    try:
        job = Job.model_validate(_resolve(document, path.parent, date or datetime.date.today().isoformat()))
    except ValidationError as error:
        raise JobError(f"job file {str(path)!r}: {describe(error)}") from None
    problems = []
    if "://" not in job.data.path and not Path(job.data.path).exists():
        problems.append(f"data.path {job.data.path!r} does not exist")
    if job.cluster is not None and "://" in job.cluster:
        problems.append(f"cluster {job.cluster!r} is a URL; a cluster config is a local YAML file (see "
                        "cluster_configs/): give its path")
    elif job.cluster is not None:
        try:
            load_config(job.cluster)
        except DaskemError as error:
            problems.append(str(error))
    if problems:
        raise JobError(f"job file {str(path)!r}: {'; '.join(problems)}")
    return job


_PATH_KEYS = {("data", "path"), ("cluster",), ("checkpoint",), ("outputs", "model"), ("outputs", "selection"),
              ("outputs", "scores"), ("outputs", "report"), ("fit", "previous")}


def _is_iso_date(text: str) -> bool:
    """Whether ``text`` is a calendar date written YYYY-MM-DD (and nothing else)."""
    try:
        return datetime.date.fromisoformat(text).isoformat() == text
    except ValueError:
        return False


def _resolve(document: dict[str, Any], folder: Path, date: str) -> dict[str, Any]:
    """Paths made absolute against the job file's folder, with ``{date}`` and ``{yesterday}`` (the day
    before) filled in."""
    document = json.loads(json.dumps(document, default=str))
    yesterday = (datetime.date.fromisoformat(date) - datetime.timedelta(days=1)).isoformat()
    for keys in _PATH_KEYS:
        parent = document
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(keys[-1]), str):
            value = parent[keys[-1]].replace("{date}", date).replace("{yesterday}", yesterday)
            remember(value)
            parent[keys[-1]] = value if "://" in value else str(folder / Path(value).expanduser())
    return document


def run_job(path: str | os.PathLike, *, force: bool = False, date: str | None = None) -> dict[str, Any]:
    """Run the job file at ``path``; return its report (also saved to outputs.report).

    A job whose report exists is not run again unless ``force``; the report
    returned then says ``"status": "already done"``.  With ``force`` the job
    starts afresh (its checkpoint is removed) and replaces its own outputs; its
    earlier report is removed before any output is replaced, so a forced run
    that crashes is resumed, not taken for done, by the next run.
    """
    job = load_job(path, date)
    report_path = location(job.outputs.report)
    if output_kind(report_path) == "report" and not force:
        return {"status": "already done", "job": str(path), "report": str(report_path)}
    ledger = report_path.with_name(f".{report_path.name}.outputs.json")
    owned = _listed_outputs(ledger) + (_listed_outputs(report_path) + [str(report_path)] if force else [])
    planned = job.planned_outputs()
    data = job.data
    started = _now()
    inputs = [path, data.path, job.cluster]
    previous = job.previous_model()
    if previous is not None and location(previous) == location(job.outputs.model):
        owned.append(str(location(previous)))  # a model updated in place: the job names it as its own
    elif previous is not None:
        inputs.append(previous)
    checks = {"overwrite": job.overwrite, "replaceable": owned, "make_parents": True}  # the job's runs/{date}/
    try:
        check_outputs(planned, inputs, **checks)
    except OutputExistsError as error:
        raise JobError(_not_owned(path, report_path, error.output)) from None
    with reserved(planned, inputs, **checks):
        if force and job.checkpoint is not None:
            remove_checkpoints(job.checkpoint)
        _write_json(ledger, {"outputs": {o.label: str(o.path) for o in planned if o.kind != "checkpoint"}})
        if force:  # from here on the earlier report no longer describes the outputs: a crash leaves none
            report_path.unlink(missing_ok=True)
        try:
            stages = _run_stages(job)
        finally:
            if not any(o.path.exists() for o in planned if o.kind != "checkpoint"):
                ledger.unlink()  # nothing written: nothing to own
        report = {"status": "done", "job": str(path), "daskem_version": __version__,
                  "started": started, "finished": _now(), "settings": job.model_dump(mode="json"), "stages": stages,
                  "outputs": {o.label: str(o.path) for o in planned if o.kind != "checkpoint"},
                  KIND_ATTRIBUTE: "report"}
        with atomic_path(report_path, "report", overwrite=True, label="outputs.report") as temporary:
            temporary.write_text(json.dumps(redact_all(report), indent=2) + "\n")
        ledger.unlink(missing_ok=True)
        if job.checkpoint is not None:
            remove_checkpoints(job.checkpoint)
    return report


def _not_owned(job: Any, report: Any, output: Output) -> str:
    """Why the existing ``output`` of the job file ``job`` is not known to be its own: what its report says."""
    if not report.exists():
        state = "does not exist"
    elif output_kind(report) != "report":
        state = "is not a daskem job report (damaged or edited)"
    else:
        state = "does not list it"
    return (f"job file {str(job)!r}: {output} exists, and the job's report {str(report)!r} {state}, so daskem "
            "cannot tell that it is this job's own output; check it, then set overwrite: true in the job file to "
            "replace it, or give the job other outputs")


def _now() -> str:
    """The time now, to the second, with this machine's UTC offset (ISO 8601)."""
    return datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")


def _run_stages(job: Job) -> list[dict[str, Any]]:
    """Fit or select, then score; the outputs were checked and reserved by :func:`run_job`."""
    data = job.data
    with running_on(job.cluster):
        if job.fit is not None and job.fit.update:
            stage = commands.update(data.path, variable=data.variable, sample_weight=data.sample_weight,
                                    settings=job.fit.settings() | data.dims(), previous=job.previous_model(),
                                    out=job.outputs.model, overwrite=True)
        elif job.hmm is not None:
            stage = commands.hmm(data.path, variable=data.variable, lengths=data.lengths,
                                 sequence_ids=data.sequence_ids, settings=job.hmm.settings(), out=job.outputs.model,
                                 checkpoint=job.checkpoint, overwrite=True)
        elif job.fit is not None:
            stage = commands.fit(data.path, variable=data.variable, sample_weight=data.sample_weight,
                                 settings=job.fit.settings() | data.dims(), out=job.outputs.model,
                                 checkpoint=job.checkpoint, overwrite=True)
        else:
            settings = (job.select.model_dump(exclude={"n_components", "families", "covariance_types", "criterion"})
                        | data.dims())
            stage = commands.select(data.path, variable=data.variable, sample_weight=data.sample_weight,
                                    n_components=job.select.components(),
                                    covariance_types=list(job.select.covariance_types),
                                    families=list(job.select.families),
                                    criterion=job.select.criterion, settings=settings,
                                    out=job.outputs.selection, checkpoint=job.checkpoint, overwrite=True)
        stages = [stage]
        if job.outputs.scores is not None and job.hmm is not None:
            stages.append(commands.decode(job.outputs.model, data.path, variable=data.variable, lengths=data.lengths,
                                          sequence_ids=data.sequence_ids, out=job.outputs.scores,
                                          chunk_rows=job.hmm.chunk_rows, overwrite=True))
        elif job.outputs.scores is not None:
            settings = job.fit or job.select
            stages.append(commands.predict(job.model_path(), data.path, variable=data.variable,
                                           out=job.outputs.scores, chunk_rows=settings.chunk_rows,
                                           overwrite=True, dims=data.dims(), strict_chunks=settings.strict_chunks))
    return stages


def _listed_outputs(path: Any) -> list[str]:
    """The outputs a ledger or report of this job lists (none if it is absent or unreadable)."""
    try:
        listed = json.loads(path.read_text()).get("outputs", {})
    except (OSError, ValueError, AttributeError):
        return []
    return [str(p) for p in listed.values()] if isinstance(listed, dict) else []


def _write_json(path: Any, document: dict[str, Any]) -> None:
    """Write a small JSON file atomically (a rename, or one PUT on an object store), redacted."""
    replace_text(path, json.dumps(redact_all(document), indent=2) + "\n")
