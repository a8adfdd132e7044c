"""Graph validation: cycles, unknown and self dependencies, at build() and again at execute."""

from __future__ import annotations

import pytest
from molexp.workflow import TaskContext, Workflow, WorkflowValidationError, workflow


def _spec_with(edges: dict[str, list[str]], calls: list[str]) -> Workflow:
    """A workflow built WITHOUT validation (Workflow(...) directly) whose bodies record calls."""
    wf = workflow(name="graph")
    registrations = []
    for name in edges:

        async def body(ctx: TaskContext) -> None:
            calls.append(ctx.task_name)

        wf.task(name=name)(body)
    for name, deps in edges.items():
        base = wf.build().tasks[name]
        registrations.append(
            type(base)(
                name=base.name,
                runner=base.runner,
                depends_on=tuple(deps),
                task_type_qualname=base.task_type_qualname,
                task=base.task,
            )
        )
    return Workflow("graph", registrations)


@pytest.mark.parametrize(
    ("edges", "fragment"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependency cycle: 'a' depends on 'b' depends on 'a'"),
        ({"a": ["c"], "b": ["a"], "c": ["b"]}, "dependency cycle"),
        ({"a": ["a"]}, "task 'a' depends on itself"),
        (
            {"fetch": [], "b": ["fecth"]},
            "task 'b' depends on unknown task 'fecth' (did you mean 'fetch'?)",
        ),
        ({"a": [], "b": ["zzz"]}, "task 'b' depends on unknown task 'zzz'"),
    ],
)
def test_build_rejects_invalid_graphs(edges: dict[str, list[str]], fragment: str) -> None:
    wf = workflow(name="graph")
    for name, deps in edges.items():

        async def body(ctx: TaskContext) -> None:
            return None

        wf.task(name=name, depends_on=deps)(body)
    with pytest.raises(WorkflowValidationError) as info:
        wf.build()
    assert fragment in str(info.value)
    assert "'graph'" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_three_node_cycle_message_follows_the_dependencies() -> None:
    wf = workflow(name="graph")
    for name, dep in {"a": "c", "b": "a", "c": "b"}.items():
        wf.task(name=name, depends_on=[dep])(lambda ctx: None)
    with pytest.raises(WorkflowValidationError) as info:
        wf.build()
    message = str(info.value)
    chain = message.split(": ", 1)[1].split(" depends on ")
    assert chain[0] == chain[-1]
    pairs = {(chain[i].strip("'"), chain[i + 1].strip("'")) for i in range(len(chain) - 1)}
    assert pairs == {("a", "c"), ("c", "b"), ("b", "a")}


def test_all_unknown_dependencies_are_reported_together() -> None:
    wf = workflow(name="graph")
    wf.task(name="a", depends_on=["x"])(lambda ctx: None)
    wf.task(name="b", depends_on=["y"])(lambda ctx: None)
    with pytest.raises(WorkflowValidationError) as info:
        wf.build()
    assert "'x'" in str(info.value) and "'y'" in str(info.value)


@pytest.mark.parametrize(
    "edges",
    [
        {"ok": [], "a": ["b"], "b": ["a"]},
        {"ok": [], "a": ["a"]},
        {"ok": [], "a": ["missing"]},
    ],
)
async def test_execute_revalidates_before_any_task_body_runs(edges: dict[str, list[str]]) -> None:
    calls: list[str] = []
    spec = _spec_with(edges, calls)
    with pytest.raises(WorkflowValidationError):
        await spec.execute()
    with pytest.raises(WorkflowValidationError):
        await spec.start()
    assert calls == []


async def test_valid_unvalidated_workflow_executes() -> None:
    calls: list[str] = []
    spec = _spec_with({"a": [], "b": ["a"]}, calls)
    await spec.execute()
    assert calls == ["a", "b"]


def test_workflow_constructor_rejects_duplicate_registrations() -> None:
    wf = workflow(name="dup")
    wf.task(name="a")(lambda ctx: None)
    reg = wf.build().tasks["a"]
    with pytest.raises(WorkflowValidationError, match="'a' is registered twice"):
        Workflow("dup", [reg, reg])
