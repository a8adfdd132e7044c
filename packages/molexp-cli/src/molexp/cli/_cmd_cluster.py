"""``molexp status`` and ``molexp sync``: runs held by a scheduler, seen through the scheduler.

``status`` shows the queued and running runs (or the runs named) with what Slurm says about
their jobs (``squeue`` for live jobs, ``sacct`` for finished ones) or, for runs executing
outside Slurm, their owner process and heartbeat (a run whose owner is gone is shown as stale:
at once when the owner ran on this host, after the heartbeat timeout otherwise); it changes
nothing. ``sync`` reconciles: runs whose Slurm job ended without the run ending become
failed/cancelled with the scheduler's reason, arrays left held by a crashed submitter are
released, and running runs whose owner process is gone (dead pid, or no heartbeat for
``--heartbeat-timeout`` seconds) are reaped as failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._cmd_inspect import status_text
from ._errors import CliError, CliUsageError
from ._output import format_value, make_table, print_json, stdout_console
from ._resolve import open_workspace, resolve_run
from ._slurm_text import format_duration

if TYPE_CHECKING:
    from molexp.workspace import Run, Workspace

    from ._scheduler import JobReport

__all__ = ["active_runs", "status_command", "sync_command"]

_ACTIVE = ("queued", "running")


def active_runs(workspace: Workspace) -> list[Run]:
    """The workspace's runs that are ``queued`` or ``running``, per the run index."""
    runs = []
    for status in _ACTIVE:
        for summary in workspace.runs(where={"status": status}):
            runs.append(
                workspace.find_run(
                    summary.id, project=summary.project, experiment=summary.experiment
                )
            )
    return runs


def _job_reports(runs: Sequence[Run], *, apply: bool) -> tuple[list[JobReport], str | None]:
    """Slurm's view of the runs whose latest attempt is a Slurm job (with ``apply``: only the
    queued/running ones, which are reconciled), and a note when Slurm could not be asked."""
    from ._scheduler import reconcile, slurm_runs
    from ._slurm import SlurmClient, SlurmError, slurm_available
    from ._slurm_job import current_job

    if apply:
        pairs = slurm_runs(runs)
    else:
        pairs = [(run, job) for run in runs if (job := current_job(run)) is not None]
    if not pairs:
        return [], None
    if not slurm_available():
        return [], f"{len(pairs)} run(s) are on Slurm, but sbatch is not on PATH here"
    try:
        return reconcile(pairs, SlurmClient(), apply=apply), None
    except SlurmError as exc:
        return [], exc.message


def status_command(references: Sequence[str], *, workspace: Path | None, as_json: bool) -> None:
    """``molexp status [RUN...]``: the scheduler state of queued/running (or the named) runs."""
    if references:
        runs = [resolve_run(reference, workspace) for reference in references]
    else:
        runs = active_runs(open_workspace(workspace))
    reports, problem = _job_reports(runs, apply=False)
    if problem is not None and any(str(run.status) in _ACTIVE for run in runs):
        raise CliError(f"cannot ask Slurm about the runs' jobs: {problem}")
    by_run = {report.run.id: report for report in reports}
    records = [_status_record(run, by_run.get(run.id)) for run in runs]
    if as_json:
        print_json(records)
        return
    if not records:
        print("no queued or running runs")
        return
    stdout_console().print(
        make_table(
            "Runs and their jobs",
            ["run id", "experiment", "status", "job", "scheduler state", "elapsed", "log"],
            [
                (
                    r["run_id"],
                    f"{r['project']}/{r['experiment']}",
                    status_text(r["status"], r["stale_reason"]),
                    r["job"],
                    r["detail"],
                    _elapsed_text(r),
                    r["log"],
                )
                for r in records
            ],
        )
    )


def _status_record(run: Run, report: JobReport | None) -> dict[str, Any]:
    from molexp.workspace import stale_reason

    from ._slurm_job import current_job

    job = current_job(run)
    stale = stale_reason(run.metadata)
    record: dict[str, Any] = {
        "run_id": run.id,
        "project": str(run.project.id),
        "experiment": str(run.experiment.id),
        "status": str(run.status),
        "stale": stale is not None,
        "stale_reason": stale,
        "scheduler": None if job is None else job.name,
        "job": None if job is None else job.job,
        "state": None,
        "detail": None,
        "elapsed": None,
        "time_limit": None,
        "log": None if job is None else str(job.log),
        "run_dir": str(run.run_dir),
    }
    if report is not None:
        state = report.state
        record["state"] = "UNKNOWN" if state is None else state.state
        record["detail"] = report.slurm_state
        if state is not None:
            record["elapsed"] = state.elapsed
            record["time_limit"] = state.time_limit
    elif job is None and run.metadata.owner is not None:
        owner = run.metadata.owner
        silence = (datetime.now(UTC) - owner.heartbeat_at).total_seconds()
        record["detail"] = f"pid {owner.pid} on {owner.host}, last heartbeat {silence:.0f} s ago"
        if stale is not None:
            record["detail"] = f"stale: {stale} (last heartbeat {silence:.0f} s ago)"
    return record


def _elapsed_text(record: dict[str, Any]) -> str | None:
    elapsed, limit = record["elapsed"], record["time_limit"]
    if elapsed is None:
        return None
    return format_duration(elapsed) + (f" / {format_duration(limit)}" if limit else "")


def sync_command(*, heartbeat_timeout: float, workspace: Path | None, as_json: bool) -> None:
    """``molexp sync``: settle runs whose job ended or whose owner died; list what changed."""
    from molexp.workspace import reap_stale_runs

    if heartbeat_timeout <= 0:
        raise CliUsageError(f"--heartbeat-timeout must be positive, got {heartbeat_timeout}")
    ws = open_workspace(workspace)
    reports, problem = _job_reports(active_runs(ws), apply=True)
    if problem is not None:
        raise CliError(f"cannot reconcile runs with Slurm: {problem}")
    changes: list[dict[str, Any]] = [
        {
            "run_id": report.run.id,
            "project": str(report.run.project.id),
            "experiment": str(report.run.experiment.id),
            "job": report.info.job,
            "slurm_state": report.slurm_state,
            "action": report.action,
            "status": str(report.run.status),
            "reason": report.reason,
        }
        for report in reports
        if report.action
    ]
    for run in reap_stale_runs(ws, heartbeat_timeout=heartbeat_timeout):
        changes.append(
            {
                "run_id": run.id,
                "project": str(run.project.id),
                "experiment": str(run.experiment.id),
                "job": None,
                "slurm_state": None,
                "action": "reaped",
                "status": str(run.status),
                "reason": None if run.metadata.error is None else run.metadata.error.message,
            }
        )
    live = sum(1 for report in reports if not report.action)
    if as_json:
        print_json({"changes": changes, "live_jobs": live})
        return
    if not changes:
        print(f"nothing to sync ({live} live Slurm job(s))")
        return
    stdout_console().print(
        make_table(
            f"Synced {len(changes)} run(s)",
            ["run id", "experiment", "job", "action", "status", "reason"],
            [
                (
                    c["run_id"],
                    f"{c['project']}/{c['experiment']}",
                    c["job"],
                    c["action"],
                    c["status"],
                    format_value(c["reason"]),
                )
                for c in changes
            ],
        )
    )
    print(f"{live} live Slurm job(s)")
