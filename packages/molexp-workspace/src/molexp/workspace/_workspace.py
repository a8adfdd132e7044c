"""The ``Workspace``: root of the hierarchy, its projects, its catalog and its run index.

A workspace object is lazy: constructing one reads ``workspace.json`` if it exists
and writes nothing. ``materialize()`` (or the first ``ws.Project(...)``, or the first
use of the asset catalog) creates the record. Run queries go through the run index
(``ws.runs()``, ``ws.find_run()``), which ``rebuild_index()`` recreates from the
``run.json`` files.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.assets import (
    AssetScope,
    AssetView,
    BrokenRecord,
    Catalog,
    DataAssetLibrary,
    RebuildReport,
    locked,
    slugify,
    validate_name,
)
from molexp.assets._io import checked_path, is_valid_unicode, lone_surrogate_at

from ._errors import AmbiguousRunIdError, BrokenRecordWarning
from ._index import IndexRow, RunIndex, row_for
from ._layout import (
    PROJECT_FILE,
    PROJECTS_DIR,
    WORKSPACE_FILE,
    ChildRecords,
    scan_records,
)
from ._project import Project
from ._query import compile_order, compile_where, parse_query, where_from_mapping
from ._records import RunMetadata, WorkspaceMetadata, utc_now
from ._records_io import RecordFile, StaleRecordError
from ._results import RunQueryResult, RunSummary

if TYPE_CHECKING:
    from ._experiment import Experiment
    from ._run import Run

_Project = Project  # the factory method below shadows the class name

__all__ = ["IndexRebuildReport", "Workspace"]


@dataclass(frozen=True)
class IndexRebuildReport:
    """What ``Workspace.rebuild_index`` did: run rows written, broken run files, asset report."""

    runs: int
    broken: tuple[BrokenRecord, ...]
    assets: RebuildReport


class Workspace:
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
        self._lock = threading.RLock()
        self._projects: ChildRecords[Project] = ChildRecords(
            self._root / PROJECTS_DIR,
            PROJECT_FILE,
            partial(Project._load, self),
            self._report_broken,
        )
        self._catalog: Catalog | None = None
        self._index: RunIndex | None = None
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
        return self._root

    @property
    def id(self) -> str:
        return self._metadata.id

    @property
    def name(self) -> str:
        return self._metadata.name

    @property
    def metadata(self) -> WorkspaceMetadata:
        """The workspace record; edit it and call ``save()`` to persist the change."""
        return self._metadata

    @property
    def record_path(self) -> Path:
        return self._record.path

    @property
    def materialized(self) -> bool:
        """Whether ``workspace.json`` exists (this object wrote or loaded it)."""
        return self._materialized

    def materialize(self) -> Workspace:
        """Create ``workspace.json`` and ``projects/`` if missing (adopts one made meanwhile)."""
        with self._lock:
            if not self._materialized:
                with locked(self._record.path):
                    if self._record.exists():
                        self._metadata = self._record.load()
                    else:
                        self._record.write(self._metadata)
                (self._root / PROJECTS_DIR).mkdir(exist_ok=True)
                self._materialized = True
        return self

    def _exists(self) -> bool:
        """Whether ``workspace.json`` exists, adopting one another process created meanwhile."""
        if not self._materialized and self._record.exists():
            self.reload()
        return self._materialized

    def save(self) -> None:
        """Persist edits to ``metadata``; ``StaleRecordError`` if the file changed meanwhile."""
        with self._lock:
            self.materialize()
            with locked(self._record.path):
                if self._record.changed_since_seen():
                    raise StaleRecordError(self._record.path)
                self._metadata.updated_at = utc_now()
                self._record.write(self._metadata)

    def reload(self) -> Workspace:
        """Re-read ``workspace.json`` (discarding unsaved edits)."""
        with self._lock:
            if self._record.exists():
                self._metadata = self._record.load()
                self._materialized = True
        return self

    # -- assets ------------------------------------------------------------------

    @property
    def catalog(self) -> Catalog:
        """The asset catalog (materializes the workspace: the catalog lives in it)."""
        with self._lock:
            if self._catalog is None:
                self.materialize()
                self._catalog = Catalog(self._root, self.id)
            return self._catalog

    @property
    def scope(self) -> AssetScope:
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
        with self._lock:
            shutil.rmtree(project_dir)
            self._projects.cache.pop(project_id, None)
            self._run_index.delete_project(project_id)
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
                    connection = catalog.connect()
                    connection.isolation_level = None
                    return connection

                self._index = RunIndex(connect, self._scan_index_rows, catalog.db_path)
            return self._index

    def _index_run(self, metadata: RunMetadata) -> None:
        self._run_index.upsert(metadata)

    def _scan_index_rows(self) -> Iterator[IndexRow]:
        self._scan_broken = []
        for item in scan_records(self._root, self.id):
            if isinstance(item, BrokenRecord):
                self._scan_broken.append(item)
            elif isinstance(item, RunMetadata):
                yield row_for(item)

    def rebuild_index(self) -> IndexRebuildReport:
        """Recreate the run index from every ``run.json`` and the asset index from its records."""
        with self._lock:
            count = self._run_index.rebuild()
            broken = tuple(self._scan_broken)
            assets = self.catalog.rebuild()
        return IndexRebuildReport(runs=count, broken=broken, assets=assets)

    def runs(
        self,
        where: str | Mapping[str, Any] | None = None,
        order_by: str | Sequence[str] | None = None,
        limit: int | None = None,
        project: str | _Project | None = None,
        experiment: str | Experiment | None = None,
    ) -> RunQueryResult:
        """Runs from the index matching ``where`` (query text or a mapping of equalities).

        See ``molexp.workspace._query`` for the language. ``order_by`` is a field or
        ``-field`` (or a list of them); creation order breaks ties.
        """
        if not self._exists():
            return RunQueryResult([])
        surrogate = lone_surrogate_at(where, "where")
        if surrogate is not None:
            raise ValueError(
                f"{surrogate} is not valid Unicode (it holds a lone surrogate); "
                f"no stored value can match it: {where!r}"
            )
        conditions: list[tuple[str, list[Any]]] = []
        if isinstance(where, str):
            conditions.append(compile_where(parse_query(where)))
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
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be a non-negative integer, got {limit!r}")
        order = compile_order(order_by) if order_by else None
        rows = self._run_index.select(conditions, order, limit)
        return RunQueryResult([RunSummary(self._root, row) for row in rows])

    def find_run(
        self, run_id: str, *, project: str | None = None, experiment: str | None = None
    ) -> Run:
        """Load a run by id through the index (``project``/``experiment`` disambiguate)."""
        validate_name(run_id, "run id")
        if not self._exists():
            raise KeyError(f"no run {run_id!r} in workspace {self._root}")
        conditions: list[tuple[str, list[Any]]] = [("id = ?", [run_id])]
        if project is not None:
            conditions.append(("project_id = ?", [project]))
        if experiment is not None:
            conditions.append(("experiment_id = ?", [experiment]))
        rows = self._run_index.select(conditions, None, None)
        matches = sorted({(row[0], row[1]) for row in rows})
        if not matches:
            raise KeyError(f"no run {run_id!r} in workspace {self._root}")
        if len(matches) > 1:
            raise AmbiguousRunIdError(run_id, matches)
        project_id, experiment_id = matches[0]
        return self.project(project_id).experiment(experiment_id).get_run(run_id)
