"""Submitting runs as job arrays and reconciling them, against an in-memory Slurm."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.cli._execute import ExecutionPolicy
from molexp.cli._plan import Action, RunPlan, decide, plan_runs
from molexp.cli._scheduler import reconcile, slurm_runs, submit_runs
from molexp.cli._slurm import SlurmClient
from molexp.cli._slurm_job import LOST_ERROR_TYPE, current_job, lost_before_start
from molexp.cli._slurm_script import SlurmOptions
from molexp.cli.profiles import ExecutionSettings
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workflow.bindings import set_workflow
from molexp.workspace import Experiment, ProfileConfig, Run, Workspace
from slurm_fakes import FakeSlurm

PROFILE = ProfileConfig(name="cluster", config={"scale": 2})


def _workflow() -> Workflow:
    wf = workflow(name="w")

    @wf.task
    def only(ctx: TaskContext) -> int:
        return 1

    return wf.build()


@pytest.fixture
def fake() -> FakeSlurm:
    return FakeSlurm()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "lab")


def _experiment(workspace: Workspace, name: str = "grid", replicas: int = 3) -> Experiment:
    exp = workspace.Project("p").Experiment(name, params={"lr": 0.1}, n_replicas=replicas)
    set_workflow(exp, _workflow())
    return exp


def _plan(workspace: Workspace) -> RunPlan:
    return plan_runs([workspace], lambda ws: PROFILE)


def _submit(workspace: Workspace, fake: FakeSlurm, tmp_path: Path, **slurm: object) -> list[Run]:
    settings = ExecutionSettings(
        executor="slurm", slurm=SlurmOptions.from_mapping(slurm, where="test")
    )
    plan = _plan(workspace)
    outcomes = submit_runs(
        plan.runs,
        settings=settings,
        script=tmp_path / "train.py",
        policy=ExecutionPolicy(),
        client=SlurmClient(fake),
        python="/opt/env/bin/python",
    )
    assert {o.action for o in outcomes} <= {"submitted", "skipped"}
    return [
        p.experiment.get_run(p.run_id)
        for p, o in zip(plan.runs, outcomes, strict=True)
        if o.action == "submitted"
    ]


# -- submission ------------------------------------------------------------------------------


def test_runs_of_one_experiment_go_into_one_held_then_released_array(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=3)
    runs = _submit(workspace, fake, tmp_path, partition="debug", time=5)
    assert len(fake.calls("sbatch")) == 1
    assert fake.calls("sbatch")[0][:3] == ["sbatch", "--parsable", "--hold"]
    assert fake.calls("scontrol") == [["scontrol", "release", "100"]]
    assert len(runs) == 3
    for index, run in enumerate(runs):
        job = current_job(run)
        assert run.status == "queued" and job is not None
        assert (job.job_id, job.array_index, job.job) == ("100", index, f"100_{index}")
        assert job.profile == {"name": "cluster", "config": {"scale": 2}, "overrides": {}}
        assert job.script == str(tmp_path / "train.py")
        assert job.options == {"partition": "debug", "time": "00:05:00"}
        record = run.metadata.execution_history[-1]
        assert record.status == "pending"
        # Slurm's per-index log files are links into this attempt's execution directory.
        target = Path(run.run_dir) / "execution" / record.execution_id / "slurm.err"
        assert Path(os.readlink(job.stderr)) == target and job.log == target
    submission = Path(current_job(runs[0]).submission_dir)  # type: ignore[union-attr]
    assert (submission / "runs.txt").read_text().splitlines() == [str(r.run_dir) for r in runs]
    script = (submission / "job.sh").read_text()
    assert "#SBATCH --array=0-2" in script and "#SBATCH --partition=debug" in script
    assert "exec /opt/env/bin/python -m molexp.cli execute" in script


def test_each_experiment_gets_its_own_array(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, "a", replicas=2)
    _experiment(workspace, "b", replicas=1)
    runs = _submit(workspace, fake, tmp_path)
    assert len(fake.calls("sbatch")) == 2
    assert sorted(current_job(r).job for r in runs) == ["100_0", "100_1", "101_0"]  # type: ignore[union-attr]


def test_hold_keeps_the_array_held(workspace: Workspace, fake: FakeSlurm, tmp_path: Path) -> None:
    _experiment(workspace, replicas=1)
    [run] = _submit(workspace, fake, tmp_path, hold=True)
    assert fake.calls("scontrol") == []
    job = current_job(run)
    assert job is not None and job.hold
    assert "--hold" not in (Path(job.submission_dir) / "job.sh").read_text()


def test_queued_runs_are_not_submitted_again(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=2)
    first = _submit(workspace, fake, tmp_path)
    assert len(first) == 2
    again = _submit(workspace, fake, tmp_path)
    assert again == []
    assert len(fake.calls("sbatch")) == 1


def test_a_run_decided_stale_is_rechecked_under_the_submission_lock(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    stale = _plan(workspace)
    _submit(workspace, fake, tmp_path)
    outcomes = submit_runs(
        stale.runs,
        settings=ExecutionSettings(executor="slurm"),
        script=tmp_path / "train.py",
        policy=ExecutionPolicy(),
        client=SlurmClient(fake),
    )
    assert [(o.action, o.reason) for o in outcomes] == [("skipped", "queued on a scheduler")]
    assert len(fake.calls("sbatch")) == 1


def test_sbatch_failure_fails_the_runs_and_leaves_them_pending(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    exp = _experiment(workspace, replicas=2)
    fake.sbatch_error = "sbatch: error: invalid partition specified: gpu"
    outcomes = submit_runs(
        _plan(workspace).runs,
        settings=ExecutionSettings(executor="slurm"),
        script=tmp_path / "train.py",
        policy=ExecutionPolicy(),
        client=SlurmClient(fake),
    )
    assert [o.action for o in outcomes] == ["failed", "failed"]
    assert "invalid partition specified: gpu" in outcomes[0].reason
    assert {str(r.status) for r in exp.list_runs()} == {"pending"}


# -- reconciliation --------------------------------------------------------------------------


def _reconciled(workspace: Workspace, fake: FakeSlurm) -> list[tuple[str, str, str]]:
    runs = [run for exp in workspace.project("p").list_experiments() for run in exp.list_runs()]
    reports = reconcile(slurm_runs(runs), SlurmClient(fake))
    return [(r.info.job, r.action, str(r.run.status)) for r in reports]


def test_live_jobs_leave_runs_alone(workspace: Workspace, fake: FakeSlurm, tmp_path: Path) -> None:
    _experiment(workspace, replicas=2)
    _submit(workspace, fake, tmp_path)
    fake.set_state("100_1", "RUNNING")
    assert _reconciled(workspace, fake) == [("100_0", "", "queued"), ("100_1", "", "queued")]
    assert fake.calls("sacct") == []  # squeue knew every job


def test_jobs_ending_behind_the_runs_back_end_their_attempts(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    exp = _experiment(workspace, replicas=5)
    runs = _submit(workspace, fake, tmp_path)
    fake.set_state("100_0", "TIMEOUT", exit_code="0:15")
    fake.set_state("100_1", "CANCELLED by 0")
    fake.set_state("100_2", "NODE_FAIL")
    fake.forget("100_3")
    fake.set_state("100_4", "COMPLETED")
    results = _reconciled(workspace, fake)
    assert sorted(results) == [
        ("100_0", "failed", "failed"),
        ("100_1", "cancelled", "cancelled"),
        ("100_2", "failed", "failed"),
        ("100_3", "failed", "failed"),
        ("100_4", "failed", "failed"),
    ]
    errors = {current_job(r).job: exp.get_run(r.id).metadata.error for r in runs}  # type: ignore[union-attr]
    timeout = errors["100_0"]
    assert timeout is not None and timeout.type == "SlurmTimeout"
    assert "Slurm job 100_0 ended TIMEOUT" in timeout.message
    assert (
        "(time limit 00:01:00)" in timeout.message and "while the run was queued" in timeout.message
    )
    assert errors["100_1"] is not None and "CANCELLED by 0" in errors["100_1"].message
    assert errors["100_2"] is not None and errors["100_2"].type == "SlurmNodeFail"
    lost = errors["100_3"]
    assert lost is not None and lost.type == LOST_ERROR_TYPE
    assert "known to neither squeue nor sacct" in lost.message
    assert (
        errors["100_4"] is not None
        and "completed but the run never started" in errors["100_4"].message
    )
    for run in runs:
        record = exp.get_run(run.id).metadata.execution_history[-1]
        assert record.status in {"failed", "cancelled"} and record.finished_at is not None
    assert _reconciled(workspace, fake) == []  # nothing left to reconcile


def test_running_run_killed_at_walltime_fails_with_the_reason(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    exp = _experiment(workspace, replicas=1)
    [run] = _submit(workspace, fake, tmp_path)
    context = run.start(profile_config=PROFILE)
    context.__enter__()  # the worker started the run ... and was killed (never exits)
    fake.set_state("100_0", "TIMEOUT")
    assert _reconciled(workspace, fake) == [("100_0", "failed", "failed")]
    error = exp.get_run(run.id).metadata.error
    assert error is not None and "while the run was running" in error.message
    assert exp.get_run(run.id).metadata.owner is None


def test_an_attempt_that_moved_on_is_not_touched(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    [run] = _submit(workspace, fake, tmp_path)
    pairs = slurm_runs([run])
    run.cancel()
    run.mark_queued({"name": "other"})  # a new attempt, not a Slurm job of ours
    fake.set_state("100_0", "FAILED", exit_code="1:0")
    [report] = reconcile(pairs, SlurmClient(fake))
    assert report.action == "" and run.reload().status == "queued"


def test_unknown_states_are_reported_but_not_acted_on(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    [run] = _submit(workspace, fake, tmp_path)
    fake.set_state("100_0", "FUTURE_STATE")  # reported by sacct; a state we cannot classify
    [report] = reconcile(slurm_runs([run]), SlurmClient(fake))
    assert report.state is not None and report.state.state == "FUTURE_STATE"
    assert report.action == "" and run.reload().status == "queued"


def test_an_array_left_held_by_a_dead_submitter_is_released(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    _submit(workspace, fake, tmp_path)
    fake.set_state("100_0", "PENDING", reason="JobHeldUser")  # as if release never happened
    assert _reconciled(workspace, fake) == [("100_0", "released", "queued")]
    assert fake.calls("scontrol")[-1] == ["scontrol", "release", "100"]


def test_a_held_submission_stays_held(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    _submit(workspace, fake, tmp_path, hold=True)
    assert _reconciled(workspace, fake) == [("100_0", "", "queued")]
    assert fake.calls("scontrol") == []


def test_a_job_lost_before_the_run_started_is_executed_again(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    _experiment(workspace, replicas=1)
    [run] = _submit(workspace, fake, tmp_path)
    fake.forget("100_0")
    _reconciled(workspace, fake)
    assert lost_before_start(run.reload())
    [planned] = _plan(workspace).runs
    assert planned.decision.action is Action.execute
    assert ExecutionPolicy().decide(run).action is Action.execute
    # An attempt that failed for another reason still needs --rerun-failed.
    assert decide("failed").action is Action.skip
    again = _submit(workspace, fake, tmp_path)
    assert [current_job(r).job for r in again] == ["101_0"]  # type: ignore[union-attr]


# -- the commands, with the fake in place of the Slurm executables ---------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake: FakeSlurm) -> tuple[Path, FakeSlurm]:
    """A script with 2 runs, the fake answering every Slurm command the CLI runs."""
    import molexp.cli._slurm as slurm_module

    monkeypatch.setattr(slurm_module, "_run", fake)
    monkeypatch.setattr(slurm_module, "slurm_available", lambda: True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    return write_script(tmp_path), fake


def _json(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> object:
    assert run_cli([*args, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def test_molexp_run_submits_once_and_a_rerun_submits_nothing(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str]
) -> None:
    script, fake = cli
    first = _json(capsys, "run", str(script), "--executor", "slurm", "--time", "10")
    assert isinstance(first, dict) and first["submitted"] == 2
    assert [r["reason"] for r in first["runs"]] == ["Slurm job 100_0", "Slurm job 100_1"]
    second = _json(capsys, "run", str(script), "--executor", "slurm")
    assert isinstance(second, dict) and second["submitted"] == 0 and second["skipped"] == 2
    assert [r["reason"] for r in second["runs"]] == [
        "Slurm job 100_0: PENDING",
        "Slurm job 100_1: PENDING",
    ]
    assert len(fake.calls("sbatch")) == 1
    # A local `molexp run` skips them too: they belong to the scheduler.
    local = _json(capsys, "run", str(script))
    assert isinstance(local, dict) and local["executed"] == 0 and local["skipped"] == 2


def test_jobs_option_is_for_local_execution(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str]
) -> None:
    script, _ = cli
    assert run_cli(["run", str(script), "--executor", "slurm", "--jobs", "2"]) == 2
    assert "--jobs applies to local execution" in capsys.readouterr().err


def test_bad_slurm_options_on_the_command_line_are_usage_errors(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str]
) -> None:
    script, fake = cli
    assert run_cli(["run", str(script), "--executor", "slurm", "--time", "0:10"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: command line: time is '0:10'") and fake.commands == []


def test_worker_executes_only_the_job_it_was_queued_as(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str]
) -> None:
    script, _ = cli
    report = _json(capsys, "run", str(script), "--executor", "slurm", "--set", "scale=3")
    assert isinstance(report, dict)
    run_dir = report["runs"][0]["run_dir"]
    wrong = _json(capsys, "execute", run_dir, "--slurm-job", "999_0")
    assert isinstance(wrong, dict) and wrong["action"] == "skipped"
    assert wrong["reason"] == "run is queued as Slurm job 100_0, not queued as Slurm job 999_0"
    done = _json(capsys, "execute", run_dir, "--slurm-job", "100_0", "--heartbeat-interval", "5")
    assert isinstance(done, dict) and (done["action"], done["status"]) == ("executed", "succeeded")
    shown = _json(capsys, "show", run_dir)
    assert isinstance(shown, dict)
    # The profile the array was submitted with (scale=3) is the one the worker used.
    assert shown["results"] == {"total": 9.0}
    assert shown["profile"]["config"] == {"scale": 3}
    [attempt] = shown["execution_history"]
    assert attempt["scheduler"]["job"] == "100_0" and attempt["status"] == "succeeded"
    again = _json(capsys, "execute", run_dir, "--slurm-job", "100_0")
    assert isinstance(again, dict) and again["action"] == "skipped"


def test_cancel_scancels_the_job_and_status_sync_report(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str]
) -> None:
    script, fake = cli
    report = _json(capsys, "run", str(script), "--executor", "slurm")
    assert isinstance(report, dict)
    first, second = (r["run_id"] for r in report["runs"])
    status = _json(capsys, "status")
    assert isinstance(status, list)
    assert [(s["run_id"], s["job"], s["state"]) for s in status] == [
        (first, "100_0", "PENDING"),
        (second, "100_1", "PENDING"),
    ]
    assert run_cli(["cancel", first]) == 0
    out = capsys.readouterr().out
    assert f"run {first} cancelled (was queued)" in out and "Slurm job 100_0 cancelled" in out
    assert fake.calls("scancel") == [["scancel", "100_0"]]
    assert fake.state("100_0") == "CANCELLED by 0"
    fake.set_state("100_1", "OUT_OF_MEMORY")
    synced = _json(capsys, "sync")
    assert isinstance(synced, dict)
    assert [(c["run_id"], c["action"], c["status"]) for c in synced["changes"]] == [
        (second, "failed", "failed")
    ]
    assert "OUT_OF_MEMORY" in synced["changes"][0]["reason"]
    assert _json(capsys, "status") == []
    named = _json(capsys, "status", second)
    assert isinstance(named, list) and len(named) == 1
    assert named[0]["state"] == "OUT_OF_MEMORY" and named[0]["status"] == "failed"


def test_status_without_slurm_on_path_is_an_error(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, _ = cli
    _json(capsys, "run", str(script), "--executor", "slurm")
    import molexp.cli._slurm as slurm_module

    monkeypatch.setattr(slurm_module, "slurm_available", lambda: False)
    assert run_cli(["status"]) == 1
    assert "sbatch is not on PATH" in capsys.readouterr().err


def test_submitting_without_sbatch_is_a_one_line_error(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script, fake = cli
    import molexp.cli._slurm as slurm_module

    monkeypatch.setattr(slurm_module, "slurm_available", lambda: False)
    assert run_cli(["run", str(script), "--executor", "slurm"]) == 1
    err = capsys.readouterr().err
    assert "error: executor 'slurm' for 2 run(s), but sbatch is not on PATH" in err
    assert fake.commands == []


def test_dry_run_and_profiles_show_the_executor(
    cli: tuple[Path, FakeSlurm], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script, fake = cli
    (tmp_path / "molexp.toml").write_text(
        '[profiles.cluster]\nexecutor = "slurm"\n[profiles.cluster.slurm]\ntime = 30\n'
    )
    plan = _json(capsys, "run", str(script), "--profile", "cluster", "--dry-run")
    assert isinstance(plan, dict)
    assert [(r["action"], r["executor"]) for r in plan["runs"]] == [("execute", "slurm")] * 2
    local = _json(
        capsys, "run", str(script), "--profile", "cluster", "--executor", "local", "--dry-run"
    )
    assert isinstance(local, dict) and {r["executor"] for r in local["runs"]} == {"local"}
    assert fake.commands == []
    assert run_cli(["run", str(script), "--profile", "cluster", "--dry-run"]) == 0
    assert "submit" in capsys.readouterr().out
    listed = _json(capsys, "profiles", str(script))
    assert isinstance(listed, dict)
    cluster = next(p for p in listed["profiles"] if p["name"] == "cluster")
    assert cluster["execution"] == {
        "executor": "slurm",
        "heartbeat_interval": 30.0,
        "slurm": {"time": "00:30:00"},
        "runtime": {"runtime": "default"},
    }
    assert cluster["config"] == {}


def test_a_crashed_attempt_is_reaped_before_it_is_resubmitted(
    workspace: Workspace, fake: FakeSlurm, tmp_path: Path
) -> None:
    exp = _experiment(workspace, replicas=1)
    [planned] = _plan(workspace).runs
    run = planned.experiment.Run(
        parameters=planned.parameters, id=planned.run_id, replica_index=0, seed=planned.seed
    )
    run.start(profile_config=PROFILE).__enter__()
    owner = run.reload().metadata.owner
    assert owner is not None
    owner.pid = 2**22 + 12345  # beyond pid_max: this owner is dead
    run.save()
    outcomes = submit_runs(
        plan_runs([workspace], lambda ws: PROFILE, rerun_failed=True).runs,
        settings=ExecutionSettings(executor="slurm"),
        script=tmp_path / "train.py",
        policy=ExecutionPolicy(rerun_failed=True),
        client=SlurmClient(fake),
    )
    assert [o.action for o in outcomes] == ["submitted"]
    history = exp.get_run(run.id).metadata.execution_history
    assert [str(record.status) for record in history] == ["failed", "pending"]
    assert history[0].error is not None and history[0].error.type == "StaleRun"
