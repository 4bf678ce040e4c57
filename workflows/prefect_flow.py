"""A Prefect 3 flow that runs a daskem job file, with retries.

Install: pip install 'daskem[workflows]'. Run once, locally:

    python workflows/prefect_flow.py workflows/job.example.yaml [--date 2026-11-25] [--force]

or serve it on a schedule from a Prefect server (parameters as the flow takes them):

    python -c "from workflows.prefect_flow import daskem_job; daskem_job.serve(cron='30 2 * * *', parameters={'job_file': 'workflows/job.example.yaml'})"

A retry resumes from the job's checkpoint, so a crash costs at most one
iteration; a job that already finished is not run again, and an error in the
job file, the data or the output paths is not retried. ``force`` starts a
job afresh on the first try only: a retry of a forced run resumes what that
run began. daskem's log lines (one per iteration) go to the task's Prefect log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click
from prefect import flow, get_run_logger, task
from prefect.runtime import task_run

from daskem.app.jobs import JobError, run_job
from daskem.exceptions import CovarianceError, InputError, OutputExistsError
from daskem.io.checkpoints import CheckpointError
from daskem.io.outputs import OutputError

#: Errors that a retry would only repeat: the job file, the data, the output paths or the checkpoint are wrong.
PERMANENT = (JobError, InputError, CovarianceError, OutputError, OutputExistsError, CheckpointError)


class _ToPrefect(logging.Handler):
    """Pass the records of daskem's logger on to a Prefect run logger."""

    def __init__(self, run_logger: logging.LoggerAdapter) -> None:
        super().__init__()
        self.run_logger = run_logger

    def emit(self, record: logging.LogRecord) -> None:
        self.run_logger.log(record.levelno, record.getMessage())


@contextmanager
def _daskem_logs_to_prefect() -> Iterator[None]:
    """For the block, daskem's INFO lines and above reach the current run's Prefect log."""
    daskem_logger = logging.getLogger("daskem")
    handler, level = _ToPrefect(get_run_logger()), daskem_logger.level
    daskem_logger.addHandler(handler)
    daskem_logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        daskem_logger.removeHandler(handler)
        daskem_logger.setLevel(level)


def _worth_retrying(task, task_run, state) -> bool:
    """Retry what may pass next time (a lost worker, a full disk, a scheduler not up yet), nothing else."""
    return not isinstance(state.result(raise_on_failure=False), PERMANENT)


@task(retries=2, retry_delay_seconds=60, retry_condition_fn=_worth_retrying)
def run_daskem_job(job_file: str, force: bool = False, date: str | None = None) -> dict:
    """One daskem job; failures are retried, and resume from the checkpoint."""
    first_try = task_run.run_count <= 1
    with _daskem_logs_to_prefect():
        return run_job(job_file, force=force and first_try, date=date)


@flow(name="daskem-job")
def daskem_job(job_file: str, force: bool = False, date: str | None = None) -> dict:
    """Run the daskem job file ``job_file`` (for the night ``date``, YYYY-MM-DD) and return its report."""
    report = run_daskem_job(job_file, force=force, date=date)
    get_run_logger().info("daskem job %s: %s", job_file, report["status"])
    return report


@click.command()
@click.argument("job_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--date", help="The run's date, YYYY-MM-DD (default: today).")
@click.option("--force", is_flag=True, help="Run again a job that already finished.")
def _main(job_file: str, date: str | None, force: bool) -> None:
    daskem_job(job_file, force=force, date=date)


if __name__ == "__main__":
    _main()
