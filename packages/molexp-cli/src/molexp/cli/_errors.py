"""Every exception the CLI layer raises, under one base, and their one-line rendering.

Every error a user can cause ends as exactly one line on stderr (``error: ...``) and a non-zero
exit: 2 for usage errors (bad arguments or option values), 1 for everything else. With
``MOLEXP_DEBUG=1`` the traceback is printed as well. Exported from ``molexp.cli``::

    CliError                               one line, exit_code
    ├── CliUsageError                      a bad argument or option value (2)
    ├── ScriptError                        the script cannot be imported or registers nothing
    ├── ProfileError (ValueError)          a profile file or request to fix (1)
    │   ├── UnknownProfileError            --profile names no profile (2)
    │   └── OverrideError                  a --set value that cannot be parsed (2)
    ├── SlurmError                         a Slurm command failed or is missing
    ├── SlurmFormatError (ValueError)      Slurm output not in the expected format
    ├── SlurmOptionError (ValueError)      an invalid Slurm option value
    ├── RemoteTaskError (RuntimeError)     a remote task could not run or did not come back
    └── ClaimedElsewhere                   another process (on any host) started the run first
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "ClaimedElsewhere",
    "CliError",
    "CliUsageError",
    "OverrideError",
    "ProfileError",
    "RemoteTaskError",
    "ScriptError",
    "SlurmError",
    "SlurmFormatError",
    "SlurmOptionError",
    "UnknownProfileError",
    "debug_enabled",
    "one_line",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class CliError(Exception):
    """An error reported to the user as one line, exiting with ``exit_code``."""

    exit_code: int = EXIT_FAILURE

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if exit_code is not None:
            self.exit_code = exit_code


class CliUsageError(CliError):
    """A bad argument or option value (exit code 2)."""

    exit_code = EXIT_USAGE


class ScriptError(CliError):
    """The script could not be imported or registered nothing usable."""


class ProfileError(CliError, ValueError):
    """A profile file or a profile request the user must fix; the message names the file."""


class UnknownProfileError(ProfileError):
    """``--profile NAME`` names no profile; ``available`` lists the ones that exist."""

    exit_code = EXIT_USAGE

    def __init__(self, name: str, available: Sequence[str], path: Path | None) -> None:
        self.name = name
        self.available = list(available)
        self.path = path
        where = f" in {path}" if path is not None else " (no profile file was found)"
        super().__init__(f"unknown profile {name!r}{where}; available: {', '.join(self.available)}")


class OverrideError(ProfileError):
    """A ``--set key=value`` argument that cannot be parsed."""

    exit_code = EXIT_USAGE


class SlurmError(CliError):
    """A Slurm command failed or is missing; the message names the command."""


class SlurmFormatError(CliError, ValueError):
    """Text that does not have the Slurm format it should have (names the text)."""


class SlurmOptionError(CliError, ValueError):
    """An invalid Slurm option value; the message names the option and the value."""


class RemoteTaskError(CliError, RuntimeError):
    """A remote task could not be run or did not come back; names the task and the job."""


class ClaimedElsewhere(CliError):
    """Another process (on this or another host) won the run's start claim first."""


def one_line(text: str) -> str:
    """Collapse ``text`` to one line: lines joined with "; ", runs of whitespace squeezed."""
    parts = [" ".join(line.split()) for line in text.splitlines()]
    return "; ".join(part for part in parts if part) or "unknown error"


def debug_enabled() -> bool:
    """True when ``MOLEXP_DEBUG`` asks for tracebacks (any value but empty, 0, false, no)."""
    value = os.environ.get("MOLEXP_DEBUG", "").strip().lower()
    return value not in {"", "0", "false", "no", "off"}
