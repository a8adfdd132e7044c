"""``molexp run`` and ``molexp execute``: import the script, plan the runs, execute them.

``run`` imports the script, resolves the profile per registered workspace, plans every replica
run (``_plan``) and executes the runs to execute in this process or as ``molexp execute``
subprocesses (``_execute``), then prints a summary. ``--dry-run`` does the same import and
planning inside a filesystem journal (``_journal``) that restores the disk afterwards.
``execute`` is the single-run worker entry that only needs the run directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CliError, CliUsageError, one_line
from ._execute import (
    EXIT_BUSY,
    ExecutionPolicy,
    RunOutcome,
    claim_run,
    execute_claimed,
    execute_plan_in_process,
    execute_plan_in_subprocesses,
)
from ._output import format_duration, make_table, print_json, stdout_console
from ._plan import Action, PlannedRun, RunPlan, describe_owner, owner_is_alive, plan_runs
from ._progress import RunProgress
from ._resolve import RUN_FILE, open_run_dir
from ._script import LoadedScript, load_script, resolve_script_path
from .profiles import ProfileFile, find_profile_file, parse_overrides

if TYPE_CHECKING:
    from molexp.workspace import ProfileConfig, Run, Workspace

__all__ = ["ProfileRequest", "RunOptions", "execute_command", "run_command"]

_POLICIES = {
    "default": ExecutionPolicy(),
    "rerun-failed": ExecutionPolicy(rerun_failed=True),
    "force": ExecutionPolicy(force=True),
}


@dataclass(frozen=True)
class ProfileRequest:
    """The profile asked for on the command line: ``--profile``, ``--config``, ``--set``."""

    name: str | None = None
    config_file: Path | None = None
    overrides: tuple[str, ...] = ()

    @property
    def explicit(self) -> bool:
        return self.name is not None or self.config_file is not None or bool(self.overrides)

    def validated(self) -> ProfileRequest:
        """Check what can be checked before importing anything; paths become absolute."""
        parse_overrides(self.overrides)
        config_file = self.config_file
        if config_file is not None:
            config_file = config_file.expanduser().resolve()
            if not config_file.is_file():
                raise CliUsageError(f"--config {self.config_file}: no such profile file")
        return ProfileRequest(self.name, config_file, self.overrides)

    def resolve(self, search_dirs: Sequence[Path | None]) -> tuple[ProfileConfig, Path | None]:
        """The resolved profile and the file it came from (None without a profile file)."""
        path = self.config_file or find_profile_file(search_dirs)
        profiles = ProfileFile.load(path) if path is not None else ProfileFile(path=None)
        return profiles.resolve(self.name, self.overrides), path

    def child_args(self, path: Path | None) -> list[str]:
        """Arguments that make ``molexp execute`` resolve exactly this profile again."""
        args: list[str] = []
        if self.name is not None:
            args += ["--profile", self.name]
        if path is not None:
            args += ["--config", str(path)]
        for item in self.overrides:
            args += ["--set", item]
        return args


@dataclass(frozen=True)
class RunOptions:
    script: Path
    profile: str | None = None
    config: Path | None = None
    overrides: tuple[str, ...] = ()
    dry_run: bool = False
    rerun_failed: bool = False
    force: bool = False
    jobs: int = 1
    project: str | None = None
    experiment: str | None = None
    as_json: bool = False


@contextlib.contextmanager
def _stdout_to_stderr(enabled: bool) -> Iterator[None]:
    """Keep ``--json`` stdout clean: whatever the script or tasks print goes to stderr."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    with contextlib.redirect_stdout(sys.stderr):
        yield


class _Profiles:
    """Profile resolution per registered workspace (the fallback file is the workspace root's)."""

    def __init__(self, request: ProfileRequest, script: Path) -> None:
        self.request = request
        self.script = script
        self._resolved: dict[Path, tuple[ProfileConfig, Path | None]] = {}

    def _get(self, workspace: Workspace) -> tuple[ProfileConfig, Path | None]:
        root = Path(workspace.root)
        if root not in self._resolved:
            self._resolved[root] = self.request.resolve([self.script.parent, root])
        return self._resolved[root]

    def profile_for(self, workspace: Workspace) -> ProfileConfig:
        return self._get(workspace)[0]

    def child_args(self, planned: PlannedRun) -> list[str]:
        return self.request.child_args(self._get(planned.workspace)[1])


