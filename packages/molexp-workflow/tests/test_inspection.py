"""Inspecting a compiled Workflow: tasks, dependencies, order, levels and describe()."""

from __future__ import annotations

import pytest
from molexp.workflow import (
    Actor,
    ActorContext,
    TaskContext,
    WorkflowBuilder,
    WorkflowValidationError,
    workflow,
)
from molexp.workflow.spec import Workflow


def _spec() -> Workflow:
    wf = workflow(name="pipeline")
    wf.task(name="write", depends_on=["merge"])(lambda ctx: None)
    wf.task(name="fetch")(lambda ctx: None)
    wf.task(name="merge", depends_on=["parse", "clean"], cache=True)(lambda ctx: None)
    wf.task(name="parse", depends_on=["fetch"], remote={"partition": "cpu"})(lambda ctx: None)
    wf.task(name="clean", depends_on=["fetch"])(lambda ctx: None)
    return wf.build()


def test_tasks_mapping_is_read_only_in_registration_order() -> None:
    spec = _spec()
    assert list(spec.tasks) == ["write", "fetch", "merge", "parse", "clean"]
    with pytest.raises(TypeError):
        spec.tasks["x"] = spec.tasks["fetch"]  # type: ignore[index]


def test_dependencies_order_and_levels() -> None:
    spec = _spec()
    assert spec.dependencies() == {
        "write": ("merge",),
        "fetch": (),
        "merge": ("parse", "clean"),
        "parse": ("fetch",),
        "clean": ("fetch",),
    }
    assert spec.levels() == [["fetch"], ["parse", "clean"], ["merge"], ["write"]]
    order = spec.topological_order()
    assert order == ["fetch", "parse", "clean", "merge", "write"]
    for name, deps in spec.dependencies().items():
        assert all(order.index(dep) < order.index(name) for dep in deps)


def test_describe_is_a_readable_summary() -> None:
    class Listener(Actor):
        async def execute(self, ctx: ActorContext) -> None:
            return None

    spec = _spec()
    text = spec.describe()
    assert text.splitlines()[0] == f"Workflow 'pipeline' (id {spec.workflow_id}), 5 task(s)"
    assert "  level 0:\n    fetch (FunctionTask)" in text
    assert "merge (FunctionTask) <- parse, clean [cache]" in text
    assert "parse (FunctionTask) <- fetch [remote={'partition': 'cpu'}]" in text
    builder = WorkflowBuilder(name="a")
    builder.add(Listener())
    assert "Listener) [actor]" in builder.build().describe()
    assert repr(spec).startswith("Workflow(name='pipeline'")


def test_levels_of_an_unvalidated_cyclic_workflow_raise() -> None:
    wf = workflow(name="cyclic")

    async def body(ctx: TaskContext) -> None:
        return None

    wf.task(name="a")(body)
    base = wf.build().tasks["a"]
    looped = type(base)(
        name="a",
        runner=base.runner,
        depends_on=("b",),
        task_type_qualname=base.task_type_qualname,
        task=base.task,
    )
    other = type(base)(
        name="b",
        runner=base.runner,
        depends_on=("a",),
        task_type_qualname=base.task_type_qualname,
        task=base.task,
    )
    spec = Workflow("cyclic", [looped, other])
    for inspect_graph in (spec.levels, spec.topological_order, spec.describe):
        with pytest.raises(WorkflowValidationError, match="dependency cycle"):
            inspect_graph()


def test_bind_to_and_for_experiment_use_the_binding_registry() -> None:
    from types import SimpleNamespace

    from molexp.workflow.bindings import clear_bindings

    experiment = SimpleNamespace(id="baseline-inspection-test")
    spec = _spec()
    try:
        assert Workflow.for_experiment(experiment) is None
        assert spec.bind_to(experiment) is spec
        assert Workflow.for_experiment(experiment) is spec
    finally:
        clear_bindings()
