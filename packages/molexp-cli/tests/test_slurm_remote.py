"""Remote Slurm tasks: hand-over through the run directory, waiting, results and failures.

The in-memory Slurm runs each submitted task job in a thread with ``execute_remote_call`` (what
``molexp execute RUN_DIR --task NAME`` does in the real job), so the whole protocol is exercised
without a scheduler.
"""

from __future__ import annotations

import asyncio
import pickle
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from molexp.assets._io import load_record
from molexp.cli._remote import (
    OUTCOME_FILE,
    CallClaim,
    RemoteCall,
    RemoteOutcome,
    RemoteTaskError,
    SlurmTaskExecutor,
    execute_remote_call,
    remote_dir,
)
from molexp.cli._resolve import open_run_dir
from molexp.cli._slurm import SlurmClient
from molexp.cli._slurm_script import SlurmOptions
from molexp.workflow import TaskContext, Workflow, workflow
from molexp.workflow.context import ExecutionScope
from molexp.workspace import Run, Workspace
from slurm_fakes import FakeJob, FakeSlurm


class Unpicklable:
    def __reduce__(self) -> Any:
        raise TypeError("this object refuses to be pickled")


def _spec(events: list[str]) -> Workflow:
    wf = workflow(name="mixed")

    @wf.task
    def prepare(ctx: TaskContext) -> list[int]:
        events.append(f"prepare@{threading.get_ident()}")
        return [1, 2, 3]

    @wf.task
    def scale(ctx: TaskContext) -> int:
        return int(ctx.config["factor"])

    @wf.task(
        depends_on=["prepare", "scale"],
        remote={"executor": "slurm", "partition": "gpu", "time": 10},
    )
    def heavy(ctx: TaskContext) -> dict[str, Any]:
        ctx.log("heavy").append("computing on the cluster")
        ctx.set_result("remote_total", sum(ctx.inputs["prepare"]))
        for step, value in enumerate(ctx.inputs["prepare"]):
            ctx.log_metric("energy", -float(value), step=step)
        ctx.log_metrics({"energy": -0.5}, step=3)
        ctx.artifact.save("numbers.json", {"values": ctx.inputs["prepare"]})
        ctx.checkpoint("half-way")
        return {
            "total": sum(ctx.inputs["prepare"]) * ctx.inputs["scale"],
            "thread": threading.get_ident(),
            "lr": ctx.params["lr"],
        }

    @wf.task(depends_on=["heavy"])
    def report(ctx: TaskContext) -> str:
        ctx.set_result("total", ctx.inputs["total"])
        ctx.log_metric("energy", -9.0, step=0)
        return f"total={ctx.inputs['total']}"

    return wf.build()


def _singles() -> Workflow:
    wf = workflow(name="singles")

    @wf.task(remote={"executor": "slurm"})
    def explode(ctx: TaskContext) -> None:
        raise ZeroDivisionError("remote division by zero")

    @wf.task(remote={"executor": "slurm"})
    def bad_output(ctx: TaskContext) -> Unpicklable:
        return Unpicklable()

    @wf.task(remote={"partition": "gpu"})
    async def elsewhere(ctx: TaskContext) -> str:
        return f"local@{threading.get_ident()}"

    return wf.build()


class JobRunner:
    """Makes the fake's task jobs run ``execute_remote_call`` in a thread (or not at all)."""

    def __init__(self, fake: FakeSlurm, spec: Workflow, *, run_jobs: bool = True) -> None:
        self.fake = fake
        self.spec = spec
        self.run_jobs = run_jobs
        self.threads: list[threading.Thread] = []
        self.exit_codes: list[int] = []
        fake.on_submit = self.submitted

    def submitted(self, job: FakeJob) -> None:
        if not self.run_jobs:
            return
        command = shlex.split(job.script.read_text().splitlines()[-1])
        run_dir, task, call_id = command[5], command[7], command[9]
        self.fake.set_state(job.job_id, "RUNNING")

        def work() -> None:
            code, _ = execute_remote_call(
                open_run_dir(Path(run_dir)), task, call_id, import_workflow=lambda run: self.spec
            )
            self.exit_codes.append(code)
            self.fake.set_state(
                job.job_id, "COMPLETED" if code == 0 else "FAILED", exit_code=f"{code}:0"
            )

        thread = threading.Thread(target=work)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join()


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "lab")


@pytest.fixture
def run(workspace: Workspace) -> Run:
    return workspace.Project("p").Experiment("e", params={"lr": 0.5}).Run(id="r1")


@pytest.fixture
def fake() -> Iterator[FakeSlurm]:
    yield FakeSlurm()


def _executor(fake: FakeSlurm, **base: Any) -> SlurmTaskExecutor:
    return SlurmTaskExecutor(
        SlurmOptions.from_mapping(base, where="profile"),
        client=SlurmClient(fake),
        python="/opt/env/bin/python",
        poll_interval=0.05,
        status_interval=0.1,
    )


