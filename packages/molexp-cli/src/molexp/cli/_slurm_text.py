"""Slurm's textual formats, parsed and produced without running anything (pure functions).

Owns: job ids (``123``, array tasks ``123_4`` and the compressed ranges ``123_[0,2-5%4]`` that
``squeue``/``sacct`` print), the output of ``sbatch --parsable``, Slurm durations (``--time``
values, elapsed times and time limits: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``,
``D-HH:MM:SS``, ``UNLIMITED``), job states with their detail (``CANCELLED by 0``), exit codes
(``1:0``), and the rows of the ``squeue``/``sacct`` formats this package asks for. Each job state
is classified into a :class:`JobPhase` so callers never compare raw state names.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from ._errors import SlurmFormatError

__all__ = [
    "SACCT_FIELDS",
    "SQUEUE_FORMAT",
    "JobKey",
    "JobPhase",
    "JobState",
    "SlurmFormatError",
    "expand_job_ids",
    "format_duration",
    "parse_duration",
    "parse_exit_code",
    "parse_sacct",
    "parse_sbatch_output",
    "parse_squeue",
    "parse_state",
    "phase_of",
]

SQUEUE_FORMAT = "%i|%T|%M|%l|%r"
"""``squeue -o``: job id, state, elapsed, time limit, reason (last: it may contain anything)."""

SACCT_FIELDS = "JobID,State,ExitCode,Elapsed,Timelimit,Reason"
"""``sacct -o`` (with ``-P``): the same columns plus the exit code; reason last."""

_SQUEUE_COLUMNS = 5
_SACCT_COLUMNS = 6


class JobPhase(StrEnum):
    """Where a job is in its life, independent of the many Slurm state names."""

    live = "live"
    """Pending, running or finishing: the job may still execute or is executing."""
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    unknown = "unknown"
    """A state this module does not know; callers must not act on it."""


_LIVE_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETING",
        "CONFIGURING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "STOPPED",
        "RESV_DEL_HOLD",
        "POWER_UP_NODE",
    }
)
_FAILED_STATES = frozenset(
    {
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "SPECIAL_EXIT",
    }
)
_CANCELLED_STATES = frozenset({"CANCELLED", "REVOKED"})


def phase_of(state: str) -> JobPhase:
    """The phase of a bare state name (``parse_state`` first for ``CANCELLED by 0``)."""
    if state in _LIVE_STATES:
        return JobPhase.live
    if state == "COMPLETED":
        return JobPhase.succeeded
    if state in _FAILED_STATES:
        return JobPhase.failed
    if state in _CANCELLED_STATES:
        return JobPhase.cancelled
    return JobPhase.unknown


_JOB_ID = re.compile(r"^(\d+)(?:_(\d+))?$")
_JOB_RANGE = re.compile(r"^(\d+)_\[([0-9,\-]+)(?:%\d+)?\]$")


@dataclass(frozen=True, order=True)
class JobKey:
    """One schedulable unit: a plain job (``123``) or one task of a job array (``123_4``)."""

    job_id: str
    array_index: int | None = None

    def __post_init__(self) -> None:
        if not self.job_id.isdigit():
            raise SlurmFormatError(f"Slurm job id must be digits, got {self.job_id!r}")
        if self.array_index is not None and self.array_index < 0:
            raise SlurmFormatError(f"array index must be >= 0, got {self.array_index}")

    def __str__(self) -> str:
        if self.array_index is None:
            return self.job_id
        return f"{self.job_id}_{self.array_index}"

    @classmethod
    def parse(cls, text: str) -> JobKey:
        """``"123"`` or ``"123_4"`` (ranges are :func:`expand_job_ids`'s business)."""
        match = _JOB_ID.match(text.strip())
        if match is None:
            raise SlurmFormatError(f"not a Slurm job id: {text!r} (expected 123 or 123_4)")
        index = match.group(2)
        return cls(str(int(match.group(1))), None if index is None else int(index))


def _expand_range(spec: str, text: str) -> Iterator[int]:
    for part in spec.split(","):
        low, dash, high = part.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise SlurmFormatError(f"bad array range {part!r} in Slurm job id {text!r}")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise SlurmFormatError(f"descending array range {part!r} in Slurm job id {text!r}")
        yield from range(first, last + 1)


def expand_job_ids(text: str) -> list[JobKey]:
    """Every job a printed id stands for: ``123_[0,2-3%4]`` -> ``123_0, 123_2, 123_3``."""
    stripped = text.strip()
    match = _JOB_RANGE.match(stripped)
    if match is None:
        return [JobKey.parse(stripped)]
    job_id = str(int(match.group(1)))
    return [JobKey(job_id, index) for index in _expand_range(match.group(2), stripped)]


def parse_sbatch_output(stdout: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise SlurmFormatError("sbatch --parsable printed no job id")
    job_id = lines[-1].split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmFormatError(f"sbatch --parsable printed {lines[-1]!r}, not a job id")
    return str(int(job_id))


_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "PARTITION_LIMIT", "NONE", "INVALID", "N/A", ""})


