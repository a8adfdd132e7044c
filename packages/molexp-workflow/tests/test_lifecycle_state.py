"""The execution-state payload the lifecycle records: schema, resume fields, timestamp format."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from molexp.workflow import TaskContext, TaskStatus, workflow
from molexp.workflow.runtime import EXECUTION_STATE_VERSION, TaskPersistence, _isoformat


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_isoformat_matches_datetime(timestamp: float) -> None:
    assert _isoformat(timestamp) == datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


def test_isoformat_edge_cases() -> None:
    for timestamp in (0.0, 1.0, 1.9999996, 1_700_000_000.5, 1_700_000_000.0000005, -1.25):
        assert _isoformat(timestamp) == datetime.fromtimestamp(timestamp, tz=UTC).isoformat()


async def test_state_lists_resumed_tasks_and_persistence_per_task() -> None:
    wf = workflow(name="state")

    @wf.task
    async def first(ctx: TaskContext) -> int:
        return 1

    @wf.task(depends_on=["first"])
    async def second(ctx: TaskContext) -> int:
        return 2

    result = await wf.build().execute()
    result.statuses["first"] = TaskStatus.RESUMED
    result.persistence = {
        "first": TaskPersistence(snapshot_key="c:k", output_persisted=True),
        "second": TaskPersistence(snapshot_key=None, output_persisted=False, detail="why"),
    }
    result.resumed_from = "exec-1"
    state = result.to_state()
    assert json.loads(json.dumps(state)) == state
    assert state["version"] == EXECUTION_STATE_VERSION == 4
    assert state["resumed"] == ["first"] and state["resumed_from"] == "exec-1"
    assert state["tasks"]["first"]["status"] == "resumed"
    assert type(state["tasks"]["first"]["status"]) is str
    assert state["tasks"]["first"]["snapshot_key"] == "c:k"
    assert state["tasks"]["first"]["output_persisted"] is True
    assert state["tasks"]["second"]["persistence_detail"] == "why"
    timing = result.timings["second"]
    assert state["tasks"]["second"]["started_at"] == timing.started_datetime.isoformat()
    assert state["tasks"]["second"]["duration"] == timing.duration