async def test_round_trip_between_local_tasks(run: Run, fake: FakeSlurm) -> None:
    events: list[str] = []
    spec = _spec(events)
    jobs = JobRunner(fake, spec)
    result = await spec.execute(
        run=run,
        config={"factor": 10},
        remote_executor=_executor(fake, account="chem", partition="cpu"),
    )
    jobs.join()
    assert result["report"] == "total=60"
    assert result["heavy"]["lr"] == 0.5
    assert result["heavy"]["thread"] != threading.get_ident()  # it ran in the "job"
    assert jobs.exit_codes == [0]
    run.reload()
    assert run.status == "succeeded"
    assert run.results == {"remote_total": 6, "total": 60}  # the remote result was replayed
    assert (run.run_dir / "logs" / "heavy.log").read_text() == "computing on the cluster\n"
    assert (run.run_dir / "artifacts" / "numbers.json").is_file()
    assert [a.name for a in run.assets.list(kind="checkpoint")] == ["half-way"]
    # The job wrote its own series file; its summary reached run.json through the owner.
    assert len(list(run.run_dir.glob("execution/*/metrics/*.bin"))) == 2
    assert run.metric("energy").values == [-1.0, -9.0, -2.0, -3.0, -0.5]  # by step, time
    summary = run.metric_summaries["energy"]
    assert (summary.last, summary.last_step, summary.min, summary.count) == (-0.5, 3, -9.0, 5)
    call = load_record(remote_dir(run.run_dir, "heavy") / "call.json", RemoteCall)
    assert call.job_id == "100" and call.inputs_kind == "mapping"
    # The task's hint overrides the profile's options; the rest is kept.
    assert call.options == {"partition": "gpu", "time": "00:10:00", "account": "chem"}
    [sbatch] = fake.calls("sbatch")
    assert sbatch[:2] == ["sbatch", "--parsable"] and "--hold" not in sbatch


async def test_remote_exception_fails_the_task_with_its_type(run: Run, fake: FakeSlurm) -> None:
    wf = workflow(name="failing")

    @wf.task(remote={"executor": "slurm"})
    def explode(ctx: TaskContext) -> None:
        raise ZeroDivisionError("remote division by zero")

    spec = wf.build()
    jobs = JobRunner(fake, spec)
    result = await spec.execute(run=run, remote_executor=_executor(fake), raise_on_failure=False)
    jobs.join()
    assert run.reload().status == "failed"
    assert run.metadata.error is not None and run.metadata.error.task_name == "explode"
    error = result.errors["explode"]
    assert (error.type, error.message) == ("ZeroDivisionError", "remote division by zero")
    assert error.exception is not None
    assert any("raised in Slurm job" in note for note in error.exception.__notes__)
    assert 1 in jobs.exit_codes


async def test_unpicklable_output_comes_back_as_a_described_error(
    run: Run, fake: FakeSlurm
) -> None:
    spec = _singles()
    jobs = JobRunner(fake, spec)
    with run.start() as context:
        ctx = TaskContext(
            ExecutionScope(spec.name, spec.workflow_id, {}, context), "bad_output", None
        )
        with pytest.raises(RemoteTaskError, match="cannot be pickled back"):
            await _executor(fake)(spec.tasks["bad_output"], ctx)
    jobs.join()


async def test_a_job_that_dies_without_a_result_fails_the_task(run: Run, fake: FakeSlurm) -> None:
    spec = _singles()
    JobRunner(fake, spec, run_jobs=False)
    with run.start() as context:
        ctx = TaskContext(ExecutionScope(spec.name, spec.workflow_id, {}, context), "explode", None)
        waiting = asyncio.create_task(_executor(fake)(spec.tasks["explode"], ctx))
        await asyncio.sleep(0.2)
        fake.set_state("100", "TIMEOUT")
        with pytest.raises(RemoteTaskError) as info:
            await waiting
    message = str(info.value)
    assert message.startswith("remote task 'explode': Slurm job 100 ended TIMEOUT")
    assert "without sending a result" in message and "slurm-100.err" in message


async def test_a_vanished_job_fails_the_task(run: Run, fake: FakeSlurm) -> None:
    spec = _singles()
    JobRunner(fake, spec, run_jobs=False)
    fake.forget("100")
    with run.start() as context:
        ctx = TaskContext(ExecutionScope(spec.name, spec.workflow_id, {}, context), "explode", None)
        with pytest.raises(RemoteTaskError, match="known to neither squeue nor sacct"):
            await _executor(fake)(spec.tasks["explode"], ctx)


async def test_cancelling_the_wait_cancels_the_job(run: Run, fake: FakeSlurm) -> None:
    spec = _singles()
    JobRunner(fake, spec, run_jobs=False)
    with run.start() as context:
        ctx = TaskContext(ExecutionScope(spec.name, spec.workflow_id, {}, context), "explode", None)
        waiting = asyncio.create_task(_executor(fake)(spec.tasks["explode"], ctx))
        await asyncio.sleep(0.2)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert fake.calls("scancel") == [["scancel", "100"]]
    assert fake.state("100") == "CANCELLED by 0"


