"""``molexp run`` and ``molexp execute``: import the script, plan the runs, execute them.

``run`` imports the script, resolves the profile (and its execution settings) per registered
workspace, plans every replica run (``_plan``) after reconciling the runs a scheduler still holds
(``_scheduler``), and executes the runs to execute in this process, as ``molexp execute``
subprocesses (``_execute``) or submits them to Slurm as job arrays, then prints a summary.
``--dry-run`` does the same import and planning inside a filesystem journal (``_journal``) that
restores the disk afterwards. ``execute`` is the single-run worker entry that only needs the run
directory; with ``--task`` it runs one remote task of a run (``_remote``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace.layout import RUN_FILE, WORKSPACE_FILE

from ._cmd_remote import remote_run, remote_settings_for
from ._errors import CliError, CliUsageError, one_line
from ._execute import (
    EXIT_BUSY,
    ClaimedElsewhere,
    Executing,
    ExecutionPolicy,
    RunOutcome,
    claim_run,
    execute_claimed,
    execute_plan_in_process,
    execute_plan_in_subprocesses,
    git_state,
)
from ._output import format_duration, make_table, print_json, stdout_console
from ._plan import (
    Action,
    Decision,
    PlannedRun,
    RunPlan,
    describe_owner,
    existing_run,
    owner_is_alive,
    plan_runs,
)
from ._progress import RunProgress
from ._python import ChosenPython, choose_python, run_in
from ._resolve import open_run_dir
from ._script import LoadedScript, load_script, resolve_script_path
from .profiles import (
    ExecutionSettings,
    ProfileError,
    ProfileFile,
    find_profile_file,
    parse_overrides,
)

if TYPE_CHECKING:
    from molexp.workflow import Workflow
    from molexp.workspace import ProfileConfig, Run, Workspace

    from ._scheduler import JobReport
    from ._slurm_job import SlurmJobInfo

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
        profiles, path = self._load(search_dirs)
        return profiles.resolve(self.name, self.overrides), path

    def execution(self, search_dirs: Sequence[Path | None]) -> ExecutionSettings:
        """The profile's execution settings (executor, heartbeat interval, Slurm options)."""
        return self._load(search_dirs)[0].execution(self.name, self.overrides)

    def _load(self, search_dirs: Sequence[Path | None]) -> tuple[ProfileFile, Path | None]:
        path = self.config_file or find_profile_file(search_dirs)
        return (ProfileFile.load(path) if path is not None else ProfileFile(path=None)), path

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
class ExecutionOverrides:
    """``molexp run``/``execute`` options that override the profile's execution settings."""

    executor: str | None = None
    heartbeat_interval: float | None = None
    slurm: tuple[tuple[str, Any], ...] = ()
    """Slurm options given on the command line, as (key, value) pairs."""

    def validated(self) -> ExecutionOverrides:
        from ._slurm_script import SlurmOptionError, SlurmOptions

        if self.heartbeat_interval is not None and not self.heartbeat_interval > 0:
            raise CliUsageError(
                f"--heartbeat-interval must be a positive number of seconds, "
                f"got {self.heartbeat_interval:g}"
            )
        try:
            SlurmOptions.from_mapping(dict(self.slurm), where="command line")
        except SlurmOptionError as exc:
            raise CliUsageError(str(exc)) from None
        return self

    def apply(self, settings: ExecutionSettings) -> ExecutionSettings:
        slurm = settings.slurm.merged(dict(self.slurm), where="command line")
        return replace(
            settings,
            executor=self.executor or settings.executor,
            heartbeat_interval=self.heartbeat_interval or settings.heartbeat_interval,
            slurm=slurm,
        )


