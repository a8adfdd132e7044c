"""The run index: kept in step with every run write, rebuildable, queryable."""

from __future__ import annotations

import importlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workspace import (
    AmbiguousRunIdError,
    Experiment,
    RunQueryResult,
    RunStatus,
    Workspace,
)
from molexp.workspace.layout import run_record_ids


def populate(ws: Workspace) -> None:
    qm9 = ws.Project("QM9")
    base = qm9.Experiment("baseline", params={"lr": 1e-3})
    wide = qm9.Experiment("wide", params={"lr": 1e-4, "model": {"depth": 4}})
    other = ws.Project("other").Experiment("baseline", params={"lr": 1e-2})
    for index, exp in enumerate((base, wide, other)):
        for replica in range(2):
            run = exp.Run(
                parameters={"batch": 32 * (replica + 1)},
                id=f"r{replica}",
                replica_index=replica,
                seed=replica,
            )
            if replica == 1 and index == 1:
                with pytest.raises(RuntimeError), run.start({"gpu": True}):
                    raise RuntimeError("boom")
            else:
                with run.start() as ctx:
                    ctx.set_result("loss", 0.1 * (index + 1) + replica)
                run.set_workflow({"workflow_id": f"wf-{index}"})
    base.Run(id="pending-one")


def records(ws: Workspace, **kwargs: Any) -> list[dict[str, Any]]:
    return ws.runs(**kwargs).to_records()


def index_rows(ws: Workspace) -> int:
    with sqlite3.connect(ws.catalog.db_path) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM runs").fetchone()
    return int(count)


def test_every_run_write_updates_the_row(exp: Experiment) -> None:
    ws = exp.workspace
    run = exp.Run(parameters={"batch": 8})
    (row,) = ws.runs()
    assert (row.id, row.status, row.params) == (run.id, RunStatus.pending, {"lr": 1e-3, "batch": 8})
    with run.start(profile_config={"scale": 1}) as ctx:
        assert ws.runs()[0].status is RunStatus.running
        ctx.set_result("loss", 0.5)
    (row,) = ws.runs()
    assert row.status is RunStatus.succeeded
    assert row.results == {"loss": 0.5}
    assert row.profile == "default"
    assert row.config_hash == ctx.profile.config_hash
    assert row.started_at is not None
    assert row.finished_at is not None
    assert row.run_dir == run.run_dir
    assert (row.project, row.experiment) == ("qm9", "baseline")
    run.set_workflow({"workflow_id": "wf"})
    assert ws.runs()[0].workflow_id == "wf"


def run_ids(ws: Workspace, query: str) -> list[str]:
    return [row.id for row in ws.runs(query)]


def value_rows(ws: Workspace) -> int:
    with sqlite3.connect(ws.catalog.db_path) as connection:
        (count,) = connection.execute("SELECT COUNT(*) FROM run_values").fetchone()
    return int(count)


def test_value_queries_follow_every_change_of_a_run(exp: Experiment) -> None:
    ws = exp.workspace
    run = exp.Run(parameters={"batch": 8, "model": {"depth": 2}}, id="one")
    exp.Run(parameters={"batch": 16}, id="two")
    assert run_ids(ws, "batch == 8 and model.depth >= 2") == ["one"]
    assert run_ids(ws, "exists(results.loss)") == []
    with run.start() as ctx:
        ctx.set_result("loss", 0.5)
    assert run_ids(ws, "results.loss == 0.5 and batch in [8, 16]") == ["one"]
    with run.start() as ctx:  # a second attempt replaces the result
        ctx.set_result("loss", 0.25)
    assert run_ids(ws, "results.loss == 0.5") == []
    assert run_ids(ws, "results.loss < 0.3") == ["one"]
    assert run_ids(ws, "not batch == 8") == ["two"]
    ws.delete_project(exp.project.id)
    assert run_ids(ws, "batch > 0") == []
    assert value_rows(ws) == 0


