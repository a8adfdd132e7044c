"""The ``Experiment``: a repeatable definition (parameters, replicas, workflow source).

Owns get-or-create of experiments, git commit capture for the workflow source, the
replica seed policy, and creation, lookup and listing of the experiment's runs.
"""

from __future__ import annotations

import subprocess
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from molexp.assets import AssetScope, AssetView, DataAssetLibrary, RecordError, locked
from molexp.assets.storage import checked_path

from ._hashing import derive_run_id, new_run_id, plain_json
from ._layout import (
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    RUN_DIR_PREFIX,
    RUN_FILE,
    RUNS_DIR,
    check_experiment,
    child_dirs,
    run_dir_name,
)
from ._records import (
    ExperimentMetadata,
    RunMetadata,
    RunStatus,
    check_tags,
    check_text,
)
from ._records_io import RecordFile
from ._run import Run
from ._stored import StoredRecord

if TYPE_CHECKING:
    from ._project import Project
    from ._workspace import Workspace

_Run = Run  # the factory method below shadows the class name

__all__ = ["Experiment", "git_commit_of"]

GIT_TIMEOUT_SECONDS = 10.0


def git_commit_of(source: Path) -> str | None:
    """The commit checked out where ``source`` lives (``git rev-parse HEAD``), else None.

    The workflow layer's ``git_checkout`` also says whether the checkout is dirty (runs record
    that); the workspace depends on no workflow code, so an experiment's commit is asked here.
    """
    directory = source if source.is_dir() else source.parent
    if not directory.is_dir():
        return None
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = completed.stdout.strip()
    return commit if completed.returncode == 0 and commit else None


def _check_replicas(
    experiment_id: str, n_replicas: int, seeds: Sequence[int] | None
) -> list[int] | None:
    if isinstance(n_replicas, bool) or not isinstance(n_replicas, int) or n_replicas < 1:
        raise ValueError(
            f"experiment {experiment_id!r}: n_replicas must be an integer >= 1, got {n_replicas!r}"
        )
    if seeds is None:
        return None
    seed_list = list(seeds)
    if not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in seed_list):
        raise ValueError(f"experiment {experiment_id!r}: seeds must be integers, got {seeds!r}")
    if len(seed_list) != n_replicas:
        raise ValueError(
            f"experiment {experiment_id!r}: {len(seed_list)} seeds given for "
            f"n_replicas={n_replicas}; pass one seed per replica"
        )
    return seed_list