def _plan(loaded: LoadedScript, profiles: _Profiles, options: RunOptions) -> RunPlan:
    return plan_runs(
        loaded.workspaces,
        profiles.profile_for,
        project=options.project,
        experiment=options.experiment,
        rerun_failed=options.rerun_failed,
        force=options.force,
    )


def run_command(options: RunOptions) -> int:
    """``molexp run``: returns the exit code (1 if a run executed by this invocation failed)."""
    if options.jobs < 1:
        raise CliUsageError(f"--jobs must be at least 1, got {options.jobs}")
    script = resolve_script_path(options.script)
    request = ProfileRequest(options.profile, options.config, options.overrides).validated()
    profiles = _Profiles(request, script)
    if options.dry_run:
        return _dry_run(script, profiles, options)
    with _stdout_to_stderr(options.as_json):
        loaded = load_script(script)
        plan = _plan(loaded, profiles, options)
    _print_notes(plan.notes)
    policy = ExecutionPolicy(rerun_failed=options.rerun_failed, force=options.force)
    progress_enabled = sys.stdout.isatty() and not options.as_json
    with (
        RunProgress(len(plan.runs), enabled=progress_enabled) as progress,
        _stdout_to_stderr(options.as_json),
    ):
        if options.jobs == 1:
            outcomes = asyncio.run(
                execute_plan_in_process(plan.runs, script=script, policy=policy, progress=progress)
            )
        else:
            outcomes = execute_plan_in_subprocesses(
                plan.runs,
                script=script,
                policy=policy,
                profile_args_for=profiles.child_args,
                jobs=options.jobs,
                progress=progress,
            )
    _add_failure_reasons(outcomes)
    _print_summary(outcomes, plan.notes, as_json=options.as_json)
    return 1 if any(outcome.action == "failed" for outcome in outcomes) else 0


def _dry_run(script: Path, profiles: _Profiles, options: RunOptions) -> int:
    from ._journal import journaled

    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        with _stdout_to_stderr(options.as_json), journaled():
            loaded = load_script(script)
            plan = _plan(loaded, profiles, options)
            report = plan.to_json()
    finally:
        sys.dont_write_bytecode = previous
    report["dry_run"] = True
    if options.as_json:
        print_json(report)
        return 0
    _print_notes(report["notes"])
    rows = [
        (
            item["run_id"],
            f"{item['project']}/{item['experiment']}",
            item["replica_index"],
            item["seed"],
            item["profile"],
            item["status"] or "new",
            item["action"],
            item["reason"],
        )
        for item in report["runs"]
    ]
    console = stdout_console()
    console.print(
        make_table(
            "Plan (dry run: nothing was executed or written)",
            ["run id", "experiment", "replica", "seed", "profile", "status", "action", "reason"],
            rows,
        )
    )
    console.print(f"{report['to_execute']} of {len(rows)} run(s) would be executed")
    return 0


def _print_notes(notes: Sequence[str]) -> None:
    for note in notes:
        sys.stderr.write(f"note: {note}\n")


def _add_failure_reasons(outcomes: Sequence[RunOutcome]) -> None:
    """Replace the reason of failed runs by the recorded error (task, type and message)."""
    from molexp.workspace import RunContext

    for outcome in outcomes:
        if outcome.action != "failed" or not (outcome.run_dir / RUN_FILE).is_file():
            continue
        run = RunContext.open(outcome.run_dir)
        if run.metadata.error is not None:
            outcome.reason = describe_error_info(run.metadata.error)


def describe_error_info(error: Any) -> str:
    task = f"task {error.task_name}: " if getattr(error, "task_name", None) else ""
    text = one_line(f"{task}{error.type}: {error.message}")
    return text if len(text) <= 160 else text[:157] + "..."


def _print_summary(outcomes: Sequence[RunOutcome], notes: Sequence[str], *, as_json: bool) -> None:
    counts = {action: 0 for action in ("executed", "failed", "skipped")}
    for outcome in outcomes:
        counts[outcome.action] = counts.get(outcome.action, 0) + 1
    if as_json:
        print_json({"runs": [o.to_json() for o in outcomes], "notes": list(notes), **counts})
        return
    console = stdout_console()
    rows = [
        (
            o.run_id,
            f"{o.project}/{o.experiment}",
            o.replica_index,
            o.status or "-",
            format_duration(o.duration),
            o.action,
            o.reason,
        )
        for o in outcomes
    ]
    console.print(
        make_table(
            "Runs",
            ["run id", "experiment", "replica", "status", "duration", "action", "reason"],
            rows,
        )
    )
    console.print(
        f"{counts['executed']} executed, {counts['failed']} failed, {counts['skipped']} skipped"
    )


