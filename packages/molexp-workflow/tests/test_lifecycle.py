"""The runtime-independent run lifecycle (``_lifecycle.execute_with_lifecycle``).

``sequential_drive`` below is a deliberately different "runtime" (one task after another, no
pydantic-graph) that supplies only ``drive``: everything about the run comes from the lifecycle.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import (
    TaskContext,
    TaskError,
    TaskStatus,
    TaskTiming,
    WorkflowFailed,
    WorkflowResult,
    WorkflowStatus,
    workflow,
)
from molexp.workflow._lifecycle import (
    Drive,
    execute_with_lifecycle,
    merged_config,
    resolve_cache,
    validate_run_arguments,
    workflow_payload,
)
from molexp.workflow._resume import ResumePlan, journal_path, read_journal
from molexp.workflow.cache import Caching, MemoryCacheStore, WorkspaceCacheStore
from molexp.workflow.context import ExecutionScope
from molexp.workflow.protocols import RunContextProtocol
from molexp.workflow.runtime import ExecutionOptions
from molexp.workflow.spec import Workflow
from workflow_fakes import FakeRun, FakeRunContext

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def _spec(fail: bool = False) -> Workflow:
    wf = workflow(name="life")

    @wf.task(name="A")
    async def a(ctx: TaskContext) -> int:
        calls["A"] += 1
        return int(ctx.config.get("start", 1))

    @wf.task(name="B", depends_on=["A"])
    async def b(ctx: TaskContext) -> int:
        calls["B"] += 1
        if fail:
            raise ValueError("B broke")
        return int(ctx.inputs) * 2

    return wf.build()


def sequential_drive(spec: Workflow, options: ExecutionOptions) -> Drive:
    """A minimal runtime: runs the tasks in topological order, honouring the ResumePlan."""

    async def drive(
        run_context: RunContextProtocol | None, plan: ResumePlan | None
    ) -> WorkflowResult:
        started = datetime.now(UTC)
        scope = ExecutionScope(
            spec.name, spec.workflow_id, merged_config(run_context, options), run_context
        )
        resumed = plan.resumed_outputs if plan is not None else {}
        outputs: dict[str, Any] = {}
        statuses: dict[str, TaskStatus] = {}
        timings: dict[str, TaskTiming] = {}
        errors: dict[str, TaskError] = {}
        for name in spec.topological_order():
            registration = spec.tasks[name]
            if name in resumed:
                statuses[name], outputs[name] = TaskStatus.RESUMED, resumed[name]
                continue
            if any(
                statuses[dep] is not TaskStatus.SUCCEEDED and dep not in resumed
                for dep in registration.depends_on
            ):
                statuses[name] = TaskStatus.SKIPPED
                continue
            deps = registration.depends_on
            inputs = options.inputs if not deps else outputs[deps[0]]
            begin = time.time()
            try:
                output = await registration.runner(TaskContext(scope, name, inputs))
            except Exception as exc:
                statuses[name] = TaskStatus.FAILED
                errors[name] = TaskError.from_exception(exc)
                continue
            finally:
                timings[name] = TaskTiming(begin, time.time())
            statuses[name], outputs[name] = TaskStatus.SUCCEEDED, output
            if plan is not None:
                plan.record_success(name, output)
        failed = list(errors)
        return WorkflowResult(
            workflow_name=spec.name,
            workflow_id=spec.workflow_id,
            status=WorkflowStatus.FAILED if failed else WorkflowStatus.SUCCEEDED,
            outputs=outputs,
            statuses=statuses,
            timings=timings,
            errors=errors,
            failed=failed,
            skipped=[n for n, s in statuses.items() if s is TaskStatus.SKIPPED],
            sinks=("B",),
            started_at=started,
            finished_at=datetime.now(UTC),
        )

    return drive


async def _execute(
    spec: Workflow,
    run: FakeRun | None = None,
    run_context: FakeRunContext | None = None,
    **kwargs: Any,
) -> WorkflowResult:
    options = validate_run_arguments(spec, run, run_context, None, kwargs)
    return await execute_with_lifecycle(
        spec,
        options,
        run=run,
        run_context=run_context,
        profile_config=None,
        drive=sequential_drive(spec, options),
    )


def _context(root: Path, execution_id: str, **kwargs: Any) -> FakeRunContext:
    context = FakeRunContext(root=root, **kwargs)
    context.execution_id = execution_id
    context.execution_dir = context.run_dir / "execution" / execution_id
    return context


async def test_another_runtime_gets_the_whole_run_lifecycle(tmp_path: Path) -> None:
    first = FakeRun(_context(tmp_path, "one"))
    with pytest.raises(WorkflowFailed) as info:
        await _execute(_spec(fail=True), first)
    assert info.value.task_name == "B"
    assert first.status == "failed" and first.error_task_name == "B"
    assert first.events == ["enter", "set_workflow", "exit-failed"]
    assert first.context.execution_states[0]["tasks"]["A"]["output_persisted"] is True
    calls.clear()
    second = FakeRun(_context(tmp_path, "two"))
    result = await _execute(_spec(), second)
    assert result.statuses == {"A": TaskStatus.RESUMED, "B": TaskStatus.SUCCEEDED}
    assert calls == {"B": 1}
    assert result.resumed_from == "one"
    assert second.status == "succeeded"
    state = second.context.execution_states[0]
    assert state["resumed"] == ["A"] and state["tasks"]["B"]["output_persisted"] is True


async def test_drive_gets_no_context_and_no_plan_without_a_run() -> None:
    seen: list[tuple[object, object]] = []
    spec = _spec()
    options = validate_run_arguments(spec, None, None, None, {})
    inner = sequential_drive(spec, options)

    async def drive(
        run_context: RunContextProtocol | None, plan: ResumePlan | None
    ) -> WorkflowResult:
        seen.append((run_context, plan))
        return await inner(run_context, plan)

    result = await execute_with_lifecycle(
        spec, options, run=None, run_context=None, profile_config=None, drive=drive
    )
    assert result.output == 2 and seen == [(None, None)]


async def test_run_context_only_records_state_and_resumes_without_opening_anything(
    tmp_path: Path,
) -> None:
    first = _context(tmp_path, "one")
    with pytest.raises(WorkflowFailed):
        await _execute(_spec(fail=True), run_context=first)
    assert first.failures == [] and len(first.execution_states) == 1
    second = _context(tmp_path, "two")
    result = await _execute(_spec(fail=True), run_context=second, raise_on_failure=False)
    assert result.status is WorkflowStatus.FAILED and result.resumed == ["A"]
    assert second.execution_states[0]["resumed_from"] == "one"


async def test_a_drive_that_raises_still_flushes_the_journal_and_fails_the_run(
    tmp_path: Path,
) -> None:
    spec = _spec()
    run = FakeRun(_context(tmp_path, "one"))
    options = validate_run_arguments(spec, run, None, None, {})

    async def drive(
        run_context: RunContextProtocol | None, plan: ResumePlan | None
    ) -> WorkflowResult:
        assert plan is not None
        plan.record_success("A", 1)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        await execute_with_lifecycle(
            spec, options, run=run, run_context=None, profile_config=None, drive=drive
        )
    assert run.status == "failed" and run.context.execution_states == []
    journal = read_journal(journal_path(run.context.execution_dir))
    assert journal is not None and list(journal.tasks) == ["A"]


async def test_a_plan_that_cannot_be_opened_does_not_fail_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> ResumePlan:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ResumePlan, "open", broken)
    run = FakeRun(_context(tmp_path, "one"))
    result = await _spec().execute(run=run)
    assert result.output == 2 and run.status == "succeeded"
    assert result.persistence == {}
    assert "will not be persisted" in caplog.text and "disk on fire" in caplog.text


class RunWithSnapshot(FakeRun):
    """A fake run exposing ``metadata.workflow_snapshot`` like the workspace's ``Run``."""

    class Metadata:
        def __init__(self) -> None:
            self.workflow_snapshot: dict[str, Any] | None = None

    def __init__(self, context: FakeRunContext) -> None:
        super().__init__(context)
        self.metadata = self.Metadata()

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        super().set_workflow(payload)
        self.metadata.workflow_snapshot = dict(payload)


