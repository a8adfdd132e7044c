"""The ``Project``: a group of experiments under ``<root>/projects/<project_id>/``.

Owns get-or-create of projects and of their experiments, experiment lookup and
listing, and the project-scoped asset views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.assets import (
    AssetScope,
    AssetView,
    DataAssetLibrary,
    locked,
    slugify,
    validate_name,
)

from ._experiment import Experiment
from ._hashing import plain_json
from ._layout import (
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    PROJECT_FILE,
    PROJECTS_DIR,
    ChildRecords,
    check_project,
)
from ._records import ProjectMetadata, check_tags, check_text
from ._records_io import RecordFile
from ._stored import StoredRecord

if TYPE_CHECKING:
    from ._workspace import Workspace

_Experiment = Experiment  # the factory method below shadows the class name

__all__ = ["Project"]


class Project(StoredRecord[ProjectMetadata]):
    """A project of a workspace; create it with ``ws.Project(name)``."""

    def __init__(
        self, workspace: Workspace, metadata: ProjectMetadata, record: RecordFile[ProjectMetadata]
    ) -> None:
        self._workspace = workspace
        self._init_record(metadata, record)
        self._experiments: ChildRecords[Experiment] = ChildRecords(
            record.path.parent / EXPERIMENTS_DIR,
            EXPERIMENT_FILE,
            partial(Experiment._load, self),
            workspace._report_broken,
        )

    @staticmethod
    def _record_for(workspace: Workspace, project_id: str) -> RecordFile[ProjectMetadata]:
        path = workspace.root / PROJECTS_DIR / project_id / PROJECT_FILE
        return RecordFile(path, ProjectMetadata)

    @classmethod
    def _load(cls, workspace: Workspace, project_id: str) -> Project:
        record = cls._record_for(workspace, project_id)
        metadata = check_project(record.path, record.load(), workspace.id)
        return cls(workspace, metadata, record)

    @classmethod
    def _open_or_create(
        cls,
        workspace: Workspace,
        project_id: str,
        *,
        name: str,
        description: str | None,
        owner: str | None,
        tags: Sequence[str] | None,
        config: Mapping[str, Any] | None,
    ) -> Project:
        record = cls._record_for(workspace, project_id)
        what = f"project {project_id!r}"
        # Checked before anything touches the disk: a rejected argument leaves no trace.
        fields = {
            "description": check_text(description, f"{what} description"),
            "owner": check_text(owner, f"{what} owner"),
            "tags": check_tags(tags, what),
            "config": plain_json(dict(config or {}), f"{what} config"),
        }
        with locked(record.path):
            metadata = ProjectMetadata(
                id=project_id, name=name, workspace_id=workspace.id, **fields
            )
            # Exclusive across hosts: a creator that loses adopts the winner's record.
            if record.exists() or not record.create(metadata):
                metadata = check_project(record.path, record.load(), workspace.id)
        (record.path.parent / EXPERIMENTS_DIR).mkdir(exist_ok=True)
        return cls(workspace, metadata, record)

    def __repr__(self) -> str:
        return f"Project({self.id!r}, name={self.name!r})"

    def _repr_html_(self) -> str:
        """A compact table for notebooks: the project, then its experiments and their runs."""
        from ._html import facts_html, grid_html

        counts: dict[str, dict[str, int]] = {}
        for row in self._workspace.runs(project=self.id):
            state = "stale" if row.stale else row.status.value
            per_status = counts.setdefault(row.experiment, {})
            per_status[state] = per_status.get(state, 0) + 1
        experiments = self.list_experiments()
        table = grid_html(
            ["experiment", "name", "params", "replicas", "runs"],
            [
                (exp.id, exp.name, exp.params, exp.n_replicas, counts.get(exp.id, {}))
                for exp in experiments
            ],
            caption=f"{len(experiments)} experiments",
        )
        return facts_html(
            f"Project {self.id}",
            [
                ("name", self.name if self.name != self.id else None),
                ("description", self.description),
                ("owner", self.owner),
                ("tags", self.tags),
            ],
            after=table if experiments else "",
        )

    # -- record ------------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """The workspace the project belongs to."""
        return self._workspace

    @property
    def description(self) -> str | None:
        """The project's description, if any."""
        return self._metadata.description

    @property
    def owner(self) -> str | None:
        """The project's owner, if recorded."""
        return self._metadata.owner

    @property
    def tags(self) -> list[str]:
        """The project's tags."""
        return self._metadata.tags

    @property
    def config(self) -> dict[str, Any]:
        """The project's config."""
        return self._metadata.config

    @property
    def project_dir(self) -> Path:
        """The project's directory."""
        return self._record.path.parent

    def _check(self, metadata: ProjectMetadata) -> ProjectMetadata:
        return check_project(self._record.path, metadata, self._workspace.id)

    # -- assets ------------------------------------------------------------------

    @property
    def scope(self) -> AssetScope:
        """The asset scope of this project."""
        return AssetScope.for_project(self._workspace.id, self.id)

    @property
    def assets(self) -> AssetView:
        """Read-only view of the assets of this project and everything beneath it."""
        return AssetView(self._workspace.catalog, self.scope)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """Project-level data assets (stored under ``<project_dir>/data_assets/``)."""
        return DataAssetLibrary(self._workspace.catalog, self.scope, self.project_dir)

    # -- experiments ---------------------------------------------------------------

    def Experiment(
        self,
        name: str,
        params: Mapping[str, Any] | None = None,
        n_replicas: int = 1,
        seeds: Sequence[int] | None = None,
        workflow_source: str | None = None,
        workflow_type: str | None = None,
        git_commit: str | None = None,
        id: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> _Experiment:
        """Get or create the experiment ``id`` (default: the slug of ``name``).

        An existing experiment is returned as stored: the other arguments only apply
        when it is created. Repeated calls return the same object. When
        ``workflow_source`` is given without ``git_commit``, the commit checked out in
        the source's directory is recorded (None outside a git repository).
        """
        experiment_id = validate_name(id, "experiment id") if id is not None else slugify(name)
        validate_name(name, "experiment name")
        with self._lock:
            return self._experiments.get_or_create(
                experiment_id,
                lambda: Experiment._open_or_create(
                    self,
                    experiment_id,
                    name=name,
                    params=params,
                    n_replicas=n_replicas,
                    seeds=seeds,
                    workflow_source=workflow_source,
                    workflow_type=workflow_type,
                    git_commit=git_commit,
                    description=description,
                    tags=tags,
                ),
            )

    def experiment(self, experiment_id: str) -> _Experiment:
        """The experiment with this id (or slugified name); ``KeyError`` naming it if absent."""
        with self._lock:
            found = self._experiments.find(experiment_id)
            if found is not None:
                return found
        known = ", ".join(item.id for item in self.list_experiments()) or "none"
        raise KeyError(
            f"no experiment {experiment_id!r} in project {self.id!r} (experiments: {known})"
        )

    def list_experiments(self) -> list[_Experiment]:
        """Every readable experiment of this project, by id (broken ones are warned about)."""
        with self._lock:
            return self._experiments.list()
