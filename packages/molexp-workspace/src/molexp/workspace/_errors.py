"""Every exception the workspace layer raises, under one base, and its warning.

Exported from ``molexp.workspace``; each also derives from the builtin its callers have always
caught::

    WorkspaceError
    ├── RunStateError (ValueError)        a lifecycle step the run's status does not allow
    ├── AmbiguousRunIdError (LookupError) a bare run id names runs in several experiments
    ├── QuerySyntaxError (ValueError)     a malformed run query (points at the column)
    ├── UnknownFieldError (ValueError)    a query names a field no run has
    └── StaleRecordError (RuntimeError)   save() of a record someone else changed meanwhile
    BrokenRecordWarning (UserWarning)     a listing skipped a record it could not read

Records that cannot be read raise the assets layer's ``RecordError`` (an ``AssetError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "AmbiguousRunIdError",
    "BrokenRecordWarning",
    "QuerySyntaxError",
    "RunStateError",
    "StaleRecordError",
    "UnknownFieldError",
    "WorkspaceError",
]


class WorkspaceError(Exception):
    """Base of every exception the workspace layer raises."""


class RunStateError(WorkspaceError, ValueError):
    """A lifecycle step (start, cancel, queue) is not allowed from the run's status."""


class AmbiguousRunIdError(WorkspaceError, LookupError):
    """A bare run id matches runs in several experiments; ``matches`` lists them."""

    def __init__(self, run_id: str, matches: Sequence[tuple[str, str]]) -> None:
        self.run_id = run_id
        self.matches = list(matches)
        listed = ", ".join(f"{project}/{experiment}" for project, experiment in self.matches)
        super().__init__(
            f"run id {run_id!r} exists in several experiments ({listed}); "
            "pass project= and experiment= to choose one"
        )


class UnknownFieldError(WorkspaceError, ValueError):
    """A query names a field no run in the workspace has (a typo would match nothing).

    ``suggestions`` are the closest fields runs have, ``known`` a sample of them;
    ``query`` is the query text (None for a mapping). Test for a field on purpose with
    ``exists(field)``.
    """

    def __init__(
        self,
        field: str,
        suggestions: Sequence[str] = (),
        known: Sequence[str] = (),
        query: str | None = None,
    ) -> None:
        self.field = field
        self.suggestions = list(suggestions)
        self.known = list(known)
        self.query = query
        where = f" in query {query!r}" if query is not None else ""
        if self.suggestions:
            hint = "did you mean " + " or ".join(repr(name) for name in self.suggestions) + "?"
        elif self.known:
            shown = ", ".join(self.known[:12]) + (", ..." if len(self.known) > 12 else "")
            hint = f"fields runs have: {shown}"
        else:
            hint = "runs have no parameters or results yet"
        super().__init__(
            f"unknown field {field!r}{where}: no run in the workspace has it; {hint} "
            f"(to match runs with or without a field on purpose, use exists({field}))"
        )


class QuerySyntaxError(WorkspaceError, ValueError):
    """A malformed run query; ``column`` (1-based) points at the offending text."""

    def __init__(self, message: str, query: str, column: int) -> None:
        self.reason = message
        self.query = query
        self.column = column
        pointer = " " * (column - 1) + "^"
        super().__init__(f"{message} at column {column}\n  {query}\n  {pointer}")


class StaleRecordError(WorkspaceError, RuntimeError):
    """A record changed on disk after it was loaded; reload it and apply the change again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} was changed by someone else since it was loaded; "
            "call reload() and apply your change again"
        )


class BrokenRecordWarning(UserWarning):
    """A listing skipped a record file that could not be read (see ``broken_records()``)."""
