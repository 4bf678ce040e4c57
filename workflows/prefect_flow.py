"""A Prefect 3 flow that runs a daskem job file, with retries.

Install: pip install 'daskem[workflows]'. Run once, locally:

    python workflows/prefect_flow.py workflows/job.example.yaml

or serve it on a schedule from a Prefect server:

    python -c "from workflows.prefect_flow import daskem_job; daskem_job.serve(cron='30 2 * * *', parameters={'job_file': 'workflows/job.example.yaml'})"

A retry resumes from the job's checkpoint, so a crash costs at most one
iteration; a job that already finished is not run again.
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger, task

from daskem.jobs import run_job


@task(retries=2, retry_delay_seconds=60)
def run_daskem_job(job_file: str, force: bool = False, date: str | None = None) -> dict:
    """One daskem job; failures are retried, and resume from the checkpoint."""
    return run_job(job_file, force=force, date=date)


@flow(name="daskem-job")
def daskem_job(job_file: str, force: bool = False, date: str | None = None) -> dict:
    """Run the daskem job file ``job_file`` and return its report."""
    report = run_daskem_job(job_file, force=force, date=date)
    get_run_logger().info("daskem job %s: %s", job_file, report["status"])
    return report


if __name__ == "__main__":
    daskem_job(sys.argv[1])