def test_a_selective_query_looks_values_up_instead_of_reading_every_run(ws: Workspace) -> None:
    populate(ws)
    index = ws._run_index  # noqa: SLF001 - the plan of the index's own SQL
    conditions, _ = ws._run_conditions("batch == 64 and results.loss > 1", None, None)  # noqa: SLF001
    sql = f"SELECT id FROM runs WHERE {conditions[0][0]}"
    plan = index.connection().execute(f"EXPLAIN QUERY PLAN {sql}", conditions[0][1]).fetchall()
    details = " / ".join(str(row[-1]) for row in plan)
    assert "run_values_by_value" in details, details
    assert "SCAN runs" not in details, details
    assert sorted(run_ids(ws, "batch == 64 and results.loss > 1")) == ["r1", "r1"]


def test_index_equals_rebuild(ws: Workspace) -> None:
    populate(ws)
    before = records(ws)
    assert len(before) == 7
    report = ws.rebuild_index()
    assert report.runs == 7
    assert report.broken == ()
    assert records(ws) == before
    (ws.catalog.db_path).unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{ws.catalog.db_path}{suffix}").unlink(missing_ok=True)
    fresh = Workspace(ws.root)
    assert records(fresh) == before
    assert {a.name for a in fresh.assets.list()} == {a.name for a in ws.assets.list()}


def test_an_outdated_table_is_recreated_from_disk(ws: Workspace) -> None:
    populate(ws)
    before = records(ws)
    with sqlite3.connect(ws.catalog.db_path) as connection:
        connection.execute("UPDATE workspace_index_versions SET version = 0")
        connection.execute("DELETE FROM runs")
    assert records(Workspace(ws.root)) == before


def test_rebuild_reports_broken_run_records(ws: Workspace) -> None:
    populate(ws)
    broken = ws.project("qm9").experiment("wide").get_run("r0").record_path
    broken.write_text("{not json")
    report = ws.rebuild_index()
    assert report.runs == 6
    assert [b.path for b in report.broken] == [broken]
    assert "not valid JSON" in report.broken[0].error
    assert "r0" not in {row.id for row in ws.runs(experiment="wide")}


def test_filters_order_and_limit(ws: Workspace) -> None:
    populate(ws)
    assert len(ws.runs(project="qm9")) == 5
    assert len(ws.runs(project=ws.project("other"))) == 2
    assert len(ws.runs(experiment="baseline")) == 5
    assert len(ws.runs(experiment=ws.project("qm9").experiment("baseline"))) == 3
    ordered = ws.runs(where="status == 'succeeded'", order_by="-results.loss")
    losses = [row.results["loss"] for row in ordered]
    assert losses == sorted(losses, reverse=True)
    assert len(losses) == 5
    assert ws.runs(order_by=["project", "-id"], limit=3).ids == ["r1", "r0", "r1"]
    assert ws.runs(order_by=["-project", "id"], limit=1).ids == ["pending-one"]
    assert len(ws.runs(limit=0)) == 0
    with pytest.raises(ValueError, match="limit must be a non-negative integer"):
        ws.runs(limit=-1)
    with pytest.raises(ValueError, match="order_by field"):
        ws.runs(order_by="lr; DROP TABLE runs")


def test_mapping_where(ws: Workspace) -> None:
    populate(ws)
    assert ws.runs(where={"status": "failed"}).ids == ["r1"]
    assert sorted(ws.runs(where={"batch": 64, "project": "qm9"}).ids) == ["r1", "r1"]
    assert len(ws.runs(where={"lr": [1e-3, 1e-2]})) == 5
    with pytest.raises(ValueError, match="must be a string, number, bool or None"):
        ws.runs(where={"lr": {"nested": 1}})
    with pytest.raises(ValueError, match="not a dotted identifier path"):
        ws.runs(where={"lr = 1 OR 1": 1})
    with pytest.raises(TypeError, match="where must be query text or a mapping"):
        ws.runs(where=3)  # type: ignore[arg-type]


