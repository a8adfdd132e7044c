"""Finding broken project, experiment and run records without re-reading the tree per request.

Owns ``BrokenRecordScanner``. A *full scan* walks the workspace layout like
``Workspace.broken_records()`` (a record that cannot be parsed, is from a newer schema, or does
not belong where it lies is broken; children of a broken project or experiment are not
visited), remembering each record file's verdict by its ``stat`` signature so that the next
full scan re-parses only the files that changed (records are replaced by atomic renames, so a
rewritten file has a new signature). Even so a full scan stats every record: about 5 ms per
1,000 runs, 0.67 s at 100,000; the first one after the server starts parses every record,
8-11 s at 100,000.

So a workspace whose last full scan saw ``SMALL_WORKSPACE_RECORDS`` (1,000) records or more is
checked differently:

- **Between full scans, the change feed.** Every library write of a ``run.json`` is announced
  on the workspace's change feed (``molexp.assets.storage``: one journal per writing process,
  a line before and one after the rename), and so is the deletion of a project. A check reads
  the journal lines appended since the previous check and re-reads only the records they name
  (and stats their project and experiment records): a record broken or fixed by a write that
  the feed reports, from any process or host, is listed or unlisted by the next check. The
  feed is a hint of *where to look*; the verdict always comes from the record file.
- **What the feed cannot tell** (a record damaged, repaired or deleted by hand, a project or
  experiment record edited, a journal the feed lost) is caught by a full scan in a background
  thread every ``RESCAN_MIN_SECONDS`` (60 s), or ``RESCAN_FACTOR`` (10) times as long as the
  last full scan took when that is longer (so re-scanning costs at most a tenth of one core).
  Such a change is therefore listed or unlisted within that period plus one full scan (on a
  network filesystem, add its attribute-cache time). Each full scan replaces the list and
  re-reads the feed from where the journals stood when it started, so a write made during the
  scan is never lost. Nothing here depends on a lock shared with writers.
- **The first full scan runs in the background**, started with the service. A check waits for
  it only until it has run ``FIRST_SCAN_WAIT_SECONDS`` (0.25 s) and seen
  ``SMALL_WORKSPACE_RECORDS`` records; after that the answer is marked *pending* (the list is
  empty until the scan ends) instead of holding the page for the 8-11 s the scan takes at
  100,000 runs.

A full scan shares the interpreter with the requests: while one is being served (``busy``), it
pauses ``YIELD_AFTER_SECONDS`` (5 ms) after each 5 ms of its own, so a request that reads many
index rows is slowed by about half instead of waiting for the scan to end.

A smaller workspace is scanned in full at every check (at most about 5 ms), so hand damage shows
at once there however slow the machine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from molexp.assets import RecordError, VersionedRecord, load_record
from molexp.assets.storage import (
    ACTIVE_JOURNAL_SECONDS,
    FeedLine,
    feed_dir,
    journal_states,
    on_local_filesystem,
)
from molexp.assets.storage import read_journal as _read_journal
from molexp.workspace import ExperimentMetadata, ProjectMetadata, RunMetadata
from molexp.workspace.layout import (
    EXPERIMENT_FILE,
    EXPERIMENTS_DIR,
    PROJECT_CHANGE,
    PROJECT_FILE,
    PROJECTS_DIR,
    RUN_CHANGE,
    RUN_DIR_PREFIX,
    RUN_FILE,
    RUNS_DIR,
    run_record_ids,
)

__all__ = ["BrokenFile", "BrokenRecordScanner", "BrokenReport"]

logger = logging.getLogger("molexp.server")

SMALL_WORKSPACE_RECORDS = 1000
"""Below this many records (about 5 ms of stats) every check is a full scan."""
RESCAN_MIN_SECONDS = 60.0
"""A large workspace is scanned in full in the background at least this far apart..."""
RESCAN_FACTOR = 10.0
"""...or this many times as long as the last full scan took, when that is longer."""
FIRST_SCAN_WAIT_SECONDS = 0.25
"""Checks wait for the first full scan until it has run this long and seen a large workspace."""
YIELD_AFTER_SECONDS = 0.005
"""While a request is busy, a full scan pauses this long after each stretch of this long..."""

Signature = tuple[int, int, int]
Key = tuple[str, str, str]
"""Where a record lies: (project, experiment or "", run directory or ""); sorts like a walk."""


@dataclass(frozen=True, slots=True)
class BrokenFile:
    path: Path
    error: str


@dataclass(frozen=True, slots=True)
class BrokenReport:
    """The broken records of a check; ``pending`` while the first full scan has not ended
    (``records`` is then empty: nothing is known yet)."""

    records: list[BrokenFile]
    pending: bool = False


def _child_dirs(parent: str, prefix: str = "") -> list[tuple[str, str]]:
    """(name, path) of the non-hidden subdirectories of ``parent`` starting with ``prefix``.

    Plain strings and ``os.scandir``: this runs over every run directory of a full scan.
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


