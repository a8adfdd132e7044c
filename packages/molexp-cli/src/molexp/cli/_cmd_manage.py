"""Commands that create or change workspace state, plus profile listing.

``init`` materializes a workspace, ``cancel`` marks a run cancelled (and ``scancel``s its Slurm
job), ``reap`` fails stale running runs, ``profiles`` shows the profiles of a ``molexp.toml``
(it only reads).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from molexp.workspace.layout import WORKSPACE_FILE

from ._errors import CliError, CliUsageError
from ._output import format_value, make_table, print_json, stdout_console
from ._resolve import find_workspace_root, open_workspace, resolve_run
from .profiles import ProfileFile, find_profile_file

__all__ = ["cancel_command", "init_command", "profiles_command", "reap_command"]

_CANCELLABLE = {"pending", "queued", "running"}


def init_command(path: Path, *, name: str | None, as_json: bool) -> None:
    """``molexp init [PATH]``: create the workspace record (idempotent)."""
    from molexp.workspace import Workspace

    root = path.expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise CliError(f"cannot create a workspace at {root}: it is a file")
    existed = (root / WORKSPACE_FILE).is_file()
    workspace = Workspace.load(root) if existed else Workspace(root, name=name).materialize()
    if as_json:
        print_json(
            {
                "id": workspace.id,
                "name": workspace.name,
                "root": workspace.root,
                "created": not existed,
            }
        )
        return
    verb = "already exists" if existed else "created"
    print(f"workspace {workspace.name} ({workspace.id}) {verb} at {workspace.root}")


def cancel_command(reference: str, *, workspace: Path | None, as_json: bool = False) -> None:
    """``molexp cancel RUN``: pending/queued/running -> cancelled; its Slurm job is scancelled.

    With ``--json`` one object: ``run_id``, ``was`` (the status before), ``status``,
    ``slurm_job`` (or null), ``slurm_cancelled`` and ``notes`` (what could not be done).
    """
    from ._slurm import SlurmClient, SlurmError
    from ._slurm_job import current_job

    run = resolve_run(reference, workspace)
    status = str(run.status)
    if status not in _CANCELLABLE:
        raise CliError(
            f"run {run.id} is {status}; only pending, queued or running runs can be cancelled"
        )
    job = current_job(run) if status in {"queued", "running"} else None
    owner = run.metadata.owner
    run.cancel()
    notes: list[str] = []
    slurm_cancelled = False
    if job is not None:
        try:
            SlurmClient().cancel([job.key])
        except SlurmError as exc:
            notes.append(
                f"could not cancel Slurm job {job.job} ({exc.message}); when it starts it "
                "finds the run cancelled and exits"
            )
        else:
            slurm_cancelled = True
    elif status == "running" and owner is not None:
        notes.append(f"the process executing it (pid {owner.pid} on {owner.host}) is not signalled")
    if as_json:
        print_json(
            {
                "run_id": run.id,
                "was": status,
                "status": str(run.status),
                "slurm_job": job.job if job is not None else None,
                "slurm_cancelled": slurm_cancelled,
                "notes": notes,
            }
        )
        return
    print(f"run {run.id} cancelled (was {status})")
    if slurm_cancelled and job is not None:
        print(f"Slurm job {job.job} cancelled")
    for note in notes:
        sys.stderr.write(f"note: {note}\n")


def reap_command(*, heartbeat_timeout: float, workspace: Path | None, as_json: bool) -> None:
    """``molexp reap``: running runs whose owner is gone become failed."""
    from molexp.workspace import reap_stale_runs

    if heartbeat_timeout <= 0:
        raise CliUsageError(f"--heartbeat-timeout must be positive, got {heartbeat_timeout}")
    ws = open_workspace(workspace)
    reaped = reap_stale_runs(ws, heartbeat_timeout=heartbeat_timeout)
    records = [
        {
            "id": run.id,
            "project": run.project.id,
            "experiment": run.experiment.id,
            "status": str(run.status),
            "reason": None if run.metadata.error is None else run.metadata.error.message,
            "run_dir": str(run.run_dir),
        }
        for run in reaped
    ]
    if as_json:
        print_json(records)
        return
    if not records:
        print("no stale runs")
        return
    stdout_console().print(
        make_table(
            f"Reaped {len(records)} stale run(s)",
            ["run id", "experiment", "status", "reason"],
            [
                (r["id"], f"{r['project']}/{r['experiment']}", r["status"], r["reason"])
                for r in records
            ],
        )
    )


def profiles_command(location: Path | None, *, config: Path | None, as_json: bool) -> None:
    """``molexp profiles``: every profile with its chain, merged config, config_hash and
    execution settings."""
    path = _profile_file(location, config)
    profiles = ProfileFile.load(path) if path is not None else ProfileFile(path=None)
    entries: list[dict[str, Any]] = []
    for name in profiles.names:
        resolved = profiles.resolve(name)
        entries.append(
            {
                "name": name,
                "chain": profiles.chain(name),
                "config": resolved.config,
                "config_hash": resolved.config_hash,
                "execution": profiles.execution(name).to_json(),
            }
        )
    named = None if profiles.workspace is None else str(profiles.workspace)
    if as_json:
        print_json(
            {"file": None if path is None else str(path), "workspace": named, "profiles": entries}
        )
        return
    console = stdout_console()
    console.print(f"profile file: {path if path is not None else 'none (only the empty default)'}")
    if named is not None:
        console.print(f"workspace: {named}", highlight=False)
    console.print(
        make_table(
            None,
            ["profile", "extends", "config_hash", "config", "executor"],
            [
                (
                    e["name"],
                    " -> ".join(e["chain"][:-1]) or None,
                    e["config_hash"][:16],
                    format_value(e["config"]),
                    e["execution"]["executor"],
                )
                for e in entries
            ],
        )
    )


def _profile_file(location: Path | None, config: Path | None) -> Path | None:
    if config is not None:
        if not config.is_file():
            raise CliUsageError(f"--config {config}: no such profile file")
        return config.resolve()
    if location is not None and not location.exists():
        raise CliUsageError(f"{location}: no such file or directory")
    start = Path.cwd() if location is None else location
    directory = start.parent if start.is_file() else start
    workspace_root = find_workspace_root(directory)
    return find_profile_file([directory, workspace_root])
