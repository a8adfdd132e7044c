"""Exceptions and warnings of the workspace layer.

Owns ``RunStateError`` (a lifecycle step not allowed from the run's current status),
``AmbiguousRunIdError`` (a run id that names runs in several experiments),
``UnknownFieldError`` (a query names a field no run has) and ``BrokenRecordWarning``
(a listing skipped a record it could not read).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AmbiguousRunIdError", "BrokenRecordWarning", "RunStateError", "UnknownFieldError"]


class RunStateError(ValueError):
    """A lifecycle step (start, cancel, queue) is not allowed from the run's status."""


class AmbiguousRunIdError(LookupError):
    """A bare run id matches runs in several experiments; ``matches`` lists them."""

    def __init__(self, run_id: str, matches: Sequence[tuple[str, str]]) -> None:
        self.run_id = run_id
        self.matches = list(matches)
        listed = ", ".join(f"{project}/{experiment}" for project, experiment in self.matches)
        super().__init__(
            f"run id {run_id!r} exists in several experiments ({listed}); "
            "pass project= and experiment= to choose one"
        )


class UnknownFieldError(ValueError):
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


class BrokenRecordWarning(UserWarning):
    """A listing skipped a record file that could not be read (see ``broken_records()``)."""
