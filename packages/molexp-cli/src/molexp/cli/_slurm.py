"""Talking to Slurm: ``sbatch``, ``scontrol release``, ``scancel``, ``squeue`` and ``sacct``.

:class:`SlurmClient` runs the commands (found on ``PATH``) and turns their output into the
values of ``_slurm_text``; a command that fails raises :class:`SlurmError` naming the command
and what it printed. :meth:`SlurmClient.states` asks ``squeue`` about every job first (live
jobs) and ``sacct`` only about the jobs ``squeue`` no longer knows (finished ones); a job that
neither knows maps to ``None``.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ._errors import SlurmError, one_line
from ._slurm_text import (
    SACCT_FIELDS,
    SQUEUE_FORMAT,
    JobKey,
    JobState,
    parse_sacct,
    parse_sbatch_output,
    parse_squeue,
)

__all__ = ["COMMAND_TIMEOUT", "CommandRunner", "SlurmClient", "SlurmError", "slurm_available"]

COMMAND_TIMEOUT = 60.0
"""Seconds a Slurm command may take before it counts as failed."""

CommandRunner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]
"""Runs one command and returns its completed process (replaced in tests)."""


def slurm_available() -> bool:
    """Whether ``sbatch`` is on ``PATH``."""
    return shutil.which("sbatch") is not None


def _run(command: Sequence[str]) -> subprocess.CompletedProcess[str]:
    executable = shutil.which(command[0])
    if executable is None:
        raise SlurmError(
            f"{command[0]} is not on PATH: the Slurm commands (sbatch, squeue, sacct, scancel) "
            "must be available where molexp talks to the scheduler"
        )
    try:
        return subprocess.run(
            [executable, *command[1:]],
            capture_output=True,
            text=True,
            check=False,
            timeout=COMMAND_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise SlurmError(
            f"`{shlex.join(command)}` did not answer within {COMMAND_TIMEOUT:g} s"
        ) from None


class SlurmClient:
    """The Slurm commands this package uses; ``runner`` executes them (default: subprocess)."""

    def __init__(self, runner: CommandRunner | None = None) -> None:
        self._runner = runner or _run

    def _call(self, command: Sequence[str], *, allow: Callable[[str], bool] | None = None) -> str:
        completed = self._runner(command)
        if completed.returncode != 0:
            message = one_line(completed.stderr or completed.stdout or "")
            if allow is not None and allow(message):
                return ""
            raise SlurmError(
                f"`{shlex.join(command)}` failed with exit code {completed.returncode}: {message}"
            )
        return completed.stdout

    def submit(self, script: Path, *, hold: bool = True) -> str:
        """``sbatch --parsable [--hold] SCRIPT``; returns the job id."""
        command = ["sbatch", "--parsable", *(["--hold"] if hold else []), str(script)]
        return parse_sbatch_output(self._call(command))

    def release(self, job_id: str) -> None:
        """``scontrol release JOB`` (every task of an array)."""
        self._call(["scontrol", "release", job_id])

    def cancel(self, keys: Iterable[JobKey]) -> None:
        """``scancel`` the jobs (array tasks individually); jobs already gone are ignored."""
        names = sorted({str(key) for key in keys})
        if names:
            self._call(["scancel", *names], allow=_job_gone)

    def states(self, keys: Iterable[JobKey]) -> dict[JobKey, JobState | None]:
        """The state of each job: ``squeue`` for live jobs, ``sacct`` for the others."""
        wanted = sorted(set(keys))
        if not wanted:
            return {}
        job_ids = ",".join(sorted({key.job_id for key in wanted}))
        live = parse_squeue(
            self._call(["squeue", "-h", "-r", "-j", job_ids, "-o", SQUEUE_FORMAT], allow=_job_gone)
        )
        found: dict[JobKey, JobState | None] = {key: live.get(key) for key in wanted}
        missing = sorted({key.job_id for key, state in found.items() if state is None})
        if missing:
            finished = parse_sacct(
                self._call(["sacct", "-X", "-n", "-P", "-j", ",".join(missing), "-o", SACCT_FIELDS])
            )
            for key, state in found.items():
                if state is None:
                    found[key] = finished.get(key)
        return found


def _job_gone(message: str) -> bool:
    lowered = message.lower()
    return "invalid job id" in lowered or "already completing or completed" in lowered
