"""The record a run keeps about its Slurm job, and the questions asked of it.

:class:`SlurmJobInfo` is stored as ``ExecutionRecord.scheduler`` of the attempt that was
submitted (``run.mark_queued(info.model_dump(mode="json"))``): job id, array index, where Slurm
writes the job's output, the options, the profile and the script the worker executes with.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from molexp.assets import VersionedRecord, parse_record

from ._slurm_text import JobKey

if TYPE_CHECKING:
    from molexp.workspace import Run

__all__ = [
    "LOST_ERROR_TYPE",
    "SCHEDULER_NAME",
    "SlurmJobInfo",
    "current_job",
    "lost_before_start",
]

SCHEDULER_NAME = "slurm"
LOST_ERROR_TYPE = "SlurmJobLost"
"""``ErrorInfo.type`` of an attempt whose job neither ``squeue`` nor ``sacct`` knows any more."""


class SlurmJobInfo(VersionedRecord):
    """What a run records about its Slurm job (``ExecutionRecord.scheduler`` of the attempt)."""

    name: Literal["slurm"] = "slurm"
    job_id: str
    array_index: int | None = None
    job: str
    """The job key Slurm knows the attempt by: ``<job_id>_<array_index>`` or ``<job_id>``."""
    submission_dir: str
    stdout: str
    """Where Slurm writes the job's stdout (a link into the attempt's execution directory)."""
    stderr: str
    options: dict[str, Any] = {}
    hold: bool = False
    """Submitted held on purpose: only ``scontrol release`` starts it."""
    submitted_at: datetime
    profile: dict[str, Any] | None = None
    """``{"name", "config", "overrides"}`` the worker executes with when the run has no stored
    profile (``overrides``, the ``--set`` values, may be missing in older job records)."""
    script: str | None = None
    """The script ``molexp execute`` imports when the run records none yet."""
    cwd: str | None = None

    @property
    def key(self) -> JobKey:
        return JobKey(self.job_id, self.array_index)

    @property
    def log(self) -> Path:
        """The job's stderr as a real path (the file in the attempt's execution directory)."""
        return Path(os.path.realpath(self.stderr))


def current_job(run: Run) -> SlurmJobInfo | None:
    """The Slurm job of the run's latest execution attempt, if that attempt was submitted."""
    history = run.metadata.execution_history
    if not history:
        return None
    scheduler = history[-1].scheduler
    if not isinstance(scheduler, dict) or scheduler.get("name") != SCHEDULER_NAME:
        return None
    return parse_record(run.record_path, scheduler, SlurmJobInfo)


def lost_before_start(run: Run) -> bool:
    """The latest attempt was a Slurm job that vanished before the run started (resubmittable)."""
    history = run.metadata.execution_history
    if str(run.status) != "failed" or not history or current_job(run) is None:
        return False
    last = history[-1]
    return last.started_at is None and last.error is not None and last.error.type == LOST_ERROR_TYPE
