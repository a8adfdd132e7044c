"""This host's index file of one workspace, kept in step with the records.

Owns the connection to the per-host SQLite file (``_index_file``), its schema, healing (a
damaged file is discarded and rebuilt), best-effort index writes and the catch-up from the change
feed (``_feed``): new journal lines are read and handed to the handler of their kind, in one
transaction with the journals' offsets. :class:`~molexp.assets.Catalog` builds on it for asset
records; the workspace layer adds its run rows through ``add_feed_handler``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar

from molexp.assets._feed import (
    ACTIVE_JOURNAL_SECONDS,
    RETENTION_SECONDS,
    feed_dir,
    journal_states,
    note_change,
    read_journal,
)
from molexp.assets._index_file import (
    FileIdentity,
    discard_index,
    file_identity,
    index_path,
    is_corruption,
    is_locked,
    open_index,
    open_pinned,
)
from molexp.assets._locks import on_local_filesystem

__all__ = ["CatalogIndex", "FeedHandler"]

logger = logging.getLogger("molexp.assets")

LOCKED_RETRIES = 8
# How often catch-up records that it ran (an index silent for RETENTION_SECONDS / 2 is rebuilt).
_MARK_INTERVAL = 60.0
FEED_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS feed_offsets (journal TEXT PRIMARY KEY, offset INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value)",
)

T = TypeVar("T")

FeedHandler = Callable[[sqlite3.Connection, "builtins.list[str]"], None]
"""Applies feed lines of one kind: re-reads the records they name and updates its rows."""


def _retry_locked(operation: Callable[[], T]) -> T:
    delay = 0.01
    for attempt in range(LOCKED_RETRIES):
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or attempt == LOCKED_RETRIES - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raise AssertionError("unreachable: the last attempt either returns or raises")


class CatalogIndex:
    """The per-host index file of the workspace at ``root`` (see the module).

    A subclass gives its tables (``SCHEMA``) and fills them when a new file is created
    (``_fill``); the change feed's offsets are kept beside them.
    """

    SCHEMA: tuple[str, ...] = ()

    def __init__(self, root: Path, workspace_id: str) -> None:
        self._root = root
        self._workspace_id = workspace_id
        self._db_path: Path | None = None
        self._conn: sqlite3.Connection | None = None
        self._conn_pid: int | None = None
        self._conn_identity: FileIdentity | None = None
        self._lock = threading.RLock()
        self._handlers: dict[str, FeedHandler] = {}
        self._fill_report: Any = None
        self._marked_at = 0.0
        self._local_feed: bool | None = None

    def _fill(self, conn: sqlite3.Connection) -> Any:
        """Fill a newly created index from the records (inside its creating transaction)."""
        return None

    @property
    def db_path(self) -> Path:
        """This user's index file for the workspace on this host (see ``_index_file``)."""
        if self._db_path is None:
            self._db_path = index_path(self._root, self._workspace_id)
        return self._db_path

    def add_feed_handler(self, kind: str, handler: FeedHandler) -> None:
        """Let ``handler`` apply the feed lines of ``kind`` during catch-up (same transaction)."""
        self._handlers[kind] = handler

    def note_change(self, kind: str, target: str) -> None:
        """Tell every index that ``target`` (a record path relative to the root) changed."""
        note_change(self._root, kind, target)

    # -- connections -------------------------------------------------------------

    def connect(self) -> sqlite3.Connection:
        """A new connection to the index file (WAL, 30 s busy timeout, synchronous=NORMAL).

        The caller owns and closes it. It uses Python's default transaction handling.
        """
        return _retry_locked(lambda: open_index(self.db_path, autocommit=False))

    def _connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        if self._conn is not None and (
            self._conn_pid != pid or file_identity(self.db_path) != self._conn_identity
        ):
            # The index file was deleted or replaced (another process deleted and recreated
            # it): writing on through this connection would go to the unlinked file.
            if self._conn_pid == pid:
                self._conn.close()
            # A connection inherited through fork must not be used (or closed) here.
            self._conn = None
        if self._conn is None:
            conn, identity = open_pinned(
                self.db_path,
                lambda: _retry_locked(lambda: open_index(self.db_path, autocommit=True)),
            )
            try:
                self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._conn, self._conn_pid, self._conn_identity = conn, pid, identity
        return self._conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        def has_assets_table() -> bool:
            row = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'assets'"
            ).fetchone()
            return row is not None

        if _retry_locked(has_assets_table):
            return

        def create(conn: sqlite3.Connection) -> None:
            if has_assets_table():
                return
            for statement in (*self.SCHEMA, *FEED_SCHEMA):
                conn.execute(statement)
            # Lines already in the feed describe records the scan below reads anyway.
            conn.executemany(
                "INSERT OR REPLACE INTO feed_offsets VALUES (?, ?)",
                [(state.name, state.size) for state in journal_states(self._root)],
            )
            self._mark_caught_up(conn)
            self._fill_report = self._fill(conn)

        self._transaction(conn, create)

    def _transaction(self, conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
        def attempt() -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            return result

        return _retry_locked(attempt)

    def _healing(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` on the connection; a damaged index file is discarded and rebuilt
        from the records once, then the operation is retried."""
        with self._lock:
            try:
                return operation(self._connection())
            except sqlite3.DatabaseError as exc:
                if not is_corruption(exc):
                    raise
                logger.warning("index %s is damaged (%s); rebuilding it", self.db_path, exc)
                self.discard()
            return operation(self._connection())

    def ensure_index(self) -> None:
        """Open (creating and filling, if need be) this host's index file."""
        self._healing(lambda conn: None)

    def discard(self) -> None:
        """Delete this host's index file; the next use rebuilds it from the records."""
        with self._lock:
            self.close()
            discard_index(self.db_path)

    def catch_up(self) -> None:
        """Apply the feed lines other processes (on any host) appended since the last catch-up."""
        self._healing(self._catch_up)

    def _catch_up(self, conn: sqlite3.Connection) -> None:
        now = time.time()
        marked = self._marked_at
        if now - marked > _MARK_INTERVAL:
            row = conn.execute("SELECT value FROM index_meta WHERE key = 'caught_up_at'").fetchone()
            marked = float(row[0]) if row else 0.0
            if now - marked > RETENTION_SECONDS / 2:
                # Journals this index never read may have expired: only a rebuild is exact.
                self.discard()
                conn = self._connection()
        network = not self._feed_local()
        states = journal_states(self._root, refresh=network)
        offsets = dict(conn.execute("SELECT journal, offset FROM feed_offsets").fetchall())
        pending = [
            state
            for state in states
            if state.size > offsets.get(state.name, 0)
            # A network client may hold a stale size: recently written journals are read.
            or (network and state.mtime > now - ACTIVE_JOURNAL_SECONDS)
        ]
        if network:
            pending = [
                state
                for state in pending
                if read_journal(self._root, state.name, offsets.get(state.name, 0))[0]
            ]
        expired = [state.name for state in states if state.mtime < now - RETENTION_SECONDS]
        listed = {state.name for state in states}
        forgotten = [name for name in offsets if name not in listed]
        if not pending and not expired and not forgotten and now - self._marked_at < _MARK_INTERVAL:
            return

        def apply(conn: sqlite3.Connection) -> None:
            current = dict(conn.execute("SELECT journal, offset FROM feed_offsets").fetchall())
            changes: dict[str, dict[str, None]] = {}
            for state in pending:
                start = current.get(state.name, 0)
                lines, end = read_journal(self._root, state.name, start)
                for line in lines:
                    changes.setdefault(line.kind, {})[line.target] = None
                if end != start:
                    conn.execute(
                        "INSERT OR REPLACE INTO feed_offsets VALUES (?, ?)", (state.name, end)
                    )
            for kind, targets in changes.items():
                handler = self._handlers.get(kind)
                if handler is not None:
                    handler(conn, list(targets))
            for name in forgotten:
                conn.execute("DELETE FROM feed_offsets WHERE journal = ?", (name,))
            self._mark_caught_up(conn)

        self._transaction(conn, apply)
        for name in expired:
            with contextlib.suppress(OSError):
                (feed_dir(self._root) / name).unlink()

    def _feed_local(self) -> bool:
        if self._local_feed is None:
            self._local_feed = on_local_filesystem(feed_dir(self._root) / "journal")
        return self._local_feed

    def _mark_caught_up(self, conn: sqlite3.Connection) -> None:
        self._marked_at = time.time()
        conn.execute(
            "INSERT OR REPLACE INTO index_meta VALUES ('caught_up_at', ?)", (self._marked_at,)
        )

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        def read(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            self._catch_up(conn)
            conn = self._connection()
            return _retry_locked(lambda: conn.execute(sql, params).fetchall())

        return self._healing(read)

    def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return self._healing(lambda conn: self._transaction(conn, work))

    def index_quietly(self, work: Callable[[sqlite3.Connection], object]) -> None:
        """Run an index write; any failure is logged, never raised (catch-up repairs it)."""
        try:
            self._write(work)
        except Exception as exc:  # the record is written; the index is only a cache
            logger.warning("index %s not updated (%s); catch-up will repair it", self.db_path, exc)

    def close(self) -> None:
        """Close this process's index connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None and self._conn_pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
