"""Planning ``molexp run``: which runs exist, which to execute and why, without touching disk.

``plan_runs`` walks the workspaces a script registered, keeps the experiments that have a bound
workflow (selected by ``-p``/``-e``: ids, names or globs), expands each experiment's replicas into
deterministic run ids and decides per run whether to execute or skip it. ``decide`` holds the
rules and is a pure function; the executor calls it again under the run's execution lock before
it acts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.workspace import owner_is_alive
from molexp.workspace.layout import RUN_FILE, RUNS_DIR, run_dir_name

from ._errors import CliUsageError
from ._resolve import Selection
from ._slurm_job import lost_before_start

if TYPE_CHECKING:
    from molexp.workflow import Workflow
    from molexp.workspace import Experiment, ProfileConfig, Run, Workspace

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "Action",
    "Decision",
    "PlannedRun",
    "RunPlan",
    "decide",
    "owner_is_alive",
    "plan_runs",
    "replica_parameters",
]

DEFAULT_HEARTBEAT_TIMEOUT = 600.0


class Action(StrEnum):
    """What the plan does with a run: ``execute`` it or ``skip`` it."""

    execute = "execute"
    skip = "skip"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


def decide(
    status: str | None,
    *,
    owner_alive: bool = False,
    owner: str = "",
    rerun_failed: bool = False,
    force: bool = False,
    lost_before_start: bool = False,
    outdated: Mapping[str, str] | None = None,
) -> Decision:
    """Execute or skip a run in ``status`` (None: the run does not exist yet).

    new/pending -> execute; succeeded -> skip unless ``force``; failed/cancelled -> skip unless
    ``rerun_failed`` or ``force``; running with a live owner -> always skip (a run never executes
    twice at once); running whose owner is gone (a crashed attempt) is treated like failed;
    queued (handed to a scheduler) -> skip unless ``force``. A failed run whose scheduler job
    vanished before the run ever started (``lost_before_start``) never ran: execute it again.
    ``outdated`` (asked with ``--outdated``) maps a succeeded run's changed tasks to why; any
    executes it again.
    """
    if status is None:
        return Decision(Action.execute, "new")
    if status == "pending":
        return Decision(Action.execute, "pending")
    if status == "running":
        if owner_alive:
            return Decision(Action.skip, f"running ({owner})" if owner else "running")
        if rerun_failed or force:
            return Decision(Action.execute, "rerun of a stale running attempt")
        return Decision(
            Action.skip, "stale: running but its owner is gone (use --rerun-failed or molexp reap)"
        )
    if status == "succeeded":
        if force:
            return Decision(Action.execute, "forced rerun")
        if outdated:
            changed = ", ".join(f"{task} ({why})" for task, why in outdated.items())
            return Decision(Action.execute, f"outdated: {changed}")
        if outdated is not None:
            return Decision(Action.skip, "already succeeded, up to date")
        return Decision(Action.skip, "already succeeded")
    if status == "failed" and lost_before_start:
        return Decision(Action.execute, "its Slurm job vanished before the run started")
    if status in {"failed", "cancelled"}:
        if rerun_failed or force:
            return Decision(Action.execute, f"rerun of a {status} run")
        return Decision(Action.skip, f"{status} (use --rerun-failed to run it again)")
    if status == "queued":
        if force:
            return Decision(Action.execute, "forced run of a queued run")
        return Decision(Action.skip, "queued on a scheduler")
    return Decision(Action.skip, f"unknown status {status!r}")


def describe_owner(owner: Any) -> str:
    if owner is None:
        return ""
    return f"pid {getattr(owner, 'pid', '?')} on {getattr(owner, 'host', '?')}"


def replica_parameters(experiment: Experiment) -> list[tuple[int, int | None, dict[str, Any]]]:
    """``(replica_index, seed, parameters)`` for every replica of ``experiment``.

    Parameters are the experiment's params plus ``seed`` = ``get_seeds()[i]`` when the experiment
    declares seeds or more than one replica; otherwise the params alone and no seed.
    """
    n_replicas = int(experiment.n_replicas)
    seeded = bool(experiment.seeds) or n_replicas > 1
    seeds: Sequence[int] = experiment.get_seeds() if seeded else ()
    replicas = []
    for index in range(n_replicas):
        parameters = dict(experiment.params)
        seed: int | None = None
        if seeded:
            seed = int(seeds[index])
            parameters["seed"] = seed
        replicas.append((index, seed, parameters))
    return replicas


@dataclass(frozen=True)
class PlannedRun:
    """One run of the plan: where it lives, what it runs with, and what will happen to it."""

    workspace: Workspace
    experiment: Experiment
    workflow: Workflow
    profile: ProfileConfig
    replica_index: int
    seed: int | None
    parameters: dict[str, Any]
    run_id: str
    run_dir: Path
    status: str | None
    decision: Decision

    @property
    def project_id(self) -> str:
        """Id of the run's project."""
        return str(self.experiment.project.id)

    @property
    def experiment_id(self) -> str:
        """Id of the run's experiment."""
        return str(self.experiment.id)

    def to_json(self) -> dict[str, Any]:
        """The planned run and its decision as plain JSON data."""
        return {
            "run_id": self.run_id,
            "workspace": str(self.workspace.root),
            "project": self.project_id,
            "experiment": self.experiment_id,
            "replica_index": self.replica_index,
            "seed": self.seed,
            "parameters": self.parameters,
            "profile": self.profile.name,
            "overrides": dict(self.profile.overrides),
            "config_hash": self.profile.config_hash,
            "workflow": self.workflow.name,
            "workflow_id": self.workflow.workflow_id,
            "status": self.status,
            "action": self.decision.action.value,
            "reason": self.decision.reason,
            "run_dir": str(self.run_dir),
        }


