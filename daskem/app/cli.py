"""The ``daskem`` command line (also ``python -m daskem`` and ``dask em``).

Commands: ``generate`` (synthetic data), ``fit``, ``select``, ``predict``,
``score``, ``impute``, ``info``, ``run`` (a job file) and ``plot``.  Each calls a function
of :mod:`daskem.app.commands` and prints its report as tables, or as JSON with
``--json``.  Progress goes to stderr: a bar per pass on the local scheduler,
the dashboard link and a line per iteration on a cluster.  Bad input ends the
command with a one-line ``Error: …`` and exit code 1.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from daskem.app import commands
from daskem.app.cluster import running_on
from daskem.app.generate import DEFAULT_CHUNK_ROWS
from daskem.app.jobs import parse_integers, run_job
from daskem.app.options import em_options, option
from daskem.engine.passes import progress_bar
from daskem.estimators.hmm import HiddenMarkovModel
from daskem.estimators.registry import HMM_ESTIMATORS, HMM_RUN_SETTINGS, load
from daskem.estimators.settings import CHUNK_ROWS, FEATURE_DIM, N_COMPONENTS, SAMPLE_DIM, STRICT_CHUNKS
from daskem.exceptions import DaskemError
from daskem.families.gaussian import COVARIANCE_TYPE
from daskem.families.registry import FAMILIES
from daskem.io.existing import SELECTION_TABLE
from daskem.io.storage import escape, location
from daskem.redaction import RedactingFormatter, redact, redact_all, remember
from daskem.version import __version__

#: A local path or an fsspec URL, passed on as typed (pathlib would turn s3://b into s3:/b).
LOCATION = click.Path(path_type=str)

logger = logging.getLogger("daskem")
LOG_LEVELS = ("debug", "info", "warning", "error")


@click.group(name="em", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daskem")
@click.option("-q", "--quiet", is_flag=True, help="No progress, only results and errors (--log-level warning).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default=None, help="How much to log to stderr [info].")
@click.option("--json", "as_json", is_flag=True, help="Print each result as one JSON document on stdout.")
@click.pass_context
def main(ctx: click.Context, quiet: bool, log_level: str | None, as_json: bool) -> None:
    """Fit mixture models (Gaussian, Bernoulli, Poisson) by EM on Zarr data larger than memory."""
    level = log_level or ("warning" if quiet or as_json else "info")
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(message)s"))  # tracebacks of --log-level debug too
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    logging.lastResort.setFormatter(RedactingFormatter())  # other libraries' warnings, where no handler takes them
    ctx.ensure_object(dict).update(json=as_json, progress=level in ("debug", "info"))


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn daskem's errors and warnings into one-line messages on stderr, every credential that the
    command's arguments hold redacted (see :mod:`daskem.redaction`)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for value in [*args, *kwargs.values()]:
            remember(value)
        try:
            return _reported(command, *args, **kwargs)
        except click.ClickException as error:
            error.message = redact(error.message)
            raise

    return wrapper


def _reported(command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``command``; its errors as one-line ``click.ClickException`` s, its warnings as lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return command(*args, **kwargs)
        except DaskemError as error:
            raise click.ClickException(str(error)) from None
        except MemoryError:
            raise click.ClickException(
                "out of memory; use smaller chunks (--chunk-rows) or a machine or cluster with more memory"
            ) from None
        except OSError as error:  # the disk or the network, outside daskem's own checks
            where = f"{error.filename}: " if error.filename else ""
            raise click.ClickException(f"{where}{error.strerror or error}") from None
        except Exception as error:
            logger.debug("unexpected error", exc_info=True)
            raise click.ClickException(
                f"unexpected {type(error).__name__}: {' '.join(str(error).split())} (a bug in daskem: please "
                "report it; --log-level debug shows where it happened)"
            ) from None
        finally:
            for message in dict.fromkeys(str(warning.message) for warning in caught):  # each once
                click.echo(redact(f"warning: {message}"), err=True)


def _cluster_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--cluster FILE``; run the command there, with a progress bar on the local scheduler."""

    @functools.wraps(command)
    def wrapper(*args: Any, cluster: Path | None, **kwargs: Any) -> Any:
        with running_on(cluster) as client, _progress(client is None):
            return command(*args, **kwargs)

    return click.option(
        "--cluster", type=click.Path(path_type=Path), default=None,
        help="Cluster config file (see cluster_configs/); default: local threads.",
    )(wrapper)