def test_find_run(ws: Workspace) -> None:
    populate(ws)
    assert ws.find_run("pending-one").experiment.id == "baseline"
    with pytest.raises(AmbiguousRunIdError, match="qm9/baseline, qm9/wide") as info:
        ws.find_run("r0")
    assert info.value.matches == [("other", "baseline"), ("qm9", "baseline"), ("qm9", "wide")]
    run = ws.find_run("r0", project="qm9", experiment="wide")
    assert run.parameters == {"lr": 1e-4, "model": {"depth": 4}, "batch": 32}
    with pytest.raises(KeyError, match="'missing'"):
        ws.find_run("missing")
    with pytest.raises(KeyError, match="'x'"):
        Workspace(ws.root / "lazy").find_run("x")


def test_to_records_flattens_params_and_results(exp: Experiment) -> None:
    run = exp.Run(parameters={"model": {"depth": 3, "act": "relu"}, "empty": {}}, tags=["t"])
    with run.start() as ctx:
        ctx.set_result("metrics", {"val": {"loss": 0.5}})
    (record,) = exp.workspace.runs().to_records()
    assert record["params.lr"] == 1e-3
    assert record["params.model.depth"] == 3
    assert record["params.model.act"] == "relu"
    assert record["params.empty"] == {}
    assert record["results.metrics.val.loss"] == 0.5
    assert record["status"] == "succeeded"
    assert record["tags"] == ["t"]
    assert record["id"] == run.id


def test_query_result_is_a_sequence(ws: Workspace) -> None:
    populate(ws)
    result = ws.runs(order_by="id")
    assert isinstance(result, RunQueryResult)
    assert isinstance(result[1:3], RunQueryResult)
    assert [row.id for row in result[1:3]] == result.ids[1:3]
    assert result[0] == ws.runs(order_by="id")[0]
    assert result[0] != result[1]
    assert len({result[0], ws.runs(order_by="id")[0]}) == 1
    assert "RunSummary(id=" in repr(result[0])
    assert result[-1].id == result.ids[-1] == list(result)[-1].id
    assert result[2] is result[2] is list(result)[2]  # made once, when first read
    with pytest.raises(IndexError):
        result[len(result)]


def test_a_run_without_tags_config_or_metrics_lists_them_empty(exp: Experiment) -> None:
    exp.Run(id="bare")
    (row,) = exp.workspace.runs()
    assert (row.tags, row.config, row.overrides, row.metrics) == ([], {}, {}, {})
    assert row.to_record()["tags"] == []


