"""Layer 5: job files — a whole fit (or selection), with its outputs, in one YAML file.

::

    data:    {path: data.zarr, variable: X}
    fit:     {n_components: 8}            # or select: {n_components: 1-10, covariance_types: [full, diag]}
    cluster: ../cluster_configs/local-threads.yaml
    checkpoint: runs/{date}/checkpoint
    outputs: {model: runs/{date}/model.zarr, scores: runs/{date}/scores.zarr, report: runs/{date}/report.json}

Relative paths are relative to the job file; ``{date}`` stands for the run's
date (today, or ``--date``), so a nightly job writes a folder per night.  The
file is validated before any work (unknown keys, wrong types, missing inputs).
The report is written last: a job whose report exists is done, and running it
again does nothing unless forced.  A job that crashed resumes from its
checkpoint; a finished job's checkpoint is removed.  Every output is written
atomically.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, PositiveInt, ValidationError, model_validator

from daskem import commands
from daskem.cluster import load_config, running_on
from daskem.exceptions import DaskemError
from daskem.initialization import INIT_METHODS
from daskem.kernels.gaussian import COVARIANCE_TYPES
from daskem.model_io import atomic_path, check_writable

CovarianceType = Literal[COVARIANCE_TYPES]  # type: ignore[valid-type]
InitMethod = Literal[INIT_METHODS]  # type: ignore[valid-type]


def parse_integers(text: str) -> list[int]:
    """``"1-3,5"`` → ``[1, 2, 3, 5]``; ValueError unless every integer is >= 1."""
    numbers: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first < 1 or last < first:
            raise ValueError(text)
        numbers.extend(range(first, last + 1))
    return sorted(set(numbers))


class JobError(DaskemError, ValueError):
    """A job file is missing, unreadable or invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Data(_Strict):
    path: str
    variable: str | None = None
    sample_weight: str | None = None


class _EMSettings(_Strict):
    n_init: PositiveInt = 1
    tol: NonNegativeFloat = 1e-3
    reg_covar: NonNegativeFloat = 1e-6
    max_iter: PositiveInt = 100
    init_params: InitMethod = "k-means++"
    random_state: int | None = 0
    chunk_rows: PositiveInt | None = None


class Fit(_EMSettings):
    n_components: PositiveInt
    covariance_type: CovarianceType = "full"


class Select(_EMSettings):
    n_components: list[PositiveInt] | str = Field(description="a list, or text like 1-10 or 2,4,8")
    covariance_types: list[CovarianceType] = ["full"]
    criterion: Literal["bic", "aic"] = "bic"

    @model_validator(mode="after")
    def _components(self) -> Select:
        if isinstance(self.n_components, str):
            try:
                parse_integers(self.n_components)
            except ValueError:
                raise ValueError(f"n_components {self.n_components!r} is not like 1-10 or 2,4,8") from None
        return self

    def components(self) -> list[int]:
        return parse_integers(self.n_components) if isinstance(self.n_components, str) else self.n_components


class Outputs(_Strict):
    model: str | None = None
    selection: str | None = None
    scores: str | None = None
    report: str


class Job(_Strict):
    data: Data
    fit: Fit | None = None
    select: Select | None = None
    cluster: str | None = None
    checkpoint: str | None = None
    outputs: Outputs

    @model_validator(mode="after")
    def _consistent(self) -> Job:
        if (self.fit is None) == (self.select is None):
            raise ValueError("give exactly one of fit and select")
        if self.fit is not None and self.outputs.model is None:
            raise ValueError("a fit job needs outputs.model")
        if self.select is not None:
            if self.outputs.selection is None:
                raise ValueError("a select job needs outputs.selection")
        return self

    def model_path(self) -> str:
        """Where the model the job produces lies (a select job's best model)."""
        return self.outputs.model or str(Path(self.outputs.selection) / "best.zarr")


