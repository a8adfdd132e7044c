"""The remote_executor hook for tasks carrying a ``remote=`` hint."""

from __future__ import annotations

from typing import Any

from molexp.workflow import TaskContext, TaskRegistration, workflow
from molexp.workflow.spec import Workflow


def _spec(ran_locally: list[str]) -> Workflow:
    wf = workflow(name="remote")

    @wf.task
    async def prepare(ctx: TaskContext) -> int:
        ran_locally.append("prepare")
        return 20

    @wf.task(depends_on=["prepare"], remote={"partition": "gpu", "time": "01:00:00"})
    async def train(ctx: TaskContext) -> int:
        ran_locally.append("train")
        return int(ctx.inputs) + 1

    @wf.task(depends_on=["train"])
    async def report(ctx: TaskContext) -> str:
        return f"loss={ctx.inputs}"

    return wf.build()


async def test_remote_tasks_run_locally_without_an_executor() -> None:
    ran: list[str] = []
    result = await _spec(ran).execute()
    assert ran == ["prepare", "train"]
    assert result.output == "loss=21"


async def test_remote_executor_runs_only_hinted_tasks() -> None:
    ran: list[str] = []
    calls: list[tuple[str, dict[str, Any], Any]] = []

    async def executor(registration: TaskRegistration, ctx: TaskContext) -> int:
        calls.append((registration.name, dict(registration.remote or {}), ctx.inputs))
        return 99

    result = await _spec(ran).execute(remote_executor=executor)
    assert ran == ["prepare"]
    assert calls == [("train", {"partition": "gpu", "time": "01:00:00"}, 20)]
    assert result["train"] == 99
    assert result.output == "loss=99"


async def test_remote_executor_failure_fails_the_task() -> None:
    async def executor(registration: TaskRegistration, ctx: TaskContext) -> int:
        raise ConnectionError("sbatch unreachable")

    result = await _spec([]).execute(remote_executor=executor, raise_on_failure=False)
    assert result.failed == ["train"]
    assert result.errors["train"].message == "sbatch unreachable"
    assert result.skipped == ["report"]


async def test_remote_executor_must_be_callable() -> None:
    import pytest

    with pytest.raises(TypeError, match="remote_executor must be an async callable"):
        await _spec([]).execute(remote_executor="slurm")  # type: ignore[arg-type]
