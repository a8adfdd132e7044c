"""The ``Workspace``: root of the hierarchy, its projects, its catalog and its run index.

A workspace object is lazy: constructing one reads ``workspace.json`` if it exists
and writes nothing. ``materialize()`` (or the first ``ws.Project(...)``, or the first
use of the asset catalog) creates the record. Run queries go through the run index
(``ws.runs()``, ``ws.find_run()``), which ``rebuild_index()`` recreates from the
``run.json`` files.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sqlite3
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from molexp.assets import (
    AssetScope,
    AssetView,
    BrokenRecord,
    Catalog,
    CatalogRebuildReport,
    DataAssetLibrary,
    RecordError,
    locked,
    slugify,
    validate_name,
)
from molexp.assets.storage import (
    FeedSpan,
    changing,
    checked_path,
    is_valid_unicode,
    lone_surrogate_at,
)

from ._errors import AmbiguousRunIdError, BrokenRecordWarning
from ._index import (
    IndexRow,
    RecordWrite,
    RunIndex,
    delete_rows,
    has_runs_table,
    row_for,
    upsert_rows,
)
from ._layout import (
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    PROJECT_CHANGE,
    PROJECT_FILE,
    PROJECTS_DIR,
    RUN_CHANGE,
    RUN_DIR_PREFIX,
    RUN_FILE,
    RUNS_DIR,
    WORKSPACE_FILE,
    ChildRecords,
    check_experiment,
    check_project,
    check_run,
    child_dirs,
    run_record_ids,
    scan_records,
)
from ._project import Project
from ._query import (
    Node,
    check_fields,
    compile_order,
    compile_where,
    parse_query,
    where_from_mapping,
)
from ._records import ExperimentMetadata, ProjectMetadata, RunMetadata, WorkspaceMetadata
from ._records_io import RecordFile, read_record
from ._results import RunQueryResult
from ._stored import StoredRecord

if TYPE_CHECKING:
    from ._experiment import Experiment
    from ._run import Run

_Project = Project  # the factory method below shadows the class name

__all__ = ["IndexRebuildReport", "Workspace"]

logger = logging.getLogger("molexp.workspace")


_PENDING_MAX = 64
"""Queued index rows that make a workspace object flush them (see ``Workspace._index_run``)."""
_PENDING_SECONDS = 1.0
"""Age of the oldest queued index row that makes the next run write flush them."""

# Every workspace object: the ones with queued index rows flush them at interpreter exit.
_workspaces: weakref.WeakSet[Workspace] = weakref.WeakSet()


def _flush_at_exit() -> None:
    for workspace in list(_workspaces):
        if workspace._pending and workspace._record.exists():  # not a deleted workspace
            workspace._flush_index()


def _forget_pending_in_child() -> None:
    # The rows queued in the parent are the parent's to write (their feed spans are in its
    # journal); a thread of the parent may have held a lock of any workspace when it forked.
    for workspace in list(_workspaces):
        workspace._pending = []
        workspace._pending_lock = threading.Lock()
        workspace._flush_lock = threading.Lock()


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_pending_in_child)


@dataclass(frozen=True)
class IndexRebuildReport:
    """What ``Workspace.rebuild_index`` did: run rows written, broken run files, asset report."""

    runs: int
    broken: tuple[BrokenRecord, ...]
    assets: CatalogRebuildReport


class Workspace(StoredRecord[WorkspaceMetadata]):
    """The root directory of a body of work: ``workspace.json`` plus ``projects/``.

    ``name`` only applies when the workspace is created; an existing
    ``workspace.json`` keeps its stored id and name.
    """

    def __init__(self, root: str | os.PathLike[str], name: str | None = None) -> None:
        if name is not None and (
            not isinstance(name, str) or not name.strip() or not is_valid_unicode(name)
        ):
            raise ValueError(f"workspace name must be a non-empty string, got {name!r}")
        self._root = checked_path(root, "workspace root").expanduser().resolve()
        self._record = RecordFile(self._root / WORKSPACE_FILE, WorkspaceMetadata)
        self._lock = threading.RLock()  # set before the metadata: materialize() may need it
        self._projects: ChildRecords[Project] = ChildRecords(
            self._root / PROJECTS_DIR,
            PROJECT_FILE,
            partial(Project._load, self),
            self._report_broken,
        )
        self._catalog: Catalog | None = None
        self._index: RunIndex | None = None
        # Index rows of this object's run writes not written yet (see ``_index_run``).
        self._pending: list[RecordWrite] = []
        self._pending_since = 0.0
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        _workspaces.add(self)
        self._scan_broken: list[BrokenRecord] = []
        if self._record.exists():
            self._metadata = self._record.load()
            self._materialized = True
        else:
            self._metadata = WorkspaceMetadata(
                id=uuid.uuid4().hex[:12], name=name or self._root.name or "workspace"
            )
            self._materialized = False

    @classmethod
    def load(cls, root: str | os.PathLike[str]) -> Workspace:
        """Open an existing workspace; ``FileNotFoundError`` if ``workspace.json`` is missing."""
        path = checked_path(root, "workspace root").expanduser().resolve() / WORKSPACE_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"no MolExp workspace at {path.parent}: {path} is missing "
                "(create one with Workspace(root).materialize())"
            )
        return cls(path.parent)

    def __repr__(self) -> str:
        return f"Workspace({str(self._root)!r}, id={self.id!r})"

    # -- record ------------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The workspace's root directory."""
        return self._root

    @property
    def materialized(self) -> bool:
        """Whether ``workspace.json`` exists (this object wrote or loaded it)."""
        return self._materialized

    def materialize(self) -> Workspace:
        """Create ``workspace.json`` and ``projects/`` if missing (adopts one made meanwhile)."""
        with self._lock:
            if not self._materialized:
                with locked(self._record.path):
                    # Exclusive across hosts: a creator that loses adopts the winner's record.
                    if self._record.exists() or not self._record.create(self._metadata):
                        self._metadata = self._record.load()
                (self._root / PROJECTS_DIR).mkdir(exist_ok=True)
                self._materialized = True
        return self

    def _exists(self) -> bool:
        """Whether ``workspace.json`` exists, adopting one another process created meanwhile."""
        if not self._materialized and self._record.exists():
            self.reload()
        return self._materialized

    def save(self) -> None:
        """Persist edits to ``metadata`` (creating the workspace first if need be);
        ``StaleRecordError`` if the file changed meanwhile."""
        with self._lock:
            self.materialize()
            super().save()

    def reload(self) -> Self:
        """Re-read ``workspace.json`` (discarding unsaved edits); a no-op before it exists."""
        with self._lock:
            if self._record.exists():
                super().reload()
                self._materialized = True
        return self

    # -- assets ------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The asset catalog (materializes the workspace: the catalog lives in it)."""
        with self._lock:
            if self._catalog is None:
                self.materialize()
                catalog = Catalog(self._root, self.id)
                catalog.add_feed_handler(RUN_CHANGE, self._apply_run_changes)
                catalog.add_feed_handler(PROJECT_CHANGE, self._apply_project_changes)
                self._catalog = catalog
            return self._catalog

    @property
    def scope(self) -> AssetScope:
        """The asset scope of the whole workspace."""
        return AssetScope.for_workspace(self.id)

    @property
    def assets(self) -> AssetView:
        """Read-only view of every asset in the workspace."""
        return AssetView(self.catalog, self.scope)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """Workspace-level data assets (stored under ``<root>/data_assets/``)."""
        return DataAssetLibrary(self.catalog, self.scope, self._root)

    # -- projects ----------------------------------------------------------------

    def Project(
        self,
        name: str,
        description: str | None = None,
        owner: str | None = None,
        tags: Sequence[str] | None = None,
        config: Mapping[str, Any] | None = None,
        id: str | None = None,
    ) -> _Project:
        """Get or create the project ``id`` (default: the slug of ``name``).

        An existing project is returned as stored: the other arguments only apply
        when it is created. Repeated calls return the same object.
        """
        project_id = validate_name(id, "project id") if id is not None else slugify(name)
        validate_name(name, "project name")
        with self._lock:
            if project_id not in self._projects.cache:
                self.materialize()
            return self._projects.get_or_create(
                project_id,
                lambda: Project._open_or_create(
                    self,
                    project_id,
                    name=name,
                    description=description,
                    owner=owner,
                    tags=tags,
                    config=config,
                ),
            )

    def project(self, name_or_id: str) -> _Project:
        """The project with this id or slugified name; ``KeyError`` naming it if absent."""
        with self._lock:
            found = self._projects.find(name_or_id)
            if found is not None:
                return found
            for project in self._projects.list():
                if project.name == name_or_id:
                    return project
        known = ", ".join(project.id for project in self.list_projects()) or "none"
        raise KeyError(f"no project {name_or_id!r} in workspace {self._root} (projects: {known})")

    def list_projects(self) -> list[_Project]:
        """Every readable project on disk plus the ones created in this process, by id.

        Unreadable ``project.json`` files are skipped with a ``BrokenRecordWarning``.
        """
        with self._lock:
            return self._projects.list()

    def delete_project(self, project_id: str) -> None:
        """Delete the project directory and drop its runs and assets from the index."""
        validate_name(project_id, "project id")
        project_dir = self._root / PROJECTS_DIR / project_id
        if not project_dir.is_dir():
            raise KeyError(f"no project {project_id!r} in workspace {self._root}")
        # First: after the delete, its runs' queued rows would be skipped and their lines re-read.
        self._flush_index()
        with self._lock:
            with changing(self._root, PROJECT_CHANGE, f"{PROJECTS_DIR}/{project_id}"):
                shutil.rmtree(project_dir)
            self._projects.cache.pop(project_id, None)
            try:
                self._run_index.delete_project(project_id)
            except Exception as exc:  # the index is a cache; catch-up drops the rows
                logger.warning("run index not updated after deleting %s: %s", project_dir, exc)
            self.catalog.delete_within(AssetScope.for_project(self.id, project_id))

    # -- broken records ------------------------------------------------------------

    def _report_broken(self, path: Path, error: Exception) -> None:
        """Warn that a listing skipped ``path`` (used by every listing in the hierarchy)."""
        warnings.warn(f"skipped broken record {path}: {error}", BrokenRecordWarning, stacklevel=3)

    def broken_records(self) -> list[BrokenRecord]:
        """Every project, experiment and run record that cannot be read, with its error."""
        if not self._exists():
            return []
        return [
            item for item in scan_records(self._root, self.id) if isinstance(item, BrokenRecord)
        ]

    # -- run index -------------------------------------------------------------------

    @property
    def _run_index(self) -> RunIndex:
        with self._lock:
            if self._index is None:
                catalog = self.catalog

                def connect() -> sqlite3.Connection:
                    # The catalog's tables (and feed offsets) come first: a run fill that
                    # preceded the feed snapshot could miss changes made in between.
                    catalog.ensure_index()
                    connection = catalog.connect()
                    connection.isolation_level = None
                    return connection

                self._index = RunIndex(
                    connect, self._scan_index_rows, catalog.db_path, catalog.discard
                )
            return self._index

    def _index_run(
        self, metadata: RunMetadata, record: RecordFile[RunMetadata], span: FeedSpan | None
    ) -> None:
        """Queue the index row of a run whose ``record`` was just written (never raises).

        The row reaches the index at the next flush: before this object's next read of the
        index, once ``_PENDING_MAX`` writes are queued or the oldest is ``_PENDING_SECONDS``
        old (looked at here), or at interpreter exit. Meanwhile every other reader catches
        up from the change feed, whose lines the write already appended.
        """
        data = record.seen
        if data is None:
            return
        key = (metadata.project_id, metadata.experiment_id, metadata.id)
        try:
            write = RecordWrite(key, row_for(metadata), span, record.path, data)
        except Exception as exc:  # the record is written; catch-up repairs the index
            logger.warning("run index not updated for run %s: %s", metadata.id, exc)
            return
        now = time.monotonic()
        with self._pending_lock:
            if not self._pending:
                self._pending_since = now
            self._pending.append(write)
            due = (
                len(self._pending) >= _PENDING_MAX or now - self._pending_since >= _PENDING_SECONDS
            )
        if due:
            self._flush_index()

    def _flush_index(self) -> None:
        """Write the queued index rows in one transaction (see ``RunIndex.apply_writes``).

        Never raises: on failure the rows are dropped with a warning; their feed lines were
        not consumed, so the next catch-up re-reads those records.
        """
        if not self._pending:
            with self._flush_lock:  # another thread's flush under way may hold our writes
                return
        try:
            # Taken before the flush lock, so that lock is never held waiting for another.
            index = self._run_index
        except Exception as exc:
            self._warn_dropped(self._take_pending(), exc)
            return
        with self._flush_lock:
            writes = self._take_pending()
            if writes:
                try:
                    index.apply_writes(writes)
                except Exception as exc:  # the records are written; catch-up repairs the index
                    self._warn_dropped(writes, exc)

    @staticmethod
    def _warn_dropped(writes: list[RecordWrite], error: Exception) -> None:
        if writes:
            logger.warning("run index not updated for %d run writes: %s", len(writes), error)

    def _take_pending(self) -> list[RecordWrite]:
        with self._pending_lock:
            writes, self._pending = self._pending, []
        return writes

    def _select_runs(
        self,
        conditions: Sequence[tuple[str, Sequence[Any]]],
        order: tuple[str, Sequence[Any]] | None,
        limit: int | None,
        offset: int = 0,
    ) -> list[IndexRow]:
        """Rows of the run index after catching up with every host's change feed."""
        return self._caught_up_index().select(conditions, order, limit, offset)

    def _caught_up_index(self) -> RunIndex:
        """The run index after this object's queued rows and every host's feed reached it."""
        self._flush_index()
        index = self._run_index
        index.connection()  # the runs table exists before catch-up applies run lines
        try:
            self.catalog.catch_up()
        except Exception as exc:  # answer from the index as it is; the next query retries
            logger.warning("run index could not catch up with the change feed: %s", exc)
        return index

    def _apply_run_changes(self, connection: sqlite3.Connection, targets: list[str]) -> None:
        """Catch-up for run records: re-read each named ``run.json``; index it or drop its row."""
        if not has_runs_table(connection):
            return  # the table's first use fills it from the records
        parents: dict[tuple[str, str], bool] = {}
        upserts: list[IndexRow] = []
        deletes: list[tuple[str, str, str]] = []
        for target in targets:
            key = run_record_ids(target)
            if key is None:
                continue
            project_id, experiment_id, _ = key
            if (project_id, experiment_id) not in parents:
                parents[project_id, experiment_id] = self._parents_readable(
                    project_id, experiment_id
                )
            path = self._root / target
            try:
                if not parents[project_id, experiment_id]:
                    raise RecordError(path, "its project or experiment record is unreadable")
                metadata = check_run(
                    path, read_record(path, RunMetadata), self.id, project_id, experiment_id
                )
            except (RecordError, OSError):
                deletes.append(key)  # a rebuild would not index it either
                continue
            upserts.append(row_for(metadata))
        delete_rows(connection, deletes)
        upsert_rows(connection, upserts)

    def _run_dirs_on_disk(
        self, run_id: str, project: str | None, experiment: str | None
    ) -> list[tuple[str, str]]:
        """``(project_id, experiment_id)`` of every ``run-<run_id>/run.json`` on disk."""
        found = []
        for project_dir in child_dirs(self._root / PROJECTS_DIR):
            if project is not None and project_dir.name != project:
                continue
            for experiment_dir in child_dirs(project_dir / EXPERIMENTS_DIR):
                if experiment is not None and experiment_dir.name != experiment:
                    continue
                if (experiment_dir / RUNS_DIR / f"{RUN_DIR_PREFIX}{run_id}" / RUN_FILE).is_file():
                    found.append((project_dir.name, experiment_dir.name))
        return found

    def _parents_readable(self, project_id: str, experiment_id: str) -> bool:
        """Whether a rebuild would visit runs of this experiment (both parents readable)."""
        project_path = self._root / PROJECTS_DIR / project_id / PROJECT_FILE
        experiment_path = project_path.parent / EXPERIMENTS_DIR / experiment_id / EXPERIMENT_FILE
        try:
            check_project(project_path, read_record(project_path, ProjectMetadata), self.id)
            check_experiment(
                experiment_path,
                read_record(experiment_path, ExperimentMetadata),
                self.id,
                project_id,
            )
        except (RecordError, OSError):
            return False
        return True

    def _apply_project_changes(self, connection: sqlite3.Connection, targets: list[str]) -> None:
        """Catch-up for deleted projects: drop the run rows of every project that is gone."""
        if not has_runs_table(connection):
            return
        for target in targets:
            parts = target.split("/")
            if len(parts) == 2 and not (self._root / target / PROJECT_FILE).is_file():
                connection.execute("DELETE FROM runs WHERE project_id = ?", (parts[1],))

    def _scan_index_rows(self) -> Iterator[IndexRow]:
        self._scan_broken = []
        for item in scan_records(self._root, self.id):
            if isinstance(item, BrokenRecord):
                self._scan_broken.append(item)
            elif isinstance(item, RunMetadata):
                yield row_for(item)

    def rebuild_index(self) -> IndexRebuildReport:
        """Discard this host's index file and recreate it from every record, whatever state
        the old file is in (missing, outdated, corrupt, truncated)."""
        # Queued rows are of records written before the rebuild reads every record: dropped.
        self._take_pending()
        with self._lock:
            self._scan_broken = []
            assets = self.catalog.rebuild()
            count = self._run_index.row_count()
            broken = tuple(self._scan_broken)
        return IndexRebuildReport(runs=count, broken=broken, assets=assets)

    def runs(
        self,
        where: str | Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        project: str | _Project | None = None,
        experiment: str | Experiment | None = None,
        offset: int = 0,
    ) -> RunQueryResult:
        """Runs from the index matching ``where`` (query text or a mapping of equalities).

        See ``molexp.workspace._query`` for the language. ``order_by`` is a field or
        ``-field`` (or a list of them); creation order breaks ties. ``limit`` and ``offset``
        page through that order in the index (a page costs its own rows, not the whole
        match). A field no run in the workspace has is an ``UnknownFieldError`` (test for
        one on purpose with ``exists(field)``).
        """
        if not self._exists():
            return RunQueryResult([])
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        conditions, node = self._run_conditions(where, project, experiment)
        order = compile_order(order_by) if order_by else None
        rows = self._select_runs(conditions, order, limit, offset)
        if node is not None or order_by:  # after the select: the index has caught up
            query = where if isinstance(where, str) else None
            check_fields(self._run_index.connection(), node, order_by, query)
        return RunQueryResult.from_index_rows(self._root, rows)

    def count_runs(
        self,
        where: str | Mapping[str, Any] | None = None,
        project: str | _Project | None = None,
        experiment: str | Experiment | None = None,
    ) -> int:
        """How many runs ``runs(where, project=..., experiment=...)`` would return, counted
        in the index without reading any row out (same language, same errors)."""
        if not self._exists():
            return 0
        conditions, node = self._run_conditions(where, project, experiment)
        count = self._caught_up_index().count(conditions)
        if node is not None:
            query = where if isinstance(where, str) else None
            check_fields(self._run_index.connection(), node, None, query)
        return count

    def run_status_counts(
        self, project: str | _Project | None = None, experiment: str | Experiment | None = None
    ) -> dict[str, int]:
        """How many runs of the workspace (or of a project or experiment) have each status,
        counted in the index (statuses no run has are left out)."""
        if not self._exists():
            return {}
        conditions, _ = self._run_conditions(None, project, experiment)
        return self._caught_up_index().count_by_status(conditions)

    def run_field_paths(
        self, project: str | _Project | None = None, experiment: str | Experiment | None = None
    ) -> dict[str, list[str]]:
        """The dotted paths (``model.depth``) some run of the scope has under ``params``,
        ``results`` and ``config``, each list sorted: nested mappings are walked, anything
        else (an empty mapping, a list, a value) ends a path. Read from the index, parsing
        only the distinct nested mappings."""
        if not self._exists():
            return {"params": [], "results": [], "config": []}
        conditions, _ = self._run_conditions(None, project, experiment)
        index = self._caught_up_index()
        return {
            column: sorted(index.leaf_paths(conditions, column))
            for column in ("params", "results", "config")
        }

    def _run_conditions(
        self,
        where: str | Mapping[str, Any] | None,
        project: str | _Project | None,
        experiment: str | Experiment | None,
    ) -> tuple[list[tuple[str, list[Any]]], Node | None]:
        """The index conditions of a run query, and its parsed ``where`` (None without one)."""
        surrogate = lone_surrogate_at(where, "where")
        if surrogate is not None:
            raise ValueError(
                f"{surrogate} is not valid Unicode (it holds a lone surrogate); "
                f"no stored value can match it: {where!r}"
            )
        conditions: list[tuple[str, list[Any]]] = []
        node: Node | None = None
        if isinstance(where, str):
            node = parse_query(where)
            conditions.append(compile_where(node))
        elif isinstance(where, Mapping):
            node = where_from_mapping(where)
            if node is not None:
                conditions.append(compile_where(node))
        elif where is not None:
            raise TypeError(f"where must be query text or a mapping, got {type(where).__name__}")
        if project is not None:
            project_id = project if isinstance(project, str) else project.id
            conditions.append(("project_id = ?", [project_id]))
        if experiment is not None:
            if isinstance(experiment, str):
                conditions.append(("experiment_id = ?", [experiment]))
            else:
                conditions.append(
                    (
                        "project_id = ? AND experiment_id = ?",
                        [experiment.project.id, experiment.id],
                    )
                )
        return conditions, node

    def find_run(
        self, run_id: str, *, project: str | None = None, experiment: str | None = None
    ) -> Run:
        """Load a run by id through the index (``project``/``experiment`` disambiguate).

        A run the index does not know is looked for on disk too (a record the index
        skipped, e.g. under a broken project, is then refused with its ``RecordError``).
        """
        validate_name(run_id, "run id")
        if not self._exists():
            raise KeyError(f"no run {run_id!r} in workspace {self._root}")
        conditions: list[tuple[str, list[Any]]] = [("id = ?", [run_id])]
        if project is not None:
            conditions.append(("project_id = ?", [project]))
        if experiment is not None:
            conditions.append(("experiment_id = ?", [experiment]))
        rows = self._select_runs(conditions, None, None)
        matches = sorted({(row[0], row[1]) for row in rows})
        if not matches:
            matches = self._run_dirs_on_disk(run_id, project, experiment)
        if not matches:
            raise KeyError(f"no run {run_id!r} in workspace {self._root}")
        if len(matches) > 1:
            raise AmbiguousRunIdError(run_id, matches)
        project_id, experiment_id = matches[0]
        return self.project(project_id).experiment(experiment_id).get_run(run_id)