@dataclass(frozen=True)
class RunOptions:
    script: Path
    profile: str | None = None
    config: Path | None = None
    overrides: tuple[str, ...] = ()
    dry_run: bool = False
    rerun_failed: bool = False
    force: bool = False
    outdated: bool = False
    """``--outdated``: succeeded runs whose tasks changed execute again (see ``_plan``)."""
    jobs: int = 1
    project: tuple[str, ...] = ()
    """``-p`` values: ids, names or globs, any of which selects a project (none: all)."""
    experiment: tuple[str, ...] = ()
    """``-e`` values: ids, names or globs, any of which selects an experiment (none: all)."""
    as_json: bool = False
    execution: ExecutionOverrides = ExecutionOverrides()
    python: Path | None = None
    """``--python``: the interpreter that runs the script (see ``_python``)."""

    def to_args(self) -> list[str]:
        """The ``molexp run`` arguments that give these options again (without ``--python``)."""
        args = [str(self.script), *self.request_args()]
        for flag, on in (
            ("--dry-run", self.dry_run),
            ("--rerun-failed", self.rerun_failed),
            ("--force", self.force),
            ("--outdated", self.outdated),
            ("--json", self.as_json),
        ):
            args += [flag] if on else []
        args += ["--jobs", str(self.jobs)]
        for value in self.project:
            args += ["--project", value]
        for value in self.experiment:
            args += ["--experiment", value]
        execution = self.execution
        if execution.executor is not None:
            args += ["--executor", execution.executor]
        if execution.heartbeat_interval is not None:
            args += ["--heartbeat-interval", repr(execution.heartbeat_interval)]
        for key, value in execution.slurm:
            if key == "hold":
                args += ["--hold"] if value else []
            elif key in _SLURM_LISTS:
                for item in value:
                    args += [_SLURM_LISTS[key], str(item)]
            else:
                args += [f"--{key.replace('_', '-')}", str(value)]
        return args

    def request_args(self) -> list[str]:
        args = [] if self.profile is None else ["--profile", self.profile]
        args += [] if self.config is None else ["--config", str(self.config)]
        for item in self.overrides:
            args += ["--set", item]
        return args


_SLURM_LISTS = {"extra_sbatch": "--sbatch", "preamble": "--preamble"}


def allow_recorded_variables(script: Path, config: Path | None) -> None:
    """Let the attempts of this process and of the workers it starts record the variables the
    profile file's ``record_variables`` names (through ``$MOLEXP_RECORD_VARIABLES``, which the
    workspace's environment capture reads; names already there stay)."""
    from molexp.workspace import RECORD_VARIABLES_ENV

    profile_file = config or find_profile_file([script.parent])
    if profile_file is None:
        return
    names = ProfileFile.load(profile_file).record_variables
    present = [n for n in os.environ.get(RECORD_VARIABLES_ENV, "").split(",") if n.strip()]
    wanted = [*present, *(name for name in names if name not in present)]
    if wanted:
        os.environ[RECORD_VARIABLES_ENV] = ",".join(wanted)


def _chosen_python(option: Path | None, script: Path, config: Path | None) -> ChosenPython | None:
    """The interpreter for the user's code when it is not this one (see ``_python``)."""
    profile_file = config or find_profile_file([script.parent])
    named = None if profile_file is None else ProfileFile.load(profile_file).python
    profile_python = None if named is None or profile_file is None else (profile_file, named)
    return choose_python(option, script.parent, profile_python=profile_python)


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

    def __init__(
        self,
        request: ProfileRequest,
        script: Path,
        execution: ExecutionOverrides = ExecutionOverrides(),
    ) -> None:
        self.request = request
        self.script = script
        self.overrides = execution
        self._resolved: dict[Path, tuple[ProfileConfig, Path | None]] = {}
        self._settings: dict[Path, ExecutionSettings] = {}
        self._executing: dict[Path, Executing] = {}

    def _get(self, workspace: Workspace) -> tuple[ProfileConfig, Path | None]:
        root = Path(workspace.root)
        if root not in self._resolved:
            self._resolved[root] = self.request.resolve([self.script.parent, root])
        return self._resolved[root]

    def profile_for(self, workspace: Workspace) -> ProfileConfig:
        return self._get(workspace)[0]

    def settings_for(self, workspace: Workspace) -> ExecutionSettings:
        root = Path(workspace.root)
        if root not in self._settings:
            settings = self.request.execution([self.script.parent, root])
            self._settings[root] = self.overrides.apply(settings)
        return self._settings[root]

    def executing_for(self, planned: PlannedRun) -> Executing:
        root = Path(planned.workspace.root)
        if root not in self._executing:
            self._executing[root] = executing_with(self.settings_for(planned.workspace))
        return self._executing[root]

    def child_args(self, planned: PlannedRun) -> list[str]:
        interval = self.settings_for(planned.workspace).heartbeat_interval
        return [
            *self.request.child_args(self._get(planned.workspace)[1]),
            "--heartbeat-interval",
            f"{interval:g}",
        ]


