"""The run index: one row per run in the ``runs`` table of the catalog's per-host index file.

Owns the table layout, the batched upserts of the run records this process wrote, deletion
of a project's rows, the full fill from ``run.json`` files and the SELECT behind
``ws.runs()``; and the ``run_values`` table (kept in step by triggers) where a query finds
the runs with a given parameter, result or config value without reading every row.
The JSON records stay the source of truth; these tables are a rebuildable cache of them
(a missing or outdated table is recreated and refilled from disk on first use, and a
damaged index file is discarded and rebuilt).
Columns carry no declared type, so values keep their own type and the query
language's comparisons never meet SQLite type affinity.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from molexp.assets.storage import (
    FeedSpan,
    FileIdentity,
    consume_span,
    file_identity,
    is_corruption,
    open_pinned,
)

from ._records import RunMetadata

__all__ = [
    "INDEX_VERSION",
    "VALUES_TABLE",
    "VALUE_COLUMNS",
    "IndexRow",
    "RecordWrite",
    "RunIndex",
    "delete_rows",
    "format_time",
    "has_runs_table",
    "upsert_rows",
]

T = TypeVar("T")

INDEX_VERSION = 8

_COLUMNS = (
    "workspace_id",
    "project_id",
    "experiment_id",
    "id",
    "status",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "params",
    "results",
    "profile_name",
    "config_hash",
    "workflow_id",
    "replica_index",
    "seed",
    "tags",
    "config",
    "overrides",
    "owner",
    "metrics",
    "value_paths",
)
# What a query returns (the workspace id is the same for every row; ``value_paths`` only feeds
# the index of values).
SELECT_COLUMNS = ", ".join(_COLUMNS[1:-1])
# An update in place (not INSERT OR REPLACE, which deletes and re-inserts the row and so
# rewrites every index): a status change only touches the indexes whose columns changed.
_KEY_COLUMNS = ("project_id", "experiment_id", "id")
_UPSERT = (
    f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
    f"ON CONFLICT ({', '.join(_KEY_COLUMNS)}) DO UPDATE SET "
    + ", ".join(
        f"{column} = excluded.{column}" for column in _COLUMNS if column not in _KEY_COLUMNS
    )
)
VALUES_TABLE = "run_values"
VALUE_COLUMNS = ("params", "results", "config")
# The insert every run row's trigger makes: for each (column, path) ``row_for`` listed in
# ``value_paths``, the value ``json_extract`` finds there.
_INSERT_VALUES = (
    f"INSERT OR IGNORE INTO {VALUES_TABLE} SELECT NEW.rowid, json_extract(entry.value, '$[0]'), "
    "json_extract(entry.value, '$[1]'), CASE json_extract(entry.value, '$[0]') "
    + " ".join(
        f"WHEN '{column}' THEN json_extract(NEW.{column}, json_extract(entry.value, '$[1]'))"
        for column in VALUE_COLUMNS
    )
    + " END FROM json_each(NEW.value_paths) AS entry"
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_SCHEMA = (
    f"CREATE TABLE runs ({', '.join(_COLUMNS)}, PRIMARY KEY (project_id, experiment_id, id))",
    "CREATE INDEX runs_by_id ON runs (id)",
    "CREATE INDEX runs_by_status ON runs (status)",
    # The default order: queries walk this index instead of sorting.
    "CREATE INDEX runs_by_created ON runs (created_at, project_id, experiment_id, id)",
    # One experiment's (or project's) runs in the default order, and their count.
    "CREATE INDEX runs_by_experiment ON runs (project_id, experiment_id, created_at, id)",
    # Every value of the JSON columns a query can name, by (column, JSON path): a query on a
    # parameter, result or config value looks its runs up here instead of reading every row.
    # Triggers keep it in step with ``runs``: ``value`` is what ``json_extract`` returns at
    # each path ``value_paths`` lists.
    # Stored in the order of a run's values (what a join tests after its first value, and what
    # a change replaces); the index below, which also holds the key, finds runs by value.
    f"CREATE TABLE {VALUES_TABLE} (run_rowid INTEGER NOT NULL, source TEXT NOT NULL, "
    "path TEXT NOT NULL, value, PRIMARY KEY (run_rowid, source, path)) WITHOUT ROWID",
    f"CREATE INDEX run_values_by_value ON {VALUES_TABLE} (source, path, value)",
    f"CREATE TRIGGER runs_values_insert AFTER INSERT ON runs BEGIN {_INSERT_VALUES}; END",
    "CREATE TRIGGER runs_values_update AFTER UPDATE ON runs WHEN "
    + " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column in ("value_paths", *VALUE_COLUMNS))
    + f" BEGIN DELETE FROM {VALUES_TABLE} WHERE run_rowid = OLD.rowid; {_INSERT_VALUES}; END",
    f"CREATE TRIGGER runs_values_delete AFTER DELETE ON runs BEGIN "
    f"DELETE FROM {VALUES_TABLE} WHERE run_rowid = OLD.rowid; END",
)

IndexRow = tuple[Any, ...]


@dataclass(frozen=True)
class RecordWrite:
    """A ``run.json`` this process wrote whose index row is not written yet.

    ``row`` is the run's index row made when the record was written (the run's metadata
    object changes in place afterwards); ``data`` the exact bytes written to ``path``;
    ``span`` the feed lines announcing the write (None: the feed could not be written).
    """

    key: tuple[str, str, str]
    row: IndexRow
    span: FeedSpan | None
    path: Path
    data: bytes

    def on_disk(self) -> bool:
        """Whether ``path`` still holds exactly ``data``."""
        try:
            return self.path.read_bytes() == self.data
        except OSError:
            return False


def format_time(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO text, so text order is time order in the index."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def row_for(metadata: RunMetadata) -> IndexRow:
    """The index row of one run."""
    profile = metadata.profile
    return (
        metadata.workspace_id,
        metadata.project_id,
        metadata.experiment_id,
        metadata.id,
        metadata.status.value,
        format_time(metadata.created_at),
        format_time(metadata.updated_at),
        format_time(metadata.started_at),
        format_time(metadata.finished_at),
        json.dumps(metadata.parameters, ensure_ascii=False),
        json.dumps(metadata.results, ensure_ascii=False),
        profile.name if profile else None,
        profile.config_hash if profile else None,
        metadata.workflow_id,
        metadata.replica_index,
        metadata.seed,
        _json_or_null(metadata.tags),
        _json_or_null(profile.config if profile else None),
        _json_or_null(profile.overrides if profile else None),
        None if metadata.owner is None else metadata.owner.model_dump_json(),
        _json_or_null({name: summary.model_dump() for name, summary in metadata.metrics.items()}),
        json.dumps(
            [
                [column, path]
                for column, document in zip(
                    VALUE_COLUMNS,
                    (metadata.parameters, metadata.results, profile.config if profile else {}),
                    strict=True,
                )
                for path in value_paths(document)
            ]
        ),
    )


def value_paths(document: dict[str, Any]) -> list[str]:
    """The JSON paths a query can spell in ``document`` (``$.a.b``: keys that are identifiers,
    objects walked, lists and scalars leaves); none in a document that is not strict JSON (a
    NaN), where ``json_extract`` fails."""
    try:
        json.dumps(document, allow_nan=False)
    except ValueError:
        return []
    paths: list[str] = []
    pending: list[tuple[str, dict[str, Any]]] = [("$", document)]
    while pending:
        prefix, mapping = pending.pop()
        for key, item in mapping.items():
            if isinstance(key, str) and _IDENTIFIER.fullmatch(key):
                paths.append(f"{prefix}.{key}")
                if isinstance(item, dict):
                    pending.append((f"{prefix}.{key}", item))
    return paths


def _json_or_null(value: list[Any] | dict[str, Any] | None) -> str | None:
    """JSON text of a list or object, NULL when it is empty: most runs have no tags, config,
    overrides or metrics, and a NULL costs a listing nothing to read."""
    return json.dumps(value, ensure_ascii=False) if value else None


# Connections inherited through fork are parked here instead of being closed: closing
# one in the child could checkpoint and delete the WAL the parent is still using.
_inherited_connections: list[sqlite3.Connection] = []


class _Local(threading.local):
    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None
        self.pid = -1
        self.identity: FileIdentity | None = None


class RunIndex:
    """Access to the ``runs`` table; one SQLite connection per thread and process."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        scan: Callable[[], Iterable[IndexRow]],
        db_path: Path | None = None,
        discard: Callable[[], None] | None = None,
    ) -> None:
        """``scan`` yields the rows of every run on disk; it fills a newly created table.

        With ``db_path``, a connection whose database file was deleted or replaced (another
        device or inode than the one it opened) is replaced by a fresh one, which recreates
        and refills the table when the new file lacks it. ``discard`` deletes a damaged
        index file; an operation that meets one is retried once on a fresh file.
        """
        self._connect = connect
        self._scan = scan
        self._db_path = db_path
        self._discard = discard
        self._local = _Local()
        self._schema_lock = threading.Lock()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (a forked child opens its own); a new one checks the schema."""
        local = self._local
        pid = os.getpid()
        if local.connection is not None and local.pid == pid and self._file_replaced(local):
            local.connection.close()
            local.connection = None
        if local.connection is None or local.pid != pid:
            if local.connection is not None:
                _inherited_connections.append(local.connection)
                local.connection = None
            if self._db_path is None:
                connection, identity = self._connect(), None
            else:
                connection, identity = open_pinned(self._db_path, self._connect)
            try:
                self._ensure_schema(connection)
            except BaseException:
                connection.close()
                raise
            local.connection, local.identity, local.pid = connection, identity, pid
        return local.connection

    def _file_replaced(self, local: _Local) -> bool:
        return self._db_path is not None and file_identity(self._db_path) != local.identity

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        with self._schema_lock, self._transaction(connection):
            connection.execute(
                "CREATE TABLE IF NOT EXISTS workspace_index_versions "
                "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = connection.execute(
                "SELECT version FROM workspace_index_versions WHERE component = 'runs'"
            ).fetchone()
            if row is None or row[0] != INDEX_VERSION:
                connection.execute("DROP TABLE IF EXISTS runs")
                connection.execute(f"DROP TABLE IF EXISTS {VALUES_TABLE}")
                for statement in _SCHEMA:
                    connection.execute(statement)
                connection.execute(
                    "INSERT OR REPLACE INTO workspace_index_versions VALUES ('runs', ?)",
                    (INDEX_VERSION,),
                )
                connection.executemany(_UPSERT, self._scan())

    @staticmethod
    @contextmanager
    def _transaction(connection: sqlite3.Connection) -> Iterator[None]:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def _healing(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return operation(self.connection())
        except sqlite3.DatabaseError as exc:
            if self._discard is None or not is_corruption(exc):
                raise
            self._discard()
        return operation(self.connection())

    def apply_writes(self, writes: Sequence[RecordWrite]) -> None:
        """Upsert the rows of run records this process wrote, in one transaction.

        Only each run's latest write counts, and only if ``run.json`` still holds its exact
        bytes, compared after the write lock is taken (every index writer on this host holds
        that lock): a record another writer changed or deleted since is left to catch-up,
        so an older row never overwrites a newer one. The feed spans of the runs written
        are consumed in order; a skipped run's span stops that, and catch-up re-reads the
        records its journal's remaining lines name.
        """
        latest = {write.key: write for write in writes}

        def apply(connection: sqlite3.Connection) -> None:
            with self._transaction(connection):
                written = {key: write for key, write in latest.items() if write.on_disk()}
                upsert_rows(connection, [write.row for write in written.values()])
                for write in writes:
                    if write.key in written:
                        consume_span(connection, write.span)

        self._healing(apply)

    def row_count(self) -> int:
        return int(self._healing(lambda c: c.execute("SELECT COUNT(*) FROM runs").fetchone()[0]))

    def delete_project(self, project_id: str) -> None:
        def delete(connection: sqlite3.Connection) -> None:
            with self._transaction(connection):
                connection.execute("DELETE FROM runs WHERE project_id = ?", (project_id,))

        self._healing(delete)

    def select(
        self,
        conditions: Sequence[tuple[str, Sequence[Any]]],
        order: tuple[str, Sequence[Any]] | None,
        limit: int | None,
        offset: int = 0,
    ) -> list[IndexRow]:
        """``SELECT_COLUMNS`` of the rows matching every ``(sql, args)`` condition.

        Ordered by ``order``, then creation order; ``offset`` rows of that order are skipped.
        A page (``limit`` or ``offset``) is chosen by rowid first, so the rows sorted past
        or skipped are never read out whole.
        """
        args: list[Any] = []
        where_sql = _where_sql(conditions, args)
        order_sql, order_args = _order_sql(order)
        args.extend(order_args)
        if limit is None and not offset:
            sql = f"SELECT {SELECT_COLUMNS} FROM runs{where_sql} ORDER BY {order_sql}"
        else:
            sql = (
                f"SELECT {SELECT_COLUMNS} FROM runs WHERE rowid IN (SELECT rowid FROM runs"
                f"{where_sql} ORDER BY {order_sql} LIMIT ? OFFSET ?) ORDER BY {order_sql}"
            )
            args.extend((-1 if limit is None else limit, offset, *order_args))
        return self._healing(lambda connection: connection.execute(sql, args).fetchall())

    def count(self, conditions: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """How many rows match every ``(sql, args)`` condition (no row is read out)."""
        args: list[Any] = []
        sql = "SELECT COUNT(*) FROM runs" + _where_sql(conditions, args)
        return int(self._healing(lambda connection: connection.execute(sql, args).fetchone()[0]))

    def count_by_status(self, conditions: Sequence[tuple[str, Sequence[Any]]]) -> dict[str, int]:
        """How many rows match, by status (statuses no row has are left out)."""
        args: list[Any] = []
        sql = "SELECT status, COUNT(*) FROM runs" + _where_sql(conditions, args)
        sql += " GROUP BY status"
        rows = self._healing(lambda connection: connection.execute(sql, args).fetchall())
        return {str(status): int(count) for status, count in rows}

    def leaf_paths(self, conditions: Sequence[tuple[str, Sequence[Any]]], column: str) -> set[str]:
        """Dotted paths of the leaves of ``column`` (params, results or config) over the
        matching rows: nested objects are walked, anything else (an empty object, a list, a
        scalar) is a leaf. SQLite finds the distinct top-level keys and nested objects; only
        those nested objects are parsed here."""
        if column not in ("params", "results", "config"):
            raise ValueError(f"no such JSON column: {column!r}")
        args: list[Any] = []
        sql = (
            "SELECT DISTINCT item.key, CASE WHEN item.type = 'object' THEN item.value END "
            f"FROM (SELECT {column} AS doc FROM runs{_where_sql(conditions, args)}) AS run, "
            "json_each(run.doc) AS item"
        )
        found = self._healing(lambda connection: connection.execute(sql, args).fetchall())
        paths: set[str] = set()
        for key, nested in found:
            value = None if nested is None else json.loads(nested)
            if isinstance(value, dict) and value:
                paths.update(_leaf_paths(value, f"{key}."))
            else:
                paths.add(str(key))
        return paths


_CREATION_ORDER = ("created_at", "project_id", "experiment_id", "id")


def _order_sql(order: tuple[str, Sequence[Any]] | None) -> tuple[str, Sequence[Any]]:
    """The ORDER BY list: ``order``, then creation order. Ordering by creation time alone is
    creation order itself, either way round (newest first reverses it whole), so the index
    on creation order is walked, forwards or backwards, instead of sorting every row."""
    if order is None or order == ("created_at ASC", []):
        return ", ".join(f"{column} ASC" for column in _CREATION_ORDER), ()
    if order == ("created_at DESC", []):
        return ", ".join(f"{column} DESC" for column in _CREATION_ORDER), ()
    creation = ", ".join(f"{column} ASC" for column in _CREATION_ORDER)
    return f"{order[0]}, {creation}", order[1]


def _leaf_paths(value: dict[str, Any], prefix: str) -> Iterator[str]:
    for key, item in value.items():
        if isinstance(item, dict) and item:
            yield from _leaf_paths(item, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _where_sql(conditions: Sequence[tuple[str, Sequence[Any]]], args: list[Any]) -> str:
    """`` WHERE`` and every condition joined by AND (empty without any); extends ``args``."""
    if not conditions:
        return ""
    for _, condition_args in conditions:
        args.extend(condition_args)
    return " WHERE " + " AND ".join(condition for condition, _ in conditions)


def upsert_rows(connection: sqlite3.Connection, rows: Iterable[IndexRow]) -> None:
    """Write ``rows`` on ``connection`` (inside the caller's transaction)."""
    connection.executemany(_UPSERT, rows)


def delete_rows(connection: sqlite3.Connection, keys: Iterable[tuple[str, str, str]]) -> None:
    """Drop the rows of ``(project_id, experiment_id, run_id)`` (in the caller's transaction)."""
    connection.executemany(
        "DELETE FROM runs WHERE project_id = ? AND experiment_id = ? AND id = ?", keys
    )


def has_runs_table(connection: sqlite3.Connection) -> bool:
    """Whether the file holds a current ``runs`` table (else its next use fills one)."""
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'workspace_index_versions'"
    ).fetchone()
    if exists is None:
        return False
    row = connection.execute(
        "SELECT 1 FROM workspace_index_versions WHERE component = 'runs' AND version = ?",
        (INDEX_VERSION,),
    ).fetchone()
    return row is not None
