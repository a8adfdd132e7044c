"""``Workflow.execute_task``: one task alone, with caller-given inputs, config and run context."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from types import MappingProxyType
from typing import Any

import pytest
from molexp.workflow import (
    Actor,
    ActorContext,
    NoRunContextError,
    TaskContext,
    WorkflowBuilder,
    workflow,
)
from molexp.workflow.spec import Workflow
from workflow_fakes import FakeRunContext


def _spec(calls: list[str]) -> Workflow:
    wf = workflow(name="single")

    @wf.task
    async def fetch(ctx: TaskContext) -> list[int]:
        calls.append("fetch")
        return [1, 2, 3]

    @wf.task(depends_on=["fetch"], remote={"executor": "slurm"})
    async def fit(ctx: TaskContext) -> float:
        calls.append("fit")
        return float(sum(ctx.inputs) * ctx.config["scale"])

    @wf.task
    def sync_sum(ctx: TaskContext) -> int:
        calls.append("sync_sum")
        return sum(ctx.inputs)

    @wf.task(depends_on=["fetch", "fit"])
    def both(ctx: TaskContext) -> dict[str, Any]:
        return {"keys": sorted(ctx.inputs), "fit": ctx.inputs["fit"]}

    @wf.task
    async def stream(ctx: TaskContext) -> AsyncIterator[int]:
        for item in range(ctx.inputs):
            yield item

    @wf.task
    def gen(ctx: TaskContext) -> Iterator[str]:
        yield from ctx.inputs

    @wf.task
    def record(ctx: TaskContext) -> str:
        ctx.set_result("seen", ctx.params["lr"])
        ctx.log("record").append("hello")
        return "ok"

    @wf.task
    def boom(ctx: TaskContext) -> None:
        raise ArithmeticError(f"bad input {ctx.inputs}")

    return wf.build()


async def test_runs_only_the_named_task_with_the_given_inputs_and_config() -> None:
    calls: list[str] = []
    spec = _spec(calls)
    assert await spec.execute_task("fit", [2, 3], config={"scale": 10}) == 50
    assert calls == ["fit"]  # its dependency did not run


async def test_sync_bodies_and_mapping_inputs() -> None:
    spec = _spec([])
    assert await spec.execute_task("sync_sum", [4, 5]) == 9
    inputs = MappingProxyType({"fetch": [1], "fit": 2.5})
    assert await spec.execute_task("both", inputs) == {"keys": ["fetch", "fit"], "fit": 2.5}


async def test_streams_are_collected_into_a_list() -> None:
    spec = _spec([])
    assert await spec.execute_task("stream", 3) == [0, 1, 2]
    assert await spec.execute_task("gen", "ab") == ["a", "b"]


async def test_config_is_read_only_and_missing_keys_name_the_task() -> None:
    spec = _spec([])
    with pytest.raises(KeyError, match="task 'fit': config has no key 'scale'"):
        await spec.execute_task("fit", [1])


async def test_the_task_exception_propagates_unchanged() -> None:
    with pytest.raises(ArithmeticError, match=r"bad input \[7\]"):
        await _spec([]).execute_task("boom", [7])


async def test_run_backed_helpers_use_the_given_run_context() -> None:
    spec = _spec([])
    context = FakeRunContext(params={"lr": 0.5})
    assert await spec.execute_task("record", run_context=context) == "ok"
    assert context.results == {"seen": 0.5}
    assert context.logs["record"].lines == ["hello"]
    with pytest.raises(NoRunContextError, match="ctx.params"):
        await spec.execute_task("record")


async def test_unknown_task_names_the_workflow_and_suggests() -> None:
    with pytest.raises(KeyError) as info:
        await _spec([]).execute_task("fitt")
    message = str(info.value)
    assert message.startswith("workflow 'single' has no task 'fitt' (did you mean 'fit'?)")
    assert "fetch, fit, sync_sum" in message


class _Echo(Actor):
    async def execute(self, ctx: ActorContext) -> None:
        await ctx.receive("never")


async def test_actors_cannot_execute_alone() -> None:
    builder = WorkflowBuilder("actors")
    builder.add(_Echo(), name="echo")
    spec = builder.build()
    with pytest.raises(ValueError, match="task 'echo' of workflow 'actors' is an actor"):
        await spec.execute_task("echo")