def executing_with(settings: ExecutionSettings) -> Executing:
    """Heartbeat and remote-task executor of runs executed with these settings."""
    from ._remote import SlurmTaskExecutor

    return Executing(
        heartbeat_interval=settings.heartbeat_interval,
        remote_executor=SlurmTaskExecutor(settings.slurm),
        runtime=settings.runtime,
    )


def _plan(loaded: LoadedScript, profiles: _Profiles, options: RunOptions) -> RunPlan:
    return plan_runs(
        loaded.workspaces,
        profiles.profile_for,
        project=options.project,
        experiment=options.experiment,
        rerun_failed=options.rerun_failed,
        force=options.force,
        outdated=options.outdated,
    )


def run_command(options: RunOptions) -> int:
    """``molexp run``: returns the exit code (1 if a run of this invocation failed to execute
    or to be submitted)."""
    if options.jobs < 1:
        raise CliUsageError(f"--jobs must be at least 1, got {options.jobs}")
    git_state.cache_clear()  # this invocation's runs record the checkout as it is now
    script = resolve_script_path(options.script)
    request = ProfileRequest(options.profile, options.config, options.overrides).validated()
    resolved = replace(options, script=script, config=request.config_file)
    remote = remote_settings_for(resolved, script)
    if remote is not None:  # a profile with a [remote] table: run it on that host over SSH
        return remote_run(resolved, *remote)
    allow_recorded_variables(script, request.config_file)
    chosen = _chosen_python(options.python, script, request.config_file)
    if chosen is not None:
        return run_in(chosen, ["run", *replace(options, script=script).to_args()])
    profiles = _Profiles(request, script, options.execution.validated())
    if options.dry_run:
        return _dry_run(script, profiles, options)
    with _stdout_to_stderr(options.as_json):
        loaded = load_script(script)
        plan = _plan(loaded, profiles, options)
        plan = _reconcile_scheduled(plan, lambda: _plan(loaded, profiles, options))
    _print_notes(plan.notes)
    submitted = [p for p in plan.runs if profiles.settings_for(p.workspace).executor == "slurm"]
    local = [p for p in plan.runs if profiles.settings_for(p.workspace).executor != "slurm"]
    if submitted and options.jobs != 1:
        raise CliUsageError(
            "--jobs applies to local execution; with executor 'slurm' every run is one task "
            "of a job array"
        )
    # An outdated run was planned on the state it had; under the claim it executes whatever
    # happened since (executing again is never wrong: unchanged tasks resume).
    policy = ExecutionPolicy(
        rerun_failed=options.rerun_failed, force=options.force or options.outdated
    )
    outcomes = {id(p): o for p, o in _submit(submitted, profiles, script, policy)}
    progress_enabled = sys.stdout.isatty() and not options.as_json
    with (
        RunProgress(len(local), enabled=progress_enabled) as progress,
        _stdout_to_stderr(options.as_json),
    ):
        if options.jobs == 1:
            executed = asyncio.run(
                execute_plan_in_process(
                    local,
                    script=script,
                    policy=policy,
                    progress=progress,
                    executing_for=profiles.executing_for,
                )
            )
        else:
            executed = execute_plan_in_subprocesses(
                local,
                script=script,
                policy=policy,
                profile_args_for=profiles.child_args,
                jobs=options.jobs,
                progress=progress,
            )
    outcomes.update({id(p): o for p, o in zip(local, executed, strict=True)})
    ordered = [outcomes[id(p)] for p in plan.runs]
    _add_failure_reasons(ordered)
    _print_summary(ordered, plan.notes, as_json=options.as_json)
    return 1 if any(outcome.action == "failed" for outcome in ordered) else 0