async def test_other_remote_hints_run_locally(run: Run, fake: FakeSlurm) -> None:
    spec = _singles()
    with run.start() as context:
        ctx = TaskContext(
            ExecutionScope(spec.name, spec.workflow_id, {}, context), "elsewhere", None
        )
        output = await _executor(fake)(spec.tasks["elsewhere"], ctx)
    assert output == f"local@{threading.get_ident()}"
    assert fake.commands == []


async def test_slurm_tasks_need_a_run_and_picklable_inputs(run: Run, fake: FakeSlurm) -> None:
    spec = _singles()
    no_run = TaskContext(ExecutionScope(spec.name, spec.workflow_id), "explode", None)
    with pytest.raises(RemoteTaskError, match="needs a tracked run"):
        await _executor(fake)(spec.tasks["explode"], no_run)
    with run.start() as context:
        ctx = TaskContext(
            ExecutionScope(spec.name, spec.workflow_id, {}, context), "explode", Unpicklable()
        )
        with pytest.raises(RemoteTaskError, match="inputs of remote task 'explode' cannot be"):
            await _executor(fake)(spec.tasks["explode"], ctx)
    assert fake.commands == []


async def test_invalid_hint_options_name_the_task(run: Run, fake: FakeSlurm) -> None:
    wf = workflow(name="bad")

    @wf.task(remote={"executor": "slurm", "partiton": "gpu"})
    def typo(ctx: TaskContext) -> None:
        return None

    spec = wf.build()
    with run.start() as context:
        ctx = TaskContext(ExecutionScope("bad", spec.workflow_id, {}, context), "typo", None)
        with pytest.raises(RemoteTaskError, match="task 'typo': remote: unknown Slurm option"):
            await _executor(fake)(spec.tasks["typo"], ctx)


def test_a_superseded_call_does_nothing(run: Run) -> None:
    directory = remote_dir(run.run_dir, "explode")
    directory.mkdir(parents=True)
    (directory / "call.json").write_text(
        RemoteCall(
            call_id="current", task="explode", workflow="mixed", workflow_id="x", execution_id="e"
        ).model_dump_json()
    )
    code, message = execute_remote_call(
        run, "explode", "older", import_workflow=lambda r: pytest.fail("must not import")
    )
    assert code == 0 and "superseded by current" in message
    assert not (directory / OUTCOME_FILE).exists()


def test_a_missing_call_is_a_clear_error(run: Run) -> None:
    with pytest.raises(Exception, match="has no remote call of task 'fit'"):
        execute_remote_call(run, "fit", None, import_workflow=lambda r: None)


def test_outcome_files_of_another_call_are_ignored(tmp_path: Path) -> None:
    from molexp.cli._remote import _read_outcome

    path = tmp_path / OUTCOME_FILE
    path.write_bytes(pickle.dumps(RemoteOutcome(call_id="old", output=1)))
    assert _read_outcome(path, "new") is None
    outcome = _read_outcome(path, "old")
    assert outcome is not None and outcome.output == 1


def _current_call(run: Run, task: str) -> Path:
    directory = remote_dir(run.run_dir, task)
    directory.mkdir(parents=True)
    (directory / "call.json").write_text(
        RemoteCall(
            call_id="c1", task=task, workflow="mixed", workflow_id="x", execution_id="e"
        ).model_dump_json()
    )
    return directory


def test_a_call_another_live_process_executes_is_busy(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _current_call(run, "explode")
    (directory / ".claim-c1.json").write_text(
        CallClaim(host="node-7", pid=4242, slurm_job="99").model_dump_json()
    )
    code, message = execute_remote_call(
        run, "explode", "c1", import_workflow=lambda r: pytest.fail("must not import")
    )
    assert code == 3
    assert "process 4242 on host node-7 (Slurm job 99)" in message
    assert not (directory / OUTCOME_FILE).exists()


def test_a_requeued_job_takes_its_own_earlier_claim_over(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = _current_call(run, "explode")
    (directory / ".claim-c1.json").write_text(
        CallClaim(host="node-7", pid=4242, slurm_job="99", slurm_restart=0).model_dump_json()
    )
    monkeypatch.setenv("SLURM_JOB_ID", "99")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")
    imported: list[str] = []

    def import_workflow(r: Run) -> Workflow:
        imported.append(r.id)
        raise RuntimeError("imported")

    with pytest.raises(RuntimeError, match="imported"):
        execute_remote_call(run, "explode", "c1", import_workflow=import_workflow)
    assert imported == [run.id]
    claim = load_record(directory / ".claim-c1.json", CallClaim)
    assert claim.slurm_restart == 1
