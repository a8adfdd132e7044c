"""cache=True tasks are keyed on what they read from their run, and only on that.

Runs are ``FakeRunContext`` objects (the workflow layer's view of a workspace run): several of
them with different parameters stand for the runs of several experiments of one script, all
sharing one cache.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workflow import Caching, MemoryCacheStore, TaskContext, TaskStatus, workflow
from molexp.workflow.reads import ReadRecorder, RunRead, RunValues
from molexp.workflow.snapshot import TaskSnapshot
from molexp.workflow.spec import Workflow
from workflow_fakes import FakeRunContext

Body = Callable[[TaskContext], Any]


def _spec(body: Body, name: str = "task") -> Workflow:
    wf = workflow(name="reads")
    wf.task(cache=True, name=name)(body)
    return wf.build()


class Runs:
    """Executes one workflow under runs of several experiments, sharing one cache."""

    def __init__(self, root: Path, spec: Workflow) -> None:
        self.root = root
        self.spec = spec
        self.cache = Caching(MemoryCacheStore())
        self.count = 0

    def execute(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        run: str | None = None,
        with_run: bool = True,
        task: str = "task",
    ) -> tuple[TaskStatus, Any]:
        self.count += 1
        options: dict[str, Any] = {"cache": self.cache, "config": config}
        if with_run:
            root = self.root / (run or f"run{self.count}")
            options["run_context"] = FakeRunContext(params=params, root=root)
        result = self.spec.execute_sync(**options)
        return result.statuses[task], result[task]


def params_via_run_context(ctx: TaskContext) -> Any:
    run_context = ctx.run_context
    assert run_context is not None
    return run_context.params["x"] * 10


def params_via_ctx(ctx: TaskContext) -> Any:
    return ctx.params["x"] * 10


@pytest.mark.parametrize("body", [params_via_run_context, params_via_ctx])
def test_run_parameters_read_by_the_task_are_part_of_the_key(tmp_path: Path, body: Body) -> None:
    """The issue's case: three experiments x=1, 2, 3 all recorded e = 10."""
    runs = Runs(tmp_path, _spec(body))
    assert [runs.execute({"x": x}) for x in (1, 2, 3)] == [
        (TaskStatus.SUCCEEDED, 10),
        (TaskStatus.SUCCEEDED, 20),
        (TaskStatus.SUCCEEDED, 30),
    ]
    assert runs.execute({"x": 2, "replica": 1}) == (TaskStatus.CACHED, 20)


def test_a_task_that_never_reads_a_parameter_hits_across_experiments(tmp_path: Path) -> None:
    def lattice(ctx: TaskContext) -> float:
        return 3.6 * ctx.params.get("scale", 1.0)

    runs = Runs(tmp_path, _spec(lattice))
    assert runs.execute({"x": 1, "seed": 0}) == (TaskStatus.SUCCEEDED, 3.6)
    assert runs.execute({"x": 2, "seed": 1}) == (TaskStatus.CACHED, 3.6)
    assert runs.execute({"x": 2, "scale": 2.0}) == (TaskStatus.SUCCEEDED, 7.2)


def test_config_keys_the_task_reads_are_part_of_the_key_and_others_are_not(
    tmp_path: Path,
) -> None:
    def cutoff(ctx: TaskContext) -> float:
        return float(ctx.config["cutoff"])

    runs = Runs(tmp_path, _spec(cutoff))
    assert runs.execute(config={"cutoff": 5, "label": "a"}) == (TaskStatus.SUCCEEDED, 5.0)
    assert runs.execute(config={"label": "b", "cutoff": 5}) == (TaskStatus.CACHED, 5.0)
    assert runs.execute(config={"cutoff": 6, "label": "b"}) == (TaskStatus.SUCCEEDED, 6.0)


def test_a_missing_key_counts_as_read(tmp_path: Path) -> None:
    def optional(ctx: TaskContext) -> Any:
        return ctx.params.get("seed", "none"), "mode" in ctx.config

    runs = Runs(tmp_path, _spec(optional))
    assert runs.execute({}) == (TaskStatus.SUCCEEDED, ("none", False))
    assert runs.execute({"seed": 7}) == (TaskStatus.SUCCEEDED, (7, False))
    assert runs.execute({"seed": 7}, config={"mode": 1}) == (TaskStatus.SUCCEEDED, (7, True))
    assert runs.execute({}) == (TaskStatus.CACHED, ("none", False))