async def test_snapshot_payload_keeps_stored_and_caller_keys(tmp_path: Path) -> None:
    spec = _spec()
    run = RunWithSnapshot(_context(tmp_path, "one"))
    run.metadata.workflow_snapshot = {"script": "/old.py", "cwd": "/work", "source_hash": "s"}
    await spec.execute(run=run, snapshot={"script": "/abs/new.py", "git_commit": "abc"})
    assert run.workflow_payloads == [
        {
            "script": "/abs/new.py",
            "cwd": "/work",
            "source_hash": "s",
            "git_commit": "abc",
            "workflow_id": spec.workflow_id,
            "workflow_name": "life",
            "name": "life",
            "version": 1,
        }
    ]
    from molexp.workflow import WorkflowSnapshotRef

    ref = WorkflowSnapshotRef.from_payload(run.workflow_payloads[0])
    assert (ref.workflow_id, ref.workflow_name, ref.git_commit) == (spec.workflow_id, "life", "abc")


async def test_an_unchanged_snapshot_is_not_written_again(tmp_path: Path) -> None:
    spec = _spec()
    run = RunWithSnapshot(_context(tmp_path, "one"))
    await spec.execute(run=run, snapshot={"script": "/a.py"})
    run.context = _context(tmp_path, "two")
    await spec.execute(run=run, snapshot={"script": "/a.py"})
    assert run.events == ["enter", "set_workflow", "exit", "enter", "exit"]