def _submit(
    runs: Sequence[PlannedRun], profiles: _Profiles, script: Path, policy: ExecutionPolicy
) -> list[tuple[PlannedRun, RunOutcome]]:
    """Submit the runs of each workspace with its execution settings (one array/experiment)."""
    if not runs:
        return []
    from ._scheduler import submit_runs
    from ._slurm import SlurmClient, slurm_available

    if not slurm_available():
        raise CliError(
            f"executor 'slurm' for {len(runs)} run(s), but sbatch is not on PATH: run molexp "
            "where the Slurm commands are available, or use --executor local"
        )

    client = SlurmClient()
    by_root: dict[Path, list[PlannedRun]] = {}
    for planned in runs:
        by_root.setdefault(Path(planned.workspace.root), []).append(planned)
    pairs: list[tuple[PlannedRun, RunOutcome]] = []
    for group in by_root.values():
        settings = profiles.settings_for(group[0].workspace)
        outcomes = submit_runs(
            group, settings=settings, script=script, policy=policy, client=client
        )
        pairs.extend(zip(group, outcomes, strict=True))
    return pairs


def _reconcile_scheduled(plan: RunPlan, replan: Callable[[], RunPlan]) -> RunPlan:
    """Settle the plan's runs that Slurm still holds before deciding about them.

    Runs whose job ended behind their back become failed/cancelled (and the plan is made
    again); runs whose job is alive keep being skipped, with the job named in the reason.
    """
    from ._scheduler import reconcile, slurm_runs
    from ._slurm import SlurmClient, SlurmError, slurm_available

    held = [
        run
        for planned in plan.runs
        if planned.status in {"queued", "running"}
        and (run := existing_run(planned.experiment, planned.run_id)) is not None
    ]
    pairs = slurm_runs(held)
    if not pairs:
        return plan
    if not slurm_available():
        plan.notes.append(
            f"{len(pairs)} run(s) are queued or running on Slurm, but sbatch is not on PATH: "
            "their jobs were not checked"
        )
        return plan
    try:
        reports = reconcile(pairs, SlurmClient())
    except SlurmError as exc:
        plan.notes.append(f"could not check the Slurm jobs of {len(pairs)} run(s): {exc.message}")
        return plan
    changed = [r for r in reports if r.action in {"failed", "cancelled"}]
    notes = [f"run {r.run.id}: {r.action}: {r.reason}" for r in changed]
    if changed:
        plan = replan()
    plan.notes.extend(notes)
    live = {r.run.id: r for r in reports if r.state is not None and not r.action}
    plan.runs = [_name_live_job(p, live.get(p.run_id)) for p in plan.runs]
    return plan


def _name_live_job(planned: PlannedRun, report: JobReport | None) -> PlannedRun:
    if report is None or planned.decision.action is not Action.skip:
        return planned
    reason = f"Slurm job {report.info.job}: {report.slurm_state}"
    return replace(planned, decision=Decision(Action.skip, reason))


def _dry_run(script: Path, profiles: _Profiles, options: RunOptions) -> int:
    from ._journal import journaled

    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        with _stdout_to_stderr(options.as_json), journaled():
            loaded = load_script(script)
            plan = _plan(loaded, profiles, options)
            report = plan.to_json()
            for item, planned in zip(report["runs"], plan.runs, strict=True):
                item["executor"] = profiles.settings_for(planned.workspace).executor
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
            "submit"
            if item["action"] == "execute" and item["executor"] == "slurm"
            else item["action"],
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
    console.print(f"{report['to_execute']} of {len(rows)} run(s) would be executed or submitted")
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
    counts = {action: 0 for action in ("executed", "failed", "skipped", "submitted")}
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
    submitted = f", {counts['submitted']} submitted" if counts["submitted"] else ""
    console.print(
        f"{counts['executed']} executed, {counts['failed']} failed, {counts['skipped']} skipped"
        + submitted
    )
    for line in _where_records_went(outcomes):
        console.print(line, highlight=False, soft_wrap=True)


