"""The seeds' own snippets work as written (the names and shapes they document)."""

from __future__ import annotations

import graphlib

from molexp.workflow import TaskContext, workflow


def _spec() -> object:
    wf = workflow(name="seed")

    @wf.task
    async def a(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["a"])
    async def b(ctx: TaskContext) -> int:
        return ctx.inputs + 1

    @wf.task(depends_on=["a", "b"])
    async def c(ctx: TaskContext) -> int:
        return 0

    return wf.build()


def test_seed_03_a_runtime_reinterprets_spec_tasks() -> None:
    spec = _spec()
    # Seed 03, verbatim: registrations in order, each with .name and .depends_on.
    sorter = graphlib.TopologicalSorter({t.name: set(t.depends_on) for t in spec._tasks})  # type: ignore[attr-defined]
    assert list(sorter.static_order()) == ["a", "b", "c"]
    assert [t.name for t in spec._tasks] == ["a", "b", "c"]  # type: ignore[attr-defined]
    assert list(spec.tasks) == ["a", "b", "c"]  # type: ignore[attr-defined]


def test_seed_05_imports_promote_callable_from_the_workflow_package() -> None:
    from molexp.workflow import Workflow, WorkflowBuilder, promote_callable

    def train(run_context: object) -> int:
        return 7

    promoted = promote_callable(train)
    assert isinstance(promoted, Workflow)
    assert list(promoted.tasks) == ["train"]
    assert isinstance(WorkflowBuilder(name="other"), WorkflowBuilder)
