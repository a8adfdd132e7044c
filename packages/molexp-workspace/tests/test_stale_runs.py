"""Finding and reaping running runs whose owner process is gone."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from molexp.workspace import (
    Experiment,
    RunStatus,
    Workspace,
    find_stale_runs,
    reap_stale_runs,
    stale_reason,
)
from molexp.workspace._index import row_for, upsert_rows
from molexp.workspace._records import OwnerInfo, utc_now
from workspace_helpers import on_disk

_fork = multiprocessing.get_context("fork")


def _start_and_die(root: Path, run_id: str) -> None:
    run = Workspace(root).project("qm9").experiment("baseline").get_run(run_id)
    run.start().__enter__()
    os._exit(0)


def test_a_run_whose_process_died_is_reaped(exp: Experiment) -> None:
    run = exp.Run(id="orphan")
    child = _fork.Process(target=_start_and_die, args=(exp.workspace.root, "orphan"))
    child.start()
    child.join()
    stored = on_disk(run)
    assert stored.status is RunStatus.running
    assert stored.owner is not None
    dead_pid = stored.owner.pid
    healthy = exp.Run(id="healthy")
    with healthy.start():
        assert [r.id for r in find_stale_runs(exp.workspace)] == ["orphan"]
        assert on_disk(run).status is RunStatus.running
        assert run.is_stale()
        assert not healthy.is_stale()
        reaped = reap_stale_runs(exp.workspace)
        assert [r.id for r in reaped] == ["orphan"]
        assert on_disk(healthy).status is RunStatus.running
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.owner is None
    assert stored.finished_at is not None
    assert stored.error is not None
    assert stored.error.type == "StaleRun"
    assert f"owner process {dead_pid}" in stored.error.message
    assert "no longer alive" in stored.error.message
    attempt = stored.execution_history[-1]
    assert (attempt.status, attempt.error) == (RunStatus.failed, stored.error)
    assert reap_stale_runs(exp.workspace) == []
    assert [r.id for r in exp.workspace.runs("status == 'failed'")] == ["orphan"]


def _pretend_running_elsewhere(exp: Experiment, run_id: str, heartbeat_age: timedelta) -> None:
    run = exp.Run(id=run_id)
    now = utc_now()
    run.metadata.status = RunStatus.running
    run.metadata.started_at = now - heartbeat_age
    run.metadata.owner = OwnerInfo(
        host="another-host.example",
        pid=os.getpid(),
        started_at=now - heartbeat_age,
        heartbeat_at=now - heartbeat_age,
    )
    run.save()


def test_other_hosts_are_judged_by_their_heartbeat(exp: Experiment) -> None:
    _pretend_running_elsewhere(exp, "silent", timedelta(minutes=30))
    _pretend_running_elsewhere(exp, "chatty", timedelta(seconds=5))
    assert [r.id for r in find_stale_runs(exp.workspace)] == ["silent"]
    short = find_stale_runs(exp.workspace, heartbeat_timeout=1.0)
    assert sorted(r.id for r in short) == ["chatty", "silent"]
    later = utc_now() + timedelta(hours=1)
    assert len(find_stale_runs(exp.workspace, now=later)) == 2
    (reaped,) = reap_stale_runs(exp.workspace)
    assert reaped.id == "silent"
    error = on_disk(reaped).error
    assert error is not None
    assert "no heartbeat from process" in error.message
    assert "another-host.example" in error.message
    assert exp.get_run("chatty").status is RunStatus.running


def _start_without_indexing_and_die(root: Path, run_id: str) -> None:
    ws = Workspace(root)
    run = ws.project("qm9").experiment("baseline").get_run(run_id)
    ws._index_run = lambda metadata, record, span: None  # type: ignore[method-assign]  # killed
    run.start().__enter__()
    os._exit(0)


def test_a_run_killed_before_its_index_row_was_updated_is_seen_and_reaped(
    exp: Experiment,
) -> None:
    """The dead writer never upserted its row: the change feed still tells the next query."""
    run = exp.Run(id="lagging")
    child = _fork.Process(
        target=_start_without_indexing_and_die, args=(exp.workspace.root, "lagging")
    )
    child.start()
    child.join()
    assert on_disk(run).status is RunStatus.running
    assert [r.status for r in exp.workspace.runs()] == ["running"]
    assert [r.id for r in find_stale_runs(exp.workspace)] == ["lagging"]
    assert [r.id for r in reap_stale_runs(exp.workspace)] == ["lagging"]
    assert on_disk(run).status is RunStatus.failed
    assert [r.status for r in exp.workspace.runs()] == ["failed"]


def test_reaping_brings_a_lagging_index_row_back_in_step(exp: Experiment) -> None:
    """A writer died after finishing run.json but before its upsert: the row is repaired."""
    run = exp.Run(id="finished")
    with run.start():
        pass
    assert [r.status for r in exp.workspace.runs()] == ["succeeded"]
    lagging = on_disk(run).model_copy(update={"status": RunStatus.running})
    upsert_rows(exp.workspace._run_index.connection(), [row_for(lagging)])
    assert [r.status for r in exp.workspace.runs()] == ["running"]
    assert reap_stale_runs(exp.workspace) == []
    assert [r.status for r in exp.workspace.runs()] == ["succeeded"]


def _save_unindexed_artifact_and_die(root: Path, run_id: str) -> None:
    ws = Workspace(root)
    run = ws.project("qm9").experiment("baseline").get_run(run_id)
    ctx = run.start().__enter__()

    def killed_before_indexing(work: object) -> None:
        os._exit(0)

    ws.catalog._write = killed_before_indexing  # type: ignore[assignment,method-assign]
    ctx.artifact.save("metrics.json", {"loss": 0.5})


def test_assets_a_dead_owner_wrote_but_never_indexed_are_found(exp: Experiment) -> None:
    run = exp.Run(id="unindexed")
    assert exp.workspace.catalog.count() == 0  # the asset index exists before the crash
    child = _fork.Process(
        target=_save_unindexed_artifact_and_die, args=(exp.workspace.root, "unindexed")
    )
    child.start()
    child.join()
    # The change feed named the record before the writer died: the next query indexes it.
    [seen] = exp.workspace.catalog.query_assets(producer_run="unindexed")
    assert seen.name == "metrics.json"
    assert [r.id for r in reap_stale_runs(exp.workspace)] == ["unindexed"]
    [artifact] = exp.workspace.catalog.query_assets(producer_run="unindexed")
    assert artifact.name == "metrics.json"
    assert on_disk(run).status is RunStatus.failed


def test_stale_runs_are_found_and_reaped_without_a_usable_index(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = exp.Run(id="orphan-without-index")
    child = _fork.Process(target=_start_and_die, args=(exp.workspace.root, run.id))
    child.start()
    child.join()

    def broken(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(Workspace, "runs", broken)
    assert [r.id for r in find_stale_runs(exp.workspace)] == [run.id]
    assert [r.id for r in reap_stale_runs(exp.workspace)] == [run.id]
    assert on_disk(run).status is RunStatus.failed


def test_listings_show_a_dead_same_host_owner_as_stale_at_once(exp: Experiment) -> None:
    """Derived, not recorded: the row stays ``running`` until ``reap``, but says it is stale."""
    exp.Run(id="orphan")
    child = _fork.Process(target=_start_and_die, args=(exp.workspace.root, "orphan"))
    child.start()
    child.join()
    healthy = exp.Run(id="healthy")
    with healthy.start():
        rows = {row.id: row for row in exp.workspace.runs()}
        orphan = rows["orphan"]
        assert orphan.status is RunStatus.running
        assert orphan.owner is not None
        assert orphan.stale
        reason = orphan.stale_reason()
        assert reason == (
            f"owner process {orphan.owner.pid} on host {orphan.owner.host} is no longer alive"
        )
        assert reason == stale_reason(exp.get_run("orphan").metadata)
        assert not rows["healthy"].stale
        assert rows["healthy"].stale_reason() is None
        records = {record["id"]: record for record in exp.workspace.runs().to_records()}
        assert (records["orphan"]["status"], records["orphan"]["stale"]) == ("running", True)
        assert records["healthy"]["stale"] is False
    assert on_disk(exp.get_run("orphan")).status is RunStatus.running  # nothing was changed
    assert not exp.workspace.runs("id == 'healthy'")[0].stale  # finished: never stale


def test_listings_judge_other_hosts_by_their_heartbeat(exp: Experiment) -> None:
    _pretend_running_elsewhere(exp, "silent", timedelta(minutes=30))
    _pretend_running_elsewhere(exp, "chatty", timedelta(seconds=5))
    rows = {row.id: row for row in exp.workspace.runs()}
    assert rows["silent"].stale
    assert "no heartbeat from process" in (rows["silent"].stale_reason() or "")
    assert not rows["chatty"].stale
    assert rows["chatty"].stale_reason(heartbeat_timeout=1.0) is not None
    later = utc_now() + timedelta(hours=1)
    assert rows["chatty"].stale_reason(now=later) is not None