def _check_optional_int(value: int | None, what: str, minimum: int | None = None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {value!r}")
    return value


class Experiment(StoredRecord[ExperimentMetadata]):
    """An experiment of a project; create it with ``project.Experiment(name, ...)``."""

    def __init__(
        self,
        project: Project,
        metadata: ExperimentMetadata,
        record: RecordFile[ExperimentMetadata],
    ) -> None:
        self._project = project
        self._init_record(metadata, record)
        # Weak: a run object stays shared while someone holds it, without keeping every
        # run of a long-lived process in memory.
        self._runs: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()

    @staticmethod
    def _record_for(project: Project, experiment_id: str) -> RecordFile[ExperimentMetadata]:
        path = project.project_dir / EXPERIMENTS_DIR / experiment_id / EXPERIMENT_FILE
        return RecordFile(path, ExperimentMetadata)

    def _check(self, metadata: ExperimentMetadata) -> ExperimentMetadata:
        return check_experiment(
            self._record.path, metadata, self._project.workspace.id, self._project.id
        )

    @classmethod
    def _load(cls, project: Project, experiment_id: str) -> Experiment:
        record = cls._record_for(project, experiment_id)
        metadata = check_experiment(record.path, record.load(), project.workspace.id, project.id)
        return cls(project, metadata, record)

    @classmethod
    def _open_or_create(
        cls,
        project: Project,
        experiment_id: str,
        *,
        name: str,
        params: Mapping[str, Any] | None,
        n_replicas: int,
        seeds: Sequence[int] | None,
        workflow_source: str | None,
        workflow_type: str | None,
        git_commit: str | None,
        description: str | None,
        tags: Sequence[str] | None,
    ) -> Experiment:
        record = cls._record_for(project, experiment_id)
        what = f"experiment {experiment_id!r}"
        # Checked before anything touches the disk: a rejected argument leaves no trace.
        source_path: str | None = None
        if workflow_source is not None:
            if not isinstance(workflow_source, str) or not workflow_source:
                raise ValueError(
                    f"{what}: workflow_source must be a non-empty path string, "
                    f"got {workflow_source!r}"
                )
            check_text(workflow_source, f"{what} workflow_source")
            source = checked_path(workflow_source, f"{what} workflow_source")
            source_path = str(source.expanduser().resolve())
        fields = {
            "description": check_text(description, f"{what} description"),
            "tags": check_tags(tags, what),
            "parameters": plain_json(dict(params or {}), f"{what} params"),
            "n_replicas": n_replicas,
            "seeds": _check_replicas(experiment_id, n_replicas, seeds),
            "workflow_source": workflow_source,
            "workflow_source_path": source_path,
            "workflow_type": check_text(workflow_type, f"{what} workflow_type"),
        }
        check_text(git_commit, f"{what} git_commit")
        with locked(record.path):
            created = False
            if not record.exists():
                if source_path is not None and git_commit is None:
                    git_commit = git_commit_of(Path(source_path))
                metadata = ExperimentMetadata(
                    id=experiment_id,
                    name=name,
                    project_id=project.id,
                    workspace_id=project.workspace.id,
                    git_commit=git_commit,
                    **fields,
                )
                # Exclusive across hosts: a creator that loses adopts the winner's record.
                created = record.create(metadata)
            if not created:
                metadata = check_experiment(
                    record.path, record.load(), project.workspace.id, project.id
                )
        (record.path.parent / RUNS_DIR).mkdir(exist_ok=True)
        return cls(project, metadata, record)

    def __repr__(self) -> str:
        return (
            f"Experiment({self.id!r}, project={self._project.id!r}, params={self.params!r}, "
            f"n_replicas={self.n_replicas})"
        )

    def _repr_html_(self) -> str:
        """A compact table for notebooks: the experiment, then its runs from the run index."""
        from ._html import facts_html, grid_html

        runs = self.workspace.runs(project=self._project.id, experiment=self.id)
        counts: dict[str, int] = {}
        for row in runs:
            state = "stale" if row.stale else row.status.value
            counts[state] = counts.get(state, 0) + 1
        table = grid_html(
            ["run", "status", "replica", "seed", "results", "finished"],
            [
                (row.id, row.status, row.replica_index, row.seed, row.results, row.finished_at)
                for row in runs
            ],
            caption=f"{len(runs)} runs",
        )
        return facts_html(
            f"Experiment {self._project.id}/{self.id}",
            [
                ("name", self.name if self.name != self.id else None),
                ("description", self.description),
                ("params", self.params),
                ("replicas", self.n_replicas),
                ("seeds", self.seeds),
                ("tags", self.tags),
                ("runs", counts),
            ],
            after=table if len(runs) else "",
        )

    # -- record ------------------------------------------------------------------

    @property
    def project(self) -> Project:
        """The project the experiment belongs to."""
        return self._project

    @property
    def workspace(self) -> Workspace:
        """The workspace the experiment belongs to."""
        return self._project.workspace

    @property
    def description(self) -> str | None:
        """The experiment's description, if any."""
        return self._metadata.description

    @property
    def tags(self) -> list[str]:
        """The experiment's tags."""
        return self._metadata.tags

    @property
    def params(self) -> dict[str, Any]:
        """The experiment's parameter dictionary (the same object as ``parameter_space``)."""
        return self._metadata.parameters

    @property
    def parameter_space(self) -> dict[str, Any]:
        """Alias of ``params``: the concrete parameters bound to this experiment."""
        return self._metadata.parameters

    @property
    def n_replicas(self) -> int:
        """How many replicas each parameter point runs."""
        return self._metadata.n_replicas

    @property
    def seeds(self) -> list[int] | None:
        """The stored replica seeds, None if not given (see ``get_seeds``)."""
        return self._metadata.seeds

    @property
    def workflow_source(self) -> str | None:
        """Path of the workflow's source file, if recorded."""
        return self._metadata.workflow_source

    @property
    def workflow_type(self) -> str | None:
        """The workflow's type label, if recorded."""
        return self._metadata.workflow_type

    @property
    def git_commit(self) -> str | None:
        """The git commit of the workflow's source when recorded, if known."""
        return self._metadata.git_commit

    @property
    def experiment_dir(self) -> Path:
        """The experiment's directory."""
        return self._record.path.parent

    @property
    def record_path(self) -> Path:
        """Path of the experiment's record file."""
        return self._record.path

    def get_seeds(self) -> list[int]:
        """One seed per replica: the stored ``seeds``, else ``0, 1, ..., n_replicas - 1``.

        The default sequence is the non-negative integers truncated to ``n_replicas``,
        so replica ``i`` gets seed ``i``.
        """
        if self._metadata.seeds is not None:
            return list(self._metadata.seeds)
        return list(range(self._metadata.n_replicas))

    def _before_save(self, metadata: ExperimentMetadata) -> None:
        metadata.parameters = plain_json(metadata.parameters, f"experiment {self.id!r} params")

    # -- assets ------------------------------------------------------------------

    @property
    def scope(self) -> AssetScope:
        """The asset scope of this experiment."""
        return AssetScope.for_experiment(self.workspace.id, self._project.id, self.id)

    @property
    def assets(self) -> AssetView:
        """Read-only view of the assets of this experiment and its runs."""
        return AssetView(self.workspace.catalog, self.scope)

    @property
    def data_assets(self) -> DataAssetLibrary:
        """Experiment-level data assets (stored under ``<experiment_dir>/data_assets/``)."""
        return DataAssetLibrary(self.workspace.catalog, self.scope, self.experiment_dir)

    # -- runs --------------------------------------------------------------------

    def Run(
        self,
        parameters: Mapping[str, Any] | None = None,
        id: str | None = None,
        replica_index: int | None = None,
        seed: int | None = None,
        tags: Sequence[str] | None = None,
    ) -> _Run:
        """Create a run (fresh id unless ``id`` is given; an existing ``id`` is loaded).

        The run's parameters are the experiment's ``params`` updated with
        ``parameters``. A loaded run keeps its stored parameters.
        """
        if id is not None:
            run_dir_name(id)
        merged = plain_json({**self._metadata.parameters, **(parameters or {})}, "parameters")
        replica = _check_optional_int(replica_index, "replica_index", minimum=0)
        run_seed = _check_optional_int(seed, "seed")
        run_tags = check_tags(tags, "run")
        snapshot = None
        if self._metadata.workflow_source is not None:
            snapshot = {
                "source": self._metadata.workflow_source,
                "git_commit": self._metadata.git_commit,
            }

        def new_metadata(run_id: str) -> RunMetadata:
            return RunMetadata(
                id=run_id,
                experiment_id=self.id,
                project_id=self._project.id,
                workspace_id=self.workspace.id,
                parameters=merged,
                replica_index=replica,
                seed=run_seed,
                tags=run_tags,
                workflow_snapshot=snapshot,
            )

        with self._lock:
            cached = self._runs.get(id) if id is not None else None
            if cached is not None:
                return cached
            runs_dir = self.experiment_dir / RUNS_DIR
            if id is None:
                run = Run._create_fresh(self, runs_dir, new_run_id, new_metadata)
            else:
                run = Run._open_or_create(self, runs_dir / run_dir_name(id), id, new_metadata)
            self._runs[run.id] = run
            return run

    def run(
        self,
        parameters: Mapping[str, Any] | None = None,
        id: str | None = None,
        replica_index: int | None = None,
        seed: int | None = None,
        tags: Sequence[str] | None = None,
    ) -> _Run:
        """Same as ``Run(...)``."""
        return self.Run(parameters, id=id, replica_index=replica_index, seed=seed, tags=tags)

    def deterministic_run_id(
        self,
        parameters: Mapping[str, Any],
        replica_index: int = 0,
        profile_name: str | None = None,
        config_hash: str | None = None,
    ) -> str:
        """The deterministic id ``molexp run`` gives this experiment's run of these inputs.

        ``derive_run_id`` with this experiment's project and id folded in, so the id is
        unique within the workspace. A workspace written before that has the run under
        its legacy id (derived without them): when only that run exists, its id is
        returned, so re-running a script finds its old runs instead of duplicating them.
        """
        run_id = derive_run_id(
            parameters,
            replica_index,
            profile_name,
            config_hash,
            project_id=self._project.id,
            experiment_id=self.id,
        )
        runs_dir = self.experiment_dir / RUNS_DIR
        if (runs_dir / run_dir_name(run_id) / RUN_FILE).is_file():
            return run_id
        legacy = derive_run_id(parameters, replica_index, profile_name, config_hash)
        if (runs_dir / run_dir_name(legacy) / RUN_FILE).is_file():
            return legacy
        return run_id

    def get_run(self, run_id: str) -> _Run:
        """The run with this id, refreshed from disk; ``KeyError`` naming it if absent."""
        directory = self.experiment_dir / RUNS_DIR / run_dir_name(run_id)
        with self._lock:
            cached = self._runs.get(run_id)
            if cached is not None:
                return cached.refresh()
            if not (directory / RUN_FILE).is_file():
                raise KeyError(
                    f"no run {run_id!r} in experiment {self.id!r} of project {self._project.id!r}"
                )
            run = Run._load(self, directory)
            self._runs[run_id] = run
            return run

    def list_runs(self, status: RunStatus | str | None = None) -> list[_Run]:
        """Runs of this experiment (optionally with one status), oldest first.

        Unreadable ``run.json`` files are skipped with a ``BrokenRecordWarning``.
        """
        wanted = RunStatus(status) if status is not None else None
        runs: list[_Run] = []
        with self._lock:
            for run_dir in child_dirs(self.experiment_dir / RUNS_DIR, RUN_DIR_PREFIX):
                run_id = run_dir.name.removeprefix(RUN_DIR_PREFIX)
                if not (run_dir / RUN_FILE).is_file():
                    continue
                try:
                    cached = self._runs.get(run_id)
                    if cached is not None:
                        run = cached.refresh()
                    else:
                        run = Run._load(self, run_dir)
                        self._runs[run_id] = run
                except RecordError as exc:
                    self.workspace._report_broken(run_dir / RUN_FILE, exc)
                    continue
                if wanted is None or run.status == wanted:
                    runs.append(run)
        runs.sort(key=lambda run: (run.metadata.created_at, run.id))
        return runs