def test_iterating_the_parameters_reads_every_key(tmp_path: Path) -> None:
    def everything(ctx: TaskContext) -> dict[str, Any]:
        return dict(ctx.params)

    runs = Runs(tmp_path, _spec(everything))
    assert runs.execute({"a": 1})[0] is TaskStatus.SUCCEEDED
    assert runs.execute({"a": 1}) == (TaskStatus.CACHED, {"a": 1})
    assert runs.execute({"a": 1, "b": 2}) == (TaskStatus.SUCCEEDED, {"a": 1, "b": 2})


def test_run_identity_read_by_the_task_is_part_of_the_key(tmp_path: Path) -> None:
    def where(ctx: TaskContext) -> str:
        run_context = ctx.run_context
        assert run_context is not None
        return str(run_context.run_dir / "out.xyz")

    runs = Runs(tmp_path, _spec(where))
    first = runs.execute(run="one")
    assert first[0] is TaskStatus.SUCCEEDED
    assert runs.execute(run="one") == (TaskStatus.CACHED, first[1])
    assert runs.execute(run="two") == (TaskStatus.SUCCEEDED, str(tmp_path / "two/run/out.xyz"))


def test_with_and_without_a_run_never_share_results(tmp_path: Path) -> None:
    def maybe(ctx: TaskContext) -> Any:
        return None if ctx.run_context is None else ctx.run_context.params["x"]

    runs = Runs(tmp_path, _spec(maybe))
    assert runs.execute(with_run=False) == (TaskStatus.SUCCEEDED, None)
    assert runs.execute({"x": 4}) == (TaskStatus.SUCCEEDED, 4)
    assert runs.execute(with_run=False) == (TaskStatus.CACHED, None)


def test_the_task_name_is_read_like_any_other_value(tmp_path: Path) -> None:
    def named(ctx: TaskContext) -> str:
        return ctx.task_name

    wf = workflow(name="sweep")
    for name in ("a", "b"):
        wf.task(cache=True, name=name)(named)
    cache = Caching(MemoryCacheStore())
    first = wf.build().execute_sync(cache=cache)
    assert first.outputs == {"a": "a", "b": "b"}
    second = wf.build().execute_sync(cache=cache)
    assert second.outputs == {"a": "a", "b": "b"}
    assert set(second.statuses.values()) == {TaskStatus.CACHED}


def test_results_and_assets_read_from_the_run(tmp_path: Path) -> None:
    class Asset:
        def __init__(self, content_hash: str | None) -> None:
            self.id, self.kind, self.path, self.content_hash = "a1", "data", "d.csv", content_hash

    def uses(ctx: TaskContext) -> Any:
        run_context = ctx.run_context
        assert run_context is not None
        return run_context.get_result("energy", 0.0), ctx.find_asset("data") is not None

    spec, cache = _spec(uses), Caching(MemoryCacheStore())

    def execute(results: dict[str, Any], assets: dict[str, Any]) -> TaskStatus:
        run_context = FakeRunContext(root=tmp_path)
        run_context.results.update(results)
        run_context.assets.update(assets)
        return spec.execute_sync(cache=cache, run_context=run_context).statuses["task"]

    assert execute({}, {"data": Asset("h1")}) is TaskStatus.SUCCEEDED
    assert execute({}, {"data": Asset("h1")}) is TaskStatus.CACHED
    assert execute({}, {"data": Asset("h2")}) is TaskStatus.SUCCEEDED
    assert execute({"energy": -1.0}, {"data": Asset("h2")}) is TaskStatus.SUCCEEDED
    assert execute({"energy": -1.0}, {}) is TaskStatus.SUCCEEDED
    assert execute({"energy": -1.0}, {"data": Asset(None)}) is TaskStatus.SUCCEEDED
    assert execute({"energy": -1.0}, {"data": Asset(None)}) is TaskStatus.SUCCEEDED


def test_a_read_the_cache_cannot_repeat_runs_uncached_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def workspace_file(ctx: TaskContext) -> str:
        run_context = ctx.run_context
        assert run_context is not None
        return str(run_context.workspace.root)

    runs = Runs(tmp_path, _spec(workspace_file))
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        assert runs.execute(run="same")[0] is TaskStatus.SUCCEEDED
        assert runs.execute(run="same")[0] is TaskStatus.SUCCEEDED
    assert len(runs.cache) == 0
    assert "ran uncached: it read run_context.workspace" in caplog.text


