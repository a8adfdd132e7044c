"""A run page written straight from the index rows is the JSON its ``RunPage`` model writes.

``run_page_json`` skips building a ``RunSummaryInfo`` per row and the framework's validation and
serialization (most of a page's cost under load); these tests pin its bytes to the model's, for
generated parameter, result and metric values, owners and
broken records, and check the routes answer with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from molexp.server import create_app
from molexp.server._converters import _summary_info, run_page_json
from molexp.server._schemas import BrokenRecord, RunPage
from molexp.workspace import RunSummary, Workspace
from server_helpers import build_lab, make_client

KEYS = st.text(alphabet="abcxyz_é", min_size=1, max_size=6)
# Records and metric points refuse NaN and infinities.
FLOATS = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [0.1, 1e-5, 1e300, -0.0, 2.5e-308]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | FLOATS
    | st.text(max_size=8)
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)


def _model_bytes(rows: list[RunSummary], broken: list[BrokenRecord], pending: bool) -> bytes:
    page = RunPage(
        items=[_summary_info(row) for row in rows],
        total=len(rows) + 7,
        offset=3,
        limit=100,
        broken=broken,
        broken_pending=pending,
    )
    return page.model_dump_json().encode()


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    params=st.dictionaries(KEYS, VALUES, max_size=4),
    results=st.dictionaries(KEYS, VALUES, max_size=3),
    metric=st.none() | FLOATS | st.integers(-5, 5),
    pending=st.booleans(),
)
@example(params={"lr": 1e-5}, results={"loss": 2**62}, metric=1e300, pending=False)
@example(params={"n": 3}, results={}, metric=3, pending=False)
def test_a_run_page_is_the_bytes_its_model_writes(
    tmp_path_factory: pytest.TempPathFactory,
    params: dict[str, Any],
    results: dict[str, Any],
    metric: float | None,
    pending: bool,
) -> None:
    ws = Workspace(tmp_path_factory.mktemp("page") / "lab")
    experiment = ws.Project("p").Experiment("e")
    finished = experiment.Run(parameters=params)
    with finished.start() as ctx:
        for name, value in results.items():
            ctx.set_result(name, value)
        if metric is not None:
            ctx.log_metrics({"loss": metric}, step=1)
    running = experiment.Run(parameters={"other": 1}).start()
    running.__enter__()  # running while the page is written: its row has an owner
    try:
        experiment.Run()  # created, never started: no timestamps
        rows = list(ws.runs())
    finally:
        running.__exit__(None, None, None)
    assert len(rows) == 3
    broken = [BrokenRecord(path="projects/p/experiments/e/runs/run-x/run.json", error="bad é")]

    written = run_page_json(
        rows, total=len(rows) + 7, offset=3, limit=100, broken=broken, broken_pending=pending
    )

    assert written == _model_bytes(rows, broken, pending)


async def test_the_run_routes_answer_with_the_written_page(tmp_path: Path) -> None:
    lab = build_lab(tmp_path / "lab")
    app = create_app(lab.root)
    async with make_client(app) as client:
        experiment = await client.get(
            "/api/v1/projects/qm9/experiments/baseline/runs", params={"limit": 3, "offset": 1}
        )
        everything = await client.get("/api/v1/runs", params={"order_by": "-created_at"})
    rows = list(lab.ws.runs(project="qm9", experiment="baseline", limit=3, offset=1))
    assert experiment.status_code == 200
    assert experiment.headers["content-type"] == "application/json"
    total = lab.ws.count_runs(project="qm9", experiment="baseline")
    assert experiment.content == _page_bytes(rows, total, offset=1, limit=3)
    assert everything.status_code == 200
    assert [item["id"] for item in everything.json()["items"]] == [
        row.id for row in lab.ws.runs(order_by="-created_at")
    ]


def _page_bytes(rows: list[RunSummary], total: int, *, offset: int, limit: int) -> bytes:
    page = RunPage(
        items=[_summary_info(row) for row in rows],
        total=total,
        offset=offset,
        limit=limit,
        broken=[],
        broken_pending=False,
    )
    return page.model_dump_json().encode()
