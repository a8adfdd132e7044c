"""Finding broken project, experiment and run records cheaply on every request.

Owns ``BrokenRecordScanner``: it walks the workspace layout like
``Workspace.broken_records()`` (a record that cannot be parsed, is from a newer schema, or
does not belong where it lies is broken; children of a broken project or experiment are not
visited) but remembers each record file's verdict by its ``stat`` signature, so a request
re-parses only the files that changed since the previous one. Records are replaced by atomic
renames, so a rewritten file always has a new signature.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from molexp.assets import RecordError, VersionedRecord, load_record
from molexp.workspace import ExperimentMetadata, ProjectMetadata, RunMetadata

__all__ = ["BrokenFile", "BrokenRecordScanner"]

PROJECTS_DIR = "projects"
EXPERIMENTS_DIR = "experiments"
RUNS_DIR = "runs"
RUN_DIR_PREFIX = "run-"
PROJECT_FILE = "project.json"
EXPERIMENT_FILE = "experiment.json"
RUN_FILE = "run.json"

Signature = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class BrokenFile:
    path: Path
    error: str


def _signature(path: Path) -> Signature | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _child_dirs(parent: Path, prefix: str = "") -> list[Path]:
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return []
    return sorted(
        Path(entry.path)
        for entry in entries
        if entry.name.startswith(prefix) and not entry.name.startswith(".") and entry.is_dir()
    )


def _mismatch(field: str, found: object, expected: str, where: str) -> str:
    return f"{field} {found!r} does not match {where} {expected!r}"


class BrokenRecordScanner:
    """Broken hierarchy records under one workspace root, with a per-file verdict cache.

    Not thread-safe on its own: the service calls it under its lock.
    """

    def __init__(self, root: Path, workspace_id: str) -> None:
        self._root = root
        self._workspace_id = workspace_id
        self._verdicts: dict[Path, tuple[Signature, str | None]] = {}

    def _check(
        self,
        path: Path,
        model: type[VersionedRecord],
        expected_id: str,
        parents: dict[str, str],
    ) -> str | None:
        """The error making ``path`` broken, or None when it is a valid record in its place."""
        signature = _signature(path)
        if signature is None:
            return "record file cannot be read"
        cached = self._verdicts.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        error: str | None = None
        try:
            record = load_record(path, model)
            found_id = getattr(record, "id", None)
            if found_id != expected_id:
                message = _mismatch("id", found_id, expected_id, "its directory")
                error = str(RecordError(path, message, field="id"))
            for field, expected in parents.items():
                value = getattr(record, field, None)
                if error is None and value != expected:
                    message = _mismatch(field, value, expected, f"the {field.removesuffix('_id')}")
                    error = str(RecordError(path, message, field=field))
        except RecordError as exc:
            error = str(exc)
        self._verdicts[path] = (signature, error)
        return error

    def scan(self, project: str | None = None, experiment: str | None = None) -> list[BrokenFile]:
        """Broken records of the workspace, or of one project (and one experiment in it)."""
        broken: list[BrokenFile] = []
        seen: set[Path] = set()
        for project_dir in _child_dirs(self._root / PROJECTS_DIR):
            if project is not None and project_dir.name != project:
                continue
            path = project_dir / PROJECT_FILE
            if not path.is_file():
                continue
            seen.add(path)
            parents = {"workspace_id": self._workspace_id}
            error = self._check(path, ProjectMetadata, project_dir.name, parents)
            if error is not None:
                broken.append(BrokenFile(path, error))
                continue
            for experiment_dir in _child_dirs(project_dir / EXPERIMENTS_DIR):
                if experiment is not None and experiment_dir.name != experiment:
                    continue
                path = experiment_dir / EXPERIMENT_FILE
                if not path.is_file():
                    continue
                seen.add(path)
                parents = {"workspace_id": self._workspace_id, "project_id": project_dir.name}
                error = self._check(path, ExperimentMetadata, experiment_dir.name, parents)
                if error is not None:
                    broken.append(BrokenFile(path, error))
                    continue
                parents = {**parents, "experiment_id": experiment_dir.name}
                for run_dir in _child_dirs(experiment_dir / RUNS_DIR, RUN_DIR_PREFIX):
                    path = run_dir / RUN_FILE
                    if not path.is_file():
                        continue
                    seen.add(path)
                    run_id = run_dir.name.removeprefix(RUN_DIR_PREFIX)
                    error = self._check(path, RunMetadata, run_id, parents)
                    if error is not None:
                        broken.append(BrokenFile(path, error))
        if project is None:  # forget files that are gone (a full scan saw everything)
            for path in set(self._verdicts) - seen:
                del self._verdicts[path]
        return broken
