"""Per-task resume across attempts of one run (fake Run / RunContext over a temporary run dir)."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import Actor, ActorContext, TaskContext, TaskStatus, WorkflowBuilder
from molexp.workflow._resume import (
    JOURNAL_DIR,
    JOURNAL_FILE,
    find_previous_attempt,
    journal_path,
    read_journal,
)
from molexp.workflow.runtime import EXECUTION_STATE_VERSION
from molexp.workflow.spec import Workflow
from workflow_fakes import FakeRun, FakeRunContext


class Attempts:
    """Successive attempts of one fake run sharing a run directory under ``root``."""

    def __init__(self, root: Path, *, config: dict[str, Any] | None = None) -> None:
        self.root = root
        self.config = config
        self.count = 0

    def context(self, config: dict[str, Any] | None = None) -> FakeRunContext:
        self.count += 1
        context = FakeRunContext(root=self.root, config=config or self.config)
        context.execution_id = f"exec{self.count:04d}"
        context.execution_dir = context.run_dir / "execution" / context.execution_id
        return context

    def run(self, config: dict[str, Any] | None = None) -> FakeRun:
        return FakeRun(self.context(config))


calls: Counter[str] = Counter()


def chain(
    *,
    fail_at: str | None = None,
    b_variant: int = 0,
    b_config: dict[str, Any] | None = None,
) -> Workflow:
    """A -> B -> C -> D; ``fail_at`` raises in that task, ``b_variant`` picks B's code."""
    builder = WorkflowBuilder(name="chain")

    @builder.task(name="A")
    async def a(ctx: TaskContext) -> int:
        calls["A"] += 1
        return 1 if ctx.inputs is None else int(ctx.inputs)

    async def b_plus_one(ctx: TaskContext) -> int:
        calls["B"] += 1
        return int(ctx.inputs) + 1

    async def b_plus_two(ctx: TaskContext) -> int:
        calls["B"] += 1
        return int(ctx.inputs) + 2

    b = b_plus_two if b_variant else b_plus_one
    builder.task(name="B", depends_on=["A"], config=b_config)(b)

    @builder.task(name="C", depends_on=["B"])
    async def c(ctx: TaskContext) -> int:
        calls["C"] += 1
        if fail_at == "C":
            raise RuntimeError("C diverged")
        return int(ctx.inputs) * 10

    @builder.task(name="D", depends_on=["C"])
    async def d(ctx: TaskContext) -> int:
        calls["D"] += 1
        return int(ctx.inputs) + 5

    return builder.build()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


async def _fail_then_fix(attempts: Attempts) -> None:
    first = await chain(fail_at="C").execute(run=attempts.run(), raise_on_failure=False)
    assert first.failed == ["C"] and first.skipped == ["D"]
    calls.clear()


