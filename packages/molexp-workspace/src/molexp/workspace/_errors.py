"""Exceptions and warnings of the workspace layer.

Owns ``RunStateError`` (a lifecycle step not allowed from the run's current status),
``AmbiguousRunIdError`` (a run id that names runs in several experiments) and
``BrokenRecordWarning`` (a listing skipped a record it could not read).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["AmbiguousRunIdError", "BrokenRecordWarning", "RunStateError"]


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


class BrokenRecordWarning(UserWarning):
    """A listing skipped a record file that could not be read (see ``broken_records()``)."""