def _in_scope(key: Key, project: str | None, experiment: str | None) -> bool:
    """Whether a scan of ``project`` (and ``experiment`` in it) would list the record at ``key``."""
    return (project is None or key[0] == project) and (
        experiment is None or key[1] in ("", experiment)
    )


def _background(ref: weakref.ReferenceType[BrokenRecordScanner], stop: threading.Event) -> None:
    """The first full scan, then the periodic ones, until the scanner is closed or collected."""
    while True:
        scanner = ref()
        if scanner is None:
            return
        try:
            if scanner.full_scans == 0 or not scanner.small():
                scanner.full_scan()
        except Exception:  # a bug must not stop the re-scans; each check still answers
            logger.exception("broken-record scan of %s failed", scanner.root)
        finally:
            scanner._first_done.set()  # even a failed first scan ends the wait
        period = scanner.rescan_period()
        del scanner  # hold no reference while asleep: a dropped scanner ends this thread
        if stop.wait(period):
            return


class BrokenRecordScanner:
    """Broken hierarchy records under one workspace root (see the module). Thread-safe."""

    def __init__(
        self,
        root: Path,
        workspace_id: str,
        *,
        small_records: int = SMALL_WORKSPACE_RECORDS,
        rescan_seconds: float | None = None,
        first_wait: float = FIRST_SCAN_WAIT_SECONDS,
        busy: Callable[[], bool] | None = None,
        yield_after: float = YIELD_AFTER_SECONDS,
    ) -> None:
        """``rescan_seconds`` fixes the period of background full scans (default: adaptive).

        ``busy``: whether a request is being served; a full scan then gives way to it (see
        ``_give_way``).
        """
        self.root = root
        self._workspace_id = workspace_id
        self._small_records = small_records
        self._rescan_seconds = rescan_seconds
        self._first_wait = first_wait
        self._busy = busy
        self._yield_after = yield_after
        self._stretch_started = 0.0
        self._started_at = 0.0  # when start() began the first full scan
        self._verdicts: dict[str, tuple[Signature, str | None]] = {}
        self._broken: dict[Key, BrokenFile] = {}
        self._cursor: dict[str, int] = {}  # journal name -> bytes consumed
        self._records = 0  # records the last full scan saw
        self._progress = 0  # records the running full scan has seen so far
        self._last_scan_seconds = 0.0
        self._feed_is_local: bool | None = None
        self._state_lock = threading.Lock()  # guards _broken and _cursor
        self._scan_lock = threading.Lock()  # one full scan at a time
        self._start_lock = threading.Lock()
        self._first_done = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.full_scans = 0
        """Full scans ended so far."""
        self.stats = 0
        """Record files stat'ed so far (by full scans and by checks)."""
        self.parses = 0
        """Record files parsed so far."""
        self.pauses = 0
        """Pauses full scans made to give way to a request."""

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread: the first full scan now, then the periodic ones."""
        with self._start_lock:
            if self._thread is None:
                self._started_at = time.monotonic()
                self._thread = threading.Thread(
                    target=_background,
                    args=(weakref.ref(self), self._stop),
                    name="molexp-broken-scan",
                    daemon=True,
                )
                self._thread.start()

    def close(self) -> None:
        """Stop the periodic full scans (a running one ends first; checks still answer)."""
        self._stop.set()

    def small(self) -> bool:
        """Whether the last full scan saw so few records that every check scans in full."""
        return self._records < self._small_records

    def rescan_period(self) -> float:
        """Seconds between the background full scans of a large workspace."""
        if self._rescan_seconds is not None:
            return self._rescan_seconds
        return max(RESCAN_MIN_SECONDS, RESCAN_FACTOR * self._last_scan_seconds)

    # -- checks ----------------------------------------------------------------------

    def check(self, project: str | None = None, experiment: str | None = None) -> BrokenReport:
        """The broken records of the workspace, or of one project (and one experiment in it).

        A small workspace is scanned in full; a large one follows the change feed since the
        last check (see the module). Before the first full scan has ended the answer is
        ``pending``, at once when that scan has run for ``first_wait`` and seen a large
        workspace (else the check waits for it).
        """
        self.start()
        while not self._first_done.wait(0.01):
            running = time.monotonic() - self._started_at
            if running >= self._first_wait and self._progress >= self._small_records:
                return BrokenReport([], pending=True)
        if self.small():
            self.full_scan()
        else:
            self.follow_feed()
        with self._state_lock:
            found = sorted(self._broken.items())
        return BrokenReport([item for key, item in found if _in_scope(key, project, experiment)])

    def full_scan(self) -> None:
        """Scan every record and replace the list; the feed is then re-read from where its
        journals stood when the scan started (a write made meanwhile is never missed)."""
        with self._scan_lock:
            started = time.monotonic()
            journals = self._journal_sizes()  # before any record is read
            self._progress = 0
            broken, seen = self._scan_tree()
            took = time.monotonic() - started
            for path in list(self._verdicts):  # forget files that are gone
                if path not in seen:
                    self._verdicts.pop(path, None)
            with self._state_lock:
                self._broken = broken
                self._cursor = journals
                self._records = len(seen)
                self._last_scan_seconds = took
                self.full_scans += 1

    def follow_feed(self) -> None:
        """Re-check the records the change feed names since the previous check."""
        with self._state_lock:
            runs: dict[str, None] = {}
            projects: dict[str, None] = {}
            for line in self._new_lines():
                if line.kind == RUN_CHANGE:
                    runs[line.target] = None
                elif line.kind == PROJECT_CHANGE:
                    projects[line.target] = None
            for target in projects:
                parts = target.split("/")
                if len(parts) == 2 and parts[0] == PROJECTS_DIR and parts[1]:
                    self._recheck_parents(parts[1], None)
            parents: dict[tuple[str, str], bool] = {}
            for target in runs:
                ids = run_record_ids(target)
                if ids is None:
                    continue
                project_id, experiment_id, run_id = ids
                run_dir = f"{RUN_DIR_PREFIX}{run_id}"
                if (project_id, experiment_id) not in parents:
                    parents[project_id, experiment_id] = self._recheck_parents(
                        project_id, experiment_id
                    )
                key = (project_id, experiment_id, run_dir)
                if not parents[project_id, experiment_id]:
                    self._broken.pop(key, None)  # a full scan would not visit it
                    continue
                path = f"{self.root}/{target}"
                record_ids = {
                    "workspace_id": self._workspace_id,
                    "project_id": project_id,
                    "experiment_id": experiment_id,
                }
                self._update(key, path, RunMetadata, run_id, record_ids, reread=True)

    # -- the feed --------------------------------------------------------------------

    def _feed_local(self) -> bool:
        if self._feed_is_local is not None:
            return self._feed_is_local
        directory = feed_dir(self.root)
        local = on_local_filesystem(directory / "journal")
        if directory.is_dir():  # only then is the answer about the feed's filesystem
            self._feed_is_local = local
        return local

    def _journal_sizes(self) -> dict[str, int]:
        """Each journal's size as listed now (a stale, smaller size only means re-reading)."""
        states = journal_states(self.root, refresh=not self._feed_local())
        return {state.name: state.size for state in states}

    def _new_lines(self) -> list[FeedLine]:
        """The complete journal lines past the cursor, which moves past them."""
        network = not self._feed_local()
        now = time.time()
        lines: list[FeedLine] = []
        for state in journal_states(self.root, refresh=network):
            start = self._cursor.get(state.name, 0)
            if state.size > start or (network and state.mtime > now - ACTIVE_JOURNAL_SECONDS):
                found, end = _read_journal(self.root, state.name, start)
                lines.extend(found)
                self._cursor[state.name] = end
        return lines

    # -- verdicts --------------------------------------------------------------------

    def _check(
        self,
        path: str,
        model: type[VersionedRecord],
        expected_id: str,
        parents: dict[str, str],
        *,
        reread: bool = False,
    ) -> str | None:
        """The error making ``path`` broken, or None when it is a valid record in its place.

        The verdict is cached by the file's stat signature; ``reread`` parses the file anyway
        (a file the feed names: a network client may still hold its old attributes).
        Raises ``FileNotFoundError`` when there is no record file (a directory being created).
        """
        stat = os.stat(path)  # noqa: PTH116 - str paths: pathlib costs 5x over 10k runs
        self.stats += 1
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = self._verdicts.get(path)
        if cached is not None and cached[0] == signature and not reread:
            return cached[1]
        self.parses += 1
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
        *,
        reread: bool = False,
    ) -> tuple[bool, str | None]:
        """(whether the record file exists, the error making it broken or None)."""
        try:
            return True, self._check(path, model, expected_id, parents, reread=reread)
        except FileNotFoundError:
            self._verdicts.pop(path, None)
            return False, None
        except OSError as exc:
            return True, str(RecordError(Path(path), f"cannot read record: {exc.strerror or exc}"))

    def _update(
        self,
        key: Key,
        path: str,
        model: type[VersionedRecord],
        expected_id: str,
        parents: dict[str, str],
        *,
        reread: bool = False,
    ) -> bool:
        """Re-check one record into the list (caller holds ``_state_lock``); True when it is
        a valid record whose children count."""
        exists, error = self._verdict(path, model, expected_id, parents, reread=reread)
        if exists and error is not None:
            self._broken[key] = BrokenFile(Path(path), error)
        else:
            self._broken.pop(key, None)
        return exists and error is None

    def _recheck_parents(self, project_id: str, experiment_id: str | None) -> bool:
        """Re-check a project's record (and one experiment's) into the list; whether both are
        valid. The records under a broken or missing one leave the list, as a full scan
        would not visit them."""
        workspace = {"workspace_id": self._workspace_id}
        project_dir = f"{self.root}/{PROJECTS_DIR}/{project_id}"
        if not self._update(
            (project_id, "", ""),
            f"{project_dir}/{PROJECT_FILE}",
            ProjectMetadata,
            project_id,
            workspace,
        ):
            self._drop_under(project_id, None)
            return False
        if experiment_id is None:
            return True
        experiment_file = f"{project_dir}/{EXPERIMENTS_DIR}/{experiment_id}/{EXPERIMENT_FILE}"
        in_project = {**workspace, "project_id": project_id}
        key = (project_id, experiment_id, "")
        if not self._update(key, experiment_file, ExperimentMetadata, experiment_id, in_project):
            self._drop_under(project_id, experiment_id)
            return False
        return True

    def _drop_under(self, project_id: str, experiment_id: str | None) -> None:
        """Drop the listed records below a project's record (or below one experiment's)."""
        if experiment_id is None:
            below = [key for key in self._broken if key[0] == project_id and key[1] != ""]
        else:
            below = [
                key
                for key in self._broken
                if key[:2] == (project_id, experiment_id) and key[2] != ""
            ]
        for key in below:
            del self._broken[key]

    # -- full scans ------------------------------------------------------------------

    def _give_way(self) -> None:
        """Pause a full scan for a moment after each ``yield_after`` of it while ``busy()``.

        A scan and the requests share one interpreter: a request reading many index rows
        releases the GIL at each row and then waits up to the switch interval (5 ms) to get
        it back from a busy scan, so without pauses a scan of 100,000 records held such a
        request (the overview's counts over every run) for as long as it ran.
        """
        if self._busy is None:
            return
        now = time.monotonic()
        if now - self._stretch_started < self._yield_after:
            return
        if self._busy():
            self.pauses += 1
            time.sleep(self._yield_after)
            now = time.monotonic()
        self._stretch_started = now

    def _scan_tree(self) -> tuple[dict[Key, BrokenFile], set[str]]:
        """The broken records of the whole workspace, and every record file seen."""
        broken: dict[Key, BrokenFile] = {}
        seen: set[str] = set()

        def visit(
            key: Key,
            path: str,
            model: type[VersionedRecord],
            expected_id: str,
            parents: dict[str, str],
        ) -> bool:
            self._give_way()
            exists, error = self._verdict(path, model, expected_id, parents)
            if not exists:
                return False
            seen.add(path)
            self._progress = len(seen)
            if error is not None:
                broken[key] = BrokenFile(Path(path), error)
                return False
            return True

        workspace = {"workspace_id": self._workspace_id}
        for project_id, project_dir in _child_dirs(f"{self.root}/{PROJECTS_DIR}"):
            project_file = f"{project_dir}/{PROJECT_FILE}"
            if not visit(
                (project_id, "", ""), project_file, ProjectMetadata, project_id, workspace
            ):
                continue
            in_project = {**workspace, "project_id": project_id}
            for experiment_id, experiment_dir in _child_dirs(f"{project_dir}/{EXPERIMENTS_DIR}"):
                experiment_file = f"{experiment_dir}/{EXPERIMENT_FILE}"
                if not visit(
                    (project_id, experiment_id, ""),
                    experiment_file,
                    ExperimentMetadata,
                    experiment_id,
                    in_project,
                ):
                    continue
                in_experiment = {**in_project, "experiment_id": experiment_id}
                for run_dir_name, run_dir in _child_dirs(
                    f"{experiment_dir}/{RUNS_DIR}", RUN_DIR_PREFIX
                ):
                    run_id = run_dir_name.removeprefix(RUN_DIR_PREFIX)
                    visit(
                        (project_id, experiment_id, run_dir_name),
                        f"{run_dir}/{RUN_FILE}",
                        RunMetadata,
                        run_id,
                        in_experiment,
                    )
        return broken, seen
