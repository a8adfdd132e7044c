"""Getting started 1: the ``fetch -> summarize`` workflow, executed without a workspace.

Authoring (``@wf.task``), compilation (``wf.build()``) and execution (``spec.execute()``) are
separate steps: importing this module builds the graph but runs nothing. The compiled ``Workflow``
is a complete definition; it needs no workspace to execute. Run it with::

    uv run python examples/getting_started/01_first_workflow.py
"""

from __future__ import annotations

import asyncio

from molexp.workflow import TaskContext, WorkflowResult, workflow

wf = workflow(name="demo")


@wf.task
async def fetch(ctx: TaskContext) -> list[float]:
    return [1.0, 4.0, 9.0]


@wf.task(depends_on=["fetch"])
async def summarize(ctx: TaskContext) -> float:
    values: list[float] = ctx.inputs  # one dependency: ctx.inputs is fetch's output
    return sum(values)


spec = wf.build()


async def main() -> WorkflowResult:
    print(spec.describe())
    result = await spec.execute()
    print(f"workflow_id: {spec.workflow_id}")
    print(f"status: {result.status}")
    for task, status in result.statuses.items():
        print(f"  {task}: {status} in {result.timings[task].duration * 1000:.2f} ms")
    print(f"result: {result.output}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
