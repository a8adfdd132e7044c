"""A workflow under a run on a 2-process LocalCluster (Python API): the tasks import a module the
workers cannot import by name, and use the run context (log, results, metrics, artifacts,
checkpoints, assets) from the worker processes; everything is recorded in the run."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import TaskContext, workflow
from molexp.workspace import Run, Workspace

distributed = pytest.importorskip("distributed")

HELPER = textwrap.dedent(
    """
    import os

    def double(x):
        return 2 * x

    def pid():
        return os.getpid()
    """
)


@pytest.fixture
def runtime() -> Iterator[Any]:
    from molexp.workflow import DaskRuntime

    with DaskRuntime(n_workers=2, processes=True) as dask_runtime:
        yield dask_runtime


@pytest.fixture
def helper(tmp_path: Path, runtime: Any) -> Iterator[Any]:
    """Imported only after the workers started: their sys.path does not reach it."""
    runtime.client  # noqa: B018 - starts the LocalCluster now
    directory = tmp_path / "code"
    directory.mkdir()
    name = f"dask_helper_{os.getpid()}"
    (directory / f"{name}.py").write_text(HELPER)
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(directory))
        sys.modules.pop(name, None)


@pytest.fixture
def run(tmp_path: Path) -> Run:
    ws = Workspace(tmp_path / "lab")
    return ws.Project("p").Experiment("e").Run(parameters={"n": 3})


async def test_tasks_on_worker_processes_use_the_run_context(
    run: Run, runtime: Any, helper: Any
) -> None:
    wf = workflow(name="on-workers")

    @wf.task
    def produce(ctx: TaskContext) -> int:
        value = helper.double(ctx.params["n"])
        ctx.log("progress").append(f"produce in pid {helper.pid()}")
        ctx.set_result("value", value)
        ctx.log_metric("loss", 1.0, step=0)
        ctx.artifact.save("numbers.json", {"value": value})
        ctx.checkpoint("after-produce", {"value": value})
        return value

    @wf.task(depends_on=["produce"])
    def consume(ctx: TaskContext) -> int:
        found = ctx.run_context.find_asset("numbers.json")  # type: ignore[union-attr]
        assert found is not None
        data_dir = ctx.run_context.get_data_dir("scratch", fallback="scratch")  # type: ignore[union-attr]
        (data_dir / "marker").write_text("x")
        ctx.log("progress").append("consume")
        ctx.set_result("total", ctx.inputs + 1)
        ctx.log_metrics({"loss": 0.5, "acc": 0.9}, step=1)
        return int(ctx.inputs) + 1

    result = await wf.build().execute(runtime=runtime, run=run)
    assert result.outputs == {"produce": 6, "consume": 7}
    run.reload()
    assert run.results == {"value": 6, "total": 7}
    lines = (run.run_dir / "logs" / "progress.log").read_text().splitlines()
    assert lines[1] == "consume" and lines[0].startswith("produce in pid ")
    assert int(lines[0].rsplit(" ", 1)[1]) != os.getpid()  # written from a worker process
    assert json.loads((run.run_dir / "artifacts" / "numbers.json").read_text()) == {"value": 6}
    artifact = run.assets.get("numbers.json")
    assert artifact is not None and artifact.producer is not None
    assert artifact.producer.task_name == "produce" and artifact.producer.host
    [checkpoint] = run.assets.list(kind="checkpoint")
    assert checkpoint.name == "after-produce" and checkpoint.producer is not None
    assert checkpoint.producer.task_name == "produce"
    assert (run.workspace.root / "scratch" / "marker").is_file()
    # Each task wrote a series file of its own; the owner recorded the summaries.
    assert len(list(run.run_dir.glob("execution/*/metrics/*.bin"))) == 2
    assert run.metric("loss").values == [1.0, 0.5]
    summary = run.metric_summaries["loss"]
    assert (summary.last, summary.min, summary.max, summary.count) == (0.5, 0.5, 1.0, 2)
    assert run.metric_summaries["acc"].last == 0.9


async def test_a_worker_killed_mid_task_leaves_the_run_whole(
    run: Run, runtime: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "killed-once"
    wf = workflow(name="killed")

    @wf.task
    def fragile(ctx: TaskContext) -> str:
        attempt = "retry" if marker.exists() else "first"
        ctx.log("fragile").append(f"{attempt} try")
        ctx.set_result("attempt", attempt)
        ctx.artifact.save("state.json", {"attempt": attempt})
        if attempt == "first":
            marker.touch()
            os._exit(1)  # the worker process dies after saving, before reporting back
        return attempt

    result = await wf.build().execute(runtime=runtime, run=run, raise_on_failure=False)
    run.reload()
    saved = json.loads((run.run_dir / "artifacts" / "state.json").read_text())
    if result.statuses["fragile"].value == "succeeded":  # retried on a fresh worker
        assert run.status.value == "succeeded"
        assert run.results == {"attempt": "retry"}  # the killed try's result never arrived
        assert (run.run_dir / "logs" / "fragile.log").read_text() == "retry try\n"
        assert saved == {"attempt": "retry"}
    else:  # the scheduler gave up: the run fails naming the reason
        assert run.status.value == "failed" and "KilledWorker" in result.errors["fragile"].type
        assert run.results == {} and saved == {"attempt": "first"}  # whole, atomically written
    leftovers = [p.name for p in run.run_dir.rglob("*") if p.name.endswith((".tmp", ".old"))]
    assert leftovers == []


async def test_cache_and_resume_under_runs_match_the_default_runtime(
    tmp_path: Path, runtime: Any
) -> None:
    from molexp.workflow import Caching, MemoryCacheStore

    calls = tmp_path / "calls.log"
    fail = tmp_path / "fail"
    experiment = Workspace(tmp_path / "lab").Project("p").Experiment("e")
    wf = workflow(name="cached")

    @wf.task(cache=True)
    def scaled(ctx: TaskContext) -> int:
        with calls.open("a") as handle:
            handle.write("scaled\n")
        ctx.set_result("scaled", ctx.params["n"] * 10)
        return int(ctx.params["n"]) * 10

    @wf.task(depends_on=["scaled"])
    def checked(ctx: TaskContext) -> int:
        with calls.open("a") as handle:
            handle.write("checked\n")
        if fail.exists():
            raise RuntimeError("not yet")
        return int(ctx.inputs) + 1

    spec, cache = wf.build(), Caching(MemoryCacheStore())
    fail.touch()
    first = experiment.Run(parameters={"n": 1})
    failed = await spec.execute(runtime=runtime, run=first, cache=cache, raise_on_failure=False)
    assert failed.statuses["checked"].value == "failed"
    fail.unlink()
    resumed = await spec.execute(runtime=runtime, run=first, cache=cache)
    assert resumed.statuses["scaled"].value == "resumed" and resumed.output == 11
    same_params = await spec.execute(
        runtime=runtime, run=experiment.Run(parameters={"n": 1}, id="again"), cache=cache
    )
    assert same_params.statuses["scaled"].value == "cached"  # the params read on the worker
    other = await spec.execute(
        runtime=runtime, run=experiment.Run(parameters={"n": 2}, id="other"), cache=cache
    )
    assert other.statuses["scaled"].value == "succeeded" and other.output == 21
    assert calls.read_text().split() == [
        "scaled",
        "checked",
        "checked",
        "checked",
        "scaled",
        "checked",
    ]
    first.reload()
    assert first.results == {"scaled": 10}
