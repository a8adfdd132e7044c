"""cache=True tasks: hits skip the body, misses store, the cache is chosen per execution."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import (
    Caching,
    MemoryCacheStore,
    Task,
    TaskContext,
    TaskStatus,
    WorkflowBuilder,
    workflow,
)
from molexp.workflow.spec import Workflow
from pydantic import BaseModel
from workflow_fakes import FakeRunContext

CALLS: list[Any] = []
"""Inputs of every executed body. Module level: a list captured by a task's closure is part of
the task's identity by value, so appending to it would change the key."""


@pytest.fixture(autouse=True)
def _fresh_calls() -> None:
    CALLS.clear()


def _counting_spec(name: str = "cached") -> Workflow:
    wf = workflow(name=name)

    @wf.task(cache=True)
    async def square(ctx: TaskContext) -> int:
        CALLS.append(ctx.inputs)
        return int(ctx.inputs * ctx.inputs * ctx.config.get("factor", 1))

    @wf.task(depends_on=["square"])
    async def report(ctx: TaskContext) -> str:
        return f"value={ctx.inputs}"

    return wf.build()


async def test_second_execution_is_served_from_the_cache() -> None:
    cache = Caching(store=MemoryCacheStore())
    spec = _counting_spec()
    first = await spec.execute(3, cache=cache)
    second = await spec.execute(3, cache=cache)
    assert CALLS == [3]
    assert first.statuses["square"] is TaskStatus.SUCCEEDED
    assert second.statuses["square"] is TaskStatus.CACHED
    assert second["square"] == 9
    assert second.output == "value=9"
    assert len(cache) == 2  # the result, and the index of what it read: config['factor']


async def test_inputs_and_run_config_are_part_of_the_key() -> None:
    cache = Caching(MemoryCacheStore())
    spec = _counting_spec()
    await spec.execute(3, cache=cache)
    await spec.execute(4, cache=cache)
    await spec.execute(3, cache=cache, config={"factor": 2})
    result = await spec.execute(3, cache=cache, config={"factor": 2})
    assert CALLS == [3, 4, 3]
    assert result["square"] == 18


async def test_without_cache_argument_a_process_wide_memory_cache_is_used() -> None:
    spec = _counting_spec(name="process-wide")
    await spec.execute(918_273_645)
    result = await spec.execute(918_273_645)
    assert CALLS == [918_273_645]
    assert result.statuses["square"] is TaskStatus.CACHED


async def test_under_a_run_the_workspace_cache_is_used(tmp_path: Path) -> None:
    spec = _counting_spec()
    for _ in range(2):
        result = await spec.execute(5, run_context=FakeRunContext(root=tmp_path))
    assert CALLS == [5]
    assert result.statuses["square"] is TaskStatus.CACHED
    assert any((tmp_path / ".subsystems" / "workflow.cache").iterdir())


class Settings(BaseModel):
    scale: int = 2


SCALE_CALLS: list[int] = []


class Scale(Task):
    def __init__(self, scale: int) -> None:
        super().__init__(config=Settings(scale=scale))

    async def execute(self, ctx: TaskContext) -> int:
        SCALE_CALLS.append(self.config.scale)
        return int(ctx.inputs * self.config.scale)


async def test_task_objects_fold_their_config_into_the_key() -> None:
    SCALE_CALLS.clear()
    cache = Caching(MemoryCacheStore())
    first, changed = Scale(2), Scale(3)
    for task in (first, first, changed):
        builder = WorkflowBuilder(name="scale")
        builder.add(task, cache=True)
        result = await builder.build().execute(10, cache=cache)
    assert SCALE_CALLS == [2, 3]
    assert result.output == 30


async def test_several_dependency_outputs_are_hashed_as_a_mapping() -> None:
    wf = workflow(name="multi")
    wf.task(name="a")(lambda ctx: 1)
    wf.task(name="b")(lambda ctx: 2)

    @wf.task(depends_on=["a", "b"], cache=True)
    async def total(ctx: TaskContext) -> int:
        CALLS.append(dict(ctx.inputs))
        return int(ctx.inputs["a"] + ctx.inputs["b"])

    cache = Caching(MemoryCacheStore())
    spec = wf.build()
    await spec.execute(cache=cache)
    result = await spec.execute(cache=cache)
    assert CALLS == [{"a": 1, "b": 2}]
    assert result.statuses["total"] is TaskStatus.CACHED


async def test_unstorable_result_fails_the_task_naming_it() -> None:
    wf = workflow(name="unstorable")

    @wf.task(cache=True)
    async def lock(ctx: TaskContext) -> Any:
        return threading.Lock()

    result = await wf.build().execute(cache=Caching(MemoryCacheStore()), raise_on_failure=False)
    assert result.statuses["lock"] is TaskStatus.FAILED
    assert result.errors["lock"].type == "CacheStoreError"
    assert "'lock'" in result.errors["lock"].message


async def test_unhashable_inputs_run_uncached_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = _counting_spec()

    class Opaque:
        def __mul__(self, other: object) -> int:
            return 1

    cache = Caching(MemoryCacheStore())
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        for _ in range(2):
            result = await spec.execute(Opaque(), cache=cache)
    assert len(CALLS) == 2
    assert result.statuses["square"] is TaskStatus.SUCCEEDED
    assert len(cache) == 0
    assert "task 'square' of workflow 'cached' ran uncached: unhashable input" in caplog.text


def test_cache_modules_are_only_imported_when_a_cached_task_exists() -> None:
    script = textwrap.dedent(
        """
        import sys
        from molexp.workflow import workflow
        wf = workflow(name="plain")
        wf.task(name="t")(lambda ctx: 1)
        wf.build().execute_sync()
        print("molexp.workflow.cache" in sys.modules, "molexp.workflow.snapshot" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


async def test_a_cache_smaller_than_the_workflow_warns_once() -> None:
    wf = workflow(name="too-many-for-the-cache")

    async def square(ctx: TaskContext) -> int:
        return 1

    for index in range(3):
        wf.task(name=f"t{index}", cache=True)(square)
    spec = wf.build()
    cache = Caching(MemoryCacheStore(), max_entries=2)
    with pytest.warns(RuntimeWarning, match="3 cache=True tasks but its cache keeps at most 2"):
        await spec.execute(cache=cache)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await spec.execute(cache=cache)  # once per cache and workflow