def _where_records_went(outcomes: Sequence[RunOutcome]) -> list[str]:
    """One line per experiment's runs directory, then how to inspect the workspace: commands
    that work pasted into the user's shell (their launcher, paths relative to where they are)."""
    from ._launcher import display_path, launcher

    runs_dirs = sorted({outcome.run_dir.parent for outcome in outcomes})
    lines = [f"records: {display_path(runs_dir)}" for runs_dir in runs_dirs]
    roots = sorted(
        {
            parent
            for runs_dir in runs_dirs
            for parent in runs_dir.parents
            if (parent / WORKSPACE_FILE).is_file()
        }
    )
    if roots:
        molexp, workspace = launcher(), display_path(roots[-1])
        lines.append(f"inspect: {molexp} ls runs -w {workspace}")
        lines.append(f"browse:  {molexp} serve -w {workspace}")
    return lines


@dataclass(frozen=True)
class WorkerOptions:
    """``molexp execute`` options used by scheduler jobs."""

    task: str | None = None
    """Execute only this remote task of the run (``--task``)."""
    call_id: str | None = None
    """The remote call the job was submitted for (default: the run's current call)."""
    slurm_job: str | None = None
    """Execute only if the run is queued as this Slurm job (``<job>_<index>``)."""
    heartbeat_interval: float | None = None


def execute_command(
    run_dir: Path,
    *,
    profile: str | None,
    config: Path | None,
    overrides: tuple[str, ...],
    as_json: bool,
    policy: str | None,
    worker: WorkerOptions = WorkerOptions(),
    python: Path | None = None,
) -> int:
    """``molexp execute RUN_DIR``: 0 succeeded (or skipped by policy), 1 failed, 3 busy."""
    from ._slurm_job import current_job

    request = ProfileRequest(profile, config, overrides).validated()
    ExecutionOverrides(heartbeat_interval=worker.heartbeat_interval).validated()
    git_state.cache_clear()
    if not (run_dir / RUN_FILE).is_file():
        raise CliUsageError(f"{run_dir} is not a run directory: {run_dir / RUN_FILE} is missing")
    run = open_run_dir(run_dir)
    job = current_job(run)
    script = recorded_script(run, job)
    allow_recorded_variables(script, request.config_file)
    chosen = _chosen_python(python, script, request.config_file)
    if chosen is not None:
        args = [
            "execute",
            str(run_dir.absolute()),
            *_execute_args(request, as_json, policy, worker),
        ]
        return run_in(chosen, args)
    working_directory = recorded_cwd(run, job)
    if working_directory is not None:
        os.chdir(working_directory)
    if worker.task is not None:
        return _execute_task_command(run, script, worker.task, worker.call_id, as_json=as_json)
    with _stdout_to_stderr(as_json):
        action, duration, reason = _execute_one(run, script, request, policy, worker, job)
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


def _bound_workflow(run: Run, script: Path) -> Workflow:
    from molexp.workflow.bindings import get_workflow

    load_script(script, require_workspace=False)
    spec = get_workflow(run.experiment)
    if spec is None:
        raise CliError(
            f"script {script} binds no workflow to experiment "
            f"{run.project.id}/{run.experiment.id} of workspace {run.workspace.root}"
        )
    return spec


def _execute_one(
    run: Run,
    script: Path,
    request: ProfileRequest,
    policy: str | None,
    worker: WorkerOptions,
    job: SlurmJobInfo | None,
) -> tuple[str, float | None, str]:
    """Import the script, then execute the run under its claim: (action, seconds, reason)."""
    from ._slurm_job import current_job

    spec = _bound_workflow(run, script)
    profile_config = _execute_profile(request, run, script, job)
    settings = _execute_settings(request, run, script, profile_config.name)
    settings = ExecutionOverrides(heartbeat_interval=worker.heartbeat_interval).apply(settings)
    with claim_run(Path(run.run_dir)) as claimed:
        run.reload()
        if not claimed or (str(run.status) == "running" and owner_is_alive(run.metadata.owner)):
            owner = describe_owner(run.metadata.owner) if claimed else ""
            return "skipped", None, _BUSY + (f" ({owner})" if owner else "")
        if worker.slurm_job is not None:
            queued_as = current_job(run)
            if (
                str(run.status) != "queued"
                or queued_as is None
                or queued_as.job != worker.slurm_job
            ):
                where = f" as Slurm job {queued_as.job}" if queued_as is not None else ""
                return (
                    "skipped",
                    None,
                    (f"run is {run.status}{where}, not queued as Slurm job {worker.slurm_job}"),
                )
        elif policy is not None:
            decision = _POLICIES[policy].decide(run)
            if decision.action is Action.skip:
                return "skipped", None, decision.reason
        try:
            status, duration = asyncio.run(
                execute_claimed(
                    run, spec, profile_config, script=script, executing=executing_with(settings)
                )
            )
        except ClaimedElsewhere as exc:
            return "skipped", None, f"{_BUSY} ({exc})"
    if status == "succeeded":
        return "executed", duration, ""
    reason = describe_error_info(run.metadata.error) if run.metadata.error else status
    return "failed", duration, reason