def test_a_listing_makes_each_run_summary_when_it_is_read(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    populate(ws)
    results_module = importlib.import_module("molexp.workspace._results")
    made: list[object] = []
    original = results_module.RunSummary.__init__

    def counting_init(self: object, *args: Any) -> None:
        made.append(self)
        original(self, *args)

    monkeypatch.setattr(results_module.RunSummary, "__init__", counting_init)
    result = ws.runs()
    assert len(result) == 7
    assert made == []
    assert result[3].id
    assert len(made) == 1


def test_to_pandas_names_the_extra_when_pandas_is_missing(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp.Run()
    real_import = importlib.import_module

    def no_pandas(name: str, package: str | None = None) -> Any:
        if name == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", no_pandas)
    with pytest.raises(ImportError, match=r"molexp-workspace\[pandas\]"):
        exp.workspace.runs().to_pandas()


def test_to_pandas(exp: Experiment) -> None:
    pytest.importorskip("pandas")
    exp.Run(parameters={"batch": 4})
    frame = exp.workspace.runs().to_pandas()
    assert list(frame["params.batch"]) == [4]


def test_index_row_count_matches_runs(ws: Workspace) -> None:
    populate(ws)
    assert len(ws.runs()) == 7
    assert index_rows(ws) == 7


def test_a_lazy_workspace_object_sees_a_workspace_created_later(root: Path) -> None:
    early = Workspace(root)
    assert len(early.runs()) == 0
    assert not root.exists()
    Workspace(root).Project("p").Experiment("e").Run(id="late")
    assert early.runs().ids == ["late"]
    assert early.find_run("late").id == "late"


def test_a_deleted_index_file_is_rebuilt_by_a_live_workspace(ws: Workspace) -> None:
    populate(ws)
    before = records(ws)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ws.catalog.db_path}{suffix}").unlink(missing_ok=True)
    assert records(ws) == before
    ws.project("qm9").experiment("baseline").Run(id="after-delete")
    assert len(ws.runs()) == len(before) + 1
    assert index_rows(ws) == len(before) + 1


def test_an_index_file_replaced_by_another_process_is_followed(ws: Workspace) -> None:
    """Deleted and recreated behind the live workspace's back: its writes reach the new file."""
    populate(ws)
    before = records(ws)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ws.catalog.db_path}{suffix}").unlink(missing_ok=True)
    assert records(Workspace(ws.root)) == before  # another workspace object recreates it
    ws.project("qm9").experiment("baseline").Run(id="after-replace")
    assert len(ws.runs()) == len(before) + 1
    assert index_rows(ws) == len(before) + 1
    assert "after-replace" in Workspace(ws.root).runs().ids


def test_runs_written_on_another_host_are_listed_at_the_next_query(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    monkeypatch.setattr(socket, "gethostname", lambda: "login")
    login = Workspace(root)
    login.materialize()
    assert len(login.runs()) == 0  # the login node's index exists already
    monkeypatch.setattr(socket, "gethostname", lambda: "node-1")
    node = Workspace(root)
    assert node.catalog.db_path != login.catalog.db_path
    run = node.Project("qm9").Experiment("remote").Run(id="from-node")
    with run.start() as ctx:
        ctx.set_result("energy", -1.5)
    node.Project("gone").Experiment("e").Run(id="doomed")
    monkeypatch.setattr(socket, "gethostname", lambda: "login")
    rows = login.runs("results.energy < 0")
    assert [(row.id, row.status.value) for row in rows] == [("from-node", "succeeded")]
    assert "doomed" in login.runs().ids
    monkeypatch.setattr(socket, "gethostname", lambda: "node-1")
    node.delete_project("gone")
    monkeypatch.setattr(socket, "gethostname", lambda: "login")
    assert login.runs().ids == ["from-node"]


def test_a_garbage_index_file_heals_and_rebuild_index_works_whatever_its_state(
    ws: Workspace,
) -> None:
    populate(ws)
    before = records(ws)
    ws.catalog.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{ws.catalog.db_path}{suffix}").unlink(missing_ok=True)
    ws.catalog.db_path.write_bytes(b"\x00garbage" * 1000)
    assert records(Workspace(ws.root)) == before
    ws.catalog.db_path.write_bytes(b"\x00garbage" * 1000)
    report = Workspace(ws.root).rebuild_index()
    assert report.runs == len(before)


@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True).filter(lambda s: s != "..")
)
def test_a_run_record_path_gives_its_ids_back(name: str) -> None:
    path = f"projects/{name}/experiments/{name}x/runs/run-{name}y/run.json"
    assert run_record_ids(path) == (name, f"{name}x", f"{name}y")


@pytest.mark.parametrize(
    "target",
    [
        "projects/p/project.json",
        "projects/p/experiments/e/experiment.json",
        "projects/p/experiments/e/runs/r/run.json",  # not a run directory
        "projects/p/experiments/e/runs/run-r/meta.json",
        "projects/p/experiments/e/runs/run-r/run.json/x",
        "other/p/experiments/e/runs/run-r/run.json",
    ],
)
def test_other_paths_are_not_run_records(target: str) -> None:
    assert run_record_ids(target) is None
