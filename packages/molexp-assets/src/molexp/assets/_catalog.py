"""The workspace asset catalog: JSON asset records indexed by an embedded SQLite file.

Every asset has one JSON record file (normally ``<scope_dir>/.assets/<id>.json``);
those files are the source of truth. The SQLite index is a cache of them kept per
user and per host outside the workspace (``molexp.assets._index_file``), so hosts
sharing a workspace over a network filesystem never share a database. It learns of
records other processes wrote from the change feed (``molexp.assets._feed``): every
query first catches up by re-reading the records the new feed lines name. A missing,
outdated, corrupt or truncated index file is discarded and rebuilt from the records.

Index trouble never fails, delays or undoes a record write: the record is written
first, the index row afterwards on a best-effort basis (a failure is logged and the
next catch-up repairs it). This module owns the asset records (writes, queries,
rebuild); the index file, its healing and the catch-up are ``_catalog_index``'s, the
read-only views ``_views``'. Record read-modify-writes hold ``locked`` (a same-host
optimisation).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

from molexp.assets._catalog_index import CatalogIndex, FeedHandler
from molexp.assets._feed import (
    FeedSpan,
    changing,
)
from molexp.assets._io import (
    RecordError,
    atomic_write_json,
    create_exclusive_bytes,
    decode_json,
    locked,
    read_bytes_if_present,
    read_json,
    restore_file,
    validate_name,
)
from molexp.assets._models import (
    Asset,
    AssetKind,
    AssetScope,
    AssetUse,
    Lineage,
    parse_asset,
)

__all__ = [
    "RECORD_DIR_NAME",
    "BrokenRecord",
    "Catalog",
    "CatalogRebuildReport",
    "FeedHandler",
    "consume_span",
    "load_asset_record",
]

logger = logging.getLogger("molexp.assets")

RECORD_DIR_NAME = ".assets"
USES_DIR_NAME = ".uses"
"""Beside the records of a scope: one file per recorded use of an asset (``record_use``)."""
ASSET_CHANGE = "asset"
# Directories the stores fill with payloads. Inside a scope directory (one holding
# ``.assets``) rebuild never descends into them: payloads may be large trees and may
# even contain another workspace's ``.assets`` folders.
PAYLOAD_DIR_NAMES = frozenset({"artifacts", "logs", "data_assets", "execution"})

ASSET_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS assets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        scope_level TEXT NOT NULL,
        workspace_id TEXT NOT NULL,
        project_id TEXT,
        experiment_id TEXT,
        run_id TEXT,
        producer_run TEXT,
        path TEXT NOT NULL,
        record_path TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        record TEXT NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS assets_by_name ON assets (name)",
    "CREATE INDEX IF NOT EXISTS assets_by_kind ON assets (kind)",
    "CREATE INDEX IF NOT EXISTS assets_by_producer ON assets (producer_run)",
    """
    CREATE INDEX IF NOT EXISTS assets_by_scope
        ON assets (workspace_id, project_id, experiment_id, run_id)
    """,
    """
    CREATE TABLE IF NOT EXISTS asset_tags (
        asset_id TEXT NOT NULL,
        tag TEXT NOT NULL,
        PRIMARY KEY (asset_id, tag)
    )
    """,
    "CREATE INDEX IF NOT EXISTS asset_tags_by_tag ON asset_tags (tag)",
)
_COLUMNS = (
    "id",
    "name",
    "kind",
    "scope_level",
    "workspace_id",
    "project_id",
    "experiment_id",
    "run_id",
    "producer_run",
    "path",
    "record_path",
    "created_at",
    "updated_at",
    "record",
)
_INSERT = (
    f"INSERT OR REPLACE INTO assets ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
)
_SCOPE_ID_COLUMNS = ("workspace_id", "project_id", "experiment_id", "run_id")

T = TypeVar("T")
A = TypeVar("A", bound=Asset)


@dataclass(frozen=True)
class BrokenRecord:
    """An asset record file ``rebuild`` could not index, and why."""

    path: Path
    error: str


@dataclass(frozen=True)
class CatalogRebuildReport:
    """What ``Catalog.rebuild`` found: record files seen, assets indexed, broken files."""

    scanned: int
    indexed: int
    broken: tuple[BrokenRecord, ...]


def load_asset_record(path: Path) -> Asset:
    """Read one asset record file; ``RecordError`` names the file (and field) on failure.

    Its ``uses`` include those recorded beside it, one file each (see ``Catalog.record_use``).
    """
    asset = parse_asset(read_json(path), path=path)
    uses = _recorded_uses(Path(path).parent / USES_DIR_NAME / Path(path).stem)
    if uses:
        asset.uses = _merge_uses(asset.uses, uses)
    return asset


def _use_key(run_id: str, execution_id: str | None, task_name: str | None) -> str:
    return hashlib.sha256(json.dumps([run_id, execution_id, task_name]).encode()).hexdigest()[:24]


def _recorded_uses(directory: Path) -> list[AssetUse]:
    """The uses recorded in ``directory`` (unreadable files skipped), oldest first."""
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except (FileNotFoundError, NotADirectoryError):
        return []
    uses = []
    for entry in entries:
        if entry.name.endswith(".json") and not entry.name.startswith("."):
            with contextlib.suppress(OSError, ValueError):
                uses.append(AssetUse.model_validate_json(Path(entry.path).read_bytes()))
    return sorted(uses, key=lambda use: use.used_at)


def _timestamp_key(asset: Asset, field: str) -> str:
    # Fixed-width UTC text so SQLite orders it chronologically.
    value = asset.created_at if field == "created_at" else asset.updated_at
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _coerce_kind(kind: AssetKind | str) -> AssetKind:
    try:
        return AssetKind(kind)
    except ValueError:
        valid = ", ".join(member.value for member in AssetKind)
        raise ValueError(f"unknown asset kind {kind!r}; expected one of: {valid}") from None


class Catalog(CatalogIndex):
    """Registers asset records and answers queries over them for one workspace.

    Nothing is written until the first operation that needs the index. A catalog may
    be shared between threads; after ``fork`` a child process opens its own
    connection automatically.
    """

    SCHEMA = ASSET_SCHEMA

    def __init__(self, workspace_root: Path, workspace_id: str) -> None:
        super().__init__(
            Path(workspace_root).resolve(), validate_name(workspace_id, "workspace_id")
        )
        self.add_feed_handler(ASSET_CHANGE, self._apply_asset_changes)

    def _fill(self, conn: sqlite3.Connection) -> CatalogRebuildReport:
        return self._reindex(conn)

    def __repr__(self) -> str:
        return f"Catalog(root={str(self._root)!r}, workspace_id={self._workspace_id!r})"

    @property
    def root(self) -> Path:
        """The workspace root this catalog indexes."""
        return self._root

    @property
    def workspace_id(self) -> str:
        """Id of the workspace this catalog indexes."""
        return self._workspace_id

    # -- writing -----------------------------------------------------------------

    def relative_path(self, path: Path, what: str = "path") -> str:
        """``path`` as a POSIX path relative to the workspace root (``ValueError`` if outside).

        Only the parent directory is resolved, so a symlinked payload keeps its own name.
        """
        path = Path(path)
        resolved = path.parent.resolve() / path.name
        try:
            return resolved.relative_to(self._root).as_posix()
        except ValueError:
            raise ValueError(f"{what} {path} is outside the workspace root {self._root}") from None

    def _check_scope(self, scope: AssetScope, what: str) -> None:
        if scope.workspace_id != self._workspace_id:
            raise ValueError(
                f"{what} belongs to workspace {scope.workspace_id!r}, "
                f"but this catalog indexes workspace {self._workspace_id!r}"
            )

    @staticmethod
    def _index_row(conn: sqlite3.Connection, asset: Asset, record_rel: str) -> None:
        scope = asset.scope
        conn.execute(
            _INSERT,
            (
                asset.id,
                asset.name,
                asset.kind.value,
                scope.level.value,
                scope.workspace_id,
                scope.project_id,
                scope.experiment_id,
                scope.run_id,
                asset.producer.run_id if asset.producer else None,
                asset.path,
                record_rel,
                _timestamp_key(asset, "created_at"),
                _timestamp_key(asset, "updated_at"),
                asset.model_dump_json(),
            ),
        )
        conn.execute("DELETE FROM asset_tags WHERE asset_id = ?", (asset.id,))
        conn.executemany(
            "INSERT INTO asset_tags (asset_id, tag) VALUES (?, ?)",
            [(asset.id, tag) for tag in asset.tags],
        )

    def register(self, asset: A, record_dir: Path) -> A:
        """Write ``asset``'s record to ``<record_dir>/<id>.json`` and index it.

        Re-registering an existing id keeps the stored ``created_at`` and usage
        history; everything else is replaced. Returns the asset as written.
        """
        self._check_scope(asset.scope, f"asset {asset.name!r}")
        record_path = Path(record_dir) / f"{asset.id}.json"
        record_rel = self.relative_path(record_path, "record_dir")
        with locked(record_path):
            previous = read_bytes_if_present(record_path)
            existing = self._existing_record(record_path, previous)
            if existing is not None:
                asset = asset.model_copy(
                    update={
                        "created_at": existing.created_at,
                        "uses": _merge_uses(existing.uses, asset.uses),
                    }
                )
            self._write_record(record_path, record_rel, asset, previous)
        return asset

    def _write_record(
        self, record_path: Path, record_rel: str, asset: Asset, previous: bytes | None
    ) -> None:
        """Write the record file, then its index row (caller holds the lock).

        ``previous`` is what the file held (None: nothing). When the write fails after
        its rename (the directory fsync), the file is put back to ``previous``. The index
        row is best effort: a failing index never fails or undoes the record write.
        """
        with changing(self._root, ASSET_CHANGE, record_rel) as change:
            try:
                atomic_write_json(record_path, asset)
            except BaseException:
                restore_file(record_path, previous)
                raise

        def index(conn: sqlite3.Connection) -> None:
            self._index_row(conn, asset, record_rel)
            consume_span(conn, change.span)

        self.index_quietly(index)

    @staticmethod
    def _existing_record(record_path: Path, raw: bytes | None) -> Asset | None:
        if raw is None:
            return None
        try:
            existing = parse_asset(decode_json(record_path, raw), path=record_path)
        except RecordError:
            # An unreadable record is being replaced; nothing in it can be kept.
            return None
        uses = _recorded_uses(record_path.parent / USES_DIR_NAME / record_path.stem)
        if uses:
            existing.uses = _merge_uses(existing.uses, uses)
        return existing

    def record_use(
        self,
        asset_id: str,
        *,
        run_id: str,
        execution_id: str | None = None,
        task_name: str | None = None,
    ) -> AssetUse:
        """Persist that a run used ``asset_id`` (once per run/execution/task).

        Each use is its own file beside the record, ``.uses/<asset_id>/<key>.json``, created
        exclusively: runs on any number of hosts using one asset at once never lose each
        other's uses (a read-modify-write of the record could, without a lock shared between
        hosts). ``load_asset_record`` merges them into ``uses``.
        """
        record_path = self._record_path(asset_id)
        if not record_path.is_file():
            raise RecordError(record_path, "record file is missing")
        known = next(
            (
                use
                for use in load_asset_record(record_path).uses
                if (use.run_id, use.execution_id, use.task_name)
                == (run_id, execution_id, task_name)
            ),
            None,
        )
        if known is not None:
            return known
        use = AssetUse(run_id=run_id, execution_id=execution_id, task_name=task_name)
        use_path = (
            record_path.parent
            / USES_DIR_NAME
            / asset_id
            / f"{_use_key(run_id, execution_id, task_name)}.json"
        )
        record_rel = self.relative_path(record_path, "record")
        with changing(self._root, ASSET_CHANGE, record_rel) as change:
            created = create_exclusive_bytes(use_path, use.model_dump_json().encode("utf-8"))
        if not created:  # recorded meanwhile by another process
            return AssetUse.model_validate_json(use_path.read_bytes())

        def index(conn: sqlite3.Connection) -> None:
            self._index_row(conn, load_asset_record(record_path), record_rel)
            consume_span(conn, change.span)

        self.index_quietly(index)
        return use

    def delete(self, asset_id: str) -> None:
        """Remove an asset's record file and index row (payload files are left alone)."""
        record_path = self._record_path(asset_id)
        with locked(record_path):
            with changing(self._root, ASSET_CHANGE, self.relative_path(record_path, "record")):
                record_path.unlink(missing_ok=True)
            shutil.rmtree(record_path.parent / USES_DIR_NAME / asset_id, ignore_errors=True)
            self.index_quietly(lambda conn: _delete_rows(conn, [asset_id]))

    def delete_within(self, scope: AssetScope) -> int:
        """Forget every asset in ``scope`` or beneath it; returns how many were removed."""
        self._check_scope(scope, "scope")
        where, params = self._where(within=scope)
        rows = self._read(f"SELECT id, record_path FROM assets WHERE {where}", params)
        for _asset_id, record_rel in rows:
            with changing(self._root, ASSET_CHANGE, record_rel):
                (self._root / record_rel).unlink(missing_ok=True)
        self.index_quietly(lambda conn: _delete_rows(conn, [row[0] for row in rows]))
        return len(rows)

    # -- reading -----------------------------------------------------------------

    def _record_path(self, asset_id: str) -> Path:
        rows = self._read("SELECT record_path FROM assets WHERE id = ?", (asset_id,))
        if not rows:
            raise KeyError(f"no asset with id {asset_id!r} in workspace {self._workspace_id!r}")
        return self._root / str(rows[0][0])

    def _to_asset(self, record: str, record_rel: str) -> Asset:
        return parse_asset(json.loads(record), path=self._root / record_rel)

    def get(self, asset_id: str) -> Asset | None:
        """The asset with id ``asset_id``.

        Args:
            asset_id: The asset's id.

        Returns:
            The asset, or None if the catalog has no such id.
        """
        rows = self._read("SELECT record, record_path FROM assets WHERE id = ?", (asset_id,))
        return self._to_asset(*rows[0]) if rows else None

    def _where(
        self,
        *,
        kind: AssetKind | str | None = None,
        producer_run: str | None = None,
        scope: AssetScope | None = None,
        name: str | None = None,
        tag: str | None = None,
        within: AssetScope | None = None,
    ) -> tuple[str, list[object]]:
        clauses: list[str] = []
        params: list[object] = []
        if kind is not None:
            clauses.append("kind = ?")
            params.append(_coerce_kind(kind).value)
        if producer_run is not None:
            clauses.append("producer_run = ?")
            params.append(producer_run)
        if name is not None:
            clauses.append("name = ?")
            params.append(name)
        if tag is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM asset_tags WHERE asset_id = assets.id AND tag = ?)"
            )
            params.append(tag)
        if scope is not None:
            clauses.append("scope_level = ?")
            params.append(scope.level.value)
            for column, value in zip(_SCOPE_ID_COLUMNS, scope.ids, strict=True):
                clauses.append(f"{column} IS ?")
                params.append(value)
        if within is not None:
            for column, value in zip(_SCOPE_ID_COLUMNS, within.ids, strict=True):
                if value is not None:
                    clauses.append(f"{column} = ?")
                    params.append(value)
        return (" AND ".join(clauses) or "1"), params

    def query_assets(
        self,
        *,
        kind: AssetKind | str | None = None,
        producer_run: str | None = None,
        scope: AssetScope | None = None,
        name: str | None = None,
        tag: str | None = None,
        within: AssetScope | None = None,
    ) -> list[Asset]:
        """Assets matching every given filter, oldest first.

        ``scope`` matches exactly that scope; ``within`` matches that scope and
        everything beneath it.
        """
        where, params = self._where(
            kind=kind, producer_run=producer_run, scope=scope, name=name, tag=tag, within=within
        )
        rows = self._read(
            f"SELECT record, record_path FROM assets WHERE {where} ORDER BY created_at, id",
            params,
        )
        return [self._to_asset(record, record_rel) for record, record_rel in rows]

    def count(
        self,
        *,
        kind: AssetKind | str | None = None,
        scope: AssetScope | None = None,
        within: AssetScope | None = None,
    ) -> int:
        """How many assets match (same filter meaning as ``query_assets``)."""
        where, params = self._where(kind=kind, scope=scope, within=within)
        return int(self._read(f"SELECT COUNT(*) FROM assets WHERE {where}", params)[0][0])

    def find(
        self, name: str, scopes: Sequence[AssetScope], *, kind: AssetKind | str | None = None
    ) -> Asset | None:
        """The asset called ``name`` in the first of ``scopes`` that has one.

        Within one scope the most recently updated match wins (e.g. the latest
        checkpoint of that name).
        """
        for scope in scopes:
            where, params = self._where(kind=kind, scope=scope, name=name)
            rows = self._read(
                f"SELECT record, record_path FROM assets WHERE {where} "
                "ORDER BY updated_at DESC, id LIMIT 1",
                params,
            )
            if rows:
                return self._to_asset(*rows[0])
        return None

    def lineage(self, asset_id: str) -> Lineage:
        """The producer of ``asset_id`` and every recorded use of it."""
        asset = self.get(asset_id)
        if asset is None:
            raise KeyError(f"no asset with id {asset_id!r} in workspace {self._workspace_id!r}")
        return Lineage(asset_id=asset.id, produced_by=asset.producer, consumed_by=asset.uses)

    # -- rebuilding --------------------------------------------------------------

    def reindex_scope(self, scope: AssetScope, record_dir: Path) -> CatalogRebuildReport:
        """Bring the index rows of exactly ``scope`` in step with the records in ``record_dir``.

        For recovery after a writer died between writing a record file and indexing it
        (or between deleting a file and its row): every record is re-read under its lock
        and upserted, and rows of the scope whose record file is gone are dropped.
        Broken records are reported, not raised. Cheaper than ``rebuild`` when the
        damage is known to be confined to one scope (a reaped run).
        """
        self._check_scope(scope, "scope")
        record_dir = Path(record_dir)
        scanned = indexed = 0
        broken: list[BrokenRecord] = []
        present: set[str] = set()
        paths = sorted(record_dir.glob("*.json")) if record_dir.is_dir() else []
        for record_path in paths:
            if record_path.name.startswith("."):
                continue
            scanned += 1
            record_rel = self.relative_path(record_path, "record")
            with locked(record_path):
                try:
                    asset = load_asset_record(record_path)
                    if asset.id != record_path.stem or asset.scope != scope:
                        raise RecordError(record_path, "does not belong to this scope")
                except RecordError as exc:
                    broken.append(BrokenRecord(record_path, str(exc)))
                    continue
                self._write(partial(self._index_row, asset=asset, record_rel=record_rel))
            present.add(asset.id)
            indexed += 1
        where, params = self._where(scope=scope)
        rows = self._read(f"SELECT id FROM assets WHERE {where}", params)
        gone = [asset_id for (asset_id,) in rows if asset_id not in present]
        if gone:
            self._write(lambda conn: _delete_rows(conn, gone))
        return CatalogRebuildReport(scanned=scanned, indexed=indexed, broken=tuple(broken))

    def rebuild(self) -> CatalogRebuildReport:
        """Discard this host's index file and re-create it from every record file.

        Works whatever state the old file is in. Broken records are reported (file +
        error), never raised.
        """
        with self._lock:
            self.discard()
            self._connection()
            report = self._fill_report
        assert isinstance(report, CatalogRebuildReport), "creating the file fills it (_fill)"
        return report

    def _apply_asset_changes(self, conn: sqlite3.Connection, targets: builtins.list[str]) -> None:
        """Catch-up for asset records: re-read each named record; index it or drop its row."""
        for record_rel in targets:
            record_path = self._root / record_rel
            asset_id = record_path.stem
            try:
                asset = load_asset_record(record_path)
                if asset.id != asset_id or asset.scope.workspace_id != self._workspace_id:
                    raise RecordError(record_path, "does not belong here")
            except (RecordError, OSError):
                # Gone or unreadable: a rebuild would not index it either.
                conn.execute(
                    "DELETE FROM asset_tags WHERE asset_id IN "
                    "(SELECT id FROM assets WHERE record_path = ?)",
                    (record_rel,),
                )
                conn.execute("DELETE FROM assets WHERE record_path = ?", (record_rel,))
                continue
            self._index_row(conn, asset, record_rel)

    def _reindex(self, conn: sqlite3.Connection) -> CatalogRebuildReport:
        conn.execute("DELETE FROM asset_tags")
        conn.execute("DELETE FROM assets")
        scanned = 0
        broken: list[BrokenRecord] = []
        seen: dict[str, Path] = {}
        for record_path in self._record_files():
            scanned += 1
            try:
                asset = self._checked_record(record_path, seen)
            except RecordError as exc:
                broken.append(BrokenRecord(record_path, str(exc)))
                continue
            seen[asset.id] = record_path
            self._index_row(conn, asset, record_path.relative_to(self._root).as_posix())
        return CatalogRebuildReport(scanned=scanned, indexed=len(seen), broken=tuple(broken))

    def _checked_record(self, record_path: Path, seen: dict[str, Path]) -> Asset:
        asset = load_asset_record(record_path)
        if asset.id != record_path.stem:
            raise RecordError(
                record_path, f"asset id {asset.id!r} does not match the file name", field="id"
            )
        if asset.scope.workspace_id != self._workspace_id:
            raise RecordError(
                record_path,
                f"belongs to workspace {asset.scope.workspace_id!r}, not {self._workspace_id!r}",
                field="scope.workspace_id",
            )
        if asset.id in seen:
            raise RecordError(
                record_path, f"duplicate asset id {asset.id!r} (also in {seen[asset.id]})"
            )
        return asset

    def _record_files(self) -> Iterator[Path]:
        for current, dirnames, _filenames in os.walk(self._root):
            here = Path(current)
            is_scope_dir = RECORD_DIR_NAME in dirnames
            dirnames[:] = sorted(
                name
                for name in dirnames
                if not name.startswith(".") and not (is_scope_dir and name in PAYLOAD_DIR_NAMES)
            )
            if is_scope_dir:
                record_dir = here / RECORD_DIR_NAME
                for entry in sorted(os.scandir(record_dir), key=lambda e: e.name):
                    if (
                        entry.name.endswith(".json")
                        and not entry.name.startswith(".")
                        and entry.is_file()
                    ):
                        yield record_dir / entry.name


def consume_span(conn: sqlite3.Connection, span: FeedSpan | None) -> None:
    """Mark this process's own feed lines as applied (only when nothing is pending before them)."""
    if span is None:
        return
    if span.start == 0:  # a new journal: nobody can have consumed less of it
        conn.execute("INSERT OR IGNORE INTO feed_offsets VALUES (?, ?)", (span.journal, span.end))
    else:
        conn.execute(
            "UPDATE feed_offsets SET offset = ? WHERE journal = ? AND offset = ?",
            (span.end, span.journal, span.start),
        )


def _merge_uses(old: list[AssetUse], new: list[AssetUse]) -> list[AssetUse]:
    merged = list(old)
    merged.extend(use for use in new if use not in merged)
    return merged


def _delete_rows(conn: sqlite3.Connection, asset_ids: Sequence[str]) -> None:
    params = [(asset_id,) for asset_id in asset_ids]
    conn.executemany("DELETE FROM asset_tags WHERE asset_id = ?", params)
    conn.executemany("DELETE FROM assets WHERE id = ?", params)
