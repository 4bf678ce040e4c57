"""Layer 5: the ``daskem`` command line (``daskem …`` or ``python -m daskem …``).

Commands: ``generate`` (synthetic data to Zarr), ``fit`` (EM on a Zarr array,
one log line per iteration, a summary at the end) and ``info`` (print a saved
model).  Bad input ends the command with a one-line message and exit code 1.
"""

from __future__ import annotations

import functools
import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from threadpoolctl import threadpool_limits

from daskem.cluster import running_on
from daskem.engine import IterationInfo
from daskem.estimator import GaussianMixture, __version__, load
from daskem.exceptions import DaskemError
from daskem.generate import DEFAULT_CHUNK_ROWS, generate, truth_path
from daskem.inputs import as_row_chunked
from daskem.kernels.gaussian import COVARIANCE_TYPES
from daskem.model_io import check_writable, read_dataset, write_dataset
from daskem.selection import select

logger = logging.getLogger("daskem")


def _one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn daskem's errors and warnings into one-line messages on stderr."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                return command(*args, **kwargs)
            except DaskemError as error:
                raise click.ClickException(str(error)) from None
            finally:
                for warning in caught:
                    click.echo(f"warning: {warning.message}", err=True)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="daskem")
@click.option("-q", "--quiet", is_flag=True, help="Print no progress lines, only results and errors.")
def main(quiet: bool) -> None:
    """Fit Gaussian mixture models by EM on Zarr data larger than memory."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    logger.propagate = False


def _cluster_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--cluster FILE`` and run the command on that cluster."""

    @functools.wraps(command)
    def wrapper(*args: Any, cluster: Path | None, **kwargs: Any) -> Any:
        with running_on(cluster):
            return command(*args, **kwargs)

    return click.option(
        "--cluster", type=click.Path(path_type=Path), default=None,
        help="Cluster config file (see cluster_configs/); default: local threads.",
    )(wrapper)


