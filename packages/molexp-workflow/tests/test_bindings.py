"""The workflow <-> experiment binding registry and promote_callable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import NoRunContextError, TaskContext, Workflow, WorkflowFailed, workflow
from molexp.workflow.bindings import (
    bound_workflows,
    clear_bindings,
    get_workflow,
    promote_callable,
    set_workflow,
)
from workflow_fakes import FakeRunContext


@dataclass
class FakeWorkspace:
    root: Path


@dataclass
class FakeProject:
    id: str
    workspace: FakeWorkspace


@dataclass
class FakeExperiment:
    id: str
    project: FakeProject | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    clear_bindings()
    yield
    clear_bindings()


def _spec(name: str) -> Workflow:
    wf = workflow(name=name)

    @wf.task
    async def only(ctx: TaskContext) -> str:
        return name

    return wf.build()


def test_rebinding_replaces_the_earlier_workflow() -> None:
    exp = FakeExperiment("baseline")
    first, second = _spec("first"), _spec("second")
    set_workflow(exp, first)
    set_workflow(exp, second)
    assert get_workflow(exp) is second
    assert len(bound_workflows()) == 1


def test_same_experiment_id_in_two_projects_keeps_two_bindings(tmp_path: Path) -> None:
    ws = FakeWorkspace(tmp_path)
    exp_a = FakeExperiment("baseline", FakeProject("qm9", ws))
    exp_b = FakeExperiment("baseline", FakeProject("md17", ws))
    spec_a, spec_b = _spec("a"), _spec("b")
    set_workflow(exp_a, spec_a)
    set_workflow(exp_b, spec_b)
    assert get_workflow(exp_a) is spec_a
    assert get_workflow(exp_b) is spec_b


def test_unbound_experiment_reads_back_none() -> None:
    assert get_workflow(FakeExperiment("nothing-bound")) is None


def test_binding_rejects_non_workflows_and_id_less_objects() -> None:
    with pytest.raises(TypeError, match="compiled Workflow"):
        set_workflow(FakeExperiment("x"), lambda ctx: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="string `id`"):
        set_workflow(object(), _spec("y"))


def test_promote_callable_runs_the_callable_with_the_run_context(tmp_path: Path) -> None:
    seen: list[Any] = []

    def train(run_ctx: Any) -> str:
        seen.append(run_ctx)
        return "trained"

    spec = promote_callable(train)
    assert list(spec.tasks) == ["train"]
    rc = FakeRunContext(root=tmp_path)
    result = spec.execute_sync(run_context=rc)
    assert result["train"] == "trained"
    assert seen == [rc]


async def test_promote_callable_awaits_async_callables_and_needs_a_run(tmp_path: Path) -> None:
    async def evaluate(run_ctx: Any) -> int:
        return 7

    spec = promote_callable(evaluate, name="evaluate-model")
    assert list(spec.tasks) == ["evaluate-model"]
    result = await spec.execute(run_context=FakeRunContext(root=tmp_path))
    assert result["evaluate-model"] == 7
    with pytest.raises(WorkflowFailed) as info:
        await spec.execute()
    assert isinstance(info.value.result.errors["evaluate-model"].exception, NoRunContextError)


def test_promote_callable_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="callable"):
        promote_callable(42)  # type: ignore[arg-type]