async def test_a_fixed_rerun_resumes_the_tasks_before_the_failure(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await _fail_then_fix(attempts)
    run = attempts.run()
    result = await chain().execute(run=run)
    assert calls == {"C": 1, "D": 1}  # A and B bodies did not run
    assert result.statuses == {
        "A": TaskStatus.RESUMED,
        "B": TaskStatus.RESUMED,
        "C": TaskStatus.SUCCEEDED,
        "D": TaskStatus.SUCCEEDED,
    }
    assert result.outputs == {"A": 1, "B": 2, "C": 20, "D": 25}
    assert result.resumed == ["A", "B"]
    assert result.resumed_from == "exec0001"
    assert "A" not in result.timings and "C" in result.timings
    assert run.status == "succeeded"


async def test_state_payload_records_resume_and_persistence(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await _fail_then_fix(attempts)
    run = attempts.run()
    spec = chain()
    await spec.execute(run=run)
    (state,) = run.context.execution_states
    assert json.loads(json.dumps(state)) == state
    assert state["version"] == EXECUTION_STATE_VERSION == 4
    assert state["resumed"] == ["A", "B"]
    assert state["resumed_from"] == "exec0001"
    tasks = state["tasks"]
    assert [tasks[name]["status"] for name in "ABCD"] == [
        "resumed",
        "resumed",
        "succeeded",
        "succeeded",
    ]
    assert all(tasks[name]["output_persisted"] for name in "ABCD")
    assert tasks["A"]["started_at"] is None and tasks["C"]["duration"] >= 0
    keys = {tasks[name]["snapshot_key"] for name in "ABCD"}
    assert len(keys) == 4 and all(len(key.split(":")) == 3 for key in keys)
    journal = read_journal(journal_path(run.context.execution_dir))
    assert journal is not None and journal.complete
    assert {name: stored.record.snapshot_key for name, stored in journal.tasks.items()} == {
        name: tasks[name]["snapshot_key"] for name in "ABCD"
    }


async def test_state_payload_records_the_code_each_task_ran(tmp_path: Path) -> None:
    import pydantic

    wf = WorkflowBuilder(name="coded")

    @wf.task
    async def make(ctx: TaskContext) -> Any:
        return pydantic.TypeAdapter(int).validate_python(3)

    @wf.task(depends_on=["make"])
    async def double(ctx: TaskContext) -> int:
        return int(ctx.inputs) * 2

    run = Attempts(tmp_path).run()
    await wf.build().execute(run=run)
    (state,) = run.context.execution_states
    hashes = {name: state["tasks"][name]["code_hash"] for name in ("make", "double")}
    assert len(set(hashes.values())) == 2
    assert "TypeAdapter(int)" in state["sources"][hashes["make"]]
    assert "int(ctx.inputs) * 2" in state["sources"][hashes["double"]]
    assert state["distributions"] == {"pydantic": pydantic.VERSION}  # what `make` reaches


async def test_failed_attempt_state_names_the_failure_and_persists_the_successes(
    tmp_path: Path,
) -> None:
    attempts = Attempts(tmp_path)
    run = attempts.run()
    result = await chain(fail_at="C").execute(run=run, raise_on_failure=False)
    assert run.error_task_name == "C"
    (state,) = run.context.execution_states
    assert state["resumed"] == [] and state["resumed_from"] is None
    assert state["tasks"]["C"]["error"]["message"] == "C diverged"
    persisted = {name: state["tasks"][name]["output_persisted"] for name in "ABCD"}
    assert persisted == {"A": True, "B": True, "C": False, "D": False}
    assert state["tasks"]["C"]["persistence_detail"] is None
    assert result.persistence["C"].snapshot_key == state["tasks"]["C"]["snapshot_key"]


async def test_changing_the_code_of_b_recomputes_b_and_everything_after_it(
    tmp_path: Path,
) -> None:
    attempts = Attempts(tmp_path)
    await _fail_then_fix(attempts)
    result = await chain(b_variant=1).execute(run=attempts.run())
    assert calls == {"B": 1, "C": 1, "D": 1}
    assert result.resumed == ["A"]
    assert result.outputs == {"A": 1, "B": 3, "C": 30, "D": 35}


async def test_changing_the_config_of_b_recomputes_b_and_everything_after_it(
    tmp_path: Path,
) -> None:
    attempts = Attempts(tmp_path)
    first = await chain(b_config={"k": 1}).execute(run=attempts.run())
    assert first.succeeded
    calls.clear()
    result = await chain(b_config={"k": 2}).execute(run=attempts.run())
    assert calls == {"B": 1, "C": 1, "D": 1}
    assert result.resumed == ["A"]


async def test_changing_the_run_config_recomputes_everything(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await chain().execute(run=attempts.run({"profile_value": 1}))
    calls.clear()
    same = await chain().execute(run=attempts.run({"profile_value": 1}))
    assert same.resumed == ["A", "B", "C", "D"] and not calls
    changed = await chain().execute(run=attempts.run({"profile_value": 2}))
    assert changed.resumed == [] and calls == {"A": 1, "B": 1, "C": 1, "D": 1}
    override = await chain().execute(run=attempts.run({"profile_value": 2}), config={"x": 1})
    assert override.resumed == []


async def test_changed_inputs_recompute_the_root_tasks(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await chain().execute(7, run=attempts.run())
    calls.clear()
    assert (await chain().execute(7, run=attempts.run())).resumed == ["A", "B", "C", "D"]
    result = await chain().execute(8, run=attempts.run())
    assert result.resumed == []
    assert result.output == (8 + 1) * 10 + 5


async def test_unhashable_inputs_make_nothing_resumable(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    lock = threading.Lock()
    spec = WorkflowBuilder(name="locked")
    spec.task(name="root")(lambda ctx: 1)
    built = spec.build()
    await built.execute(lock, run=attempts.run())
    assert (await built.execute(lock, run=attempts.run())).resumed == []


async def one(ctx: TaskContext) -> int:
    return 1


async def two(ctx: TaskContext) -> int:
    return 2


async def total(ctx: TaskContext) -> int:
    calls["total"] += 1
    return int(ctx.inputs) if isinstance(ctx.inputs, int) else sum(ctx.inputs.values())


def summing(depends_on: list[str]) -> Workflow:
    builder = WorkflowBuilder(name="summing")
    builder.task(name="x")(one)
    builder.task(name="y")(two)
    builder.task(name="total", depends_on=depends_on)(total)
    return builder.build()


async def test_changed_dependencies_recompute_the_task(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    first = await summing(["x"]).execute(run=attempts.run())
    assert first["total"] == 1
    result = await summing(["x", "y"]).execute(run=attempts.run())
    assert result.resumed == ["x", "y"]
    assert result.persistence["total"].snapshot_key == first.persistence["total"].snapshot_key
    assert result["total"] == 3
    assert calls == {"total": 2}


async def test_resume_false_recomputes_everything_but_still_persists(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await chain().execute(run=attempts.run())
    calls.clear()
    run = attempts.run()
    result = await chain().execute(run=run, resume=False)
    assert result.resumed == [] and result.resumed_from is None
    assert calls == {"A": 1, "B": 1, "C": 1, "D": 1}
    assert all(p.output_persisted for p in result.persistence.values())
    calls.clear()
    assert (await chain().execute(run=attempts.run())).resumed == ["A", "B", "C", "D"]


async def test_resumed_outputs_are_carried_into_the_next_attempt(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    await _fail_then_fix(attempts)
    second = await chain(fail_at="C").execute(run=attempts.run(), raise_on_failure=False)
    assert second.resumed == ["A", "B"] and second.failed == ["C"]
    calls.clear()
    third = await chain().execute(run=attempts.run())
    assert third.resumed == ["A", "B"] and third.resumed_from == "exec0002"
    assert calls == {"C": 1, "D": 1}


async def test_previous_attempt_is_the_latest_journal_not_the_current_one(
    tmp_path: Path,
) -> None:
    attempts = Attempts(tmp_path)
    await chain().execute(run=attempts.run())
    await chain().execute(run=attempts.run(), resume=False)
    context = attempts.context()
    execution_root = context.execution_dir.parent
    latest = find_previous_attempt(context.execution_dir, context.execution_id)
    assert latest == execution_root / "exec0002" / JOURNAL_DIR / JOURNAL_FILE
    assert find_previous_attempt(execution_root / "exec0002", "exec0002") == (
        execution_root / "exec0001" / JOURNAL_DIR / JOURNAL_FILE
    )
    assert find_previous_attempt(tmp_path / "nowhere" / "x", "x") is None


def slow_chain() -> Workflow:
    """a -> b -> c where c outlasts the journal's flush interval (set short by the caller)."""
    builder = WorkflowBuilder(name="slow-chain")

    @builder.task(name="a")
    async def a(ctx: TaskContext) -> int:
        calls["a"] += 1
        return 1

    @builder.task(name="b", depends_on=["a"])
    async def b(ctx: TaskContext) -> int:
        calls["b"] += 1
        return int(ctx.inputs) + 1

    @builder.task(name="c", depends_on=["b"])
    async def c(ctx: TaskContext) -> int:
        calls["c"] += 1
        await asyncio.sleep(0.1)
        return int(ctx.inputs) * 10

    return builder.build()


async def test_a_torn_last_frame_resumes_what_the_earlier_frames_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import molexp.workflow._resume as resume

    monkeypatch.setattr(resume, "FLUSH_INTERVAL", 0.02)
    attempts = Attempts(tmp_path)
    first = attempts.run()
    await slow_chain().execute(run=first)
    path = journal_path(first.context.execution_dir)
    path.write_bytes(path.read_bytes()[:-3])  # a crash while writing the last batch (c)
    journal = read_journal(path)
    assert journal is not None and not journal.complete
    assert sorted(journal.tasks) == ["a", "b"]
    calls.clear()
    result = await slow_chain().execute(run=attempts.run())
    assert result.resumed == ["a", "b"]
    assert calls == {"c": 1}


async def test_a_corrupt_frame_ends_what_is_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import molexp.workflow._resume as resume

    monkeypatch.setattr(resume, "FLUSH_INTERVAL", 0.02)
    attempts = Attempts(tmp_path)
    first = attempts.run()
    await slow_chain().execute(run=first)
    path = journal_path(first.context.execution_dir)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a flipped bit in the last frame (c)
    path.write_bytes(bytes(data))
    calls.clear()
    result = await slow_chain().execute(run=attempts.run())
    assert result.resumed == ["a", "b"]
    assert calls == {"c": 1}


async def test_a_foreign_or_empty_journal_is_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = Attempts(tmp_path)
    first = attempts.run()
    await chain().execute(run=first)
    path = journal_path(first.context.execution_dir)
    path.write_bytes(b"not a journal")
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        assert read_journal(path) is None
    assert "is not a MolExp task journal" in caplog.text
    assert (await chain().execute(run=attempts.run())).resumed == []
    caplog.clear()
    path.write_bytes(b"")  # an attempt that crashed before its first flush wrote nothing
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        assert read_journal(path) is None
    assert caplog.text == ""


async def test_an_unpicklable_output_is_not_resumable_but_the_run_succeeds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builder = WorkflowBuilder(name="locks")

    @builder.task(name="make_lock")
    async def make_lock(ctx: TaskContext) -> threading.Lock:
        calls["make_lock"] += 1
        return threading.Lock()

    @builder.task(name="use_lock", depends_on=["make_lock"])
    async def use_lock(ctx: TaskContext) -> bool:
        calls["use_lock"] += 1
        return bool(ctx.inputs.acquire(blocking=False))

    spec = builder.build()
    attempts = Attempts(tmp_path)
    run = attempts.run()
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        result = await spec.execute(run=run)
    assert result.succeeded and run.status == "succeeded"
    assert "'make_lock'" in caplog.text and "cannot be pickled" in caplog.text
    persistence = result.persistence["make_lock"]
    assert not persistence.output_persisted
    assert persistence.detail is not None and "not picklable" in persistence.detail
    assert result.persistence["use_lock"].output_persisted
    state = run.context.execution_states[0]["tasks"]["make_lock"]
    assert state["persistence_detail"] == persistence.detail
    calls.clear()
    again = await spec.execute(run=attempts.run())
    assert again.resumed == []
    assert calls == {"make_lock": 1, "use_lock": 1}


class Unloadable:
    """Pickles fine but fails to load (as if its class had changed incompatibly)."""

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_refuse_to_load, ())


def _refuse_to_load() -> None:
    raise ImportError("class moved")


async def test_an_output_that_cannot_be_loaded_is_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    builder = WorkflowBuilder(name="unloadable")

    @builder.task(name="odd")
    async def odd(ctx: TaskContext) -> Unloadable:
        calls["odd"] += 1
        return Unloadable()

    @builder.task(name="after", depends_on=["odd"])
    async def after(ctx: TaskContext) -> str:
        calls["after"] += 1
        return type(ctx.inputs).__name__

    spec = builder.build()
    attempts = Attempts(tmp_path)
    await spec.execute(run=attempts.run())
    calls.clear()
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        result = await spec.execute(run=attempts.run())
    assert result.resumed == []
    assert calls == {"odd": 1, "after": 1}
    assert "'odd'" in caplog.text and "class moved" in caplog.text


class Pinger(Actor):
    async def execute(self, ctx: ActorContext) -> str:
        calls["pinger"] += 1
        return "pong"


async def test_actors_always_run_again(tmp_path: Path) -> None:
    builder = WorkflowBuilder(name="actors")
    builder.add(Pinger(name="pinger"))

    @builder.task(name="after", depends_on=["pinger"])
    async def after(ctx: TaskContext) -> str:
        calls["after"] += 1
        return str(ctx.inputs)

    spec = builder.build()
    attempts = Attempts(tmp_path)
    first = await spec.execute(run=attempts.run())
    assert first.persistence["pinger"].detail == "actors are always executed again"
    calls.clear()
    result = await spec.execute(run=attempts.run())
    assert result.resumed == []
    assert calls == {"pinger": 1, "after": 1}


async def test_an_unwritable_execution_dir_does_not_fail_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    attempts = Attempts(tmp_path)
    run = attempts.run()
    run.context.execution_dir.mkdir(parents=True)
    (run.context.execution_dir / JOURNAL_DIR).write_text("a file where a directory belongs")
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        result = await chain().execute(run=run)
    assert result.succeeded and run.status == "succeeded"
    assert "will not be resumable" in caplog.text
    detail = result.persistence["A"].detail
    assert detail is not None and "could not be written" in detail
    assert not any(p.output_persisted for p in result.persistence.values())


async def test_a_task_without_a_snapshot_key_runs_and_is_not_persisted(tmp_path: Path) -> None:
    builder = WorkflowBuilder(name="odd-config")
    builder.task(name="t", config={"lock": threading.Lock()})(lambda ctx: 1)
    spec = builder.build()
    attempts = Attempts(tmp_path)
    result = await spec.execute(run=attempts.run())
    assert result.output == 1
    persistence = result.persistence["t"]
    assert persistence.snapshot_key is None and not persistence.output_persisted
    assert persistence.detail is not None and persistence.detail.startswith("no snapshot key")
    assert (await spec.execute(run=attempts.run())).resumed == []


async def test_cached_tasks_are_resumed_before_the_cache_is_asked(tmp_path: Path) -> None:
    from molexp.workflow import Caching

    builder = WorkflowBuilder(name="cached")

    @builder.task(name="slow", cache=True)
    async def slow(ctx: TaskContext) -> int:
        calls["slow"] += 1
        return 42

    spec = builder.build()
    cache = Caching(store_dir=tmp_path / "cache")
    attempts = Attempts(tmp_path)
    first = await spec.execute(run=attempts.run(), cache=cache)
    assert first.statuses["slow"] is TaskStatus.SUCCEEDED
    second = await spec.execute(run=attempts.run(), cache=cache)
    assert second.statuses["slow"] is TaskStatus.RESUMED
    third = await spec.execute(run=attempts.run(), cache=cache, resume=False)
    assert third.statuses["slow"] is TaskStatus.CACHED
    assert third.persistence["slow"].output_persisted
    assert calls == {"slow": 1}


async def test_without_a_run_nothing_is_persisted(tmp_path: Path) -> None:
    result = await chain().execute()
    assert result.persistence == {} and result.resumed_from is None
    state = result.to_state()
    assert state["tasks"]["A"]["snapshot_key"] is None
    assert state["tasks"]["A"]["output_persisted"] is False


async def test_a_fresh_process_reads_the_journal_written_by_another(tmp_path: Path) -> None:
    attempts = Attempts(tmp_path)
    first = attempts.run()
    await chain().execute(run=first)
    journal = read_journal(journal_path(first.context.execution_dir))
    assert journal is not None
    assert journal.header.execution_id == "exec0001"
    assert journal.header.workflow_name == "chain"
    outputs = {name: pickle.loads(stored.record.output) for name, stored in journal.tasks.items()}
    assert outputs == {"A": 1, "B": 2, "C": 20, "D": 25}
    assert journal.tasks["C"].record.depends_on == ("B",)


async def test_tasks_sharing_one_function_share_its_snapshot_but_keep_their_names(
    tmp_path: Path,
) -> None:
    from molexp.workflow._resume import ResumePlan

    builder = WorkflowBuilder(name="sweep")
    builder.task(name="p1")(one)
    builder.task(name="p2")(one)
    builder.task(name="p3", config={"k": 1})(one)
    spec = builder.build()
    context = Attempts(tmp_path).context()
    plan = ResumePlan.open(
        spec,
        run_dir=context.run_dir,
        execution_id=context.execution_id,
        execution_dir=context.execution_dir,
        run_config={},
        inputs=None,
        resume=True,
    )
    plan.close()
    snapshots = {name: plan.snapshot(name) for name in ("p1", "p2", "p3")}
    assert {name: s.task_id for name, s in snapshots.items() if s} == {
        "p1": "p1",
        "p2": "p2",
        "p3": "p3",
    }
    keys = {name: p.snapshot_key for name, p in plan.persistence().items()}
    assert keys["p1"] == keys["p2"] != keys["p3"]
    assert plan.snapshot("unknown") is None


async def test_tasks_sharing_a_snapshot_write_their_resume_key_once_per_frame(
    tmp_path: Path,
) -> None:
    # The key string is shared, so pickle writes it once per frame and then refers to it: a
    # 1,000-task sweep's journal does not repeat a ~150-character key 1,000 times.
    from molexp.workflow._resume import ResumePlan

    builder = WorkflowBuilder(name="sweep")
    for i in range(20):
        builder.task(name=f"p{i}")(one)
    spec = builder.build()
    context = Attempts(tmp_path).context()
    plan = ResumePlan.open(
        spec,
        run_dir=context.run_dir,
        execution_id=context.execution_id,
        execution_dir=context.execution_dir,
        run_config={"lr": 0.1},
        inputs=None,
        resume=True,
    )
    for i in range(20):
        plan.record_success(f"p{i}", i)
    plan.close()
    key = plan.persistence()["p0"].snapshot_key
    assert key is not None
    data = journal_path(context.execution_dir).read_bytes()
    assert data.count(key.encode()) == 1
    journal = read_journal(journal_path(context.execution_dir))
    assert journal is not None and journal.complete
    assert {name: stored.record.snapshot_key for name, stored in journal.tasks.items()} == {
        f"p{i}": key for i in range(20)
    }
    assert {name: pickle.loads(stored.record.output) for name, stored in journal.tasks.items()} == {
        f"p{i}": i for i in range(20)
    }


async def test_outdated_tasks_names_what_an_execution_would_not_reuse(tmp_path: Path) -> None:
    from molexp.workflow import outdated_tasks

    attempts = Attempts(tmp_path)
    run = attempts.run({"profile_value": 1})
    await chain().execute(run=run)
    last = run.context.execution_dir
    config = {"profile_value": 1}
    assert outdated_tasks(chain(), last, run_config=config) == {}
    assert outdated_tasks(chain(b_variant=1), last, run_config=config) == {
        "B": "code or task config changed"
    }
    assert outdated_tasks(chain(b_config={"k": 1}), last, run_config=config) == {
        "B": "code or task config changed"
    }
    assert outdated_tasks(chain(), last, run_config={"profile_value": 2}) == dict.fromkeys(
        ["A", "B", "C", "D"], "run config changed"
    )
    assert outdated_tasks(chain(), last, run_config=config, inputs=7) == {"A": "inputs changed"}
    assert outdated_tasks(summing(["x"]), last, run_config=config) == dict.fromkeys(
        ["x", "y", "total"], "not recorded by the last attempt"
    )
    assert outdated_tasks(chain(), tmp_path / "no-attempt", run_config=config) is None


async def test_a_task_whose_dependencies_changed_is_outdated(tmp_path: Path) -> None:
    from molexp.workflow import outdated_tasks

    attempts = Attempts(tmp_path)
    run = attempts.run()
    await summing(["x"]).execute(run=run)
    last = run.context.execution_dir
    assert outdated_tasks(summing(["x", "y"]), last, run_config={}) == {
        "total": "dependencies changed"
    }
