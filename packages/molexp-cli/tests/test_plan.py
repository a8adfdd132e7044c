"""Run planning: the decision rules, replica expansion, filters and read-only planning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import tree_digest
from molexp.cli._errors import CliUsageError
from molexp.cli._plan import Action, Decision, decide, plan_runs, replica_parameters
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workflow.bindings import get_workflow, set_workflow
from molexp.workspace import Experiment, ProfileConfig, Workspace, derive_run_id


@pytest.mark.parametrize(
    ("status", "alive", "rerun", "force", "action", "fragment"),
    [
        (None, False, False, False, Action.execute, "new"),
        ("pending", False, False, False, Action.execute, "pending"),
        ("succeeded", False, False, False, Action.skip, "already succeeded"),
        ("succeeded", False, True, False, Action.skip, "already succeeded"),
        ("succeeded", False, False, True, Action.execute, "forced"),
        ("failed", False, False, False, Action.skip, "--rerun-failed"),
        ("failed", False, True, False, Action.execute, "rerun of a failed run"),
        ("failed", False, False, True, Action.execute, "rerun of a failed run"),
        ("cancelled", False, False, False, Action.skip, "cancelled"),
        ("cancelled", False, True, False, Action.execute, "rerun of a cancelled run"),
        ("running", True, False, False, Action.skip, "running"),
        ("running", True, True, True, Action.skip, "running"),
        ("running", False, False, False, Action.skip, "stale"),
        ("running", False, True, False, Action.execute, "stale"),
        ("queued", False, False, False, Action.skip, "queued"),
        ("queued", False, False, True, Action.execute, "queued"),
    ],
)
def test_decide(
    status: str | None,
    alive: bool,
    rerun: bool,
    force: bool,
    action: Action,
    fragment: str,
) -> None:
    decision = decide(status, owner_alive=alive, rerun_failed=rerun, force=force)
    assert decision.action is action
    assert fragment in decision.reason


def test_decide_outdated_only_changes_succeeded_runs() -> None:
    changed = {"fit": "code or task config changed", "plot": "run config changed"}
    decision = decide("succeeded", outdated=changed)
    assert decision.action is Action.execute
    assert (
        decision.reason == "outdated: fit (code or task config changed), plot (run config changed)"
    )
    assert decide("succeeded", outdated={}) == Decision(
        Action.skip, "already succeeded, up to date"
    )
    assert decide("failed", outdated=changed).action is Action.skip  # --rerun-failed decides
    assert decide("running", owner_alive=True, outdated=changed).action is Action.skip


def _workflow() -> Workflow:
    wf = workflow(name="w")

    @wf.task
    def only(ctx: TaskContext) -> int:
        return 1

    return wf.build()


def _experiment(tmp_path: Path, **kwargs: object) -> Experiment:
    ws = Workspace(tmp_path / "lab")
    return ws.Project("p").Experiment("e", params={"lr": 0.1}, **kwargs)  # type: ignore[arg-type]


def test_single_replica_without_seeds_has_no_seed(tmp_path: Path) -> None:
    assert replica_parameters(_experiment(tmp_path)) == [(0, None, {"lr": 0.1})]


def test_replicas_get_the_experiment_seeds(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, n_replicas=3)
    seeds = exp.get_seeds()
    assert replica_parameters(exp) == [
        (i, seeds[i], {"lr": 0.1, "seed": seeds[i]}) for i in range(3)
    ]


def test_declared_seeds_apply_to_a_single_replica(tmp_path: Path) -> None:
    exp = _experiment(tmp_path, seeds=[42])
    assert replica_parameters(exp) == [(0, 42, {"lr": 0.1, "seed": 42})]


@pytest.fixture
def bound_workspace(tmp_path: Path) -> Workspace:
    ws = Workspace(tmp_path / "lab")
    project = ws.Project(
        "proj",
    )
    bound = project.Experiment("bound", params={"lr": 0.1}, n_replicas=2)
    project.Experiment("lonely", params={"lr": 0.2})
    other = ws.Project("other").Experiment("x", params={"lr": 0.3})
    spec = _workflow()
    set_workflow(bound, spec)
    set_workflow(other, spec)
    return ws


def _profile(name: str = "default", **config: object) -> ProfileConfig:
    return ProfileConfig(name=name, config=dict(config))


def test_plan_expands_replicas_and_notes_unbound(bound_workspace: Workspace) -> None:
    profile = _profile(scale=2)
    plan = plan_runs([bound_workspace], lambda ws: profile)
    assert [(p.project_id, p.experiment_id, p.replica_index) for p in plan.runs] == [
        ("other", "x", 0),
        ("proj", "bound", 0),
        ("proj", "bound", 1),
    ]
    assert plan.notes == ["experiment proj/lonely has no bound workflow; skipped"]
    first = plan.runs[1]
    assert first.run_id == derive_run_id(
        {"lr": 0.1, "seed": first.seed},
        replica_index=0,
        profile_name="default",
        config_hash=profile.config_hash,
        project_id="proj",
        experiment_id="bound",
    )
    assert all(p.decision.action is Action.execute and p.status is None for p in plan.runs)
    assert plan.to_json()["to_execute"] == 3


def test_profile_changes_run_ids(bound_workspace: Workspace) -> None:
    def ids(profile: ProfileConfig) -> list[str]:
        return [p.run_id for p in plan_runs([bound_workspace], lambda ws: profile).runs]

    assert ids(_profile()) == ids(_profile())
    assert set(ids(_profile())).isdisjoint(ids(_profile(scale=2)))
    assert set(ids(_profile())).isdisjoint(ids(_profile("fast")))


def test_filters_by_id_or_name(bound_workspace: Workspace) -> None:
    plan = plan_runs([bound_workspace], lambda ws: _profile(), project="proj", experiment="bound")
    assert {p.experiment_id for p in plan.runs} == {"bound"}
    assert plan_runs([bound_workspace], lambda ws: _profile(), project="other").runs[
        0
    ].project_id == ("other")


def test_unknown_filters_list_what_exists(bound_workspace: Workspace) -> None:
    with pytest.raises(CliUsageError, match="no project 'nope'.*available: other, proj"):
        plan_runs([bound_workspace], lambda ws: _profile(), project="nope")
    with pytest.raises(CliUsageError, match="no experiment 'nope'.*proj/bound"):
        plan_runs([bound_workspace], lambda ws: _profile(), experiment="nope")


def test_plan_sees_existing_run_statuses(bound_workspace: Workspace) -> None:
    profile = _profile()
    runs = plan_runs([bound_workspace], lambda ws: profile, project="proj").runs
    exp = bound_workspace.project("proj").experiment("bound")
    done = exp.Run(parameters=runs[0].parameters, id=runs[0].run_id)
    with done.start(profile_config=profile):
        pass
    broken = exp.Run(parameters=runs[1].parameters, id=runs[1].run_id)
    with pytest.raises(RuntimeError), broken.start(profile_config=profile):
        raise RuntimeError("boom")

    again = plan_runs([bound_workspace], lambda ws: profile, project="proj").runs
    assert [(p.status, p.decision.action) for p in again] == [
        ("succeeded", Action.skip),
        ("failed", Action.skip),
    ]
    rerun = plan_runs([bound_workspace], lambda ws: profile, project="proj", rerun_failed=True)
    assert [p.decision.action for p in rerun.runs] == [Action.skip, Action.execute]
    forced = plan_runs([bound_workspace], lambda ws: profile, project="proj", force=True)
    assert [p.decision.action for p in forced.runs] == [Action.execute, Action.execute]


def test_a_run_being_executed_is_never_planned_even_forced(bound_workspace: Workspace) -> None:
    profile = _profile()
    first = plan_runs([bound_workspace], lambda ws: profile, project="proj").runs[0]
    exp = bound_workspace.project("proj").experiment("bound")
    run = exp.Run(parameters=first.parameters, id=first.run_id)
    with run.start(profile_config=profile):
        planned = plan_runs([bound_workspace], lambda ws: profile, project="proj", force=True)
        assert planned.runs[0].decision.action is Action.skip
        assert f"pid {os.getpid()}" in planned.runs[0].decision.reason


def test_planning_writes_nothing(bound_workspace: Workspace) -> None:
    root = bound_workspace.root
    before = tree_digest(root)
    plan = plan_runs([bound_workspace], lambda ws: _profile(), workflow_for=get_workflow)
    assert len(plan.runs) == 3
    assert tree_digest(root) == before
    assert not any(p.run_dir.exists() for p in plan.runs)