async def test_a_contradicting_snapshot_is_refused_before_the_run_opens(tmp_path: Path) -> None:
    spec = _spec()
    run = FakeRun(_context(tmp_path, "one"))
    with pytest.raises(ValueError, match="snapshot\\['workflow_id'\\] is 'other'"):
        await spec.execute(run=run, snapshot={"workflow_id": "other"})
    with pytest.raises(ValueError, match="snapshot\\['name'\\] is 'x'.*name 'life'"):
        await spec.execute(run=run, snapshot={"name": "x"})
    assert run.events == []
    assert workflow_payload(spec, run, {"workflow_name": "life"}) is not None


async def test_option_errors_name_the_workflow_and_value() -> None:
    spec = _spec()
    with pytest.raises(ValueError, match="'life': snapshot= is stored on the run"):
        await spec.execute(snapshot={"script": "x"})
    with pytest.raises(TypeError, match="'life': resume must be True or False, got 'yes'"):
        await spec.execute(resume="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="snapshot must be a mapping with string keys"):
        await spec.execute(run=FakeRun(), snapshot={1: "x"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="snapshot must be a mapping"):
        await spec.execute(run=FakeRun(), snapshot=["script"])  # type: ignore[arg-type]


def test_merged_config_overlays_the_call_config_on_the_run_config() -> None:
    context = FakeRunContext(config={"a": 1, "b": 1})
    options = ExecutionOptions(config={"b": 2, "c": 3})
    assert merged_config(context, options) == {"a": 1, "b": 2, "c": 3}
    assert merged_config(None, options) == {"b": 2, "c": 3}
    assert merged_config(None, ExecutionOptions()) == {}


def test_resolve_cache_prefers_the_argument_then_the_workspace(tmp_path: Path) -> None:
    explicit = Caching(MemoryCacheStore())
    spec = workflow(name="cached").build()
    run_context = FakeRunContext(root=tmp_path)
    assert resolve_cache(ExecutionOptions(cache=explicit), run_context, spec) is explicit
    under_run = resolve_cache(ExecutionOptions(), run_context, spec)
    assert isinstance(under_run.store, WorkspaceCacheStore)
    assert under_run.store.store_dir == tmp_path / ".subsystems" / "workflow.cache"
    process_wide = resolve_cache(ExecutionOptions(), None, spec)
    assert process_wide is resolve_cache(ExecutionOptions(), None, spec)


@contextlib.contextmanager
def _no_run_dir_writes(root: Path) -> Iterator[None]:
    before = sorted(root.rglob("*"))
    yield
    assert sorted(root.rglob("*")) == before


async def test_without_a_run_nothing_is_written(tmp_path: Path) -> None:
    with _no_run_dir_writes(tmp_path):
        result = await _execute(_spec())
    assert result.output == 2


class RunStartingWithWorkflow(FakeRun):
    """A fake run that, like the workspace's ``Run``, stores the workflow in its start write."""

    START_RECORDS_WORKFLOW = True

    @contextlib.contextmanager
    def start(  # type: ignore[override]
        self, profile_config: Any = None, workflow: Mapping[str, Any] | None = None
    ) -> Iterator[FakeRunContext]:
        self.events.append("start-with-workflow" if workflow is not None else "start-alone")
        if workflow is not None:
            self.workflow_payloads.append(dict(workflow))
        with super().start(profile_config) as context:
            yield context


async def test_a_run_that_records_the_workflow_at_start_gets_it_there(tmp_path: Path) -> None:
    # One run.json write (and index update) fewer per execution under a workspace run.
    spec = _spec()
    run = RunStartingWithWorkflow(_context(tmp_path, "one"))
    await spec.execute(run=run)
    assert run.events == ["start-with-workflow", "enter", "exit"]
    assert [payload["workflow_id"] for payload in run.workflow_payloads] == [spec.workflow_id]
    plain = FakeRun(_context(tmp_path, "two"))
    await spec.execute(run=plain)
    assert plain.events == ["enter", "set_workflow", "exit"]