def _progress(local: bool) -> contextlib.AbstractContextManager:
    """Dask's progress bar on stderr for passes longer than a second (local scheduler, unless --quiet)."""
    ctx = click.get_current_context(silent=True)
    return progress_bar(local and ctx is not None and ctx.obj["progress"])


def _emit(report: dict[str, Any], as_text: Callable[[dict[str, Any]], str]) -> None:
    """Print a report: JSON with --json, else as text."""
    if click.get_current_context().obj["json"]:
        click.echo(json.dumps(redact_all(report), default=_jsonable))
    else:
        click.echo(redact(as_text(report)))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


_checkpoint_option = click.option(
    "--checkpoint", type=LOCATION, default=None,
    help="Checkpoint folder: written after every iteration; a rerun resumes from it.",
)
_overwrite_option = click.option(
    "--overwrite", is_flag=True, help="Replace --out if it exists (only ever a daskem output of the same kind).")
def _dim_names(ctx: click.Context, param: click.Parameter, value: str | None) -> str | tuple[str, ...] | None:
    """``y,x`` → ``("y", "x")``; one name stays a name."""
    if value is None:
        return None
    names = tuple(name.strip() for name in value.split(","))
    if not all(names):
        raise click.BadParameter(f"{value!r} is not a dimension name or a list like y,x")
    return names[0] if len(names) == 1 else names


def _dims_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--sample-dim`` and ``--feature-dim``: the roles of the dimensions of an N-D array (opened with xarray)."""
    return option(SAMPLE_DIM, callback=_dim_names)(option(FEATURE_DIM)(command))


def _em_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The EM settings that ``fit`` and ``select`` share, and the row weights."""
    command = click.option("--sample-weight", default=None, help="Array of the Zarr group holding row weights.")(command)
    return em_options(command)


def _fitting_options(out: str) -> Callable[[Callable[..., Any]], Any]:
    """What ``fit`` and ``select`` share after their own options: the EM settings, the dimensions, ``--out``
    (``out``: its help), ``--checkpoint``, ``--overwrite``, one-line errors and ``--cluster``."""
    def decorate(command: Callable[..., Any]) -> Any:
        for decorator in reversed([_em_options, _dims_options,
                                   click.option("--out", "-o", type=LOCATION, default=None, help=out),
                                   _checkpoint_option, _overwrite_option, _one_line_errors, _cluster_option]):
            command = decorator(command)
        return command
    return decorate


@main.command("generate")
@click.argument("path", type=LOCATION)
@click.option("--n-samples", type=click.IntRange(min=1), default=400_000, show_default=True)
@click.option("--n-features", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--n-components", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows per Zarr chunk.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--family", type=click.Choice([name for name, kind in FAMILIES.items() if not kind.variational]),
              default="gaussian", show_default=True,
              help="Family of the mixture to draw from: bernoulli gives 0/1 rows, poisson counts.")
@click.option("--overwrite", is_flag=True, help="Replace PATH (and its truth file) if they exist.")
@_one_line_errors
@_cluster_option
def generate_command(path: Path, overwrite: bool, **settings: Any) -> None:
    """Write rows drawn from a random mixture to the Zarr group PATH.

    The rows go to the array X (and the true component of each row to
    labels); the true parameters are saved beside PATH as a model file.
    """
    report = commands.generate(path, overwrite=overwrite, **settings)
    _emit(report, lambda r: f"wrote {r['n_samples']:,} rows × {r['n_features']} features to {r['path']} "
                            f"(variable X) in {r['seconds']:.1f} s; true parameters in {r['truth']}")