def test_writes_to_the_run_are_not_reads(tmp_path: Path) -> None:
    def writes(ctx: TaskContext) -> int:
        ctx.set_result("e", 1)
        ctx.log("scan").append("done")
        ctx.checkpoint("step", {"i": 1})
        ctx.artifact.save("out", b"x")
        return 1

    runs = Runs(tmp_path, _spec(writes))
    assert runs.execute({"x": 1})[0] is TaskStatus.SUCCEEDED
    assert runs.execute({"x": 2}) == (TaskStatus.CACHED, 1)


def test_metrics_logged_through_the_run_context_are_passed_on_not_read() -> None:
    from molexp.workflow.context import _RecordingRunContext

    target, recorder = FakeRunContext(), ReadRecorder()
    recording = _RecordingRunContext(target, recorder)  # type: ignore[arg-type]
    recording.log_metric("loss", 0.5)
    recording.log_metrics({"acc": 1.0}, step=2, timestamp=3.0)
    recording.flush_metrics()
    assert target.metrics == [
        ("loss", 0.5, None, None),
        ("acc", 1.0, 2, 3.0),
        ("<flush>", 0.0, None, None),
    ]
    assert recorder.reads() == ()
    assert recorder.uncacheable == []


def test_a_remote_executor_keys_on_the_whole_run(tmp_path: Path) -> None:
    """The executor runs the body elsewhere: what it reads there cannot be observed."""

    async def executor(registration: Any, ctx: TaskContext) -> Any:
        return await registration.runner(ctx)

    wf = workflow(name="remote")
    wf.task(cache=True, remote={"executor": "test"})(lambda ctx: 1)
    spec, cache = wf.build(), Caching(MemoryCacheStore())

    def execute(params: dict[str, Any], run: str) -> TaskStatus:
        run_context = FakeRunContext(params=params, root=tmp_path / run)
        options = {"cache": cache, "run_context": run_context, "remote_executor": executor}
        return spec.execute_sync(**options).statuses["<lambda>"]

    assert execute({"x": 1}, "one") is TaskStatus.SUCCEEDED
    assert execute({"x": 1}, "one") is TaskStatus.CACHED
    assert execute({"x": 2}, "one") is TaskStatus.SUCCEEDED
    assert execute({"x": 1}, "two") is TaskStatus.SUCCEEDED


def test_explain_names_the_value_read_from_the_run(tmp_path: Path) -> None:
    cache = Caching(MemoryCacheStore())
    snapshot = TaskSnapshot.from_callable(params_via_ctx, task_id="task")
    recorder = ReadRecorder()
    recorder.record("params", "x", 1)
    recorder.record("config", "cutoff", 5.0)
    cache.put(snapshot, None, 10, reads=recorder.reads())

    def values(x: int, cutoff: float) -> RunValues:
        run_context = FakeRunContext(params={"x": x}, root=tmp_path)
        return RunValues(task_name="task", config={"cutoff": cutoff}, run_context=run_context)

    assert cache.lookup(snapshot, None, run=values(1, 5.0)).value == 10
    explanation = cache.explain(snapshot, None, run=values(2, 5.0))
    assert not explanation.hit
    assert explanation.differences == ("run",)
    assert explanation.details == ("run: params['x'] changed: 1 -> 2",)
    assert "the values this task read from its run" in explanation.reason
    assert not cache.lookup(snapshot, None).hit  # without a run, params['x'] is not 1


def test_the_execution_state_says_what_the_cache_answered(tmp_path: Path) -> None:
    spec, cache = _spec(params_via_ctx), Caching(MemoryCacheStore())
    contexts = [FakeRunContext(params={"x": x}, root=tmp_path / str(x)) for x in (1, 1, 2)]
    for run_context in contexts:
        spec.execute_sync(cache=cache, run_context=run_context)
    notes = [context.execution_states[0]["tasks"]["task"]["cache"] for context in contexts]
    assert notes[0].startswith("miss: no entry")
    assert notes[1:] == ["hit", "miss: run: params['x'] changed: 1 -> 2"]


def test_an_index_keeps_several_read_sets(tmp_path: Path) -> None:
    """What a task reads may depend on what it read: each combination is found again."""

    def branchy(ctx: TaskContext) -> Any:
        return ctx.params["a"] if ctx.params["mode"] == "a" else ctx.params["b"]

    runs = Runs(tmp_path, _spec(branchy))
    cases = [{"mode": "a", "a": 1, "b": 2}, {"mode": "b", "a": 1, "b": 2}]
    assert [runs.execute(params) for params in cases] == [
        (TaskStatus.SUCCEEDED, 1),
        (TaskStatus.SUCCEEDED, 2),
    ]
    assert runs.execute({"mode": "a", "a": 1, "b": 3}) == (TaskStatus.CACHED, 1)
    assert runs.execute({"mode": "b", "a": 5, "b": 2}) == (TaskStatus.CACHED, 2)