@dataclass
class RunPlan:
    """The ordered runs of one ``molexp run`` invocation plus notes about skipped experiments."""

    runs: list[PlannedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def to_execute(self) -> list[PlannedRun]:
        """The planned runs whose decision is to execute."""
        return [run for run in self.runs if run.decision.action is Action.execute]

    def to_json(self) -> dict[str, Any]:
        """The plan (runs, notes, count to execute) as plain JSON data."""
        return {
            "runs": [run.to_json() for run in self.runs],
            "notes": list(self.notes),
            "to_execute": len(self.to_execute),
        }


WorkflowLookup = Callable[["Experiment"], "Workflow | None"]


def plan_runs(
    workspaces: Iterable[Workspace],
    profile_for: Callable[[Workspace], ProfileConfig],
    *,
    project: str | Sequence[str] | None = None,
    experiment: str | Sequence[str] | None = None,
    rerun_failed: bool = False,
    force: bool = False,
    outdated: bool = False,
    workflow_for: WorkflowLookup | None = None,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
) -> RunPlan:
    """Plan every run of the registered workspaces; reads records but never writes anything.

    ``project`` / ``experiment`` select by id, name or glob, one value or several (any of them
    selects: ``-e a -e 'cu-*'``); a value that matches nothing is a usage error listing what
    exists. ``workflow_for`` finds an experiment's bound workflow (default:
    ``molexp.workflow.bindings.get_workflow``). ``outdated`` compares each succeeded run's last
    attempt with the bound workflow (``molexp.workflow.outdated_tasks``).
    """
    if workflow_for is None:
        from molexp.workflow.bindings import get_workflow

        workflow_for = get_workflow
    selection = Selection.of(project, experiment)
    plan = RunPlan()
    seen_projects: list[str] = []
    seen_experiments: list[str] = []
    used_projects: set[str] = set()
    used_experiments: set[str] = set()
    for workspace in workspaces:
        profile = profile_for(workspace)
        chosen = selection.in_workspace(workspace)
        for proj in sorted(workspace.list_projects(), key=lambda p: str(p.id)):
            seen_projects.append(str(proj.id))
            if not chosen.project(proj.id, getattr(proj, "name", None)):
                continue
            used_projects.update(chosen.projects_matching(proj.id, getattr(proj, "name", None)))
            for exp in sorted(proj.list_experiments(), key=lambda e: str(e.id)):
                seen_experiments.append(f"{proj.id}/{exp.id}")
                if not chosen.experiment(exp.id, getattr(exp, "name", None)):
                    continue
                used_experiments.update(
                    chosen.experiments_matching(exp.id, getattr(exp, "name", None))
                )
                spec = workflow_for(exp)
                if spec is None:
                    plan.notes.append(
                        f"experiment {proj.id}/{exp.id} has no bound workflow; skipped"
                    )
                    continue
                plan.runs.extend(
                    _plan_experiment(
                        workspace,
                        exp,
                        spec,
                        profile,
                        rerun_failed,
                        force,
                        heartbeat_timeout,
                        outdated=outdated,
                    )
                )
    unused_projects = [p for p in selection.projects if p not in used_projects]
    if unused_projects:
        raise CliUsageError(
            f"no project {', '.join(map(repr, unused_projects))} in the script's workspaces; "
            f"available: {', '.join(seen_projects) or 'none'}"
        )
    unused_experiments = [e for e in selection.experiments if e not in used_experiments]
    if unused_experiments:
        raise CliUsageError(
            f"no experiment {', '.join(map(repr, unused_experiments))} in the selected projects; "
            f"available: {', '.join(seen_experiments) or 'none'}"
        )
    return plan


def _plan_experiment(
    workspace: Workspace,
    experiment: Experiment,
    spec: Workflow,
    profile: ProfileConfig,
    rerun_failed: bool,
    force: bool,
    heartbeat_timeout: float,
    *,
    outdated: bool = False,
) -> list[PlannedRun]:
    planned = []
    for index, seed, parameters in replica_parameters(experiment):
        # Unique within the workspace; a run kept under its legacy id (derived without the
        # project and experiment, before they were folded in) is found and reused.
        run_id = experiment.deterministic_run_id(
            parameters,
            replica_index=index,
            profile_name=profile.name,
            config_hash=profile.config_hash,
        )
        existing = existing_run(experiment, run_id)
        status = None if existing is None else str(existing.status)
        owner = None if existing is None else existing.metadata.owner
        decision = decide(
            status,
            owner_alive=owner_is_alive(owner, heartbeat_timeout=heartbeat_timeout),
            owner=describe_owner(owner),
            rerun_failed=rerun_failed,
            force=force,
            lost_before_start=existing is not None and lost_before_start(existing),
            outdated=changed_tasks(existing, spec, profile)
            if outdated and existing is not None and status == "succeeded"
            else None,
        )
        planned.append(
            PlannedRun(
                workspace=workspace,
                experiment=experiment,
                workflow=spec,
                profile=profile,
                replica_index=index,
                seed=seed,
                parameters=parameters,
                run_id=run_id,
                run_dir=run_dir_of(experiment, run_id),
                status=status,
                decision=decision,
            )
        )
    return planned


def changed_tasks(run: Run, spec: Workflow, profile: ProfileConfig) -> dict[str, str]:
    """The tasks of ``spec`` that changed since ``run``'s last attempt, each with why; a run
    whose last attempt kept no task journal (recorded before it, or from Python without a
    workflow) counts every task as changed: nothing proves it current."""
    from molexp.workflow import outdated_tasks

    execution_dir = run.attempt(-1).execution_dir
    changed = outdated_tasks(spec, execution_dir, run_config=profile.config)
    if changed is None:
        return {name: "no task journal to compare" for name in spec.topological_order()}
    return changed


def run_dir_of(experiment: Experiment, run_id: str) -> Path:
    """Where the run ``run_id`` of ``experiment`` lives (whether or not it exists yet)."""
    return Path(experiment.experiment_dir) / RUNS_DIR / run_dir_name(run_id)


def existing_run(experiment: Experiment, run_id: str) -> Run | None:
    """The run ``run_id`` when its record exists on disk, else None (never creates it)."""
    if not (run_dir_of(experiment, run_id) / RUN_FILE).is_file():
        return None
    return experiment.get_run(run_id)
