"""Executing planned runs in-process: claims, re-decisions under the claim, recorded script."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from molexp.cli._execute import (
    EXECUTE_LOCK_NAME,
    ExecutionPolicy,
    RunOutcome,
    claim_run,
    execute_plan_in_process,
    record_script,
)
from molexp.cli._plan import RunPlan, plan_runs
from molexp.cli._progress import RunProgress, summarize_statuses
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workflow.bindings import set_workflow
from molexp.workspace import ProfileConfig, Workspace


def _workflow(fail: bool = False) -> Workflow:
    wf = workflow(name="exec")

    @wf.task
    def first(ctx: TaskContext) -> int:
        return 2

    @wf.task(depends_on=["first"])
    def second(ctx: TaskContext) -> int:
        if fail:
            raise ValueError("second exploded")
        ctx.set_result("scaled", ctx.inputs * ctx.config["scale"])
        return int(ctx.inputs)

    return wf.build()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "lab")


PROFILE = ProfileConfig(name="p", config={"scale": 3})


def _plan(workspace: Workspace, *, rerun_failed: bool = False) -> RunPlan:
    return plan_runs([workspace], lambda ws: PROFILE, rerun_failed=rerun_failed)


def _execute(
    plan: RunPlan, script: Path, policy: ExecutionPolicy | None = None
) -> list[RunOutcome]:
    with RunProgress(len(plan.runs), enabled=False) as progress:
        return asyncio.run(
            execute_plan_in_process(
                plan.runs, script=script, policy=policy or ExecutionPolicy(), progress=progress
            )
        )


def test_claim_is_exclusive_and_released(tmp_path: Path) -> None:
    with claim_run(tmp_path / "run") as first:
        assert first
        assert (tmp_path / "run" / EXECUTE_LOCK_NAME).exists()
        with claim_run(tmp_path / "run") as second:
            assert not second
    with claim_run(tmp_path / "run") as again:
        assert again


def test_executes_new_runs_with_profile_and_records_script(
    workspace: Workspace, tmp_path: Path
) -> None:
    exp = workspace.Project("p").Experiment("e", params={"lr": 1}, n_replicas=2)
    spec = _workflow()
    set_workflow(exp, spec)
    script = tmp_path / "script.py"
    outcomes = _execute(_plan(workspace), script)
    assert [(o.action, o.status, o.reason) for o in outcomes] == [
        ("executed", "succeeded", "new")
    ] * 2
    run = exp.get_run(outcomes[0].run_id)
    assert run.metadata.results == {"scaled": 6}
    assert run.metadata.profile is not None and run.metadata.profile.name == "p"
    snapshot = run.metadata.workflow_snapshot or {}
    assert snapshot["script"] == str(script)
    assert snapshot["workflow_id"] == spec.workflow_id and snapshot["name"] == "exec"
    assert Path(snapshot["cwd"]) == Path.cwd()
    again = _execute(_plan(workspace), script)
    assert [o.action for o in again] == ["skipped", "skipped"]


def test_failed_run_is_reported_and_rerun_needs_the_flag(
    workspace: Workspace, tmp_path: Path
) -> None:
    exp = workspace.Project("p").Experiment("e")
    set_workflow(exp, _workflow(fail=True))
    [outcome] = _execute(_plan(workspace), tmp_path / "s.py")
    assert (outcome.action, outcome.status) == ("failed", "failed")
    run = exp.get_run(outcome.run_id)
    assert run.metadata.error is not None and run.metadata.error.task_name == "second"

    set_workflow(exp, _workflow())
    [skipped] = _execute(_plan(workspace), tmp_path / "s.py")
    assert skipped.action == "skipped" and "--rerun-failed" in skipped.reason
    [rerun] = _execute(
        _plan(workspace, rerun_failed=True), tmp_path / "s.py", ExecutionPolicy(rerun_failed=True)
    )
    assert (rerun.action, rerun.status) == ("executed", "succeeded")
    assert len(exp.get_run(rerun.run_id).metadata.execution_history) == 2


def test_decision_is_taken_again_under_the_claim(workspace: Workspace, tmp_path: Path) -> None:
    exp = workspace.Project("p").Experiment("e")
    set_workflow(exp, _workflow())
    stale_plan = _plan(workspace)
    _execute(_plan(workspace), tmp_path / "s.py")
    [outcome] = _execute(stale_plan, tmp_path / "s.py")
    assert (outcome.action, outcome.reason) == ("skipped", "already succeeded")


def test_claimed_elsewhere_is_skipped(workspace: Workspace, tmp_path: Path) -> None:
    exp = workspace.Project("p").Experiment("e")
    set_workflow(exp, _workflow())
    plan = _plan(workspace)
    with claim_run(plan.runs[0].run_dir):
        [outcome] = _execute(plan, tmp_path / "s.py")
    assert (outcome.action, outcome.reason) == ("skipped", "being executed by another process")
    assert exp.get_run(outcome.run_id).status == "pending"


def test_record_script_keeps_other_keys(workspace: Workspace, tmp_path: Path) -> None:
    run = workspace.Project("p").Experiment("e").Run(id="r")
    run.set_workflow({"source": "train.py", "git_commit": "abc"})
    record_script(run, _workflow(), tmp_path / "s.py")
    snapshot = run.reload().metadata.workflow_snapshot or {}
    assert snapshot["source"] == "train.py" and snapshot["git_commit"] == "abc"
    assert snapshot["script"] == str(tmp_path / "s.py")


def test_status_summary_counts_and_names_running_tasks() -> None:
    text = summarize_statuses({"a": "succeeded", "b": "running", "c": "pending", "d": "running"})
    assert text == "1 succeeded, 2 running (b, d), 1 pending"


def test_script_stays_recorded_while_the_workflow_runs(
    workspace: Workspace, tmp_path: Path
) -> None:
    wf = workflow(name="peek")

    @wf.task
    def peek(ctx: TaskContext) -> None:
        assert ctx.run_context is not None
        record = json.loads((ctx.run_context.run_dir / "run.json").read_text())
        ctx.set_result("snapshot_during_run", record["workflow_snapshot"])

    exp = workspace.Project("p").Experiment("e")
    spec = wf.build()
    set_workflow(exp, spec)
    [outcome] = _execute(_plan(workspace), tmp_path / "s.py")
    during = exp.get_run(outcome.run_id).metadata.results["snapshot_during_run"]
    assert during["script"] == str(tmp_path / "s.py")
    assert during["workflow_id"] == spec.workflow_id