def _execute_task_command(
    run: Run, script: Path, task: str, call_id: str | None, *, as_json: bool
) -> int:
    """``molexp execute RUN_DIR --task NAME``: one remote task, in this process."""
    from ._remote import execute_remote_call

    with _stdout_to_stderr(as_json):
        code, message = execute_remote_call(
            run, task, call_id, import_workflow=lambda r: _bound_workflow(r, script)
        )
    if as_json:
        print_json({"run_id": run.id, "task": task, "exit_code": code, "message": message})
    elif code == 0:
        print(message)
    if code != 0:
        raise CliError(message, exit_code=code)
    return 0


def _execute_args(
    request: ProfileRequest, as_json: bool, policy: str | None, worker: WorkerOptions
) -> list[str]:
    """The ``molexp execute`` options that give these again (after RUN_DIR)."""
    args = request.child_args(request.config_file)
    args += ["--json"] if as_json else []
    for flag, value in (
        ("--policy", policy),
        ("--task", worker.task),
        ("--call-id", worker.call_id),
        ("--slurm-job", worker.slurm_job),
        (
            "--heartbeat-interval",
            None if worker.heartbeat_interval is None else repr(worker.heartbeat_interval),
        ),
    ):
        args += [] if value is None else [flag, value]
    return args


def recorded_cwd(run: Run, job: SlurmJobInfo | None) -> Path | None:
    """The working directory ``run``'s script was run from, when recorded and still there."""
    recorded = (run.metadata.workflow_snapshot or {}).get("cwd")
    if not isinstance(recorded, str) and job is not None:
        recorded = job.cwd
    return Path(recorded) if isinstance(recorded, str) and Path(recorded).is_dir() else None


def recorded_script(run: Run, job: SlurmJobInfo | None) -> Path:
    """The script ``run`` was created from (recorded on it, on its job, or the experiment's
    ``workflow_source``); a missing one is a ``CliError`` saying how to record it."""
    snapshot = run.metadata.workflow_snapshot or {}
    recorded = snapshot.get("script")
    if not isinstance(recorded, str) and job is not None:
        recorded = job.script
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


def _execute_profile(
    request: ProfileRequest, run: Run, script: Path, job: SlurmJobInfo | None
) -> ProfileConfig:
    """``--profile``/``--config``/``--set`` when given, else the run's stored profile, else the
    one its Slurm job was submitted with, else the default profile."""
    from molexp.workspace import ProfileConfig

    stored = run.metadata.profile
    if not request.explicit and stored is not None:
        return ProfileConfig(
            name=stored.name, config=dict(stored.config), overrides=dict(stored.overrides)
        )
    if not request.explicit and job is not None and job.profile is not None:
        return ProfileConfig(
            name=job.profile["name"],
            config=dict(job.profile["config"]),
            overrides=dict(job.profile.get("overrides") or {}),
        )
    return request.resolve([script.parent, Path(run.workspace.root)])[0]


def _execute_settings(
    request: ProfileRequest, run: Run, script: Path, profile_name: str
) -> ExecutionSettings:
    """The execution settings of the profile being executed (defaults if the file lost it)."""
    named = request if request.explicit else replace(request, name=profile_name)
    try:
        return named.execution([script.parent, Path(run.workspace.root)])
    except ProfileError:
        return ExecutionSettings()