def test_run_reads_round_trip_through_the_file_store(tmp_path: Path) -> None:
    runs = Runs(tmp_path, _spec(params_via_ctx))
    runs.cache = Caching(store_dir=tmp_path / "cache")
    assert runs.execute({"x": 1})[0] is TaskStatus.SUCCEEDED
    runs.cache = Caching(store_dir=tmp_path / "cache")  # a fresh process, the same directory
    assert runs.execute({"x": 1}) == (TaskStatus.CACHED, 10)
    assert runs.execute({"x": 2}) == (TaskStatus.SUCCEEDED, 20)


# -- property: a hit exactly when the values the task reads were seen before -------------------

params_strategy = st.dictionaries(
    st.sampled_from("abcd"), st.integers(0, 2) | st.sampled_from([0.0, "0", None]), max_size=4
)


def reads_b_and_maybe_c(ctx: TaskContext) -> Any:
    b = ctx.params.get("b")
    return (b, ctx.params.get("c")) if b == 1 else (b,)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(params_strategy, min_size=1, max_size=8))
def test_a_hit_exactly_when_the_values_read_were_seen_before(
    tmp_path: Path, sequence: list[dict[str, Any]]
) -> None:
    runs = Runs(tmp_path, _spec(reads_b_and_maybe_c))
    seen: set[str] = set()
    for params in sequence:
        status, value = runs.execute(params)
        b = params.get("b")
        expected = (b, params.get("c")) if b == 1 else (b,)
        read = ["b", "c"] if b == 1 else ["b"]  # a missing key is not a key holding None
        oracle = repr([(key in params, type(params.get(key)), params.get(key)) for key in read])
        assert value == expected and [type(item) for item in value] == [
            type(item) for item in expected
        ]
        assert (status is TaskStatus.CACHED) is (oracle in seen), (params, status)
        seen.add(oracle)


def test_read_recorder_records_each_read_once_and_sorts() -> None:
    recorder = ReadRecorder()
    recorder.record("params", "x", 1)
    recorder.record("params", "x", 2)
    recorder.record_missing("config", "y")
    recorder.record("params", 3, 1)
    assert [read.name for read in recorder.reads()] == ["config['y']", "params['x']"]
    assert recorder.uncacheable == ["params[3] (not a string key)"]
    assert isinstance(recorder.reads()[0], RunRead)


def test_explain_with_a_scan_compares_the_most_recent_results_of_the_task(
    tmp_path: Path,
) -> None:
    snapshot = TaskSnapshot.from_callable(params_via_ctx, task_id="task")
    writer = Caching(store_dir=tmp_path / "cache")
    first = writer.put(snapshot, 1, "one")
    reader = Caching(store_dir=tmp_path / "cache")
    explanation = reader.explain(snapshot, 2, scan=4)
    assert (explanation.nearest_key, explanation.details) == (first, ("inputs: the inputs differ",))
    second = reader.put(snapshot, 2, "two")  # known at once: no second read of the store
    assert reader.explain(snapshot, 3, scan=1).nearest_key == second
    assert reader.explain(snapshot, 3, scan=None).nearest_key in {first, second}


def test_explain_prefers_the_entry_of_the_same_run_values(tmp_path: Path) -> None:
    """Why this run's own earlier result was not reused, rather than another experiment's."""
    cache = Caching(MemoryCacheStore())
    old = TaskSnapshot.from_callable(params_via_ctx, task_id="task")
    new = TaskSnapshot.from_callable(params_via_run_context, task_id="task")

    def reads(x: int) -> list[RunRead]:
        recorder = ReadRecorder()
        recorder.record("params", "x", x)
        return list(recorder.reads())

    cache.put(old, None, 20, reads=reads(2))
    cache.put(new, None, 10, reads=reads(1))  # more recent, but another run's values
    run_context = FakeRunContext(params={"x": 2}, root=tmp_path)
    values = RunValues(task_name="task", run_context=run_context)
    explanation = cache.explain(new, None, run=values)
    assert explanation.differences == ("code",)
    assert explanation.details[0] == "code: the task body changed"