@main.command("fit")
@click.argument("path", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to fit.")
@option(N_COMPONENTS, "-k", default=None, required=True)
@click.option("--family", type=click.Choice(list(FAMILIES)), default="gaussian", show_default=True,
              help="Component family: bernoulli for 0/1 features, poisson for counts; bayesian_gaussian, "
                   "bayesian_bernoulli and bayesian_poisson for their variational Bayesian mixtures (see --bayesian).")
@click.option("--bayesian", is_flag=True, help="The family's Bayesian mixture (variational EM, a Dirichlet process "
              "over the weights: it finds its number of components, at most -k): --bayesian is "
              "--family bayesian_gaussian, with --family poisson --family bayesian_poisson.")
@option(COVARIANCE_TYPE)
@_fitting_options("Save the model here (Zarr; netCDF for a .nc suffix).")
def fit_command(path: str, variable: str | None, sample_weight: str | None, out: Path | None,
                checkpoint: Path | None, overwrite: bool, bayesian: bool, **settings: Any) -> None:
    """Fit a mixture (Gaussian by default) to the rows of the Zarr array at PATH."""
    if bayesian:
        settings["family"] = bayesian_family(settings["family"])
    report = commands.fit(path, variable=variable, sample_weight=sample_weight, settings=settings, out=out,
                          checkpoint=checkpoint, overwrite=overwrite)
    _emit(report, fit_text)


def bayesian_family(family: str) -> str:
    """The Bayesian family of ``family`` (for ``--bayesian``; every family has one)."""
    return family if FAMILIES[family].variational else f"bayesian_{family}"


def fit_text(report: dict[str, Any]) -> str:
    """The summary tables of a fit report."""
    data, model = report["data"], report["model"]
    source = data["path"] + (f" : {data['variable']}" if data["variable"] else "")
    timing = (f"{report['seconds_per_pass']:.3f} s per pass ({report['rows_per_second']:,.0f} rows/s)"
              if report["passes"] else "no pass (the checkpoint held a finished fit)")
    rows = [
        ("data", f"{source}  ({data['rows']:,} rows × {data['features']} features, {data['dtype']}, "
                 f"{data['chunks']} chunk(s)" + (f"; {data['absent_chunks']:,} stored chunk(s) absent, read as "
                                                 "the fill value" if data["absent_chunks"] else "") + ")"),
        ("model", model["description"]),
        ("iterations", f"{model['n_iter']} ({'converged' if model['converged'] else 'NOT converged'}, "
                       f"tol {report['tol']:g})"),
        (model["objective"], f"{model['lower_bound']:.6f} per row" + _missing_text(model)),
        ("time", f"{report['seconds']:.2f} s: initialisation {report['initialisation_seconds']:.2f} s, {timing}"),
        ("saved to", report["out"] or "(not saved; use --out)"),
    ]
    return _table(rows) + "\n\n" + _components_table(model)


def _missing_text(model: dict[str, Any]) -> str:
    """How many values were missing, if any, for the summary of a fit."""
    values, rows, empty = model["missing"]
    if not values:
        return ""
    return (f" of the observed values; {values:,} values missing in {rows:,} rows"
            + (f" ({empty:,} with nothing observed, left out)" if empty else ""))


class IntegerList(click.ParamType):
    """Integers given as ``3``, ``1-10`` or ``2,4,8`` (each >= 1)."""

    name = "integers"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            return parse_integers(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@main.command("select")
@click.argument("path", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to fit.")
@click.option("--n-components", "-k", type=IntegerList(), default="1-10", show_default=True,
              help="Numbers of components to try: 3, 1-10 or 2,4,8.")
@click.option("--families", default="gaussian", show_default=True,
              help="Comma-separated component families to try (gaussian, bernoulli, poisson).")
@click.option("--covariance-types", default="full", show_default=True,
              help="Comma-separated covariance types to try for Gaussians (full, tied, diag, spherical).")
@click.option("--criterion", type=click.Choice(["bic", "aic"]), default="bic", show_default=True)
@_fitting_options("Folder for table.csv and best.zarr (the best model).")
def select_command(path: str, variable: str | None, sample_weight: str | None, n_components: list[int],
                   families: str, covariance_types: str, criterion: str, out: Path | None,
                   checkpoint: Path | None, overwrite: bool, **settings: Any) -> None:
    """Fit every candidate mixture to the Zarr array at PATH in shared passes; rank them."""
    report = commands.select(
        path, variable=variable, sample_weight=sample_weight, n_components=n_components,
        covariance_types=[t.strip() for t in covariance_types.split(",") if t.strip()],
        families=[f.strip() for f in families.split(",") if f.strip()],
        criterion=criterion, settings=settings, out=out, checkpoint=checkpoint, overwrite=overwrite,
    )
    _emit(report, select_text)


def select_text(report: dict[str, Any]) -> str:
    """The ranking table of a select report."""
    import pandas as pd

    best = report["best"]
    return "\n".join([
        pd.DataFrame(report["table"]).to_string(index=False, float_format=lambda v: f"{v:.6g}"),
        "",
        f"best: {best['description']} (lowest {report['criterion']})",
        f"{len(report['table'])} candidates, {report['passes']} EM passes over the data, "
        f"{report['seconds']:.2f} s" + (f"; saved to {report['out']}" if report["out"] else ""),
    ])


def _model_on_data(name: str, what: str, out: str) -> Callable[[Callable[..., Any]], Any]:
    """A command ``name`` that reads MODEL and DATA (``--variable``: the array to ``what``) and writes ``out``
    (the help of ``--out``) to a new Zarr store, chunk by chunk."""
    def command(function: Callable[..., Any]) -> Any:
        for decorator in reversed([
            main.command(name),
            click.argument("model_path", metavar="MODEL", type=LOCATION),
            click.argument("path", metavar="DATA", type=str),
            click.option("--variable", "-v", default=None, help=f"Array of the Zarr group to {what}."),
            click.option("--out", "-o", type=LOCATION, required=True, help=out),
            option(CHUNK_ROWS),
            option(STRICT_CHUNKS),
            _overwrite_option,
            _one_line_errors,
            _cluster_option,
        ]):
            function = decorator(function)
        return function
    return command


@_model_on_data("predict", "score", "Zarr store for label, responsibility and log_likelihood of every row.")
@_dims_options
def predict_command(model_path: Path, path: str, variable: str | None, out: Path, chunk_rows: int | None,
                    strict_chunks: bool, overwrite: bool, **dims: Any) -> None:
    """Score the rows of DATA with the model saved at MODEL, chunk by chunk, into --out."""
    report = commands.predict(model_path, path, variable=variable, out=out, chunk_rows=chunk_rows,
                              overwrite=overwrite, dims=dims, strict_chunks=strict_chunks)
    _emit(report, lambda r: f"wrote label, responsibility and log_likelihood of {r['rows']:,} rows "
                            f"to {r['out']} in {r['seconds']:.1f} s")


@_model_on_data("impute", "impute", "Zarr store for the rows, each missing value replaced (array X).")
def impute_command(model_path: Path, path: str, variable: str | None, out: Path, chunk_rows: int | None,
                   strict_chunks: bool, overwrite: bool) -> None:
    """Replace each missing value (NaN) of DATA by its conditional expectation under MODEL, into --out."""
    report = commands.impute(model_path, path, variable=variable, out=out, chunk_rows=chunk_rows,
                             overwrite=overwrite, strict_chunks=strict_chunks)
    _emit(report, lambda r: f"wrote {r['rows']:,} rows, each missing value imputed, to {r['out']} (variable X) "
                            f"in {r['seconds']:.1f} s")


@main.command("score")
@click.argument("model_path", metavar="MODEL", type=LOCATION)
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to score.")
@option(STRICT_CHUNKS)
@_dims_options
@_one_line_errors
@_cluster_option
def score_command(model_path: Path, path: str, variable: str | None, strict_chunks: bool, **dims: Any) -> None:
    """Print the mean log-likelihood per row of DATA under the model saved at MODEL."""
    _emit(commands.score(model_path, path, variable=variable, dims=dims, strict_chunks=strict_chunks),
          lambda r: f"{r['mean_log_likelihood']:.10g}")


def _sequence_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--lengths`` and ``--sequence-ids``: where the sequences of the steps begin."""
    command = click.option("--sequence-ids", default=None, help="Array of the Zarr group holding one sequence id "
                           "per row, instead of --lengths (each sequence's rows contiguous).")(command)
    return click.option("--lengths", default=None, help="Array of the Zarr group holding each sequence's number "
                        "of steps (default: one sequence of every row).")(command)


def _hmm_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every setting a hidden Markov model takes from runs (:data:`HMM_RUN_SETTINGS`), each left to
    the estimator's default unless given (but the seed, 0 as for ``fit``, so that a written-down run repeats)."""
    for setting in reversed([s for s in HMM_RUN_SETTINGS.values() if s.name != "n_components"]):
        aliases = ("--seed",) if setting.name == "random_state" else ()
        takers = [name.removesuffix("_hmm").title() for name, kind in HMM_ESTIMATORS.items()
                  if any(own.name == setting.name for own in kind.SETTINGS)]
        only = f" {' and '.join(takers)} emissions only." if len(takers) < len(HMM_ESTIMATORS) else ""
        default = setting.default_in_runs if setting.name == "random_state" else None  # a run repeats
        command = option(setting, *aliases, default=default, show_default=default is not None,
                         help=setting.help + only)(command)
    return command


@main.command("hmm")
@click.argument("path", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group holding the steps (rows).")
@_sequence_options
@option(N_COMPONENTS, "-k", default=None, required=True, help="Number of hidden states.")
@click.option("--emission", type=click.Choice([name.removesuffix("_hmm") for name in HMM_ESTIMATORS]),
              default="gaussian", show_default=True,
              help="Emission family: bernoulli for 0/1 features, poisson for counts.")
@_hmm_options
@click.option("--out", "-o", type=LOCATION, default=None, help="Save the model here (Zarr; netCDF for a .nc suffix).")
@_checkpoint_option
@_overwrite_option
@_one_line_errors
@_cluster_option
def hmm_command(path: str, variable: str | None, lengths: str | None, sequence_ids: str | None, out: Path | None,
                checkpoint: Path | None, overwrite: bool, **settings: Any) -> None:
    """Fit a hidden Markov model (Baum–Welch) to the steps of the Zarr array at PATH."""
    report = commands.hmm(path, variable=variable, lengths=lengths, sequence_ids=sequence_ids, settings=settings,
                          out=out, checkpoint=checkpoint, overwrite=overwrite)
    _emit(report, hmm_text)


def hmm_text(report: dict[str, Any]) -> str:
    """The summary of an HMM fit: the fit, then the transition matrix."""
    model = report["model"]
    timing = (f"{report['seconds_per_pass']:.3f} s per pass" if report["passes"]
              else "no pass (the checkpoint held a finished fit)")
    rows = [
        ("data", report["data"]["path"] + (f" : {report['data']['variable']}" if report["data"]["variable"] else "")),
        ("model", f"{model['description']}, {model['n_features']} features"),
        ("iterations", f"{model['n_iter']} ({'converged' if model['converged'] else 'NOT converged'}, "
                       f"tol {report['tol']:g})"),
        ("log-likelihood", f"{model['lower_bound']:.6f} per step"),
        ("time", f"{report['seconds']:.2f} s, {timing}"),
        ("saved to", report["out"] or "(not saved; use --out)"),
    ]
    return _table(rows) + "\n\n" + _states_table(model)


def _states_table(model: dict[str, Any], max_features: int = 4) -> str:
    """A hidden Markov model's states (start probability, spread, mean) and transition probabilities."""
    n_features = model["n_features"]
    shown = min(max_features, n_features)
    more = " …" if n_features > shown else ""
    lines = [f"{'state':>5}  {'start':>8}  {'rms sd':>8}  mean (first {shown} features){more}"]
    for k in range(model["n_components"]):
        mean = "  ".join(f"{value:10.4g}" for value in model["means"][k][:shown])
        lines.append(f"{k:>5}  {model['startprob'][k]:8.4f}  {model['rms_sd'][k]:8.4g}  {mean}{more}")
    lines += ["", "transition probabilities (from each state, to state 0, 1, …):"]
    lines += [f"{j:>5}  " + "  ".join(f"{p:.4f}" for p in row) for j, row in enumerate(model["transmat"])]
    return "\n".join(lines)


@main.command("decode")
@click.argument("model_path", metavar="MODEL", type=LOCATION)
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group holding the steps.")
@_sequence_options
@click.option("--out", "-o", type=LOCATION, required=True, help="Zarr store for state and posterior of every step.")
@option(CHUNK_ROWS)
@_overwrite_option
@_one_line_errors
@_cluster_option
def decode_command(model_path: Path, path: str, variable: str | None, lengths: str | None,
                   sequence_ids: str | None, out: Path, chunk_rows: int | None, overwrite: bool) -> None:
    """Decode the steps of DATA with the hidden Markov model saved at MODEL, chunk by chunk, into --out."""
    report = commands.decode(model_path, path, variable=variable, lengths=lengths, sequence_ids=sequence_ids,
                             out=out, chunk_rows=chunk_rows, overwrite=overwrite)
    _emit(report, decode_text)


def decode_text(report: dict[str, Any]) -> str:
    return (f"wrote state ({report['algorithm']}) and posterior of {report['steps']:,} steps to {report['out']} "
            f"in {report['seconds']:.1f} s")


@main.command("run")
@click.argument("job_file", metavar="JOB", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Run again even if the job is done (starting afresh).")
@click.option("--date", default=None, help="The date that {date} in the job file stands for [today].")
@_one_line_errors
def run_command(job_file: Path, force: bool, date: str | None) -> None:
    """Run the job file JOB: fit or select, then score, writing every output atomically."""
    with _progress(local=True):
        report = run_job(job_file, force=force, date=date)
    _emit(report, run_text)


def run_text(report: dict[str, Any]) -> str:
    if report["status"] == "already done":
        return f"job already done (report: {report['report']}); use --force to run it again"
    texts = {"fit": fit_text, "select": select_text, "hmm": hmm_text, "decode": decode_text}
    parts = [texts[stage["command"]](stage) if stage["command"] in texts
             else f"wrote the scores of {stage['rows']:,} rows to {stage['out']} in {stage['seconds']:.1f} s"
             for stage in report["stages"]]
    return "\n\n".join(parts + [f"job done: {report['job']}"])


def _picture_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--out FILE.png`` and ``--overwrite`` of the plot commands."""
    command = click.option("--overwrite", is_flag=True, help="Replace --out if it is an existing PNG.")(command)
    return click.option("--out", "-o", type=LOCATION, required=True,
                         help="PNG file to write.")(command)


@main.group("plot")
def plot_group() -> None:
    """Draw pictures of fits to PNG (needs matplotlib: pip install 'daskem[plot]')."""


@plot_group.command("convergence")
@click.argument("model_path", metavar="MODEL", type=LOCATION)
@_picture_options
@_one_line_errors
def plot_convergence(model_path: Path, out: Path, overwrite: bool) -> None:
    """The convergence trace of the model saved at MODEL."""
    from daskem.app import plots

    report = commands.picture(lambda: plots.convergence(load(model_path)), out, inputs=[model_path],
                              overwrite=overwrite)
    _emit(report, _wrote)


@plot_group.command("selection")
@click.argument("selection_path", metavar="SELECTION", type=LOCATION)
@_picture_options
@_one_line_errors
def plot_selection(selection_path: Path, out: Path, overwrite: bool) -> None:
    """BIC and AIC curves of a selection (its folder, or its table.csv)."""
    import pandas as pd

    from daskem.app import plots

    where = location(selection_path)
    table_path = where / SELECTION_TABLE if where.is_dir() else where
    escapes = escape(where, SELECTION_TABLE) if where.is_dir() else None
    if escapes:
        raise DaskemError(f"{str(where)!r} is not a daskem selection: {escapes}; daskem follows nothing out of "
                          "a selection folder: give the folder daskem select wrote")
    if not table_path.exists():
        raise DaskemError(f"no selection table at {str(table_path)!r}; give the folder daskem select wrote")

    def draw() -> Any:
        with table_path.open() as table:
            return plots.selection(pd.read_csv(table))

    report = commands.picture(draw, out, inputs=[selection_path], overwrite=overwrite)
    _emit(report, _wrote)


@plot_group.command("components")
@click.argument("model_path", metavar="MODEL", type=LOCATION)
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group.")
@click.option("--features", default=None, help="Two features to show, like 0,3 (default: principal directions).")
@click.option("--sample", "sample_rows", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Rows drawn from the data to show.")
@_picture_options
@_one_line_errors
@_cluster_option
def plot_components(model_path: Path, path: str, variable: str | None, features: str | None, sample_rows: int,
                    out: Path, overwrite: bool) -> None:
    """The components of MODEL as ellipses over a sample of the rows of DATA, in 2-D."""
    from daskem.app import plots

    chosen = None
    if features is not None:
        try:
            first, second = (int(f) for f in features.split(","))
        except ValueError:
            raise DaskemError(f"--features {features!r} must be two feature indices like 0,3") from None
        chosen = (first, second)
    report = commands.picture(
        lambda: plots.components(load(model_path), path, variable=variable, features=chosen, sample_rows=sample_rows),
        out, inputs=[model_path, path], overwrite=overwrite,
    )
    _emit(report, _wrote)


@plot_group.command("hmm")
@click.argument("model_path", metavar="MODEL", type=LOCATION)
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group holding the steps.")
@_sequence_options
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="First step shown.")
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Steps shown.")
@click.option("--feature", type=click.IntRange(min=0), default=0, show_default=True, help="Feature shown.")
@_picture_options
@_one_line_errors
@_cluster_option
def plot_hmm(model_path: Path, path: str, variable: str | None, lengths: str | None, sequence_ids: str | None,
             start: int, steps: int, feature: int, out: Path, overwrite: bool) -> None:
    """A window of the steps of DATA coloured by the state MODEL decodes, their posteriors, and its transitions."""
    from daskem.app import plots

    def draw() -> Any:
        model = load(model_path)
        if not isinstance(model, HiddenMarkovModel):
            raise DaskemError(f"{model_path} holds a mixture, not a hidden Markov model: draw it with daskem plot "
                              "components")
        return plots.hmm(model, path, lengths, variable=variable, sequence_ids=sequence_ids, start=start,
                         steps=steps, feature=feature)

    _emit(commands.picture(draw, out, inputs=[model_path, path], overwrite=overwrite), _wrote)


def _wrote(report: dict[str, Any]) -> str:
    return f"wrote {report['out']}"


@main.command("info")
@click.argument("path", type=LOCATION)
@_one_line_errors
def info_command(path: Path) -> None:
    """Print the model saved at PATH."""
    _emit(commands.info(path), info_text)


def info_text(report: dict[str, Any]) -> str:
    model = report["model"]
    rows = [
        ("file", report["path"]),
        ("model", f"{model['description']}, {model['n_features']} features"),
        ("iterations", f"{model['n_iter']} ({'converged' if model['converged'] else 'not converged'})"),
        (model["objective"], f"{model['lower_bound']:.6f} per {'step' if 'transmat' in model else 'row'}"),
        ("daskem version", report["daskem_version"]),
        *(("leftover", left) for left in report["leftovers"]),
    ]
    return _table(rows) + "\n\n" + (_states_table(model) if "transmat" in model else _components_table(model))


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def _components_table(model: dict[str, Any], max_features: int = 4) -> str:
    n_features = model["n_features"]
    shown = min(max_features, n_features)
    more = " …" if n_features > shown else ""
    lines = [f"{'component':>9}  {'weight':>8}  {'rms sd':>8}  mean (first {shown} features){more}"]
    order = sorted(range(model["n_components"]), key=lambda k: -model["weights"][k])
    for k in order:
        mean = "  ".join(f"{value:10.4g}" for value in model["means"][k][:shown])
        lines.append(f"{k:>9}  {model['weights'][k]:8.4f}  {model['rms_sd'][k]:8.4g}  {mean}{more}")
    return "\n".join(lines)
