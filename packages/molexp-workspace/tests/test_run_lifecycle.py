"""RunContext: entering and leaving an execution attempt, results, failures, transitions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from molexp.assets import ErrorTraceAsset, ExecutionStateAsset
from molexp.workspace import (
    ExecutionRecord,
    Experiment,
    OwnerInfo,
    ProfileConfig,
    RunContext,
    RunStateError,
    RunStatus,
    Workspace,
    config_hash,
)
from molexp.workspace import _context as context_module
from molexp.workspace._records import utc_now
from workspace_helpers import on_disk, raw_on_disk


class TaskError(RuntimeError):
    def __init__(self, message: str, task_name: str) -> None:
        super().__init__(message)
        self.task_name = task_name


def test_successful_execution_records_everything(exp: Experiment) -> None:
    run = exp.Run(parameters={"batch": 32})
    profile = ProfileConfig(name="gpu", config={"scale": 2.0, "nodes": {"n": 1}})
    assert on_disk(run).status is RunStatus.pending
    with run.start(profile_config=profile) as ctx:
        inside = on_disk(run)
        assert inside.status is RunStatus.running
        assert inside.owner is not None
        assert inside.owner.pid > 0
        assert inside.started_at is not None
        assert [r.status for r in inside.execution_history] == [RunStatus.running]
        assert (run.run_dir / "artifacts").is_dir()
        assert (run.run_dir / "logs").is_dir()
        assert dict(ctx.params) == {"lr": 1e-3, "batch": 32}
        assert dict(ctx.config) == {"scale": 2.0, "nodes": {"n": 1}}
        with pytest.raises(TypeError):
            ctx.config["scale"] = 3  # type: ignore[index]
        assert ctx.run is run
        assert ctx.experiment is exp
        assert ctx.project is exp.project
        assert ctx.workspace is exp.workspace
        assert ctx.run_dir == run.run_dir
    stored = on_disk(run)
    assert stored.status is RunStatus.succeeded
    assert stored.owner is None
    assert stored.error is None
    assert stored.finished_at is not None
    assert stored.started_at is not None
    assert stored.finished_at >= stored.started_at
    assert stored.profile is not None
    assert stored.profile.name == "gpu"
    assert stored.profile.config == {"scale": 2.0, "nodes": {"n": 1}}
    assert stored.profile.config_hash == config_hash({"nodes": {"n": 1}, "scale": 2.0})
    (attempt,) = stored.execution_history
    assert attempt.execution_id == ctx.execution_id
    assert (attempt.attempt, attempt.status, attempt.profile_name) == (
        1,
        RunStatus.succeeded,
        "gpu",
    )
    assert attempt.config_hash == profile.config_hash
    assert attempt.finished_at is not None
    assert run.status is RunStatus.succeeded


def test_exception_marks_failed_writes_traceback_and_propagates(exp: Experiment) -> None:
    run = exp.Run()
    with pytest.raises(TaskError, match="diverged"), run.start() as ctx:
        raise TaskError("loss diverged", task_name="train")
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.error is not None
    assert (stored.error.type, stored.error.message, stored.error.task_name) == (
        "TaskError",
        "loss diverged",
        "train",
    )
    expected_path = f"execution/{ctx.execution_id}/error.txt"
    assert stored.error.traceback_path == expected_path
    text = (run.run_dir / expected_path).read_text()
    assert text.startswith("Traceback (most recent call last):")
    assert "TaskError: loss diverged" in text
    assert 'raise TaskError("loss diverged", task_name="train")' in text
    (attempt,) = stored.execution_history
    assert attempt.status is RunStatus.failed
    assert attempt.error == stored.error
    traces = run.assets.list(kind="error_trace")
    assert len(traces) == 1
    assert isinstance(traces[0], ErrorTraceAsset)
    assert traces[0].error_type == "TaskError"
    assert traces[0].execution_id == ctx.execution_id
    assert stored.owner is None


def test_mark_failed_fails_a_normally_exiting_block(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.mark_failed("validation failed", task_name="check")
        ctx.mark_failed(ValueError("second failure is ignored"))
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.error is not None
    assert (stored.error.type, stored.error.message, stored.error.task_name) == (
        "Error",
        "validation failed",
        "check",
    )
    assert (run.run_dir / f"execution/{ctx.execution_id}/error.txt").read_text() == (
        "validation failed\n"
    )


def test_mark_failed_with_a_caught_exception_keeps_its_traceback(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        try:
            raise TaskError("caught", task_name="prep")
        except TaskError as error:
            ctx.mark_failed(error)
    stored = on_disk(run)
    assert stored.error is not None
    assert stored.error.task_name == "prep"
    assert "raise TaskError" in (run.run_dir / str(stored.error.traceback_path)).read_text()


def test_reexecution_appends_an_attempt_and_sees_saved_results(exp: Experiment) -> None:
    run = exp.Run(id="retry")
    with pytest.raises(RuntimeError), run.start() as ctx:
        ctx.set_result("stage", "prepared")
        raise RuntimeError("first attempt dies")
    with run.start(profile_config={"retry": True}) as ctx:
        assert ctx.get_result("stage") == "prepared"
        assert ctx.get_result("missing", 7) == 7
    stored = on_disk(run)
    assert [(r.attempt, r.status) for r in stored.execution_history] == [
        (1, RunStatus.failed),
        (2, RunStatus.succeeded),
    ]
    assert stored.status is RunStatus.succeeded
    assert stored.error is None
    assert stored.results == {"stage": "prepared"}


def test_a_running_run_cannot_be_started_twice(exp: Experiment) -> None:
    run = exp.Run(id="busy")
    with run.start():
        twin = Workspace(exp.workspace.root).project("qm9").experiment("baseline").get_run("busy")
        with pytest.raises(RunStateError, match=r"'busy'.*already running by process"):
            twin.start().__enter__()
    assert on_disk(run).status is RunStatus.succeeded


def test_a_context_is_entered_once_and_used_only_while_active(exp: Experiment) -> None:
    ctx = exp.Run().start()
    with pytest.raises(RuntimeError, match="has not been entered"):
        ctx.set_result("x", 1)
    with ctx:
        pass
    for action in (
        lambda: ctx.set_result("x", 1),
        lambda: ctx.log("train"),
        lambda: ctx.artifact,
        lambda: ctx.checkpoint("c"),
        lambda: ctx.heartbeat(),
        lambda: ctx.mark_failed("late"),
        lambda: ctx.record_execution_state({}),
    ):
        with pytest.raises(RuntimeError, match="has already finished"):
            action()
    with pytest.raises(RuntimeError, match="entered only once"), ctx:
        pass


def test_cancel_transitions(exp: Experiment) -> None:
    pending = exp.Run()
    pending.cancel()
    stored = on_disk(pending)
    assert stored.status is RunStatus.cancelled
    assert stored.finished_at is not None
    with pytest.raises(RunStateError, match="cannot cancel run .* it is cancelled"):
        pending.cancel()
    done = exp.Run()
    with done.start():
        pass
    with pytest.raises(RunStateError, match="it is succeeded"):
        done.cancel()


def test_cancel_while_running_is_kept_when_the_execution_ends(exp: Experiment) -> None:
    run = exp.Run(id="victim")
    with run.start() as ctx:
        elsewhere = Workspace(exp.workspace.root).project("qm9").experiment("baseline")
        elsewhere.get_run("victim").cancel()
        ctx.set_result("partial", 1)
    stored = on_disk(run)
    assert stored.status is RunStatus.cancelled
    assert stored.results == {"partial": 1}
    assert stored.execution_history[-1].status is RunStatus.cancelled
    assert stored.execution_history[-1].finished_at is not None


def test_mark_queued_then_start_executes_the_queued_attempt(exp: Experiment) -> None:
    run = exp.Run()
    queued = run.mark_queued({"system": "slurm", "job_id": "123"})
    stored = on_disk(run)
    assert stored.status is RunStatus.queued
    assert stored.execution_history[-1].status is RunStatus.pending
    assert stored.execution_history[-1].scheduler == {"system": "slurm", "job_id": "123"}
    with pytest.raises(RunStateError, match="cannot queue"):
        run.mark_queued({"job_id": "again"})
    with run.start() as ctx:
        assert ctx.execution_id == queued.execution_id
    (attempt,) = on_disk(run).execution_history
    assert attempt.execution_id == queued.execution_id
    assert attempt.status is RunStatus.succeeded
    assert attempt.scheduler == {"system": "slurm", "job_id": "123"}
    assert attempt.started_at is not None


def test_a_queued_run_is_found_by_the_profile_it_will_execute_with(exp: Experiment) -> None:
    profile = ProfileConfig(name="fine", config={"scale": 0.5}, overrides={"scale": 0.5})
    run = exp.Run()
    run.mark_queued({"system": "slurm", "job_id": "7"}, profile=profile)
    stored = on_disk(run)
    assert stored.profile is not None
    assert (stored.profile.name, stored.profile.config) == ("fine", {"scale": 0.5})
    assert stored.execution_history[-1].config_hash == profile.config_hash
    assert stored.execution_history[-1].profile_name == "fine"
    workspace = exp.project.workspace
    assert workspace.runs(where="profile == 'fine' and status == 'queued'").ids == [run.id]
    assert workspace.runs(where="config.scale == 0.5").ids == [run.id]
    with run.start(profile_config=profile) as ctx:
        assert ctx.profile == stored.profile


def test_cancel_of_a_queued_run_closes_its_pending_attempt(exp: Experiment) -> None:
    run = exp.Run()
    run.mark_queued({"job_id": "9"})
    run.cancel()
    (attempt,) = on_disk(run).execution_history
    assert attempt.status is RunStatus.cancelled


def test_set_workflow_stores_an_opaque_snapshot(exp: Experiment) -> None:
    run = exp.Run()
    payload = {"workflow_id": "wf-1", "name": "demo", "tasks": ["a", "b"]}
    run.set_workflow(payload)
    stored = raw_on_disk(run)
    assert stored["workflow_snapshot"] == payload
    assert stored["workflow_id"] == "wf-1"
    run.set_workflow({"name": "no id"})
    assert on_disk(run).workflow_id == "wf-1"
    with pytest.raises(ValueError, match="workflow_id must be a string"):
        run.set_workflow({"workflow_id": 3})


def test_start_stores_the_workflow_in_the_write_that_starts_the_attempt(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the workflow lifecycle uses: one run.json write (and index update) instead of two.
    from molexp.workspace._run import Run

    run = exp.Run()
    writes: list[str] = []
    update = Run._update

    def counted(self: Run, mutate: Any, action: str, **kwargs: Any) -> None:
        writes.append(action)
        update(self, mutate, action, **kwargs)

    monkeypatch.setattr(Run, "_update", counted)
    payload = {"workflow_id": "wf-1", "name": "demo", "tasks": ["a", "b"]}
    with run.start(workflow=payload) as ctx:
        stored = raw_on_disk(run)
        assert stored["status"] == "running"
        assert stored["workflow_snapshot"] == payload and stored["workflow_id"] == "wf-1"
        ctx.set_result("x", 1)
    assert writes[0] == "start" and "set-workflow" not in writes, writes
    assert on_disk(run).workflow_snapshot == payload
    fresh = exp.Run()
    with pytest.raises(ValueError, match="workflow_id must be a string"):
        fresh.start(workflow={"workflow_id": 3})
    with pytest.raises(TypeError, match="workflow snapshot"):
        fresh.start(workflow={"f": print})
    assert on_disk(fresh).status is RunStatus.PENDING  # refused before anything started


def test_profile_config_forms(exp: Experiment) -> None:
    with exp.Run().start({"b": 1, "a": 2}) as ctx:
        assert ctx.profile.name == "default"
        assert ctx.profile.config_hash == config_hash({"a": 2, "b": 1})
    with exp.Run().start() as ctx:
        assert (ctx.profile.name, dict(ctx.config)) == ("default", {})
    with pytest.raises(TypeError, match="profile_config must be"):
        exp.Run().start(profile_config=["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"profile 'default' config\['f'\] is a builtin_function_or_method"
    ):
        exp.Run().start({"f": print})


def test_results_are_written_through_after_the_interval(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(context_module, "RESULT_WRITE_INTERVAL", 0.0)
    run = exp.Run()
    with run.start() as ctx:
        ctx.set_result("loss", 0.25)
        assert on_disk(run).results == {"loss": 0.25}
        ctx.set_result("loss", 0.125)
        assert on_disk(run).results == {"loss": 0.125}


def test_results_in_a_burst_ride_along_with_the_next_write(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.set_result("a", 1)
        ctx.set_result("b", [1, 2])
        assert on_disk(run).results == {}
        assert (ctx.get_result("a"), ctx.get_result("b")) == (1, [1, 2])
        ctx.heartbeat()
        assert on_disk(run).results == {"a": 1, "b": [1, 2]}
        ctx.set_result("c", {"x": None})
    assert on_disk(run).results == {"a": 1, "b": [1, 2], "c": {"x": None}}


def test_flush_results_writes_held_results_now_and_only_then(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.flush_results()  # nothing held: no write
        written = run.record_path.read_bytes()
        ctx.set_result("loss", 0.5)
        assert on_disk(run).results == {}
        ctx.flush_results()
        assert on_disk(run).results == {"loss": 0.5}
        ctx.flush_results()
        assert run.record_path.read_bytes() != written
    with pytest.raises(RuntimeError, match="cannot flush results"):
        ctx.flush_results()


def test_results_must_be_json(exp: Experiment) -> None:
    with exp.Run().start() as ctx:
        with pytest.raises(TypeError, match=r"result 'when'\[0\] is a object"):
            ctx.set_result("when", [object()])
        with pytest.raises(ValueError, match="NaN"):
            ctx.set_result("loss", float("nan"))
        with pytest.raises(ValueError, match="non-empty strings"):
            ctx.set_result("", 1)


def test_heartbeat_updates_the_owner_stamp(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        owner = on_disk(run).owner
        assert owner is not None
        time.sleep(0.01)
        ctx.heartbeat()
        later = on_disk(run).owner
        assert later is not None
        assert later.heartbeat_at > owner.heartbeat_at
        assert later.started_at == owner.started_at


def test_background_heartbeat_thread(exp: Experiment) -> None:
    run = exp.Run()
    with run.start(heartbeat_interval=0.02) as ctx:
        owner = on_disk(run).owner
        assert owner is not None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            current = on_disk(run).owner
            assert current is not None
            if current.heartbeat_at > owner.heartbeat_at:
                break
            time.sleep(0.01)
        else:
            pytest.fail("the heartbeat thread never refreshed heartbeat_at")
        thread = ctx._heartbeat_thread
    assert thread is not None
    assert not thread.is_alive()
    assert on_disk(run).status is RunStatus.succeeded
    with pytest.raises(ValueError, match="heartbeat_interval must be > 0"):
        run.start(heartbeat_interval=0)


def test_logs_are_cached_per_name_and_closed_on_exit(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        handle = ctx.log("train")
        assert ctx.log("train") is handle
        handle.append("loss=1")
        ctx.log("train").append("loss=0.5")
    assert (run.run_dir / "logs" / "train.log").read_text() == "loss=1\nloss=0.5\n"
    (log,) = run.assets.list(kind="log")
    assert log.name == "train"
    assert getattr(log, "line_count", None) == 2


def test_artifacts_carry_the_producing_execution(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        asset = ctx.artifact.save("metrics.json", {"loss": 0.1})
    assert (run.run_dir / "artifacts" / "metrics.json").is_file()
    assert asset.producer is not None
    assert (asset.producer.run_id, asset.producer.execution_id) == (run.id, ctx.execution_id)
    assert [a.name for a in exp.workspace.catalog.query_assets(producer_run=run.id)] == [
        "metrics.json"
    ]


def test_checkpoints_form_a_linear_chain(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        first = ctx.checkpoint("epoch", {"epoch": 1})
        second = ctx.checkpoint("epoch", {"epoch": 2})
        marker = ctx.checkpoint("done")
    assert [c.sequence for c in (first, second, marker)] == [1, 2, 3]
    assert (first.parent_id, second.parent_id, marker.parent_id) == (None, first.id, second.id)
    assert all((exp.workspace.root / c.path).exists() for c in (first, second, marker))
    assert (run.run_dir / ".ckpt").is_dir()


def test_record_execution_state(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        state = ctx.record_execution_state({"tasks": {"train": "succeeded"}})
    assert isinstance(state, ExecutionStateAsset)
    assert (ctx.execution_dir / "state.json").is_file()
    assert state.execution_id == ctx.execution_id


def test_execution_dir_is_created_on_first_use(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        expected = run.run_dir / "execution" / ctx.execution_id
        assert not expected.exists()
        assert ctx.execution_dir == expected
        assert expected.is_dir()


def test_channels_are_fifo_queues(exp: Experiment) -> None:
    import threading

    with exp.Run().start() as ctx:
        ctx.emit("work", 1)
        ctx.emit("work", {"n": 2})
        assert ctx.receive("work") == 1
        assert ctx.receive("work") == {"n": 2}
        with pytest.raises(TimeoutError, match="'work'"):
            ctx.receive("work", timeout=0.01)
        sender = threading.Thread(target=lambda: ctx.emit("late", "hello"))
        sender.start()
        assert ctx.receive("late", timeout=5) == "hello"
        sender.join()
        with pytest.raises(ValueError, match="channel names"):
            ctx.emit("", 1)


def test_open_rebuilds_the_chain_from_a_run_directory(exp: Experiment, tmp_path: Path) -> None:
    run = exp.Run(parameters={"batch": 8})
    with run.start() as ctx:
        ctx.set_result("x", 1)
    opened = RunContext.open(run.run_dir)
    assert opened is not run
    assert (opened.id, opened.experiment.id, opened.project.id) == (run.id, exp.id, "qm9")
    assert opened.workspace.id == exp.workspace.id
    assert opened.parameters == {"lr": 1e-3, "batch": 8}
    assert opened.results == {"x": 1}
    with opened.start() as reopened:
        assert reopened.get_result("x") == 1
    assert len(on_disk(run).execution_history) == 2
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        RunContext.open(exp.experiment_dir)
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "run.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"no workspace\.json"):
        RunContext.open(stray)
    odd = exp.workspace.root / "odd" / "run-1"
    odd.mkdir(parents=True)
    (odd / "run.json").write_text("{}")
    with pytest.raises(ValueError, match="is not laid out as"):
        RunContext.open(odd)


def test_an_attempt_taken_over_meanwhile_only_closes_its_own_record(exp: Experiment) -> None:
    run = exp.Run(id="taken")
    with run.start() as ctx:
        twin = Workspace(exp.workspace.root).project("qm9").experiment("baseline").get_run("taken")
        now = utc_now()
        twin.metadata.owner = OwnerInfo(host="other-host", pid=1, started_at=now, heartbeat_at=now)
        twin.metadata.execution_history.append(
            ExecutionRecord(
                execution_id="other", attempt=2, status=RunStatus.running, started_at=now
            )
        )
        twin.save()
    stored = on_disk(run)
    assert stored.status is RunStatus.running
    assert stored.owner is not None
    assert stored.owner.host == "other-host"
    mine, theirs = stored.execution_history
    assert (mine.execution_id, mine.status) == (ctx.execution_id, RunStatus.succeeded)
    assert mine.finished_at is not None
    assert (theirs.execution_id, theirs.status) == ("other", RunStatus.running)


def test_run_statuses_share_the_task_status_style_and_keep_their_old_names() -> None:
    assert [status.name for status in RunStatus] == [
        "PENDING",
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "FAILED",
        "CANCELLED",
    ]
    assert RunStatus.running is RunStatus.RUNNING
    assert RunStatus("failed") is RunStatus.FAILED
    assert str(RunStatus.SUCCEEDED) == "succeeded"
