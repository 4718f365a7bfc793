"""Workflow glue: what the Snakefile and the job scripts need besides the stages (job set-up,
the scheduler's timers). The configuration's validation is :mod:`robustarch.config`. No stage
imports this package."""

from .jobs import setup_job

__all__ = ["setup_job"]
