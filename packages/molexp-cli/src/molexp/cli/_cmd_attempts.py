"""One attempt of a run on the command line: ``molexp show RUN --attempt N`` and the
attempt-aware parts of ``logs`` and ``artifacts``.

Each attempt keeps its own results, artifacts and logs (``run.attempts``); these helpers
pick one, print it for people or as JSON, and say what changed from the attempt before.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cmd_diff import attempt_state
from ._errors import CliError, CliUsageError
from ._output import format_duration, format_value, make_table, print_json, stdout_console

if TYPE_CHECKING:
    from molexp.workspace import Attempt, AttemptDiff, EnvironmentInfo, Run

__all__ = [
    "attempt_json",
    "attempt_of",
    "changes_text",
    "diff_json",
    "python_text",
    "show_attempt",
]


def attempt_of(run: Run, number: int | None) -> Attempt | None:
    """Attempt ``number`` of ``run`` (None: the latest that started; None when it has none)."""
    if number is not None and number < 1:
        raise CliUsageError(f"--attempt counts from 1, got {number}")
    attempts = run.attempts
    if number is None:
        started = [attempt for attempt in attempts if attempt.started_at is not None]
        return (started or attempts)[-1] if attempts else None
    try:
        return run.attempt(number)
    except KeyError as exc:
        raise CliError(str(exc.args[0])) from None


def changes_text(diff: AttemptDiff) -> str:
    """A one-line summary: ``2 results changed, 1 artifact added`` (or ``no changes``)."""
    parts = []
    for what, changes in (("result", diff.results), ("artifact", diff.artifacts)):
        for change in ("changed", "added", "removed"):
            count = sum(1 for item in changes if item.change == change)
            if count:
                parts.append(f"{count} {what}{'s' if count > 1 else ''} {change}")
    return "; ".join(parts) or "no changes"


def diff_json(diff: AttemptDiff) -> dict[str, Any]:
    return diff.model_dump(mode="json")


def _from_attempt(attempt: Attempt) -> dict[str, int | None]:
    """For each artifact of the attempt's view, the attempt number that saved it."""
    return {name: attempt.number_of(asset) for name, asset in attempt.artifacts.items()}


def attempt_json(attempt: Attempt, root: Path) -> dict[str, Any]:
    """Everything ``show --attempt N --json`` prints about one attempt."""
    record = attempt.record.model_dump(mode="json")
    record.pop("results", None)
    saved_by = _from_attempt(attempt)
    return {
        **record,
        "execution_dir": str(attempt.execution_dir),
        "distributions": attempt_state(attempt).get("distributions") or {},
        "results": attempt.results,
        "own_results": attempt.own_results,
        "artifacts": [
            {
                "name": name,
                "attempt": saved_by[name],
                "asset_id": asset.id,
                "content_hash": asset.content_hash,
                "size": asset.size,
                "media_type": asset.media_type,
                "path": asset.path,
                "absolute_path": str(root / asset.path),
            }
            for name, asset in attempt.artifacts.items()
        ],
        "logs": [
            {"name": name, "path": str(path), "size": path.stat().st_size}
            for name, path in attempt.logs.items()
        ],
        "checkpoints": [
            {"name": c.name, "sequence": c.sequence, "path": c.path} for c in attempt.checkpoints
        ],
        "changes": diff_json(attempt.diff()),
    }


