"""Execution: inputs shapes, outputs and result API, sync/async/streaming tasks, scheduling."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from molexp.workflow import (
    Task,
    TaskContext,
    TaskStatus,
    WorkflowBuilder,
    WorkflowResult,
    WorkflowStatus,
    workflow,
)
from molexp.workflow.runtime import EXECUTION_STATE_VERSION


async def test_inputs_shapes_for_zero_one_and_several_dependencies() -> None:
    wf = workflow(name="inputs")
    seen: dict[str, Any] = {}

    @wf.task
    async def root(ctx: TaskContext) -> str:
        seen["root"] = ctx.inputs
        return "r"

    @wf.task
    async def other(ctx: TaskContext) -> str:
        return "o"

    @wf.task(depends_on=["root"])
    async def single(ctx: TaskContext) -> str:
        seen["single"] = ctx.inputs
        return "s"

    @wf.task(depends_on=["single", "other", "root"])
    async def several(ctx: TaskContext) -> None:
        seen["several"] = ctx.inputs

    await wf.build().execute({"x": 1})
    assert seen["root"] == {"x": 1}
    assert seen["single"] == "r"
    mapping = seen["several"]
    assert isinstance(mapping, Mapping)
    assert list(mapping.items()) == [("single", "s"), ("other", "o"), ("root", "r")]
    with pytest.raises(TypeError):
        mapping["single"] = "changed"  # type: ignore[index]


async def test_result_api() -> None:
    wf = workflow(name="result")

    @wf.task
    async def fetch(ctx: TaskContext) -> list[float]:
        return [1.0, 4.0, 9.0]

    @wf.task(depends_on=["fetch"])
    async def summarize(ctx: TaskContext) -> Any:
        return sum(ctx.inputs)

    spec = wf.build()
    before = time.time()
    result = await spec.execute()
    after = time.time()
    assert isinstance(result, WorkflowResult)
    assert result.status is WorkflowStatus.SUCCEEDED and result.succeeded
    assert (result.workflow_name, result.workflow_id) == ("result", spec.workflow_id)
    assert result.outputs == {"fetch": [1.0, 4.0, 9.0], "summarize": 14.0}
    assert result["summarize"] == 14.0
    assert result.output == 14.0
    assert result.statuses == {"fetch": TaskStatus.SUCCEEDED, "summarize": TaskStatus.SUCCEEDED}
    assert result.errors == {} and result.failed == [] and result.skipped == []
    timing = result.timings["summarize"]
    assert before <= result.timings["fetch"].started_at <= timing.started_at <= after
    assert timing.duration == timing.finished_at - timing.started_at >= 0
    assert timing.started_datetime.timestamp() == pytest.approx(timing.started_at)
    assert timing.finished_datetime.tzinfo is not None
    assert result.started_at <= result.finished_at
    assert result.duration >= 0
    assert repr(result) == (
        "WorkflowResult(workflow='result', status='succeeded', tasks=2, failed=[], skipped=0)"
    )
    with pytest.raises(KeyError, match="no task 'nope'"):
        result["nope"]
    state = result.to_state()
    assert json.loads(json.dumps(state)) == state
    assert state["workflow_id"] == spec.workflow_id
    assert state["version"] == EXECUTION_STATE_VERSION == 4
    assert state["tasks"]["fetch"]["status"] == "succeeded"


async def test_output_with_several_sinks_lists_them() -> None:
    wf = workflow(name="sinks")
    wf.task(name="a")(lambda ctx: 1)
    wf.task(name="b")(lambda ctx: 2)
    result = await wf.build().execute()
    with pytest.raises(ValueError, match="2 sink tasks \\('a', 'b'\\)"):
        _ = result.output


async def test_sync_tasks_run_off_the_event_loop() -> None:
    wf = workflow(name="threads")
    loop_thread = threading.get_ident()

    @wf.task
    def blocking(ctx: TaskContext) -> int:
        time.sleep(0.05)
        return threading.get_ident()

    @wf.task
    async def ticker(ctx: TaskContext) -> int:
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.005)
            ticks += 1
        return ticks

    result = await wf.build().execute()
    assert result["blocking"] != loop_thread
    assert result["ticker"] == 5


async def test_streaming_tasks_produce_the_list_of_items() -> None:
    class Counter(Task):
        async def stream(self, ctx: TaskContext) -> AsyncIterator[int]:
            for i in range(ctx.inputs):
                yield i

    class PlainStreamable:
        async def stream(self, ctx: TaskContext) -> AsyncIterator[str]:
            yield "only"

    builder = WorkflowBuilder(name="streams")
    builder.add(Counter())
    builder.add(PlainStreamable())

    @builder.task
    async def agen(ctx: TaskContext) -> AsyncIterator[str]:
        yield "a"
        yield "b"

    @builder.task
    def gen(ctx: TaskContext) -> Any:
        yield from (1, 2)

    result = await builder.build().execute(3)
    assert result["counter"] == [0, 1, 2]
    assert result["plain_streamable"] == ["only"]
    assert result["agen"] == ["a", "b"]
    assert result["gen"] == [1, 2]


async def test_task_objects_async_and_sync_execute() -> None:
    class Double(Task):
        async def execute(self, ctx: TaskContext) -> Any:
            return ctx.inputs * 2

    class AddOne(Task):
        def execute(self, ctx: TaskContext) -> Any:
            return ctx.inputs + 1

    builder = WorkflowBuilder(name="objects")
    builder.add(Double())
    builder.add(AddOne(), depends_on=["double"])
    result = await builder.build().execute(5)
    assert result.output == 11


async def test_sync_function_returning_awaitable_is_awaited() -> None:
    wf = workflow(name="awaitable")

    async def later() -> int:
        return 7

    wf.task(name="t")(lambda ctx: later())
    assert (await wf.build().execute()).output == 7


async def test_independent_branches_overlap_in_time() -> None:
    wf = workflow(name="overlap")
    spans: dict[str, tuple[float, float]] = {}

    async def sleeper(ctx: TaskContext) -> None:
        start = time.perf_counter()
        await asyncio.sleep(0.2)
        spans[ctx.task_name] = (start, time.perf_counter())

    wf.task(name="left")(sleeper)
    wf.task(name="right")(sleeper)
    await wf.build().execute()
    (l_start, l_end), (r_start, r_end) = spans["left"], spans["right"]
    assert l_start < r_end and r_start < l_end


async def test_scheduling_is_dependency_driven_makespan_is_the_critical_path() -> None:
    builder = WorkflowBuilder(name="makespan")

    async def long(ctx: TaskContext) -> None:
        await asyncio.sleep(0.3)

    async def short(ctx: TaskContext) -> None:
        await asyncio.sleep(0.1)

    builder.task(name="a0")(long)
    builder.task(name="b0")(short)
    builder.task(name="b1", depends_on=["b0"])(short)
    builder.task(name="b2", depends_on=["b1"])(short)
    result = await builder.build().execute()
    # Dependency-driven: the b chain runs while a0 still sleeps (level barriers would hold b1
    # and b2 back until a0 finished).
    timings = result.timings
    assert timings["b0"].finished_at <= timings["b1"].started_at
    assert timings["b1"].finished_at <= timings["b2"].started_at
    assert timings["b2"].started_at < timings["a0"].finished_at


async def test_max_concurrency_bounds_running_tasks() -> None:
    wf = workflow(name="bounded")
    running = 0
    peak = 0

    async def work(ctx: TaskContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for i in range(12):
        wf.task(name=f"t{i}")(work)
    spec = wf.build()
    await spec.execute(max_concurrency=3)
    assert peak == 3
    peak = 0
    await spec.execute()
    assert peak == 12


@pytest.mark.parametrize("limit", [0, -1, 1.5, True, "2"])
async def test_invalid_max_concurrency(limit: Any) -> None:
    wf = workflow(name="bad")
    wf.task(name="t")(lambda ctx: None)
    with pytest.raises(ValueError, match="max_concurrency must be a positive int"):
        await wf.build().execute(max_concurrency=limit)


def test_execute_sync_runs_and_refuses_inside_a_running_loop() -> None:
    wf = workflow(name="sync")
    wf.task(name="t")(lambda ctx: ctx.inputs + 1)
    spec = wf.build()
    assert spec.execute_sync(1).output == 2

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="'sync'.*await spec.execute"):
            spec.execute_sync(1)

    asyncio.run(inside())


async def test_a_workflow_can_execute_many_times_and_concurrently() -> None:
    wf = workflow(name="again")
    wf.task(name="t")(lambda ctx: ctx.inputs * 10)
    spec = wf.build()
    results = await asyncio.gather(*(spec.execute(i) for i in range(5)))
    assert [r.output for r in results] == [0, 10, 20, 30, 40]


async def test_empty_workflow_succeeds() -> None:
    result = await workflow(name="empty").build().execute()
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.outputs == {}
