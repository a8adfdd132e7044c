"""Live progress of ``molexp run``: one bar for the runs, one line for the current run's tasks.

Rendered with rich on stderr, and only when enabled (stdout is a terminal and ``--json`` is off);
when disabled every method is a cheap no-op, so the executor calls them unconditionally.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

__all__ = ["RunProgress", "summarize_statuses"]


def summarize_statuses(statuses: Mapping[str, Any]) -> str:
    """``"3 succeeded, 1 running (train), 2 pending"`` for a task -> status mapping."""
    counts: dict[str, int] = {}
    running: list[str] = []
    for task, status in statuses.items():
        name = str(status)
        counts[name] = counts.get(name, 0) + 1
        if name == "running":
            running.append(task)
    parts = []
    for name, count in counts.items():
        part = f"{count} {name}"
        if name == "running" and running:
            part += f" ({', '.join(running[:3])}{', ...' if len(running) > 3 else ''})"
        parts.append(part)
    return ", ".join(parts)


class RunProgress:
    """Progress display for a batch of runs (context manager)."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._progress: Progress | None = None
        self._runs: TaskID | None = None
        self._tasks: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._runs = self._progress.add_task("runs", total=self.total)
            self._tasks = self._progress.add_task("tasks", total=None, visible=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def start_run(self, label: str) -> None:
        if self._progress is not None and self._runs is not None:
            self._progress.update(self._runs, description=f"runs: {label}")

    def show_tasks(self, statuses: Mapping[str, Any]) -> None:
        if self._progress is not None and self._tasks is not None:
            done = sum(
                1 for status in statuses.values() if str(status) not in {"pending", "running"}
            )
            self._progress.update(
                self._tasks,
                description=f"tasks: {summarize_statuses(statuses)}",
                total=len(statuses),
                completed=done,
                visible=True,
            )

    def advance(self) -> None:
        if self._progress is not None and self._runs is not None:
            self._progress.advance(self._runs)
            if self._tasks is not None:
                self._progress.update(self._tasks, visible=False)
