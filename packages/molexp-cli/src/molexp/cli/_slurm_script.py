"""Slurm job options and the batch scripts rendered from them (pure: nothing is submitted).

:class:`SlurmOptions` is the validated option set of a job: ``partition``, ``time``,
``cpus_per_task``, ``mem``, ``gpus``, ``account``, ``qos``, ``extra_sbatch`` (raw ``#SBATCH``
lines), ``preamble`` (shell lines run before the worker, e.g. ``module load ...``) and ``hold``.
It is read from a profile's ``[profiles.X.slurm]`` table, from ``molexp run`` options and from a
task's ``remote={"executor": "slurm", ...}`` hint, each layer overriding the previous one.

Two scripts are rendered: the job array of ``molexp run --executor slurm`` (array index -> run
directory through a manifest file, one line per index) and the job of one remote task. Both call
``<python> -m molexp.cli execute ...`` with the absolute interpreter of the submitting process,
so the job runs in the same environment.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from ._errors import SlurmOptionError
from ._slurm_text import SlurmFormatError, format_duration, parse_duration

__all__ = [
    "MAX_ARRAY_SIZE",
    "SLURM_OPTION_KEYS",
    "ArrayScript",
    "SlurmOptionError",
    "SlurmOptions",
    "render_array_script",
    "render_task_script",
]

MAX_ARRAY_SIZE = 1000
"""Runs per job array (Slurm's default ``MaxArraySize`` is 1001, i.e. indices 0-1000)."""


@dataclass(frozen=True)
class SlurmOptions:
    """Options of one Slurm job; ``None``/empty means "Slurm's default"."""

    partition: str | None = None
    time: str | None = None
    """Normalized to ``[D-]HH:MM:SS``."""
    cpus_per_task: int | None = None
    mem: str | None = None
    gpus: str | None = None
    account: str | None = None
    qos: str | None = None
    extra_sbatch: tuple[str, ...] = ()
    """Complete ``#SBATCH ...`` lines."""
    preamble: tuple[str, ...] = ()
    hold: bool = False
    """Submit held: the job waits for ``scontrol release``."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, where: str) -> SlurmOptions:
        """Validate a table of options (``where`` prefixes every error, e.g. the profile)."""
        return cls().merged(data, where=where)

    def merged(self, data: Mapping[str, Any], *, where: str) -> SlurmOptions:
        """These options with ``data`` (validated) on top; ``None`` values are ignored."""
        unknown = sorted(set(data) - set(SLURM_OPTION_KEYS))
        if unknown:
            raise SlurmOptionError(
                f"{where}: unknown Slurm option {unknown[0]!r}; "
                f"known: {', '.join(SLURM_OPTION_KEYS)}"
            )
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if value is None:
                continue
            changes[key] = _VALIDATORS[key](value, f"{where}: {key}")
        options = replace(self, **changes)
        if any(_is_hold_line(line) for line in options.extra_sbatch):
            options = replace(options, hold=True)
        return options

    def directives(self) -> list[str]:
        """The ``#SBATCH`` lines of these options (``hold`` is an ``sbatch`` argument instead)."""
        lines = []
        for flag, value in (
            ("partition", self.partition),
            ("time", self.time),
            ("cpus-per-task", self.cpus_per_task),
            ("mem", self.mem),
            ("gpus", self.gpus),
            ("account", self.account),
            ("qos", self.qos),
        ):
            if value is not None:
                lines.append(f"#SBATCH --{flag}={value}")
        lines.extend(line for line in self.extra_sbatch if not _is_hold_line(line))
        return lines

    def to_json(self) -> dict[str, Any]:
        return {
            field.name: list(value) if isinstance(value, tuple) else value
            for field in fields(self)
            if (value := getattr(self, field.name)) not in (None, (), False)
        }


SLURM_OPTION_KEYS = (
    "partition",
    "time",
    "cpus_per_task",
    "mem",
    "gpus",
    "account",
    "qos",
    "extra_sbatch",
    "preamble",
    "hold",
)


def _token(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SlurmOptionError(f"{where} must be a string, got {type(value).__name__} {value!r}")
    text = str(value).strip()
    if not text or any(ch.isspace() for ch in text) or any(ch in text for ch in "\"'"):
        raise SlurmOptionError(
            f"{where} must be one word without spaces or quotes, got {str(value)!r}"
        )
    return text


def _time(value: Any, where: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise SlurmOptionError(
            f"{where} must be minutes or a Slurm time such as '1:30:00', got {value!r}"
        )
    try:
        seconds = parse_duration(str(value))
    except SlurmFormatError as exc:
        raise SlurmOptionError(f"{where}: {exc}") from None
    if seconds is None:
        return "UNLIMITED"
    if seconds < 60:
        raise SlurmOptionError(
            f"{where} is {value!r}: Slurm's smallest time limit is 1 minute ('1' or '00:01:00')"
        )
    return format_duration(seconds)


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SlurmOptionError(f"{where} must be a positive integer, got {value!r}")
    return value


def _lines(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise SlurmOptionError(f"{where} must be a list of lines, got {value!r}")
    lines = []
    for item in value:
        if not isinstance(item, str) or "\n" in item or "\r" in item or not item.strip():
            raise SlurmOptionError(f"{where}: every entry must be one non-empty line, got {item!r}")
        lines.append(item.strip())
    return tuple(lines)


def _sbatch_lines(value: Any, where: str) -> tuple[str, ...]:
    lines = []
    for line in _lines(value, where):
        body = line.removeprefix("#SBATCH").strip()
        if not body.startswith("-"):
            raise SlurmOptionError(
                f"{where}: {line!r} is not an sbatch option (write e.g. '--constraint=avx2')"
            )
        lines.append(f"#SBATCH {body}")
    return tuple(lines)


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SlurmOptionError(f"{where} must be true or false, got {value!r}")
    return value


_VALIDATORS = {
    "partition": _token,
    "time": _time,
    "cpus_per_task": _positive_int,
    "mem": _token,
    "gpus": _token,
    "account": _token,
    "qos": _token,
    "extra_sbatch": _sbatch_lines,
    "preamble": _lines,
    "hold": _flag,
}


def _is_hold_line(line: str) -> bool:
    option = line.removeprefix("#SBATCH").strip().split("=", 1)[0].split()[0]
    return option in {"--hold", "-H"}


def _sbatch_path(path: Path) -> str:
    text = str(path)
    if any(ch in text for ch in '"\n\r'):
        raise SlurmOptionError(f"path {text!r} cannot be written into an #SBATCH line")
    return f'"{text}"' if any(ch.isspace() for ch in text) else text


def _header(options: SlurmOptions, job_name: str, lines: Sequence[str]) -> list[str]:
    return [
        "#!/bin/bash",
        f"#SBATCH --job-name={_token(job_name, 'job name')}",
        *lines,
        *options.directives(),
    ]


@dataclass(frozen=True)
class ArrayScript:
    """Where the files of one array submission go (all under the experiment's ``slurm/`` dir)."""

    directory: Path
    """``<experiment>/slurm/<submission>/``: script, manifest and the per-index log links."""

    @property
    def script(self) -> Path:
        return self.directory / "job.sh"

    @property
    def manifest(self) -> Path:
        """Line ``i + 1`` is the run directory of array index ``i``."""
        return self.directory / "runs.txt"

    def stdout_link(self, index: int) -> Path:
        return self.directory / f"{index}.out"

    def stderr_link(self, index: int) -> Path:
        return self.directory / f"{index}.err"


def render_array_script(
    files: ArrayScript,
    options: SlurmOptions,
    *,
    count: int,
    job_name: str,
    python: str,
    heartbeat_interval: float,
) -> str:
    """The batch script of a job array of ``count`` runs.

    Index ``i`` executes the run directory on line ``i + 1`` of the manifest with
    ``molexp execute RUN_DIR --slurm-job <array job>_<i>``. Slurm writes the task's stdout and
    stderr to ``<i>.out``/``<i>.err`` in the submission directory, which the submitter makes
    links into the run's execution directory.
    """
    if not 1 <= count <= MAX_ARRAY_SIZE:
        raise SlurmOptionError(f"a job array holds 1 to {MAX_ARRAY_SIZE} runs, got {count}")
    manifest = shlex.quote(str(files.manifest))
    lines = _header(
        options,
        job_name,
        [
            f"#SBATCH --array=0-{count - 1}",
            f"#SBATCH --output={_sbatch_path(files.directory / '%a.out')}",
            f"#SBATCH --error={_sbatch_path(files.directory / '%a.err')}",
        ],
    )
    lines += [
        "# Written by `molexp run --executor slurm`; one run per array index.",
        f'RUN_DIR=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" {manifest})',
        'if [ -z "$RUN_DIR" ]; then',
        f'  echo "molexp: no run for array index $SLURM_ARRAY_TASK_ID in "{manifest} >&2',
        "  exit 2",
        "fi",
        *options.preamble,
        f'exec {shlex.quote(python)} -m molexp.cli execute "$RUN_DIR" '
        '--slurm-job "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}" '
        f"--heartbeat-interval {heartbeat_interval:g}",
    ]
    return "\n".join(lines) + "\n"


def render_task_script(
    options: SlurmOptions,
    *,
    job_name: str,
    python: str,
    run_dir: Path,
    task_name: str,
    call_id: str,
    log_dir: Path,
) -> str:
    """The batch script of one remote task: ``molexp execute RUN_DIR --task NAME``."""
    lines = _header(
        options,
        job_name,
        [
            f"#SBATCH --output={_sbatch_path(log_dir / 'slurm-%j.out')}",
            f"#SBATCH --error={_sbatch_path(log_dir / 'slurm-%j.err')}",
        ],
    )
    command = [
        python,
        "-m",
        "molexp.cli",
        "execute",
        str(run_dir),
        "--task",
        task_name,
        "--call-id",
        call_id,
    ]
    lines += [
        f"# Written by molexp for the remote task {task_name!r} of run {run_dir.name}.",
        *options.preamble,
        "exec " + " ".join(shlex.quote(part) for part in command),
    ]
    return "\n".join(lines) + "\n"