def show_attempt(run: Run, number: int, *, as_json: bool) -> None:
    """``molexp show RUN --attempt N``."""
    attempt = attempt_of(run, number)
    if attempt is None:  # pragma: no cover - attempt_of raises for a missing number
        raise CliError(f"run {run.id} has no attempts yet")
    root = Path(run.workspace.root)
    if as_json:
        print_json({"run": run.id, "attempts": len(run.attempts), **attempt_json(attempt, root)})
        return
    from rich.table import Table

    console = stdout_console()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    record = attempt.record
    duration = (
        format_duration((record.finished_at - record.started_at).total_seconds())
        if record.started_at and record.finished_at
        else "-"
    )
    own = attempt.own_results
    for label, value in (
        ("run", run.id),
        ("attempt", f"{attempt.number} of {len(run.attempts)}"),
        ("execution", attempt.execution_id),
        ("status", str(attempt.status)),
        ("started", record.started_at),
        ("finished", record.finished_at),
        ("duration", duration),
        ("host", f"{record.host}:{record.pid}" if record.host else None),
        ("python", python_text(record.python, record.python_version)),
        ("environment", _environment_text(record.environment)),
        ("distributions", _distributions_text(attempt_state(attempt).get("distributions"))),
        ("profile", record.profile_name),
        ("config_hash", record.config_hash),
        ("results", attempt.results),
        ("set by it", "(not recorded)" if own is None else sorted(own)),
        ("files", attempt.execution_dir),
    ):
        facts.add_row(label, format_value(value))
    if record.error is not None:
        task = f" in task {record.error.task_name}" if record.error.task_name else ""
        facts.add_row("error", f"{record.error.type}{task}: {record.error.message}")
    console.print(facts)
    saved_by = _from_attempt(attempt)
    console.print(
        make_table(
            f"Artifacts (attempt {attempt.number})",
            ["name", "from attempt", "size", "sha256", "path"],
            [
                (
                    name,
                    saved_by[name],
                    asset.size,
                    (asset.content_hash or "")[:12],
                    root / asset.path,
                )
                for name, asset in attempt.artifacts.items()
            ],
        )
    )
    console.print(
        make_table(
            f"Logs (attempt {attempt.number})",
            ["name", "size", "path"],
            [(name, path.stat().st_size, path) for name, path in attempt.logs.items()],
        )
    )
    diff = attempt.diff()
    before = f"attempt {diff.before}" if diff.before is not None else "nothing (first attempt)"
    rows: list[tuple[Any, ...]] = [
        ("result", c.key, c.change, format_value(c.before), format_value(c.after))
        for c in diff.results
    ]
    rows += [
        (
            "artifact",
            c.name,
            c.change,
            f"{(c.before_hash or '')[:12]} ({c.before_size} B)" if c.before_hash else "",
            f"{(c.after_hash or '')[:12]} ({c.after_size} B)" if c.after_hash else "",
        )
        for c in diff.artifacts
    ]
    console.print(
        make_table(
            f"Changes from {before}: {changes_text(diff)}",
            ["kind", "name", "change", "before", "after"],
            rows,
        )
    )


def python_text(executable: str | None, version: str | None) -> str | None:
    """``3.11.7 /lab/.venv/bin/python``: which interpreter ran an attempt, when recorded."""
    if executable is None and version is None:
        return None
    return " ".join(part for part in (version, executable) if part)


def _distributions_text(distributions: Any) -> str | None:
    """``numpy 2.1.0, ase 3.23.0``: the installed distributions the attempt's tasks reached."""
    if not isinstance(distributions, dict) or not distributions:
        return None
    return ", ".join(f"{name} {version}" for name, version in distributions.items())


def _environment_text(environment: EnvironmentInfo | None) -> str | None:
    """``CPython on Linux-6.1-x86_64; 8 CPUs; GPU: NVIDIA A100, 550.54; slurm: SLURM_JOB_ID=42``."""
    if environment is None:
        return None
    parts = [f"{environment.implementation} on {environment.platform}"]
    if environment.cpu_count is not None:
        parts.append(f"{environment.cpu_count} CPUs")
    parts.extend(f"GPU: {gpu}" for gpu in environment.gpus)
    for label, values in (("slurm", environment.slurm), ("variables", environment.variables)):
        if values:
            parts.append(f"{label}: " + " ".join(f"{k}={v}" for k, v in values.items()))
    return "; ".join(parts)
