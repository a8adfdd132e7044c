"""Write-behind of the run index: a process's own run writes reach its index in batches.

Every run write queues its index row on the workspace object; a flush writes the queued rows
in one transaction before the object's next read, at 64 queued writes, once the oldest is a
second old, and at interpreter exit. Until then other readers catch up from the change feed.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from molexp.assets import _feed
from molexp.assets.storage import journal_states
from molexp.workspace import Experiment, RunStatus, Workspace
from molexp.workspace import _workspace as workspace_module

_fork = multiprocessing.get_context("fork")


def lifecycle(exp: Experiment, run_id: str, loss: float) -> None:
    run = exp.Run(id=run_id, parameters={"loss_target": loss})
    with run.start() as ctx:
        ctx.set_result("loss", loss)


def raw_rows(ws: Workspace) -> dict[str, str]:
    """Run id -> status as the index file holds them, read without any catch-up."""
    with sqlite3.connect(ws.catalog.db_path) as connection:
        return dict(connection.execute("SELECT id, status FROM runs").fetchall())


def raw_offsets(ws: Workspace) -> dict[str, int]:
    with sqlite3.connect(ws.catalog.db_path) as connection:
        return dict(connection.execute("SELECT journal, offset FROM feed_offsets").fetchall())


def journal_of(root: Path, pid: int) -> tuple[str, int]:
    """Name and size of the change-feed journal process ``pid`` wrote."""
    (state,) = [s for s in journal_states(root) if f".{pid}." in s.name]
    return state.name, state.size


def in_subprocess(code: str) -> str:
    """Run ``code`` in a fresh interpreter (same index directory) and return its output."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_workspace_object_reads_its_own_writes(exp: Experiment) -> None:
    ws = exp.workspace
    for index in range(3):
        lifecycle(exp, f"r{index}", 0.5 * index)
    assert ws._pending  # noqa: SLF001 - the rows are queued, not written
    rows = ws.runs(order_by="id")
    assert [(r.id, r.status, r.results) for r in rows] == [
        (f"r{index}", RunStatus.succeeded, {"loss": 0.5 * index}) for index in range(3)
    ]
    assert ws.count_runs("results.loss > 0.2") == 2
    assert ws.run_status_counts() == {"succeeded": 3}


