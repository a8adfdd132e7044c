"""Deterministic workflow_id: topology-scoped, order-independent, identical across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st
from molexp.workflow import Task, TaskContext, Workflow, WorkflowBuilder, workflow

EDGES = {"fetch": [], "clean": ["fetch"], "parse": ["fetch"], "merge": ["parse", "clean"]}


def _build(order: list[str], edges: dict[str, list[str]] = EDGES, name: str = "demo") -> Workflow:
    wf = workflow(name=name)
    for task in order:

        async def body(ctx: TaskContext) -> None:
            return None

        wf.task(name=task, depends_on=list(edges[task]))(body)
    return wf.build()


def test_id_is_sixteen_hex_chars() -> None:
    workflow_id = _build(list(EDGES)).workflow_id
    assert len(workflow_id) == 16
    int(workflow_id, 16)


@settings(max_examples=50, deadline=None)
@given(st.permutations(list(EDGES)), st.data())
def test_registration_and_dependency_order_do_not_change_the_id(
    order: list[str], data: st.DataObject
) -> None:
    shuffled = {name: data.draw(st.permutations(deps)) for name, deps in EDGES.items()}
    assert _build(order, shuffled).workflow_id == _build(list(EDGES)).workflow_id


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1).filter(lambda s: s.strip()), st.text(min_size=1).filter(str.strip))
def test_different_names_give_different_ids(first: str, second: str) -> None:
    ids = {
        _build(list(EDGES), name=first).workflow_id,
        _build(list(EDGES), name=second).workflow_id,
    }
    assert len(ids) == (1 if first == second else 2)


def test_implementation_changes_keep_the_id() -> None:
    first = workflow(name="impl")

    @first.task(name="a")
    async def a_one(ctx: TaskContext) -> int:
        return 1

    second = workflow(name="impl")

    @second.task(name="a")
    def a_two(ctx: TaskContext) -> str:
        return "completely different"

    assert first.build().workflow_id == second.build().workflow_id


def test_edges_and_class_identity_change_the_id() -> None:
    base = _build(list(EDGES)).workflow_id
    rewired = dict(EDGES, merge=["parse"])
    assert _build(list(EDGES), rewired).workflow_id != base

    class Fetch(Task):
        async def execute(self, ctx: TaskContext) -> None:
            return None

    builder = WorkflowBuilder(name="demo")
    builder.add(Fetch(), name="fetch")
    for task in ["clean", "parse", "merge"]:
        builder.task(name=task, depends_on=EDGES[task])(lambda ctx: None)
    assert builder.build().workflow_id != base


def test_same_id_in_a_fresh_process() -> None:
    script = textwrap.dedent(
        """
        from molexp.workflow import workflow
        edges = {"fetch": [], "clean": ["fetch"], "parse": ["fetch"], "merge": ["parse", "clean"]}
        wf = workflow(name="demo")
        for task in reversed(list(edges)):
            wf.task(name=task, depends_on=edges[task])(lambda ctx: None)
        print(wf.build().workflow_id)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert completed.stdout.strip() == _build(list(EDGES)).workflow_id
