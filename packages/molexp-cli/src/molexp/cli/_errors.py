"""User-facing CLI errors and their one-line rendering.

Every error a user can cause ends as exactly one line on stderr (``error: ...``) and a non-zero
exit: 2 for usage errors (bad arguments or option values), 1 for everything else. With
``MOLEXP_DEBUG=1`` the traceback is printed as well.
"""

from __future__ import annotations

import os

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "CliError",
    "CliUsageError",
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


def one_line(text: str) -> str:
    """Collapse ``text`` to one line: lines joined with "; ", runs of whitespace squeezed."""
    parts = [" ".join(line.split()) for line in text.splitlines()]
    return "; ".join(part for part in parts if part) or "unknown error"


def debug_enabled() -> bool:
    """True when ``MOLEXP_DEBUG`` asks for tracebacks (any value but empty, 0, false, no)."""
    value = os.environ.get("MOLEXP_DEBUG", "").strip().lower()
    return value not in {"", "0", "false", "no", "off"}
