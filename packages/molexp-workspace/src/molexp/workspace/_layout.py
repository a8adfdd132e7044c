"""Where each record of the hierarchy lives on disk, and scanning for them.

Owns the layout (``workspace.json``, ``projects/<id>/project.json``,
``experiments/<id>/experiment.json``, ``runs/run-<id>/run.json``), the checks that a
record agrees with the directory holding it, and the directory scans used by the
listings, ``broken_records()`` and the index rebuild.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Generic, TypeVar

from molexp.assets import BrokenRecord, RecordError, VersionedRecord, slugify, validate_name

from ._records import ExperimentMetadata, ProjectMetadata, RunMetadata
from ._records_io import read_record

__all__ = [
    "EXPERIMENTS_DIR",
    "EXPERIMENT_FILE",
    "PROJECTS_DIR",
    "PROJECT_CHANGE",
    "PROJECT_FILE",
    "RUNS_DIR",
    "RUN_CHANGE",
    "RUN_DIR_PREFIX",
    "RUN_FILE",
    "WORKSPACE_FILE",
    "ChildRecords",
    "check_experiment",
    "check_project",
    "check_run",
    "child_dirs",
    "run_dir_name",
    "run_record_ids",
    "safe_id",
    "scan_records",
]

WORKSPACE_FILE = "workspace.json"
PROJECTS_DIR = "projects"
PROJECT_FILE = "project.json"
EXPERIMENTS_DIR = "experiments"
EXPERIMENT_FILE = "experiment.json"
RUNS_DIR = "runs"
RUN_FILE = "run.json"
RUN_DIR_PREFIX = "run-"
RUN_CHANGE = "run"
"""Change-feed lines naming a ``run.json`` (relative to the root) that changed."""
PROJECT_CHANGE = "project"
"""Change-feed lines naming a project directory that was deleted."""

M = TypeVar("M", bound=VersionedRecord)
Child = TypeVar("Child")


def run_dir_name(run_id: str) -> str:
    """``run-<run_id>``, validated as one path component."""
    return validate_name(f"{RUN_DIR_PREFIX}{validate_name(run_id, 'run id')}", "run directory")


def run_record_ids(target: str) -> tuple[str, str, str] | None:
    """``(project_id, experiment_id, run_id)`` of ``target``, a workspace-relative path (as the
    change feed names records), when it is a run record's
    ``projects/<p>/experiments/<e>/runs/run-<r>/run.json``; None for any other path."""
    parts = target.split("/")
    if (
        len(parts) != 7
        or parts[0] != PROJECTS_DIR
        or parts[2] != EXPERIMENTS_DIR
        or parts[4] != RUNS_DIR
        or not parts[5].startswith(RUN_DIR_PREFIX)
        or parts[6] != RUN_FILE
    ):
        return None
    return parts[1], parts[3], parts[5][len(RUN_DIR_PREFIX) :]


def safe_id(value: str) -> str | None:
    """``value`` if it is usable as an id (one safe path component), else None."""
    try:
        return validate_name(value)
    except ValueError:
        return None


def child_dirs(parent: Path, prefix: str = "") -> list[Path]:
    """Non-hidden subdirectories of ``parent`` whose name starts with ``prefix``, sorted."""
    try:
        entries = list(os.scandir(parent))
    except FileNotFoundError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if entry.name.startswith(prefix) and not entry.name.startswith(".") and entry.is_dir()
    )


class ChildRecords(Generic[Child]):
    """The children of one record kept as ``<directory>/<id>/<record_file>`` (a workspace's
    projects, a project's experiments): one in-memory object per id, loaded on first use.

    Not thread-safe by itself: the owner calls it under its own lock.
    """

    def __init__(
        self,
        directory: Path,
        record_file: str,
        load: Callable[[str], Child],
        report_broken: Callable[[Path, RecordError], None],
    ) -> None:
        self.directory = directory
        self.record_file = record_file
        self._load = load
        self._report_broken = report_broken
        self.cache: dict[str, Child] = {}

    def get_or_create(self, child_id: str, create: Callable[[], Child]) -> Child:
        """The child ``child_id`` of this process, else ``create()`` (which opens or writes it)."""
        child = self.cache.get(child_id)
        if child is None:
            child = self.cache[child_id] = create()
        return child

    def find(self, name_or_id: str) -> Child | None:
        """The child whose id is ``name_or_id`` or its slug: cached, else read from disk."""
        candidates = [name_or_id]
        with contextlib.suppress(ValueError):
            candidates.append(slugify(name_or_id))
        for candidate in candidates:
            child_id = safe_id(candidate)
            if child_id is None:
                continue
            if child_id in self.cache:
                return self.cache[child_id]
            if (self.directory / child_id / self.record_file).is_file():
                child = self._load(child_id)
                self.cache[child_id] = child
                return child
        return None

    def list(self) -> list[Child]:
        """Every readable child on disk plus those created in this process, by id; broken
        records are reported and skipped."""
        for child_dir in child_dirs(self.directory):
            child_id = child_dir.name
            path = child_dir / self.record_file
            if child_id in self.cache or not path.is_file():
                continue
            try:
                self.cache[child_id] = self._load(child_id)
            except RecordError as exc:
                self._report_broken(path, exc)
        return [self.cache[key] for key in sorted(self.cache)]


def _mismatch(path: Path, field: str, found: str, expected: str, where: str) -> RecordError:
    return RecordError(path, f"{field} {found!r} does not match {where} {expected!r}", field=field)


def check_project(path: Path, record: ProjectMetadata, workspace_id: str) -> ProjectMetadata:
    """Raise ``RecordError`` unless ``record`` belongs in ``path`` of this workspace."""
    if record.id != path.parent.name:
        raise _mismatch(path, "id", record.id, path.parent.name, "its directory")
    if record.workspace_id != workspace_id:
        raise _mismatch(path, "workspace_id", record.workspace_id, workspace_id, "the workspace")
    return record


def check_experiment(
    path: Path, record: ExperimentMetadata, workspace_id: str, project_id: str
) -> ExperimentMetadata:
    """Raise ``RecordError`` unless ``record`` belongs in ``path`` of this project."""
    if record.id != path.parent.name:
        raise _mismatch(path, "id", record.id, path.parent.name, "its directory")
    if record.project_id != project_id:
        raise _mismatch(path, "project_id", record.project_id, project_id, "the project")
    if record.workspace_id != workspace_id:
        raise _mismatch(path, "workspace_id", record.workspace_id, workspace_id, "the workspace")
    return record


def check_run(
    path: Path, record: RunMetadata, workspace_id: str, project_id: str, experiment_id: str
) -> RunMetadata:
    """Raise ``RecordError`` unless ``record`` belongs in ``path`` of this experiment."""
    expected_dir = f"{RUN_DIR_PREFIX}{record.id}"
    if expected_dir != path.parent.name:
        raise _mismatch(path, "id", record.id, path.parent.name, "its directory")
    if record.experiment_id != experiment_id:
        raise _mismatch(
            path, "experiment_id", record.experiment_id, experiment_id, "the experiment"
        )
    if record.project_id != project_id:
        raise _mismatch(path, "project_id", record.project_id, project_id, "the project")
    if record.workspace_id != workspace_id:
        raise _mismatch(path, "workspace_id", record.workspace_id, workspace_id, "the workspace")
    return record


def scan_records(
    root: Path, workspace_id: str
) -> Iterator[ProjectMetadata | ExperimentMetadata | RunMetadata | BrokenRecord]:
    """Every project, experiment and run record under ``root`` (broken ones as BrokenRecord).

    Directories without their record file are skipped: they are being created, or are
    not part of the hierarchy. Children of a broken project or experiment are not visited.
    """
    for project_dir in child_dirs(root / PROJECTS_DIR):
        project_path = project_dir / PROJECT_FILE
        if not project_path.is_file():
            continue
        try:
            project = check_project(
                project_path, read_record(project_path, ProjectMetadata), workspace_id
            )
        except RecordError as exc:
            yield BrokenRecord(project_path, str(exc))
            continue
        yield project
        for experiment_dir in child_dirs(project_dir / EXPERIMENTS_DIR):
            experiment_path = experiment_dir / EXPERIMENT_FILE
            if not experiment_path.is_file():
                continue
            try:
                experiment = check_experiment(
                    experiment_path,
                    read_record(experiment_path, ExperimentMetadata),
                    workspace_id,
                    project.id,
                )
            except RecordError as exc:
                yield BrokenRecord(experiment_path, str(exc))
                continue
            yield experiment
            for run_dir in child_dirs(experiment_dir / RUNS_DIR, RUN_DIR_PREFIX):
                run_path = run_dir / RUN_FILE
                if not run_path.is_file():
                    continue
                try:
                    yield check_run(
                        run_path,
                        read_record(run_path, RunMetadata),
                        workspace_id,
                        project.id,
                        experiment.id,
                    )
                except RecordError as exc:
                    yield BrokenRecord(run_path, str(exc))