def test_its_own_writes_are_read_even_without_a_change_feed(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No feed line to catch up from: only the flush before the read tells the index."""
    ws = exp.workspace
    assert len(ws.runs()) == 0  # the index exists
    monkeypatch.setattr(_feed, "note_change", lambda root, kind, target: None)
    lifecycle(exp, "unannounced", 1.0)
    (row,) = ws.runs()
    assert (row.id, row.status, row.results) == ("unannounced", RunStatus.succeeded, {"loss": 1.0})


def test_other_readers_see_the_runs_before_the_writer_flushed(exp: Experiment) -> None:
    ws = exp.workspace
    assert len(ws.runs()) == 0
    for index in range(2):
        lifecycle(exp, f"r{index}", float(index))
    assert len(ws._pending) == 6  # noqa: SLF001 - three writes per run, none flushed
    other = Workspace(ws.root)
    assert [(r.id, r.status, r.results) for r in other.runs(order_by="id")] == [
        ("r0", RunStatus.succeeded, {"loss": 0.0}),
        ("r1", RunStatus.succeeded, {"loss": 1.0}),
    ]
    out = in_subprocess(
        f"""
        from molexp.workspace import Workspace
        for row in Workspace({str(ws.root)!r}).runs(order_by="id"):
            print(row.id, row.status.value, row.results["loss"])
        """
    )
    assert out.splitlines() == ["r0 succeeded 0.0", "r1 succeeded 1.0"]
    assert len(ws._pending) == 6  # noqa: SLF001


def test_a_flush_never_overwrites_a_newer_record_of_another_writer(exp: Experiment) -> None:
    ws1 = exp.workspace
    assert len(ws1.runs()) == 0
    exp.Run(id="shared")  # ws1's row of the pending run stays queued
    ws2 = Workspace(ws1.root)
    ws2.project("qm9").experiment("baseline").get_run("shared").cancel()
    assert [(r.id, r.status) for r in ws2.runs()] == [("shared", RunStatus.cancelled)]
    assert ws1._pending  # noqa: SLF001
    assert [(r.id, r.status) for r in ws1.runs()] == [("shared", RunStatus.cancelled)]
    assert [(r.id, r.status) for r in ws2.runs()] == [("shared", RunStatus.cancelled)]
    assert raw_rows(ws1) == {"shared": "cancelled"}


def test_a_flush_never_brings_back_the_rows_of_a_deleted_project(ws: Workspace) -> None:
    assert len(ws.runs()) == 0
    lifecycle(ws.Project("gone").Experiment("e"), "doomed", 1.0)
    lifecycle(ws.Project("kept").Experiment("e"), "kept", 2.0)
    assert ws._pending  # noqa: SLF001
    Workspace(ws.root).delete_project("gone")
    assert [r.id for r in ws.runs()] == ["kept"]
    assert raw_rows(ws) == {"kept": "succeeded"}


def test_a_flush_consumes_the_writers_feed_lines(exp: Experiment) -> None:
    ws = exp.workspace
    assert len(ws.runs()) == 0
    for index in range(3):
        lifecycle(exp, f"r{index}", float(index))
    name, size = journal_of(ws.root, os.getpid())
    assert raw_offsets(ws).get(name, 0) < size
    ws._flush_index()  # noqa: SLF001 - a flush alone, without the catch-up of a read
    assert raw_offsets(ws)[name] == size
    assert raw_rows(ws) == {f"r{index}": "succeeded" for index in range(3)}


def test_a_failing_flush_warns_and_the_next_read_repairs_the_index(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ws = exp.workspace
    assert len(ws.runs()) == 0
    index = ws._run_index  # noqa: SLF001

    def broken() -> sqlite3.Connection:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(workspace_module, "_PENDING_MAX", 1)  # every write flushes
    monkeypatch.setattr(index, "connection", broken)
    with caplog.at_level(logging.WARNING, logger="molexp.workspace"):
        lifecycle(exp, "written", 0.25)  # the record writes do not fail
    assert "run index not updated" in caplog.text
    assert not ws._pending  # noqa: SLF001 - dropped, their feed lines left to catch-up
    monkeypatch.undo()
    (row,) = ws.runs()
    assert (row.id, row.status, row.results) == ("written", RunStatus.succeeded, {"loss": 0.25})


def test_an_exiting_process_flushes_its_rows(ws: Workspace) -> None:
    assert len(ws.runs()) == 0  # the index exists before the writer starts
    out = in_subprocess(
        f"""
        import os
        from molexp.workspace import Workspace
        exp = Workspace({str(ws.root)!r}).Project("qm9").Experiment("baseline")
        for index in range(3):
            run = exp.Run(id=f"r{{index}}")
            with run.start() as ctx:
                ctx.set_result("loss", float(index))
        print(os.getpid())
        """
    )
    name, size = journal_of(ws.root, int(out))
    assert raw_rows(ws) == {f"r{index}": "succeeded" for index in range(3)}
    assert raw_offsets(ws)[name] == size


def test_64_queued_writes_flush_without_a_read(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = exp.workspace
    assert len(ws.runs()) == 0
    monkeypatch.setattr(workspace_module, "_PENDING_SECONDS", 3600.0)
    for index in range(63):
        exp.Run(id=f"r{index}")
    assert len(ws._pending) == 63  # noqa: SLF001
    assert raw_rows(ws) == {}
    exp.Run(id="r63")
    assert ws._pending == []  # noqa: SLF001
    assert len(raw_rows(ws)) == 64


def test_a_write_after_the_oldest_queued_one_aged_flushes(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = exp.workspace
    assert len(ws.runs()) == 0
    monkeypatch.setattr(workspace_module, "_PENDING_SECONDS", 0.2)
    exp.Run(id="old")
    assert raw_rows(ws) == {}
    time.sleep(0.3)
    exp.Run(id="new")
    assert ws._pending == []  # noqa: SLF001
    assert raw_rows(ws) == {"old": "pending", "new": "pending"}


def _report_pending(ws: Workspace, queue: multiprocessing.Queue[int]) -> None:
    queue.put(len(ws._pending))  # noqa: SLF001


def test_a_forked_child_does_not_inherit_the_queued_rows(exp: Experiment) -> None:
    ws = exp.workspace
    exp.Run(id="queued")
    assert len(ws._pending) == 1  # noqa: SLF001
    queue: multiprocessing.Queue[int] = _fork.Queue()
    child = _fork.Process(target=_report_pending, args=(ws, queue))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0
    assert queue.get(timeout=10) == 0
    assert len(ws._pending) == 1  # noqa: SLF001 - the parent's are still its own


def test_a_queued_row_is_the_record_as_written(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later transition changes the run's metadata object in place before its write
    (which fails here, or may never happen when its claim is lost): the queued row of the
    earlier write still says what the file says."""
    from molexp.workspace import _records_io

    ws = exp.workspace
    assert len(ws.runs()) == 0
    run = exp.Run(id="r")

    def failing_write(path: Path, data: bytes, *, durable: bool = True) -> None:
        raise OSError("no space left on device")

    monkeypatch.setattr(_records_io, "atomic_write_bytes", failing_write)
    with pytest.raises(OSError, match="no space left"):
        run.cancel()
    monkeypatch.undo()
    assert ws._pending  # noqa: SLF001
    ws._flush_index()  # noqa: SLF001 - the flush alone (a read's catch-up would re-read the file)
    assert raw_rows(ws) == {"r": "pending"}
    assert [(r.id, r.status) for r in ws.runs()] == [("r", RunStatus.pending)]
