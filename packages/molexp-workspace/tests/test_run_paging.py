"""Paging through the run index: ``ws.runs(limit=, offset=)`` and ``ws.count_runs()``.

Pages are cut in the index (a page of a large experiment costs its own rows), so every page
must be exactly the slice of the whole ordered answer, for any order, query and scope; the
count must be the length of that whole answer, with the same errors for bad queries.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from molexp.workspace import Experiment, Project, UnknownFieldError, Workspace
from molexp.workspace._index import INDEX_VERSION


@pytest.fixture
def filled(ws: Workspace, project: Project, exp: Experiment) -> Workspace:
    other = project.Experiment("other")
    for index in range(23):
        run = (exp if index % 3 else other).Run(
            parameters={"lr": round(1e-3 * (1 + index % 4), 6), "depth": index % 5}
        )
        with run.start() as ctx:
            ctx.set_result("loss", round(1.0 / (1 + index % 7), 6))
    ws.Project("empty")
    return ws


ORDERS: list[str | list[str] | None] = [
    None,
    "created_at",
    "-created_at",
    "-results.loss",
    ["depth", "-lr"],
    "id",
]
SCOPES: list[dict[str, str]] = [{}, {"project": "QM9"}, {"project": "QM9", "experiment": "other"}]
QUERIES: list[str | None] = [None, "depth >= 2", "lr == 0.001 or depth == 4", "depth == 99"]


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("where", QUERIES)
def test_pages_are_slices_of_the_whole_answer(
    filled: Workspace, order_by: str | list[str] | None, where: str | None
) -> None:
    for scope in SCOPES:
        whole = [row.id for row in filled.runs(where=where, order_by=order_by, **scope)]
        for limit in (1, 4, 7, 100):
            pages = []
            for offset in range(0, len(whole) + limit, limit):
                page = filled.runs(
                    where=where, order_by=order_by, limit=limit, offset=offset, **scope
                )
                assert len(page) <= limit
                pages.extend(row.id for row in page)
            assert pages == whole, (scope, limit)
        rest = filled.runs(where=where, order_by=order_by, offset=5, **scope)
        assert [row.id for row in rest] == whole[5:]
        assert filled.count_runs(where=where, **scope) == len(whole)


@pytest.mark.parametrize("scope", SCOPES)
def test_newest_first_is_creation_order_reversed_walked_on_the_index(
    filled: Workspace, scope: dict[str, str]
) -> None:
    oldest_first = [row.id for row in filled.runs(**scope)]
    assert [row.id for row in filled.runs(order_by="created_at", **scope)] == oldest_first
    connection = filled._run_index.connection()  # noqa: SLF001 - the index's own SQL

    def page_plan(order_by: str | None) -> tuple[list[str], list[str]]:
        statements: list[str] = []
        connection.set_trace_callback(statements.append)
        try:
            page = filled.runs(order_by=order_by, limit=4, offset=2, **scope)
        finally:
            connection.set_trace_callback(None)
        (select,) = [sql for sql in statements if sql.lstrip().startswith("SELECT project_id")]
        plan = [str(row[-1]) for row in connection.execute(f"EXPLAIN QUERY PLAN {select}")]
        return [row.id for row in page], plan

    newest, newest_plan = page_plan("-created_at")
    assert newest == oldest_first[::-1][2:6]
    # As cheap as the creation order: no sort beyond the one of the page's own rows.
    _, oldest_plan = page_plan(None)
    assert newest_plan == oldest_plan


def test_count_takes_a_mapping_and_experiment_objects(filled: Workspace, exp: Experiment) -> None:
    assert filled.count_runs() == 23
    assert filled.count_runs(experiment=exp) == len(filled.runs(experiment=exp))
    assert filled.count_runs({"depth": 2}) == len(filled.runs({"depth": 2}))
    assert filled.count_runs(project="empty") == 0


def test_count_refuses_what_runs_refuses(filled: Workspace) -> None:
    with pytest.raises(UnknownFieldError, match="did you mean"):
        filled.count_runs("dept == 2")
    with pytest.raises(ValueError, match="offset must be a non-negative integer"):
        filled.runs(offset=-1)
    with pytest.raises(ValueError, match="limit must be a non-negative integer"):
        filled.runs(limit=-1)


def test_count_of_a_workspace_not_yet_on_disk(tmp_path: Path) -> None:
    assert Workspace(tmp_path / "nowhere").count_runs() == 0


def test_an_older_index_gains_the_experiment_index(filled: Workspace) -> None:
    """An index file of the previous version is refilled with the new layout on first use."""
    connection = sqlite3.connect(filled.catalog.db_path)
    connection.execute("DROP INDEX runs_by_experiment")
    connection.execute(
        "UPDATE workspace_index_versions SET version = ? WHERE component = 'runs'",
        (INDEX_VERSION - 1,),
    )
    connection.commit()
    connection.close()
    reopened = Workspace.load(filled.root)
    assert reopened.count_runs() == 23
    names = {
        name
        for (name,) in sqlite3.connect(filled.catalog.db_path).execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'"
        )
    }
    assert "runs_by_experiment" in names
