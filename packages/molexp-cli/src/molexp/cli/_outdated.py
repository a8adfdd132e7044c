"""``molexp ls --outdated``: succeeded runs whose tasks changed in the script that created them.

Each run records the script it was executed from and the directory it ran in. That script is
imported again from there, inside the filesystem journal of ``--dry-run`` (listing changes nothing
on disk), the workflow now bound to the run's experiment is compared with the run's last attempt
exactly as ``molexp run --outdated`` compares it (``molexp.workflow.outdated_tasks``), and the runs
with changed tasks are returned with why.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import CliError, CliUsageError, ScriptError, one_line

if TYPE_CHECKING:
    from molexp.workspace import Run, RunSummary, Workspace

__all__ = ["OutdatedReport", "OutdatedRun", "find_outdated_runs"]


@dataclass(frozen=True)
class OutdatedRun:
    """A succeeded run, the script it came from and its tasks that would run again now (why)."""

    summary: RunSummary
    script: Path
    changed: dict[str, str]


@dataclass
class OutdatedReport:
    """The outdated runs, and why some succeeded runs could not be compared."""

    runs: list[OutdatedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def find_outdated_runs(workspace: Workspace, rows: Sequence[RunSummary]) -> OutdatedReport:
    """Compare every succeeded run of ``rows`` with the script it was created from, now."""
    from ._cmd_run import recorded_cwd, recorded_script

    report = OutdatedReport()
    groups: dict[tuple[Path, Path | None], list[tuple[RunSummary, Run]]] = {}
    for row in rows:
        if str(row.status) != "succeeded":
            continue
        run = workspace.find_run(row.id, project=row.project, experiment=row.experiment)
        try:
            script = recorded_script(run, None)
        except CliError as exc:
            report.notes.append(f"run {row.id}: {one_line(str(exc))}")
            continue
        groups.setdefault((script, recorded_cwd(run, None)), []).append((row, run))
    for (script, cwd), runs in groups.items():
        _compare_with_script(script, cwd, runs, report)
    order = {row.id: index for index, row in enumerate(rows)}
    report.runs.sort(key=lambda outdated: order[outdated.summary.id])
    return report


def _compare_with_script(
    script: Path,
    cwd: Path | None,
    runs: list[tuple[RunSummary, Run]],
    report: OutdatedReport,
) -> None:
    from molexp.workflow.bindings import get_workflow
    from molexp.workspace import ProfileConfig

    from ._journal import journaled
    from ._plan import changed_tasks
    from ._script import load_script

    with contextlib.chdir(cwd or script.parent), journaled():
        try:
            load_script(script, require_workspace=False)
        except (ScriptError, CliUsageError) as exc:
            report.notes.append(
                f"{len(runs)} run(s) of {script} not compared: {one_line(str(exc))}"
            )
            return
        for row, run in runs:
            spec = get_workflow(run.experiment)
            if spec is None:
                why = f"{script.name} binds no workflow to this experiment"
                report.runs.append(OutdatedRun(row, script, {"*": why}))
                continue
            recorded = run.metadata.profile
            profile = ProfileConfig(
                name=recorded.name if recorded else "default",
                config=recorded.config if recorded else {},
            )
            changed = changed_tasks(run, spec, profile)
            if changed:
                report.runs.append(OutdatedRun(row, script, changed))
