"""DaskRuntime on a real ``distributed.LocalCluster`` (2 worker processes, started once per module).

Workflows that the default runtime's suite exercises are executed on both runtimes and must give
the same outputs, statuses and errors. Task bodies run in other processes: they report what they
did through their outputs or through files under ``tmp_path``, never through test-process state.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

distributed = pytest.importorskip("distributed")

from molexp.workflow import (  # noqa: E402 - after the importorskip
    Actor,
    ActorContext,
    Caching,
    DaskRuntime,
    MemoryCacheStore,
    NoRunContextError,
    Task,
    TaskContext,
    TaskStatus,
    WorkflowBuilder,
    WorkflowFailed,
    WorkflowResult,
    WorkflowRuntime,
    WorkflowStatus,
    WorkflowValidationError,
    create_default_runtime,
    workflow,
)
from molexp.workflow.spec import Workflow  # noqa: E402
from workflow_fakes import FakeRun, FakeRunContext  # noqa: E402

TIMEOUT = 60.0
TERMINAL = {
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.SKIPPED,
    TaskStatus.CACHED,
    TaskStatus.RESUMED,
    TaskStatus.CANCELLED,
}


@pytest.fixture(scope="module")
def dask_runtime() -> Iterator[DaskRuntime]:
    runtime = DaskRuntime(n_workers=2, processes=True, threads_per_worker=1)
    yield runtime
    runtime.close()


@pytest.fixture(params=["default", "dask"])
def runtime(request: pytest.FixtureRequest, dask_runtime: DaskRuntime) -> WorkflowRuntime:
    if request.param == "default":
        return create_default_runtime()
    return dask_runtime


async def run(spec: Workflow, runtime: WorkflowRuntime, inputs: Any = None, **kwargs: Any) -> Any:
    return await asyncio.wait_for(spec.execute(inputs, runtime=runtime, **kwargs), TIMEOUT)


def ran(log: Path) -> list[str]:
    """Task names appended to ``log`` by task bodies (one line each), in order."""
    return log.read_text().split() if log.exists() else []


def note(log: Path, name: str) -> None:
    with log.open("a") as handle:
        handle.write(f"{name}\n")


# -- same workflows, same outputs ---------------------------------------------------------------


def _diamond() -> Workflow:
    wf = workflow(name="diamond")

    @wf.task
    async def fetch(ctx: TaskContext) -> list[int]:
        await asyncio.sleep(0.01)
        return list(range(int(ctx.inputs["n"])))

    @wf.task(depends_on=["fetch"])
    def evens(ctx: TaskContext) -> list[int]:
        return [x for x in ctx.inputs if x % 2 == 0]

    @wf.task(depends_on=["fetch"])
    async def scaled(ctx: TaskContext) -> list[float]:
        return [x * ctx.config["scale"] for x in ctx.inputs]

    @wf.task(depends_on=["evens", "scaled"])
    def merge(ctx: TaskContext) -> dict[str, Any]:
        return {"evens": sum(ctx.inputs["evens"]), "scaled": sum(ctx.inputs["scaled"])}

    return wf.build()


async def test_diamond(runtime: WorkflowRuntime) -> None:
    result = await run(_diamond(), runtime, {"n": 7}, config={"scale": 0.5})
    assert result.status is WorkflowStatus.SUCCEEDED
    assert result.outputs["fetch"] == list(range(7))
    assert result.outputs["evens"] == [0, 2, 4, 6]
    assert result.output == {"evens": 12, "scaled": sum(range(7)) * 0.5}
    assert set(result.statuses.values()) == {TaskStatus.SUCCEEDED}
    assert list(result.statuses) == ["fetch", "evens", "scaled", "merge"]
    for timing in result.timings.values():
        assert 0 <= timing.duration < TIMEOUT
    assert result.timings["fetch"].finished_at <= result.timings["merge"].started_at


def _random_dag(size: int, seed: int, failing: frozenset[int] = frozenset()) -> Workflow:
    """``size`` tasks; task i depends on up to 3 earlier ones and combines their outputs."""
    rng = random.Random(seed)
    builder = WorkflowBuilder(name=f"random-{seed}")
    for i in range(size):
        deps = sorted(rng.sample(range(i), k=min(i, rng.randint(0, 3))))

        def combine(ctx: TaskContext, i: int = i) -> int:
            if i in failing:
                raise ArithmeticError(f"task {i} refuses")
            inputs = ctx.inputs
            if isinstance(inputs, Mapping):
                values = [inputs[name] for name in sorted(inputs)]
            else:
                values = [inputs]
            return int(sum(values) * 31 + i * ctx.config["salt"]) % 100_003

        if i % 2:
            builder.task(name=f"t{i:02d}", depends_on=[f"t{d:02d}" for d in deps])(combine)
        else:

            async def async_combine(ctx: TaskContext, combine: Any = combine) -> int:
                await asyncio.sleep(0)
                return int(combine(ctx))

            builder.task(name=f"t{i:02d}", depends_on=[f"t{d:02d}" for d in deps])(async_combine)
    return builder.build()


def _expected_random_dag(spec: Workflow, inputs: int, salt: int) -> dict[str, int]:
    """The outputs ``_random_dag`` must give, computed here without any runtime."""
    outputs: dict[str, int] = {}
    for name in spec.topological_order():
        deps = spec.tasks[name].depends_on
        values = [outputs[dep] for dep in sorted(deps)] if deps else [inputs]
        outputs[name] = (sum(values) * 31 + int(name[1:]) * salt) % 100_003
    return outputs


async def test_random_dag_of_fifty_tasks(runtime: WorkflowRuntime) -> None:
    spec = _random_dag(50, seed=7)
    result = await run(spec, runtime, 11, config={"salt": 3})
    assert result.outputs == _expected_random_dag(spec, 11, 3)
    assert result.statuses == dict.fromkeys(spec.tasks, TaskStatus.SUCCEEDED)


async def test_random_dag_with_failures_matches_the_default_runtime(
    dask_runtime: DaskRuntime,
) -> None:
    spec = _random_dag(50, seed=3, failing=frozenset({4, 17, 30}))
    kwargs: dict[str, Any] = {"config": {"salt": 5}, "raise_on_failure": False}
    default = await run(spec, create_default_runtime(), 2, **kwargs)
    dask = await run(spec, dask_runtime, 2, **kwargs)
    assert dask.status is default.status is WorkflowStatus.FAILED
    assert dask.statuses == default.statuses
    assert dask.outputs == default.outputs
    assert sorted(dask.failed) == sorted(default.failed)
    assert {"t04", "t17", "t30"} & set(dask.failed)
    assert dask.skipped == default.skipped
    assert default.skipped  # the DAG is dense enough for failures to have dependents
    assert {n: (e.type, e.message) for n, e in dask.errors.items()} == {
        n: (e.type, e.message) for n, e in default.errors.items()
    }
    assert set(dask.timings) == set(default.timings)


async def test_sync_async_and_streaming_bodies(runtime: WorkflowRuntime) -> None:
    class Double(Task):
        async def execute(self, ctx: TaskContext) -> int:
            return int(ctx.inputs) * 2

    class AddOne(Task):
        def execute(self, ctx: TaskContext) -> int:
            return int(ctx.inputs) + 1

    class Counter(Task):
        async def stream(self, ctx: TaskContext) -> AsyncIterator[int]:
            for i in range(int(ctx.inputs)):
                yield i

    builder = WorkflowBuilder(name="bodies")
    builder.add(Double())
    builder.add(AddOne(), depends_on=["double"])
    builder.add(Counter())

    @builder.task
    async def agen(ctx: TaskContext) -> AsyncIterator[str]:
        yield "a"
        yield "b"

    @builder.task
    def gen(ctx: TaskContext) -> Iterator[int]:
        yield from (1, 2)

    async def later() -> int:
        return 7

    builder.task(name="awaitable")(lambda ctx: later())
    result = await run(builder.build(), runtime, 3)
    assert result.outputs == {
        "double": 6,
        "add_one": 7,
        "counter": [0, 1, 2],
        "agen": ["a", "b"],
        "gen": [1, 2],
        "awaitable": 7,
    }


async def test_inputs_shapes_config_and_identity(runtime: WorkflowRuntime) -> None:
    wf = workflow(name="shapes")

    @wf.task
    async def root(ctx: TaskContext) -> Any:
        return ctx.inputs

    @wf.task
    def other(ctx: TaskContext) -> str:
        return "o"

    @wf.task(depends_on=["root"])
    def single(ctx: TaskContext) -> Any:
        return {"inputs": ctx.inputs, "task": ctx.task_name, "workflow": ctx.workflow_name}

    @wf.task(depends_on=["single", "other", "root"])
    def several(ctx: TaskContext) -> dict[str, Any]:
        try:
            ctx.inputs["single"] = "changed"
            writable = True
        except TypeError:
            writable = False
        try:
            ctx.config["missing"]
        except KeyError as exc:
            missing = str(exc)
        return {
            "read_only_mapping": isinstance(ctx.inputs, MappingProxyType) and not writable,
            "items": list(ctx.inputs.items()),
            "config": dict(ctx.config),
            "workflow_id": ctx.workflow_id,
            "missing": missing,
        }

    spec = wf.build()
    result = await run(spec, runtime, {"x": 1}, config={"scale": 2})
    assert result["root"] == {"x": 1}
    assert result["single"] == {"inputs": {"x": 1}, "task": "single", "workflow": "shapes"}
    several_output = result["several"]
    assert several_output["read_only_mapping"] is True
    assert several_output["items"] == [
        ("single", result["single"]),
        ("other", "o"),
        ("root", {"x": 1}),
    ]
    assert several_output["config"] == {"scale": 2}
    assert several_output["workflow_id"] == spec.workflow_id
    assert "task 'several': config has no key 'missing'" in several_output["missing"]


# -- failures -----------------------------------------------------------------------------------


def _diamond_with_failure(log: Path) -> Workflow:
    """root -> bad -> after_bad -> tail ; root -> good -> after_good ; tail also needs good."""
    wf = workflow(name="failing")

    async def ok(ctx: TaskContext) -> str:
        await asyncio.sleep(0.01)
        note(log, ctx.task_name)
        return ctx.task_name

    def boom(ctx: TaskContext) -> None:
        note(log, ctx.task_name)
        raise ValueError("bad input 42")

    wf.task(name="root")(ok)
    wf.task(name="bad", depends_on=["root"])(boom)
    wf.task(name="good", depends_on=["root"])(ok)
    wf.task(name="after_bad", depends_on=["bad"])(ok)
    wf.task(name="after_good", depends_on=["good"])(ok)
    wf.task(name="tail", depends_on=["after_bad", "good"])(ok)
    return wf.build()


async def test_a_failing_task_skips_only_its_dependents(
    runtime: WorkflowRuntime, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    result = await run(_diamond_with_failure(log), runtime, raise_on_failure=False)
    assert sorted(ran(log)) == ["after_good", "bad", "good", "root"]  # nothing else was run
    assert result.status is WorkflowStatus.FAILED
    assert result.statuses == {
        "root": TaskStatus.SUCCEEDED,
        "bad": TaskStatus.FAILED,
        "good": TaskStatus.SUCCEEDED,
        "after_bad": TaskStatus.SKIPPED,
        "after_good": TaskStatus.SUCCEEDED,
        "tail": TaskStatus.SKIPPED,
    }
    assert result.failed == ["bad"]
    assert result.skipped == ["after_bad", "tail"]
    assert set(result.outputs) == {"root", "good", "after_good"}
    error = result.errors["bad"]
    assert (error.type, error.message) == ("ValueError", "bad input 42")
    assert 'raise ValueError("bad input 42")' in error.traceback
    assert isinstance(error.exception, ValueError)
    assert "tail" not in result.timings and result.timings["bad"].duration >= 0


async def test_workflow_failed_is_raised_by_default(
    runtime: WorkflowRuntime, tmp_path: Path
) -> None:
    with pytest.raises(WorkflowFailed) as info:
        await run(_diamond_with_failure(tmp_path / "ran.log"), runtime)
    assert info.value.task_name == "bad"
    assert info.value.result.statuses["after_good"] is TaskStatus.SUCCEEDED
    assert "task 'bad' raised ValueError: bad input 42" in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


async def test_system_exit_in_a_worker_fails_only_that_task(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="exit")

    @wf.task
    def leaves(ctx: TaskContext) -> None:
        raise SystemExit(3)

    @wf.task
    def stays(ctx: TaskContext) -> int:
        return 1

    result = await run(wf.build(), dask_runtime, raise_on_failure=False)
    assert result.statuses == {"leaves": TaskStatus.FAILED, "stays": TaskStatus.SUCCEEDED}
    assert (result.errors["leaves"].type, result.errors["leaves"].message) == ("SystemExit", "3")


async def test_unpicklable_output_fails_the_task_and_skips_its_dependents(
    dask_runtime: DaskRuntime,
) -> None:
    wf = workflow(name="unpicklable")

    @wf.task
    def lock(ctx: TaskContext) -> Any:
        return threading.Lock()

    @wf.task(depends_on=["lock"])
    def user(ctx: TaskContext) -> int:
        return 1

    result = await run(wf.build(), dask_runtime, raise_on_failure=False)
    assert result.statuses == {"lock": TaskStatus.FAILED, "user": TaskStatus.SKIPPED}
    error = result.errors["lock"]
    assert error.type == "TypeError"
    assert "output of task 'lock' (lock) cannot be pickled" in error.message


async def test_unpicklable_inputs_fail_the_tasks_that_receive_them(
    dask_runtime: DaskRuntime,
) -> None:
    wf = workflow(name="unsendable")
    wf.task(name="root")(lambda ctx: "never")
    result = await run(wf.build(), dask_runtime, threading.Lock(), raise_on_failure=False)
    assert result.statuses == {"root": TaskStatus.FAILED}
    assert "task 'root' cannot be sent to the Dask workers" in result.errors["root"].message


# -- under a run --------------------------------------------------------------------------------


def _tracked(log: Path, fail: bool) -> Workflow:
    wf = workflow(name="tracked")

    @wf.task
    def compute(ctx: TaskContext) -> float:
        note(log, "compute")
        return float(ctx.config["lr"]) * 2

    @wf.task(depends_on=["compute"])
    def check(ctx: TaskContext) -> float:
        note(log, "check")
        if fail:
            raise ArithmeticError("diverged")
        return float(ctx.inputs)

    @wf.task(depends_on=["check"])
    def report(ctx: TaskContext) -> str:
        return f"lr={ctx.inputs}"

    return wf.build()


def _comparable_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """An execution-state payload without what differs between two executions (times)."""
    timeless = ("started_at", "finished_at", "duration")
    tasks = {
        name: {
            **{k: v for k, v in task.items() if k not in (*timeless, "error")},
            "error": None if task["error"] is None else task["error"]["type"],
            "timed": task["duration"] is not None,
        }
        for name, task in state["tasks"].items()
    }
    return {**{k: v for k, v in state.items() if k not in timeless}, "tasks": tasks}


@pytest.mark.parametrize("fail", [False, True], ids=["succeeds", "fails"])
async def test_state_under_a_run_is_recorded_like_the_default_runtime(
    dask_runtime: DaskRuntime, tmp_path: Path, fail: bool
) -> None:
    observed: dict[str, Any] = {}
    log = tmp_path / "ran.log"  # one path: it is part of the tasks' code identity (closure)
    for name, runtime in (("default", create_default_runtime()), ("dask", dask_runtime)):
        log.unlink(missing_ok=True)
        root = tmp_path / name
        root.mkdir()
        context = FakeRunContext(config={"lr": 0.5}, root=root)
        fake_run = FakeRun(context)
        result = await run(
            _tracked(log, fail),
            runtime,
            run=fake_run,
            raise_on_failure=False,
            profile_config={"profile": "cluster"},
        )
        (state,) = context.execution_states
        observed[name] = {
            "state": _comparable_state(state),
            "events": fake_run.events,
            "run_status": fake_run.status,
            "error_task": fake_run.error_task_name,
            "payloads": fake_run.workflow_payloads,
            "profile_configs": fake_run.profile_configs,
            "outputs": result.outputs,
            "persisted": {n: p.output_persisted for n, p in result.persistence.items()},
            "ran": ran(log),
        }
    assert observed["dask"] == observed["default"]
    dask = observed["dask"]
    assert dask["run_status"] == ("failed" if fail else "succeeded")
    assert dask["state"]["status"] == ("failed" if fail else "succeeded")
    assert dask["error_task"] == ("check" if fail else None)
    assert dask["persisted"]["compute"] is True


async def test_a_rerun_of_the_run_resumes_on_dask(
    dask_runtime: DaskRuntime, tmp_path: Path
) -> None:
    fail_flag = tmp_path / "fail"
    log = tmp_path / "ran.log"
    builder = WorkflowBuilder(name="chain")

    @builder.task(name="A")
    def a(ctx: TaskContext) -> int:
        note(log, "A")
        return 1

    @builder.task(name="B", depends_on=["A"])
    def b(ctx: TaskContext) -> int:
        note(log, "B")
        if fail_flag.exists():
            raise RuntimeError("B diverged")
        return int(ctx.inputs) + 1

    @builder.task(name="C", depends_on=["B"])
    def c(ctx: TaskContext) -> int:
        note(log, "C")
        return int(ctx.inputs) * 10

    spec = builder.build()

    def attempt(number: int) -> FakeRun:
        context = FakeRunContext(root=tmp_path)
        context.execution_id = f"exec{number:04d}"
        context.execution_dir = context.run_dir / "execution" / context.execution_id
        return FakeRun(context)

    fail_flag.touch()
    first = await run(spec, dask_runtime, run=attempt(1), raise_on_failure=False)
    assert first.failed == ["B"] and first.skipped == ["C"]
    fail_flag.unlink()
    log.unlink()
    second = await run(spec, dask_runtime, run=attempt(2))
    assert ran(log) == ["B", "C"]  # A's body did not run again
    assert second.statuses == {
        "A": TaskStatus.RESUMED,
        "B": TaskStatus.SUCCEEDED,
        "C": TaskStatus.SUCCEEDED,
    }
    assert second.outputs == {"A": 1, "B": 2, "C": 20}
    assert second.resumed_from == "exec0001"


async def test_run_context_is_not_available_in_workers(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="remote-context")

    @wf.task
    def probe(ctx: TaskContext) -> bool:
        return ctx.run_context is None

    @wf.task
    def record(ctx: TaskContext) -> None:
        ctx.set_result("loss", 0.1)

    context = FakeRunContext()
    result = await run(wf.build(), dask_runtime, run=FakeRun(context), raise_on_failure=False)
    assert result["probe"] is True
    error = result.errors["record"]
    assert isinstance(error.exception, NoRunContextError)
    assert "ctx.set_result" in error.message
    assert "Dask runtime runs tasks remotely" in error.message
    assert context.results == {}


# -- scheduling, caching, hooks -----------------------------------------------------------------


async def test_keys_are_named_after_the_task_and_an_execution_token(
    dask_runtime: DaskRuntime,
) -> None:
    wf = workflow(name="keys")

    @wf.task
    def probe(ctx: TaskContext) -> str:
        return str(distributed.get_worker().get_current_task())

    spec = wf.build()
    first = (await run(spec, dask_runtime)).output
    second = (await run(spec, dask_runtime)).output
    assert first.startswith("probe-") and second.startswith("probe-")
    assert first != second


async def test_max_concurrency_bounds_the_tasks_in_flight(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="bounded")
    for i in range(4):
        wf.task(name=f"t{i}")(lambda ctx: time.sleep(0.05))
    spec = wf.build()

    def overlaps(result: WorkflowResult) -> int:
        spans = sorted((t.started_at, t.finished_at) for t in result.timings.values())
        return sum(1 for (_, end), (start, _) in zip(spans, spans[1:], strict=False) if start < end)

    assert overlaps(await run(spec, dask_runtime, max_concurrency=1)) == 0
    assert overlaps(await run(spec, dask_runtime)) > 0  # two workers run two at a time


async def test_cache_entries_are_shared_with_the_default_runtime(
    dask_runtime: DaskRuntime, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    wf = workflow(name="cached")

    @wf.task(cache=True)
    def square(ctx: TaskContext) -> int:
        note(log, "square")
        return int(ctx.inputs) ** 2

    @wf.task(depends_on=["square"])
    def report(ctx: TaskContext) -> str:
        return f"value={ctx.inputs}"

    spec = wf.build()
    cache = Caching(store=MemoryCacheStore())
    on_dask = await run(spec, dask_runtime, 3, cache=cache)
    on_default = await run(spec, create_default_runtime(), 3, cache=cache)
    on_dask_again = await run(spec, dask_runtime, 3, cache=cache)
    on_dask_other_input = await run(spec, dask_runtime, 4, cache=cache)
    assert ran(log) == ["square", "square"]  # once for 3, once for 4
    assert on_dask.statuses["square"] is TaskStatus.SUCCEEDED
    assert on_default.statuses["square"] is TaskStatus.CACHED
    assert on_dask_again.statuses["square"] is TaskStatus.CACHED
    assert on_dask_again.output == on_dask.output == "value=9"
    assert on_dask_other_input.output == "value=16"
    assert len(cache) == 2


async def test_config_read_in_a_worker_is_part_of_the_key(
    dask_runtime: DaskRuntime, tmp_path: Path
) -> None:
    log = tmp_path / "ran.log"
    wf = workflow(name="cached-config")

    @wf.task(cache=True)
    def cutoff(ctx: TaskContext) -> float:
        note(log, "cutoff")
        return float(ctx.config["cutoff"])

    spec, cache = wf.build(), Caching(MemoryCacheStore())
    statuses = []
    for config in ({"cutoff": 1, "label": "a"}, {"cutoff": 1, "label": "b"}, {"cutoff": 2}):
        result = await run(spec, dask_runtime, cache=cache, config=config)
        statuses.append(result.statuses["cutoff"])
    assert statuses == [TaskStatus.SUCCEEDED, TaskStatus.CACHED, TaskStatus.SUCCEEDED]
    assert result.cache["cutoff"] == "miss: run: config['cutoff'] changed: 1 -> 2"
    assert ran(log) == ["cutoff", "cutoff"]
    default = await run(spec, create_default_runtime(), cache=cache, config={"cutoff": 2})
    assert (default.statuses["cutoff"], default["cutoff"]) == (TaskStatus.CACHED, 2.0)


async def test_cache_failures_fail_the_task_and_uncacheable_inputs_run_uncached(
    dask_runtime: DaskRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    wf = workflow(name="cache-edges")

    @wf.task(cache=True)
    def make_function(ctx: TaskContext) -> Any:
        return lambda x: x  # cloudpickle carries it back from the worker; the cache cannot store it

    @wf.task(cache=True)
    def echo(ctx: TaskContext) -> str:
        return type(ctx.inputs).__name__

    class Unhashable:
        pass

    spec = wf.build()
    stored = await run(
        spec, dask_runtime, 1, cache=Caching(MemoryCacheStore()), raise_on_failure=False
    )
    assert stored.statuses == {"make_function": TaskStatus.FAILED, "echo": TaskStatus.SUCCEEDED}
    assert stored.errors["make_function"].type == "CacheStoreError"
    assert (
        "cannot cache the result of task 'make_function'" in stored.errors["make_function"].message
    )
    with caplog.at_level("WARNING", logger="molexp.workflow"):
        uncached = await run(spec, dask_runtime, Unhashable(), cache=Caching(MemoryCacheStore()))
    assert uncached["echo"] == "Unhashable"
    assert "task 'echo' of workflow 'cache-edges' runs uncached" in caplog.text

    class BrokenCache:
        def lookup(self, snapshot: Any, inputs: Any, *, run: Any = None) -> Any:
            raise OSError("cache disk is gone")

        def put(self, snapshot: Any, inputs: Any, value: Any, *, reads: Any = ()) -> str:
            raise AssertionError("never reached")

    broken = await run(spec, dask_runtime, 1, cache=BrokenCache(), raise_on_failure=False)
    assert set(broken.statuses.values()) == {TaskStatus.FAILED}
    assert broken.errors["echo"].message == "cache disk is gone"


async def test_remote_executor_runs_hinted_tasks_on_the_client(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="hinted")
    calls: list[tuple[str, Any, bool]] = []

    @wf.task
    def prepare(ctx: TaskContext) -> int:
        return 20

    @wf.task(depends_on=["prepare"], remote={"partition": "gpu"})
    def train(ctx: TaskContext) -> int:
        raise AssertionError("runs through the remote executor")

    @wf.task(depends_on=["train"])
    def evaluate(ctx: TaskContext) -> int:
        return int(ctx.inputs) + 1

    async def executor(registration: Any, ctx: TaskContext) -> int:
        calls.append((registration.name, dict(registration.remote), ctx.run_context is not None))
        return int(ctx.inputs) * 2

    context = FakeRunContext()
    spec = wf.build()
    result = await run(spec, dask_runtime, run_context=context, remote_executor=executor)
    assert calls == [("train", {"partition": "gpu"}, True)]
    assert result.outputs == {"prepare": 20, "train": 40, "evaluate": 41}

    async def unpicklable(registration: Any, ctx: TaskContext) -> Any:
        return threading.Lock()

    async def failing(registration: Any, ctx: TaskContext) -> Any:
        raise RuntimeError("no GPU left")

    kept = await run(spec, dask_runtime, remote_executor=unpicklable, raise_on_failure=False)
    assert kept.statuses["train"] is TaskStatus.SUCCEEDED  # it never had to leave the client
    assert kept.statuses["evaluate"] is TaskStatus.FAILED
    assert "output of task 'train' (lock) cannot be pickled" in kept.errors["evaluate"].message
    lost = await run(spec, dask_runtime, remote_executor=failing, raise_on_failure=False)
    assert lost.statuses == {
        "prepare": TaskStatus.SUCCEEDED,
        "train": TaskStatus.FAILED,
        "evaluate": TaskStatus.SKIPPED,
    }
    assert lost.errors["train"].message == "no GPU left"


async def test_start_exposes_live_statuses_and_cancel_stops_the_rest(
    dask_runtime: DaskRuntime,
) -> None:
    wf = workflow(name="cancel")

    @wf.task
    def slow(ctx: TaskContext) -> None:
        time.sleep(1.0)

    @wf.task(depends_on=["slow"])
    def after(ctx: TaskContext) -> None:
        return None

    execution = await wf.build().start(runtime=dask_runtime)
    deadline = time.monotonic() + TIMEOUT
    while execution.statuses["slow"] is not TaskStatus.RUNNING:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    assert execution.statuses["after"] is TaskStatus.PENDING
    execution.cancel()
    result = await asyncio.wait_for(execution, TIMEOUT)
    assert result.status is WorkflowStatus.CANCELLED
    assert result.statuses == {"slow": TaskStatus.CANCELLED, "after": TaskStatus.CANCELLED}


async def test_one_runtime_executes_several_workflows_concurrently(
    dask_runtime: DaskRuntime,
) -> None:
    wf = workflow(name="again")
    wf.task(name="t")(lambda ctx: ctx.inputs * 10)
    spec = wf.build()
    results = await asyncio.gather(*(run(spec, dask_runtime, i) for i in range(5)))
    assert [r.output for r in results] == [0, 10, 20, 30, 40]


def test_execute_sync_works_with_the_dask_runtime(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="sync")
    wf.task(name="t")(lambda ctx: ctx.inputs + 1)
    assert wf.build().execute_sync(1, runtime=dask_runtime).output == 2


async def test_actor_workflows_are_rejected_before_anything_runs(
    dask_runtime: DaskRuntime,
) -> None:
    class Producer(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            ctx.close("items")

    builder = WorkflowBuilder(name="actors")
    builder.add(Producer())
    with pytest.raises(WorkflowValidationError, match="actor task\\(s\\) 'producer'"):
        await builder.build().execute(runtime=dask_runtime)


async def test_a_given_client_is_shared_and_left_open(dask_runtime: DaskRuntime) -> None:
    wf = workflow(name="shared")
    wf.task(name="t")(lambda ctx: 5)
    spec = wf.build()
    borrowed = DaskRuntime(client=dask_runtime.client)
    async with borrowed:
        assert (await run(spec, borrowed)).output == 5
    assert "closed" in repr(borrowed)
    assert (await run(spec, dask_runtime)).output == 5


async def test_an_owned_local_cluster_is_closed_with_the_runtime() -> None:
    wf = workflow(name="owned")
    wf.task(name="t")(lambda ctx: 6)
    spec = wf.build()
    async with DaskRuntime(n_workers=1, processes=False) as owned:
        assert (await run(spec, owned)).output == 6
        client = owned.client
    assert client.status == "closed"
    with pytest.raises(RuntimeError, match="'owned': this DaskRuntime is closed"):
        await spec.execute(runtime=owned)


# -- workers dying --------------------------------------------------------------------------------


async def test_a_task_whose_worker_dies_is_retried_never_lost(
    dask_runtime: DaskRuntime, tmp_path: Path
) -> None:
    marker = tmp_path / "first-try"
    wf = workflow(name="dying")

    @wf.task
    def fragile(ctx: TaskContext) -> str:
        if not marker.exists():
            marker.touch()
            os._exit(1)  # the worker process dies mid-task
        return "survived"

    @wf.task(depends_on=["fragile"])
    def after(ctx: TaskContext) -> str:
        return f"after {ctx.inputs}"

    result = await run(wf.build(), dask_runtime, raise_on_failure=False)
    assert marker.exists()
    assert set(result.statuses.values()) <= TERMINAL
    assert result.statuses["fragile"] in {TaskStatus.SUCCEEDED, TaskStatus.FAILED}
    if result.statuses["fragile"] is TaskStatus.SUCCEEDED:
        assert result.output == "after survived"
    else:
        assert result.statuses["after"] is TaskStatus.SKIPPED


async def test_a_task_that_keeps_killing_workers_is_reported_failed(tmp_path: Path) -> None:
    import dask

    wf = workflow(name="killer")

    @wf.task
    def killer(ctx: TaskContext) -> None:
        os._exit(1)

    @wf.task
    def bystander(ctx: TaskContext) -> int:
        return 3

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        async with DaskRuntime(n_workers=1) as runtime:
            result = await run(wf.build(), runtime, raise_on_failure=False)
    assert result.statuses["killer"] is TaskStatus.FAILED
    assert result.errors["killer"].type == "KilledWorker"
    assert result.statuses["bystander"] in TERMINAL