def load_job(path: str | os.PathLike, date: str | None = None) -> Job:
    """Read and validate a job file, resolving paths and ``{date}``; check its inputs exist.

    Raises
    ------
    JobError
        Naming the file and every problem found in it.
    """
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise JobError(f"cannot read job file {str(path)!r}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise JobError(f"job file {str(path)!r} is not valid YAML: {' '.join(str(error).split())}") from None
    if not isinstance(document, dict):
        raise JobError(f"job file {str(path)!r} must be a mapping with data, fit or select, and outputs")
    try:
        job = Job.model_validate(_resolve(document, path.parent, date or datetime.date.today().isoformat()))
    except ValidationError as error:
        raise JobError(f"job file {str(path)!r}: {_describe(error)}") from None
    problems = []
    if "://" not in job.data.path and not Path(job.data.path).exists():
        problems.append(f"data.path {job.data.path!r} does not exist")
    if job.cluster is not None:
        try:
            load_config(job.cluster)
        except DaskemError as error:
            problems.append(str(error))
    if problems:
        raise JobError(f"job file {str(path)!r}: {'; '.join(problems)}")
    return job


_PATH_KEYS = {("data", "path"), ("cluster",), ("checkpoint",), ("outputs", "model"), ("outputs", "selection"),
              ("outputs", "scores"), ("outputs", "report")}


def _resolve(document: dict[str, Any], folder: Path, date: str) -> dict[str, Any]:
    """Paths made absolute against the job file's folder, with ``{date}`` filled in."""
    document = json.loads(json.dumps(document, default=str))
    for keys in _PATH_KEYS:
        parent = document
        for key in keys[:-1]:
            parent = parent.get(key) if isinstance(parent, dict) else None
        if isinstance(parent, dict) and isinstance(parent.get(keys[-1]), str):
            value = parent[keys[-1]].replace("{date}", date)
            parent[keys[-1]] = value if "://" in value else str(folder / Path(value).expanduser())
    return document


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown key {where!r}")
        else:
            problems.append(f"{where or 'file'}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


def run_job(path: str | os.PathLike, *, force: bool = False, date: str | None = None) -> dict[str, Any]:
    """Run the job file at ``path``; return its report (also saved to outputs.report).

    A job whose report exists is not run again unless ``force``; the report
    returned then says ``"status": "already done"``.
    """
    job = load_job(path, date)
    report_path = Path(job.outputs.report)
    if report_path.exists() and not force:
        return {"status": "already done", "job": str(path), "report": str(report_path)}
    checkpoint = Path(job.checkpoint) if job.checkpoint else None
    if force and checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)
    for output in (job.outputs.model, job.outputs.selection, job.outputs.scores, job.outputs.report):
        if output is not None:
            check_writable(output, overwrite=True)
    data = job.data
    with running_on(job.cluster):
        if job.fit is not None:
            stage = commands.fit(data.path, variable=data.variable, sample_weight=data.sample_weight,
                                 settings=job.fit.model_dump(), out=job.outputs.model, checkpoint=checkpoint,
                                 overwrite=True)
        else:
            settings = job.select.model_dump(exclude={"n_components", "covariance_types", "criterion"})
            stage = commands.select(data.path, variable=data.variable, sample_weight=data.sample_weight,
                                    n_components=job.select.components(),
                                    covariance_types=list(job.select.covariance_types),
                                    criterion=job.select.criterion, settings=settings,
                                    out=job.outputs.selection, checkpoint=checkpoint, overwrite=True)
        stages = [stage]
        if job.outputs.scores is not None:
            stages.append(commands.predict(job.model_path(), data.path, variable=data.variable,
                                           out=job.outputs.scores, chunk_rows=(job.fit or job.select).chunk_rows,
                                           overwrite=True))
    report = {"status": "done", "job": str(path), "finished": datetime.datetime.now().isoformat(timespec="seconds"),
              "stages": stages}
    with atomic_path(report_path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    if checkpoint is not None:
        shutil.rmtree(checkpoint, ignore_errors=True)
    return report