def execute_command(
    run_dir: Path,
    *,
    profile: str | None,
    config: Path | None,
    overrides: tuple[str, ...],
    as_json: bool,
    policy: str | None,
) -> int:
    """``molexp execute RUN_DIR``: 0 succeeded (or skipped by policy), 1 failed, 3 busy."""
    request = ProfileRequest(profile, config, overrides).validated()
    if not (run_dir / RUN_FILE).is_file():
        raise CliUsageError(f"{run_dir} is not a run directory: {run_dir / RUN_FILE} is missing")
    run = open_run_dir(run_dir)
    script = _recorded_script(run)
    recorded_cwd = (run.metadata.workflow_snapshot or {}).get("cwd")
    if isinstance(recorded_cwd, str) and Path(recorded_cwd).is_dir():
        os.chdir(recorded_cwd)
    with _stdout_to_stderr(as_json):
        action, duration, reason = _execute_one(run, script, request, policy)
    if as_json:
        print_json(
            {
                "run_id": run.id,
                "status": str(run.status),
                "action": action,
                "duration": duration,
                "reason": reason,
                "run_dir": str(run.run_dir),
            }
        )
    elif action == "executed":
        print(f"run {run.id} succeeded in {format_duration(duration)}")
    elif action == "skipped" and not reason.startswith(_BUSY):
        print(f"run {run.id} skipped: {reason}")
    if action == "skipped" and reason.startswith(_BUSY):
        raise CliError(f"run {run.id} is {reason}", exit_code=EXIT_BUSY)
    if action == "failed":
        raise CliError(f"run {run.id} {run.status}: {reason}")
    return 0


_BUSY = "being executed by another process"


def _execute_one(
    run: Run, script: Path, request: ProfileRequest, policy: str | None
) -> tuple[str, float | None, str]:
    """Import the script, then execute the run under its claim: (action, seconds, reason)."""
    from molexp.workflow.bindings import get_workflow

    load_script(script, require_workspace=False)
    spec = get_workflow(run.experiment)
    if spec is None:
        raise CliError(
            f"script {script} binds no workflow to experiment "
            f"{run.project.id}/{run.experiment.id} of workspace {run.workspace.root}"
        )
    profile_config = _execute_profile(request, run, script)
    with claim_run(Path(run.run_dir)) as claimed:
        run.reload()
        if not claimed or (str(run.status) == "running" and owner_is_alive(run.metadata.owner)):
            owner = describe_owner(run.metadata.owner) if claimed else ""
            return "skipped", None, _BUSY + (f" ({owner})" if owner else "")
        if policy is not None:
            decision = _POLICIES[policy].decide(run)
            if decision.action is Action.skip:
                return "skipped", None, decision.reason
        status, duration = asyncio.run(execute_claimed(run, spec, profile_config, script=script))
    if status == "succeeded":
        return "executed", duration, ""
    reason = describe_error_info(run.metadata.error) if run.metadata.error else status
    return "failed", duration, reason


def _recorded_script(run: Run) -> Path:
    snapshot = run.metadata.workflow_snapshot or {}
    recorded = snapshot.get("script")
    if not isinstance(recorded, str):
        source = run.experiment.metadata.workflow_source_path
        recorded = source if isinstance(source, str) and source.endswith(".py") else None
    if recorded is None:
        raise CliError(
            f"run {run.id} records no script to import (run it once with `molexp run SCRIPT`, "
            "or give its experiment a workflow_source)"
        )
    script = Path(recorded)
    if not script.is_file():
        raise CliError(f"run {run.id} was created by script {script}, which no longer exists")
    return script


def _execute_profile(request: ProfileRequest, run: Run, script: Path) -> ProfileConfig:
    from molexp.workspace import ProfileConfig

    stored = run.metadata.profile
    if not request.explicit and stored is not None:
        return ProfileConfig(name=stored.name, config=dict(stored.config))
    return request.resolve([script.parent, Path(run.workspace.root)])[0]
