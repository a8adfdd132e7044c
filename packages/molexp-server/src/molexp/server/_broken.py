"""Finding broken project, experiment and run records cheaply on every request.

Owns ``BrokenRecordScanner``: it walks the workspace layout like
``Workspace.broken_records()`` (a record that cannot be parsed, is from a newer schema, or
does not belong where it lies is broken; children of a broken project or experiment are not
visited) but remembers each record file's verdict by its ``stat`` signature, so a request
re-parses only the files that changed since the previous one. Records are replaced by atomic
renames, so a rewritten file always has a new signature.

Even unchanged, each scan stats every record (about 5 ms per 1,000 runs): ``recent()`` lets a
large workspace reuse a scan for a moment (ten times as long as the scan took, at most 1 s) so
the scans of concurrent page requests cost a bounded share of the server's time. A result just
past that moment (by at most 1 s more) is still answered while a background thread scans again,
so under steady requests none waits for a scan; after a quiet spell the next request scans
itself. A scan of fewer than 1,000 records is never reused: a small workspace is scanned at
every request however slow the machine.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
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
REUSE_FACTOR = 10.0
"""A scan's result may be reused for this many times as long as the scan took..."""
REUSE_MAX_SECONDS = 1.0
"""...but never for longer than this..."""
REUSE_MIN_RECORDS = 1000
"""...and only when the scan read at least this many records (about 5 ms of stats)."""
STALE_GRACE_SECONDS = 1.0
"""After that, for this long, the result is still answered while a background scan runs."""


@dataclass(frozen=True, slots=True)
class BrokenFile:
    path: Path
    error: str


def _child_dirs(parent: str, prefix: str = "") -> list[tuple[str, str]]:
    """(name, path) of the non-hidden subdirectories of ``parent`` starting with ``prefix``.

    Plain strings and ``os.scandir``: this runs over every run directory on every request.
    """
    try:
        with os.scandir(parent) as entries:
            found = [
                (entry.name, entry.path)
                for entry in entries
                if entry.name.startswith(prefix)
                and not entry.name.startswith(".")
                and entry.is_dir()
            ]
    except OSError:
        return []
    found.sort()
    return found


def _mismatch(field: str, found: object, expected: str, where: str) -> str:
    return f"{field} {found!r} does not match {where} {expected!r}"