def parse_duration(text: str) -> int | None:
    """Seconds of a Slurm duration; ``None`` for unlimited/unset (``UNLIMITED``, ``N/A``...).

    Accepts the ``--time`` grammar, which is also how elapsed times and limits are printed:
    ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M`` and ``D-H:M:S``.
    """
    value = text.strip()
    if value.upper() in _UNLIMITED:
        return None
    days = 0
    has_days = "-" in value
    if has_days:
        day_text, _, value = value.partition("-")
        if not day_text.isdigit():
            raise SlurmFormatError(f"not a Slurm duration: {text!r}")
        days = int(day_text)
    parts = value.split(":")
    if not 1 <= len(parts) <= 3 or not all(part.isdigit() for part in parts):
        raise SlurmFormatError(
            f"not a Slurm duration: {text!r} (expected MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM "
            "or D-HH:MM:SS)"
        )
    numbers = [int(part) for part in parts]
    if has_days:  # after a day prefix the fields are hours[:minutes[:seconds]]
        numbers += [0] * (3 - len(numbers))
        hours, minutes, seconds = numbers
    elif len(numbers) == 1:
        hours, minutes, seconds = 0, numbers[0], 0
    elif len(numbers) == 2:
        hours, (minutes, seconds) = 0, numbers
    else:
        hours, minutes, seconds = numbers
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_duration(seconds: int | None) -> str:
    """``[D-]HH:MM:SS`` for a number of seconds (``UNLIMITED`` for None); parses back exactly."""
    if seconds is None:
        return "UNLIMITED"
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    clock = f"{hrs:02d}:{mins:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def parse_state(text: str) -> tuple[str, str]:
    """``("CANCELLED", "by 0")`` from ``"CANCELLED by 0"``; ``sacct``'s ``+`` suffix is dropped."""
    head, _, detail = text.strip().partition(" ")
    state = head.rstrip("+").upper()
    if not state:
        raise SlurmFormatError(f"empty Slurm job state in {text!r}")
    return state, detail.strip()


def parse_exit_code(text: str) -> tuple[int, int] | None:
    """``(exit status, signal)`` from ``sacct``'s ``ExitCode`` (``"1:0"``); None when blank."""
    value = text.strip()
    if not value:
        return None
    code, _, signal = value.partition(":")
    if not code.isdigit() or (signal and not signal.isdigit()):
        raise SlurmFormatError(f"not a Slurm exit code: {text!r} (expected CODE:SIGNAL)")
    return int(code), int(signal or 0)


@dataclass(frozen=True)
class JobState:
    """What Slurm reports about one job (from ``squeue`` while known there, else ``sacct``)."""

    key: JobKey
    state: str
    detail: str = ""
    reason: str = ""
    exit_code: tuple[int, int] | None = None
    elapsed: int | None = None
    time_limit: int | None = None
    source: str = "squeue"

    @property
    def phase(self) -> JobPhase:
        return phase_of(self.state)

    @property
    def held(self) -> bool:
        """Pending because of a hold (``scontrol release`` starts it)."""
        return self.state == "PENDING" and self.reason.startswith("JobHeld")

    def describe(self) -> str:
        """One line for people: ``TIMEOUT after 00:01:02 (time limit 00:01:00)`` and the like."""
        words = [self.state]
        if self.detail:
            words.append(self.detail)
        if self.reason and self.reason.lower() != "none":
            words.append(f"({self.reason})")
        if self.exit_code is not None and self.exit_code != (0, 0):
            code, signal = self.exit_code
            words.append(f"exit code {code}" + (f", signal {signal}" if signal else ""))
        if self.elapsed is not None and self.phase is not JobPhase.live:
            words.append(f"after {format_duration(self.elapsed)}")
        if self.state == "TIMEOUT" and self.time_limit is not None:
            words.append(f"(time limit {format_duration(self.time_limit)})")
        return " ".join(words)


def _optional_duration(text: str) -> int | None:
    try:
        return parse_duration(text)
    except SlurmFormatError:
        return None


def _rows(text: str, columns: int, command: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|", columns - 1)
        if len(fields) != columns:
            raise SlurmFormatError(
                f"{command} printed {line!r}: expected {columns} '|'-separated fields"
            )
        yield fields


def _index(states: Iterable[JobState]) -> dict[JobKey, JobState]:
    return {state.key: state for state in states}


def parse_squeue(text: str) -> dict[JobKey, JobState]:
    """Rows of ``squeue -h -r -o SQUEUE_FORMAT`` by job key (ranges expanded)."""
    states: list[JobState] = []
    for job, raw_state, elapsed, limit, reason in _rows(text, _SQUEUE_COLUMNS, "squeue"):
        state, detail = parse_state(raw_state)
        for key in expand_job_ids(job):
            states.append(
                JobState(
                    key=key,
                    state=state,
                    detail=detail,
                    reason=reason.strip(),
                    elapsed=_optional_duration(elapsed),
                    time_limit=_optional_duration(limit),
                    source="squeue",
                )
            )
    return _index(states)


def parse_sacct(text: str) -> dict[JobKey, JobState]:
    """Rows of ``sacct -X -n -P -o SACCT_FIELDS`` by job key (ranges expanded; steps skipped)."""
    states: list[JobState] = []
    for job, raw_state, exit_code, elapsed, limit, reason in _rows(text, _SACCT_COLUMNS, "sacct"):
        if "." in job:  # a job step (123.batch) when -X was not honoured
            continue
        state, detail = parse_state(raw_state)
        for key in expand_job_ids(job):
            states.append(
                JobState(
                    key=key,
                    state=state,
                    detail=detail,
                    reason=reason.strip(),
                    exit_code=parse_exit_code(exit_code),
                    elapsed=_optional_duration(elapsed),
                    time_limit=_optional_duration(limit),
                    source="sacct",
                )
            )
    return _index(states)