def _em_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The EM settings that ``fit`` and ``select`` share."""
    for option in reversed([
        click.option("--reg-covar", type=float, default=1e-6, show_default=True,
                     help="Added to the variances."),
        click.option("--max-iter", type=int, default=100, show_default=True),
        click.option("--init-params", default="k-means++", show_default=True,
                     help="k-means++, k-means||, kmeans, random or random_from_data."),
        click.option("--random-state", "--seed", "random_state", type=int, default=0, show_default=True),
        click.option("--chunk-rows", type=int, default=None, help="Rows per chunk (default: from the store)."),
    ]):
        command = option(command)
    return command


@main.command("generate")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--n-samples", type=click.IntRange(min=1), default=400_000, show_default=True)
@click.option("--n-features", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--n-components", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--chunk-rows", type=click.IntRange(min=1), default=DEFAULT_CHUNK_ROWS, show_default=True,
              help="Rows per Zarr chunk.")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), default="float64", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace PATH (and its truth file) if they exist.")
@_one_line_errors
@_cluster_option
def generate_command(path: Path, n_samples: int, n_features: int, n_components: int, seed: int,
                     chunk_rows: int, dtype: str, overwrite: bool) -> None:
    """Write rows drawn from a random Gaussian mixture to the Zarr group PATH.

    The rows go to the array X (and the true component of each row to
    labels); the true parameters are saved beside PATH as a model file.
    """
    start = time.perf_counter()
    generate(path, n_samples=n_samples, n_features=n_features, n_components=n_components,
             seed=seed, chunk_rows=chunk_rows, dtype=dtype, overwrite=overwrite)
    logger.info("wrote %s rows × %s features to %s (variable X) in %.1f s; true parameters in %s",
                f"{n_samples:,}", n_features, path, time.perf_counter() - start, truth_path(path))


@main.command("fit")
@click.argument("path", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to fit.")
@click.option("--n-components", "-k", type=int, required=True, help="Number of components.")
@click.option("--covariance-type", type=click.Choice(list(COVARIANCE_TYPES)), default="full", show_default=True)
@click.option("--n-init", type=int, default=1, show_default=True, help="Random starts; the best is kept.")
@click.option("--tol", type=float, default=1e-3, show_default=True,
              help="Stop when the mean log-likelihood per row changes by less.")
@_em_options
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Save the model here (Zarr; netCDF for a .nc suffix).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Checkpoint folder: written after every iteration; a rerun resumes from it.")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@_one_line_errors
@_cluster_option
def fit_command(path: str, variable: str | None, n_components: int, covariance_type: str, n_init: int,
                tol: float, reg_covar: float, max_iter: int, init_params: str, random_state: int,
                chunk_rows: int | None, out: Path | None, checkpoint: Path | None, overwrite: bool) -> None:
    """Fit a Gaussian mixture to the rows of the Zarr array at PATH."""
    if out is not None:
        check_writable(out, overwrite=overwrite)
    model = GaussianMixture(
        n_components, covariance_type=covariance_type, n_init=n_init, tol=tol, reg_covar=reg_covar,
        max_iter=max_iter, init_params=init_params, random_state=random_state, chunk_rows=chunk_rows,
    )
    data = as_row_chunked(path, variable, chunk_rows=chunk_rows)
    iterations: list[IterationInfo] = []
    start = time.perf_counter()
    model.fit(path, variable=variable, callbacks=[iterations.append], checkpoint=checkpoint)
    seconds = time.perf_counter() - start
    pass_seconds = {info.iteration: info.seconds for info in iterations}  # runs share each pass
    em_seconds, n_passes = sum(pass_seconds.values()), len(pass_seconds)
    if out is not None:
        model.save(out, overwrite=overwrite)
    n_rows = data.shape[0]
    source = f"{path}" + (f" : {variable}" if variable else "")
    rows = [
        ("data", f"{source}  ({n_rows:,} rows × {data.shape[1]} features, {data.dtype}, "
                 f"{data.numblocks[0]} chunk(s))"),
        ("model", f"{n_components} components, {covariance_type} covariance"),
        ("iterations", f"{model.n_iter_} ({'converged' if model.converged_ else 'NOT converged'}, tol {tol:g})"),
        ("log-likelihood", f"{model.lower_bound_:.6f} per row"),
        ("time", f"{seconds:.2f} s: initialisation {seconds - em_seconds:.2f} s, "
                 + (f"{em_seconds / n_passes:.3f} s per pass ({n_rows * n_passes / em_seconds:,.0f} rows/s)"
                    if n_passes else "no pass (the checkpoint held a finished fit)")),
        ("saved to", str(out) if out else "(not saved; use --out)"),
    ]
    click.echo(_table(rows))
    click.echo()
    click.echo(_components_table(model))


class IntegerList(click.ParamType):
    """Integers given as ``3``, ``1-10`` or ``2,4,8`` (each >= 1)."""

    name = "integers"

    def convert(self, value: Any, param: Any, ctx: Any) -> list[int]:
        if isinstance(value, list):
            return value
        try:
            numbers: list[int] = []
            for part in str(value).split(","):
                low, _, high = part.partition("-")
                first, last = int(low), int(high or low)
                if first < 1 or last < first:
                    raise ValueError
                numbers.extend(range(first, last + 1))
            return sorted(set(numbers))
        except ValueError:
            self.fail(f"{value!r} is not a list like 3, 1-10 or 2,4,8 of integers >= 1", param, ctx)


@main.command("select")
@click.argument("path", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to fit.")
@click.option("--n-components", "-k", type=IntegerList(), default="1-10", show_default=True,
              help="Numbers of components to try: 3, 1-10 or 2,4,8.")
@click.option("--covariance-types", default="full", show_default=True,
              help="Comma-separated covariance types to try (full, tied, diag, spherical).")
@click.option("--criterion", type=click.Choice(["bic", "aic"]), default="bic", show_default=True)
@click.option("--n-init", type=int, default=1, show_default=True, help="Random starts per candidate.")
@click.option("--tol", type=float, default=1e-3, show_default=True)
@_em_options
@click.option("--out", "-o", type=click.Path(path_type=Path), default=None,
              help="Folder for table.csv and best.zarr (the best model).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@_one_line_errors
@_cluster_option
def select_command(path: str, variable: str | None, n_components: list[int], covariance_types: str,
                   criterion: str, n_init: int, tol: float, reg_covar: float, max_iter: int, init_params: str,
                   random_state: int, chunk_rows: int | None, out: Path | None, overwrite: bool) -> None:
    """Fit every candidate mixture to the Zarr array at PATH in shared passes; rank them."""
    if out is not None:
        check_writable(out, overwrite=overwrite)
    start = time.perf_counter()
    selection = select(
        path, n_components, [t.strip() for t in covariance_types.split(",") if t.strip()],
        variable=variable, n_init=n_init, criterion=criterion, tol=tol, reg_covar=reg_covar,
        max_iter=max_iter, init_params=init_params, random_state=random_state, chunk_rows=chunk_rows,
    )
    seconds = time.perf_counter() - start
    if out is not None:
        selection.save(out, overwrite=overwrite)
    click.echo(selection.table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    best = selection.best_
    click.echo()
    click.echo(f"best: {best.n_components} components, {best.covariance_type} covariance (lowest {criterion})")
    click.echo(f"{len(selection.table)} candidates, {selection.n_passes} EM passes over the data, "
               f"{seconds:.2f} s" + (f"; saved to {out}" if out else ""))


@main.command("predict")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to score.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True,
              help="Zarr store for label, responsibility and log_likelihood of every row.")
@click.option("--chunk-rows", type=int, default=None, help="Rows per chunk (default: from the store).")
@click.option("--overwrite", is_flag=True, help="Replace --out if it exists.")
@_one_line_errors
@_cluster_option
def predict_command(model_path: Path, path: str, variable: str | None, out: Path, chunk_rows: int | None,
                    overwrite: bool) -> None:
    """Score the rows of DATA with the model saved at MODEL, chunk by chunk, into --out."""
    check_writable(out, overwrite=overwrite)
    model = load(model_path)
    model.chunk_rows = chunk_rows
    scores = model.score_dataset(path, variable=variable)
    start = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        write_dataset(scores, out, overwrite=overwrite)
    n_rows = scores.sizes[scores["label"].dims[0]]
    logger.info("scored %s rows in %.1f s", f"{n_rows:,}", time.perf_counter() - start)
    click.echo(f"wrote label, responsibility and log_likelihood of {n_rows:,} rows to {out}")


@main.command("score")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("path", metavar="DATA", type=str)
@click.option("--variable", "-v", default=None, help="Array of the Zarr group to score.")
@_one_line_errors
@_cluster_option
def score_command(model_path: Path, path: str, variable: str | None) -> None:
    """Print the mean log-likelihood per row of DATA under the model saved at MODEL."""
    model = load(model_path)
    with threadpool_limits(limits=1, user_api="blas"):
        click.echo(f"{model.score(path, variable=variable):.10g}")


@main.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@_one_line_errors
def info_command(path: Path) -> None:
    """Print the model saved at PATH."""
    ds = read_dataset(path)
    model = GaussianMixture.from_dataset(ds)
    rows = [
        ("file", str(path)),
        ("model", f"{model.params.n_components} components, {ds.attrs['covariance_type']} covariance, "
                  f"{model.params.n_features} features"),
        ("iterations", f"{model.n_iter_} ({'converged' if model.converged_ else 'not converged'})"),
        ("log-likelihood", f"{model.lower_bound_:.6f} per row"),
        ("daskem version", str(ds.attrs.get("daskem_version", "unknown"))),
    ]
    click.echo(_table(rows))
    click.echo()
    click.echo(_components_table(model))


def _table(rows: list[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key:<{width}}  {value}" for key, value in rows)


def _components_table(model: GaussianMixture, max_features: int = 4) -> str:
    params = model.params
    shown = min(max_features, params.n_features)
    more = " …" if params.n_features > shown else ""
    lines = [f"{'component':>9}  {'weight':>8}  {'rms sd':>8}  mean (first {shown} features){more}"]
    spreads = np.sqrt(np.trace(params.full_covariances(), axis1=1, axis2=2) / params.n_features)
    for k in np.argsort(-params.weights):
        mean = "  ".join(f"{value:10.4g}" for value in params.means[k, :shown])
        lines.append(f"{k:>9}  {params.weights[k]:8.4f}  {spreads[k]:8.4g}  {mean}{more}")
    return "\n".join(lines)
