"""The change feed and the per-host index: catch-up, torn lines, expiry, damaged files."""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from assets_helpers import register
from molexp.assets import AssetKind, AssetScope, Catalog, _feed
from molexp.assets._feed import feed_dir, journal_states, note_change, read_journal

RUN = AssetScope.for_run("lab", "p1", "e1", "r1")


def _as_host(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: name)


def test_another_hosts_index_catches_up_from_the_feed(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _as_host(monkeypatch, "login")
    login = Catalog(root, "lab")
    assert login.query_assets() == []  # its index exists before anything is written
    _as_host(monkeypatch, "node-1")
    node = Catalog(root, "lab")
    asset = register(node, RUN, "model.pt", AssetKind.ARTIFACT)
    _as_host(monkeypatch, "login")
    assert [a.id for a in login.query_assets()] == [asset.id]
    node.delete(asset.id)
    assert login.query_assets() == []


def test_a_torn_line_is_left_for_later(root: Path) -> None:
    catalog = Catalog(root, "lab")
    register(catalog, RUN, "a", AssetKind.ARTIFACT)
    [state] = journal_states(root)
    path = feed_dir(root) / state.name
    with path.open("ab") as journal:
        journal.write(b'{"k": "asset", "p": "somewhere/.assets/x.js')
    lines, end = read_journal(root, state.name, 0)
    assert end == state.size  # the torn tail is not consumed
    assert all(line.kind == "asset" for line in lines)
    with path.open("ab") as journal:
        journal.write(b'on"}\n')
    lines, end = read_journal(root, state.name, state.size)
    assert [line.target for line in lines] == ["somewhere/.assets/x.json"]
    assert end == path.stat().st_size


def test_an_index_write_failure_never_fails_the_record_write(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(root, "lab")
    catalog.ensure_index()

    def broken(work: object) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(catalog, "_write", broken)
    register(catalog, RUN, "kept", AssetKind.ARTIFACT)
    monkeypatch.undo()
    # The record is on disk; the next query's catch-up indexes it.
    assert [a.name for a in Catalog(root, "lab").query_assets()] == ["kept"]


@pytest.mark.parametrize("damage", [b"", b"garbage" * 500, b"SQLite format 3\x00" + b"\x00" * 50])
def test_a_damaged_index_file_is_rebuilt(root: Path, damage: bytes) -> None:
    catalog = Catalog(root, "lab")
    asset = register(catalog, RUN, "a", AssetKind.ARTIFACT)
    catalog.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{catalog.db_path}{suffix}").unlink(missing_ok=True)
    catalog.db_path.write_bytes(damage)
    fresh = Catalog(root, "lab")
    assert [a.id for a in fresh.query_assets()] == [asset.id]
    catalog.db_path.write_bytes(damage)
    report = fresh.rebuild()
    assert report.indexed == 1


def test_journals_expire_and_an_index_that_fell_behind_rebuilds(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = Catalog(root, "lab")
    register(catalog, RUN, "a", AssetKind.ARTIFACT)
    [state] = journal_states(root)
    old = time.time() - _feed.RETENTION_SECONDS - 10
    os.utime(feed_dir(root) / state.name, (old, old))
    catalog.query_assets()  # catch-up deletes the expired journal
    assert journal_states(root) == []
    # An index that has not caught up for half the retention time is rebuilt, not trusted.
    reader = Catalog(root, "lab")
    reader.ensure_index()
    with sqlite3.connect(reader.db_path) as conn:
        conn.execute("UPDATE index_meta SET value = ? WHERE key = 'caught_up_at'", (old,))
    rebuilt: list[bool] = []
    original = Catalog.discard
    monkeypatch.setattr(Catalog, "discard", lambda self: (rebuilt.append(True), original(self)))
    other = Catalog(root, "lab")
    assert [a.name for a in other.query_assets()] == ["a"]
    assert rebuilt


def test_a_journal_that_cannot_be_written_warns_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "ws"
    (blocked / ".molexp").mkdir(parents=True)
    (blocked / ".molexp" / "changes").write_text("not a directory")
    with pytest.warns(RuntimeWarning, match="cannot write the change feed"):
        assert note_change(blocked, "asset", "x") is None
    assert note_change(blocked, "asset", "y") is None  # no second warning


def test_own_lines_are_consumed_by_the_writer(root: Path) -> None:
    catalog = Catalog(root, "lab")
    register(catalog, RUN, "a", AssetKind.ARTIFACT)
    [state] = journal_states(root)
    with sqlite3.connect(catalog.db_path) as conn:
        [(offset,)] = conn.execute(
            "SELECT offset FROM feed_offsets WHERE journal = ?", (state.name,)
        ).fetchall()
    assert offset == state.size