class BrokenRecordScanner:
    """Broken hierarchy records under one workspace root, with a per-file verdict cache.

    ``recent()`` is thread-safe (one scan at a time); ``scan()`` is not: call it under a lock.
    """

    def __init__(
        self,
        root: Path,
        workspace_id: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        reuse_min_records: int = REUSE_MIN_RECORDS,
    ) -> None:
        self._root = root
        self._workspace_id = workspace_id
        self._verdicts: dict[str, tuple[Signature, str | None]] = {}
        self._clock = clock
        self._reuse_min_records = reuse_min_records
        self._visited = 0  # records the last scan looked at
        self._lock = threading.Lock()  # guards _recent and _scanning
        self._scan_lock = threading.Lock()  # one scan at a time (the verdicts are shared)
        # (project, experiment) -> (time the result may be reused until, result)
        self._recent: dict[tuple[str | None, str | None], tuple[float, list[BrokenFile]]] = {}
        self._scanning: set[tuple[str | None, str | None]] = set()

    def recent(self, project: str | None = None, experiment: str | None = None) -> list[BrokenFile]:
        """``scan(project, experiment)``, or the result of one that ended a moment ago.

        A result is reused for ``REUSE_FACTOR`` times as long as its scan took, at most
        ``REUSE_MAX_SECONDS``, and only when the scan read ``REUSE_MIN_RECORDS`` or more:
        a small workspace is scanned at every call, a large one at most about once a second
        while each scan takes under a tenth of the time. For ``STALE_GRACE_SECONDS``
        after that the result is still answered while a background thread scans again (and
        while any scan of the same scope runs); older, the caller scans itself.
        """
        key = (project, experiment)
        with self._lock:
            now = self._clock()
            reusable = self._recent.get(key)
            if reusable is not None and (now < reusable[0] or key in self._scanning):
                return list(reusable[1])
            self._scanning.add(key)
        if reusable is not None and now < reusable[0] + STALE_GRACE_SECONDS:
            threading.Thread(
                target=self._rescan, args=(key,), name="molexp-broken-scan", daemon=True
            ).start()
            return list(reusable[1])
        return list(self._rescan(key))

    def _rescan(self, key: tuple[str | None, str | None]) -> list[BrokenFile]:
        """Scan ``key``'s scope (marked as scanning by the caller) and remember the result."""
        try:
            with self._scan_lock:
                started = self._clock()
                found = self.scan(*key)
                ended = self._clock()
                visited = self._visited
            took = ended - started
            with self._lock:
                if visited >= self._reuse_min_records:
                    reuse = min(REUSE_MAX_SECONDS, REUSE_FACTOR * took)
                    self._recent[key] = (ended + reuse, found)
                else:
                    self._recent.pop(key, None)
            return found
        finally:
            with self._lock:
                self._scanning.discard(key)

    def scanning(self) -> bool:
        """Whether a scan (in the background or for a caller) is running now."""
        with self._lock:
            return bool(self._scanning)

    def _check(
        self,
        path: str,
        model: type[VersionedRecord],
        expected_id: str,
        parents: dict[str, str],
    ) -> str | None:
        """The error making ``path`` broken, or None when it is a valid record in its place.

        Raises ``FileNotFoundError`` when there is no record file (a directory being created).
        """
        stat = os.stat(path)  # noqa: PTH116 - str paths: pathlib costs 5x over 10k runs
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = self._verdicts.get(path)
        if cached is not None and cached[0] == signature:
            return cached[1]
        error: str | None = None
        try:
            record = load_record(Path(path), model)
            found_id = getattr(record, "id", None)
            if found_id != expected_id:
                message = _mismatch("id", found_id, expected_id, "its directory")
                error = str(RecordError(Path(path), message, field="id"))
            for field, expected in parents.items():
                value = getattr(record, field, None)
                if error is None and value != expected:
                    message = _mismatch(field, value, expected, f"the {field.removesuffix('_id')}")
                    error = str(RecordError(Path(path), message, field=field))
        except RecordError as exc:
            error = str(exc)
        self._verdicts[path] = (signature, error)
        return error

    def _verdict(
        self,
        path: str,
        model: type[VersionedRecord],
        expected_id: str,
        parents: dict[str, str],
        seen: set[str],
        broken: list[BrokenFile],
    ) -> bool:
        """Record the verdict on ``path``; True when it is a valid record whose children count."""
        try:
            error = self._check(path, model, expected_id, parents)
        except FileNotFoundError:
            return False
        except OSError as exc:
            error = str(RecordError(Path(path), f"cannot read record: {exc.strerror or exc}"))
        seen.add(path)
        if error is not None:
            broken.append(BrokenFile(Path(path), error))
            return False
        return True

    def scan(self, project: str | None = None, experiment: str | None = None) -> list[BrokenFile]:
        """Broken records of the workspace, or of one project (and one experiment in it)."""
        broken: list[BrokenFile] = []
        seen: set[str] = set()
        workspace = {"workspace_id": self._workspace_id}
        for project_id, project_dir in _child_dirs(f"{self._root}/{PROJECTS_DIR}"):
            if project is not None and project_id != project:
                continue
            project_file = f"{project_dir}/{PROJECT_FILE}"
            if not self._verdict(
                project_file, ProjectMetadata, project_id, workspace, seen, broken
            ):
                continue
            in_project = {**workspace, "project_id": project_id}
            for experiment_id, experiment_dir in _child_dirs(f"{project_dir}/{EXPERIMENTS_DIR}"):
                if experiment is not None and experiment_id != experiment:
                    continue
                experiment_file = f"{experiment_dir}/{EXPERIMENT_FILE}"
                if not self._verdict(
                    experiment_file, ExperimentMetadata, experiment_id, in_project, seen, broken
                ):
                    continue
                in_experiment = {**in_project, "experiment_id": experiment_id}
                for run_name, run_dir in _child_dirs(
                    f"{experiment_dir}/{RUNS_DIR}", RUN_DIR_PREFIX
                ):
                    run_id = run_name.removeprefix(RUN_DIR_PREFIX)
                    run_file = f"{run_dir}/{RUN_FILE}"
                    self._verdict(run_file, RunMetadata, run_id, in_experiment, seen, broken)
        self._visited = len(seen)
        if project is None:  # forget files that are gone (a full scan saw everything)
            for path in set(self._verdicts) - seen:
                del self._verdicts[path]
        return broken
