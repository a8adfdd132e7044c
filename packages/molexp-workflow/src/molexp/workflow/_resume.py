"""Per-task resume of a run's execution attempts: the task-output journal and the ``ResumePlan``.

Every execution under a run journals each succeeded task's output and resume key; the next
attempt re-uses unchanged tasks instead of running them. Which tasks are re-used, the journal's
frame format and which attempt counts as the previous one are specified in docs/architecture.md,
"Resume".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import struct
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from molexp.workflow.runtime import TaskPersistence
from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from molexp.workflow.snapshot import TaskSnapshot
    from molexp.workflow.spec import TaskRegistration, Workflow

__all__ = [
    "FLUSH_BYTES",
    "FLUSH_INTERVAL",
    "JOURNAL_DIR",
    "JOURNAL_FILE",
    "JOURNAL_MAGIC",
    "AttemptHeader",
    "AttemptJournal",
    "JournalWriter",
    "ResumePlan",
    "StoredTask",
    "TaskOutputRecord",
    "encode_frame",
    "find_previous_attempt",
    "journal_path",
    "outdated_tasks",
    "read_header",
    "read_journal",
    "snapshot_task",
    "task_output_record",
]

_logger = logging.getLogger("molexp.workflow")

JOURNAL_DIR = "task-outputs"
JOURNAL_FILE = "journal.bin"
JOURNAL_MAGIC = b"MOLEXP-TASK-JOURNAL\n"
FLUSH_INTERVAL = 2.0
"""Buffered records reach the file at most this many seconds after they were appended."""
FLUSH_BYTES = 8 * 1024 * 1024
"""A buffer this large is written out at once instead of waiting for the interval."""

_FRAME = struct.Struct("<II")
_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL


class _JournalRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    SCHEMA_VERSION: ClassVar[int] = 1

    version: int = 1

    def encode(self) -> bytes:
        """The record alone in one frame (what ``JournalWriter`` writes for a batch of one)."""
        return encode_frame([self.model_dump()])


def encode_frame(records: Sequence[dict[str, Any]]) -> bytes:
    """One frame holding ``records`` (``model_dump()``-shaped dicts): header + pickled list."""
    payload = pickle.dumps(list(records), protocol=_PICKLE_PROTOCOL)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


class AttemptHeader(_JournalRecord):
    """First record of a journal: which attempt wrote it and what its root tasks received."""

    kind: Literal["attempt"] = "attempt"
    execution_id: str
    workflow_id: str
    workflow_name: str
    started_at: float
    inputs_hash: str | None
    """``hash_value`` of the workflow ``inputs``; None when they cannot be hashed."""


class TaskOutputRecord(_JournalRecord):
    """One task that succeeded: its snapshot key, dependencies and pickled output."""

    kind: Literal["task"] = "task"
    task: str
    snapshot_key: str
    depends_on: tuple[str, ...]
    output: bytes


def task_output_record(
    task: str, snapshot_key: str, depends_on: tuple[str, ...], output: bytes
) -> dict[str, Any]:
    """``TaskOutputRecord(...).model_dump()`` without building the model (once per task)."""
    return {
        "version": TaskOutputRecord.SCHEMA_VERSION,
        "kind": "task",
        "task": task,
        "snapshot_key": snapshot_key,
        "depends_on": depends_on,
        "output": output,
    }


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task record read back from a journal, with its plain dict to copy it verbatim."""

    record: TaskOutputRecord
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AttemptJournal:
    """What a journal holds: its header and the last record of every task.

    ``complete`` is False when reading stopped at a truncated or corrupt frame.
    """

    path: Path
    header: AttemptHeader
    tasks: Mapping[str, StoredTask]
    complete: bool


def journal_path(execution_dir: Path) -> Path:
    """``<execution_dir>/task-outputs/journal.bin``."""
    return execution_dir / JOURNAL_DIR / JOURNAL_FILE


def _frames(data: bytes, path: Path) -> Iterator[tuple[int, bytes]]:
    """``(end offset, payload)`` of every intact frame after the magic; stops at a damaged one."""
    view = memoryview(data)
    offset = len(JOURNAL_MAGIC)
    end = len(view)
    while offset < end:
        if end - offset < _FRAME.size:
            _logger.warning("journal %s: ignoring a truncated frame at byte %d", path, offset)
            return
        length, checksum = _FRAME.unpack_from(view, offset)
        start = offset + _FRAME.size
        if end - start < length:
            _logger.warning("journal %s: ignoring a truncated frame at byte %d", path, offset)
            return
        payload = bytes(view[start : start + length])
        if zlib.crc32(payload) != checksum:
            _logger.warning("journal %s: ignoring a corrupt frame at byte %d", path, offset)
            return
        offset = start + length
        yield offset, payload


def _records(payload: bytes, path: Path) -> list[dict[str, Any]] | None:
    """The record dicts of one frame, or None (logged) when it is not a list of dicts."""
    try:
        records = pickle.loads(payload)  # the run's own journal
    except Exception as exc:
        _logger.warning("journal %s: unreadable frame (%s)", path, _describe(exc))
        return None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        _logger.warning("journal %s: a frame does not hold a list of records", path)
        return None
    return records


def _validate(model: type[_JournalRecord], data: dict[str, Any], path: Path) -> Any:
    """``data`` as a ``model``, or None (logged) when it is newer or malformed."""
    version = data.get("version")
    if isinstance(version, int) and version > model.SCHEMA_VERSION:
        _logger.warning(
            "journal %s: record version %d is newer than this MolExp understands (%d)",
            path,
            version,
            model.SCHEMA_VERSION,
        )
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _logger.warning("journal %s: malformed %s: %s", path, model.__name__, exc)
        return None


def _read_bytes(path: Path, size: int | None = None) -> bytes | None:
    try:
        with path.open("rb") as handle:
            data = handle.read() if size is None else handle.read(size)
    except OSError as exc:
        _logger.warning("cannot read journal %s: %s", path, exc)
        return None
    if not data.startswith(JOURNAL_MAGIC):
        if data:  # empty: an attempt that ended before its first flush
            _logger.warning("%s is not a MolExp task journal", path)
        return None
    return data


def _header_of(payload: bytes, path: Path) -> AttemptHeader | None:
    records = _records(payload, path)
    if not records:
        return None
    header: AttemptHeader | None = _validate(AttemptHeader, records[0], path)
    return header


def read_header(path: Path) -> AttemptHeader | None:
    """Only the header of the journal at ``path`` (None if missing or unreadable)."""
    head = _read_bytes(path, len(JOURNAL_MAGIC) + _FRAME.size)
    if head is None or len(head) < len(JOURNAL_MAGIC) + _FRAME.size:
        return None
    length, _ = _FRAME.unpack_from(head, len(JOURNAL_MAGIC))
    data = _read_bytes(path, len(JOURNAL_MAGIC) + _FRAME.size + length)
    if data is None:
        return None
    for _, payload in _frames(data, path):
        return _header_of(payload, path)
    return None


def read_journal(path: Path) -> AttemptJournal | None:
    """Read the journal at ``path``; None if it is missing, foreign or has no valid header.

    A truncated or corrupt frame ends the read (``complete=False``): frames before it count.
    """
    data = _read_bytes(path)
    if data is None:
        return None
    frames = _frames(data, path)
    first = next(frames, None)
    header = _header_of(first[1], path) if first is not None else None
    if first is None or header is None:
        return None
    tasks: dict[str, StoredTask] = {}
    consumed = first[0]
    for end, payload in frames:
        records = _records(payload, path)
        stored = [] if records is None else [_validate(TaskOutputRecord, r, path) for r in records]
        if records is None or None in stored:
            break
        for record, raw in zip(stored, records, strict=True):
            tasks[record.task] = StoredTask(record, raw)
        consumed = end
    return AttemptJournal(path=path, header=header, tasks=tasks, complete=consumed == len(data))


def find_previous_attempt(execution_dir: Path, current_execution_id: str) -> Path | None:
    """The journal of the latest other attempt of the run owning ``execution_dir``, if any.

    Attempts are the sibling directories of ``execution_dir`` (``<run_dir>/execution/*``);
    "latest" is by the ``started_at`` of their journal headers.
    """
    latest: tuple[float, Path] | None = None
    for path in execution_dir.parent.glob(f"*/{JOURNAL_DIR}/{JOURNAL_FILE}"):
        if path.parent.parent.name == current_execution_id:
            continue
        header = read_header(path)
        if header is None:
            continue
        if latest is None or header.started_at > latest[0]:
            latest = (header.started_at, path)
    return latest[1] if latest is not None else None


class JournalWriter:
    """Appends record batches to a journal file (see the module docstring).

    Records appended since the last flush are pickled together into one frame when the buffer is
    flushed: after ``flush_interval`` seconds (timer on the running event loop; without one every
    append is written at once), when ``flush_bytes`` of outputs are waiting, and on ``close()``.
    The two default to the module's ``FLUSH_INTERVAL`` / ``FLUSH_BYTES`` at construction time.
    Use it from the event-loop thread. Writing never raises: the first ``OSError`` is logged,
    kept in ``failure`` and turns the writer off (records are then dropped).

    ``before_frame`` is called before a frame of task records is written: it persists what those
    tasks produced that is held back elsewhere (the run's buffered results), so a journaled task,
    which the next attempt will not run again, never lost its side effects. If it raises, the
    frame is not written this time (the records stay buffered for the next flush).
    """

    def __init__(
        self,
        path: Path,
        header: AttemptHeader,
        *,
        flush_interval: float | None = None,
        flush_bytes: int | None = None,
        before_frame: Callable[[], object] | None = None,
    ) -> None:
        self.path = path
        self._before_frame = before_frame
        self.failure: str | None = None
        self._flush_interval = FLUSH_INTERVAL if flush_interval is None else flush_interval
        self._flush_bytes = FLUSH_BYTES if flush_bytes is None else flush_bytes
        self._prefix = JOURNAL_MAGIC + header.encode()  # written with the first flush
        self._pending: list[dict[str, Any]] = []
        self._pending_tasks: list[str] = []
        self._pending_bytes = 0
        self._written_tasks: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._fd: int | None = None
        self._closed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o666)
        except OSError as exc:
            self._fail(exc)

    @property
    def written_tasks(self) -> frozenset[str]:
        """Tasks whose records reached the file."""
        return frozenset(self._written_tasks)

    def append(self, task: str, record: dict[str, Any]) -> None:
        """Buffer the record of ``task`` (a ``model_dump()``-shaped dict with bytes output)."""
        if self._fd is None or self._closed:
            return
        self._pending.append(record)
        self._pending_tasks.append(task)
        self._pending_bytes += len(record.get("output", b""))
        if self._pending_bytes >= self._flush_bytes:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._timer = loop.call_later(self._flush_interval, self._timed_flush)

    def _timed_flush(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write the header (first time) and the buffered records, as one frame, now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fd is None or not (self._prefix or self._pending):
            return
        if self._pending and self._before_frame is not None:
            try:
                self._before_frame()
            except Exception:
                _logger.warning(
                    "task outputs not journaled yet: persisting their run results failed",
                    exc_info=True,
                )
                return
        data = self._prefix + (encode_frame(self._pending) if self._pending else b"")
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            self._fail(exc)
            return
        self._prefix = b""
        self._written_tasks.update(self._pending_tasks)
        self._pending.clear()
        self._pending_tasks.clear()
        self._pending_bytes = 0

    def close(self) -> None:
        """Flush and close the file (idempotent)."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.close(fd)
            except OSError as exc:
                self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        if self.failure is None:
            self.failure = f"journal {self.path} could not be written: {exc}"
            _logger.warning("task outputs will not be resumable: %s", self.failure)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd = None
        self._pending.clear()
        self._pending_tasks.clear()
        self._pending_bytes = 0


def snapshot_task(registration: TaskRegistration) -> TaskSnapshot:
    """``TaskSnapshot`` of a task's code and ``{"task": <task config>}``.

    ``cache=True`` lookups add the inputs and what the task reads from its run; resume decisions
    add the inputs and the hash of the whole run config.
    """
    from molexp.workflow.snapshot import TaskSnapshot
    from molexp.workflow.task import FunctionTask

    config = {"task": dict(registration.config or {})}
    task = registration.task
    versions = registration.track_dependency_versions
    if isinstance(task, FunctionTask):
        return TaskSnapshot.from_callable(
            task.fn, task_id=registration.name, config=config, track_dependency_versions=versions
        )
    return TaskSnapshot.from_task(
        task, task_id=registration.name, config=config, track_dependency_versions=versions
    )


SharedSnapshots = dict[tuple[int, bool], "TaskSnapshot | str"]
"""Snapshots computed during one execution, by the code they cover (see ``shared_snapshot``)."""


def shared_snapshot(registration: TaskRegistration, shared: SharedSnapshots) -> TaskSnapshot | str:
    """The snapshot of a task, or why it has none, computed once per execution for every task
    registered from the same function (or object) without a config of their own.

    A snapshot depends only on the code and the task's config, so such tasks (a sweep registers
    one function under many names) share one computation; its ``task_id`` is that of the first
    such task. ``shared`` lives for one execution, whose registrations keep the code alive.
    """
    from molexp.workflow.task import FunctionTask

    task = registration.task
    code = task.fn if isinstance(task, FunctionTask) else task
    code_id = (id(code), registration.track_dependency_versions)
    found = shared.get(code_id) if registration.config is None else None
    if found is None:
        try:
            found = snapshot_task(registration)
        except Exception as exc:
            found = f"no snapshot key: {_describe(exc)}"
        if registration.config is None:
            shared[code_id] = found
    return found


def _snapshot_all(spec: Workflow) -> dict[str, TaskSnapshot | str]:
    """Snapshot of every task, or why it has none (what ``shared_snapshot`` gives each task,
    with its loop inlined: this runs for every task of every execution under a run)."""
    from molexp.workflow.task import FunctionTask

    shared: SharedSnapshots = {}
    snapshots: dict[str, TaskSnapshot | str] = {}
    for name, registration in spec.tasks.items():
        if registration.config is not None:
            snapshots[name] = shared_snapshot(registration, shared)
            continue
        task = registration.task
        code = task.fn if isinstance(task, FunctionTask) else task
        found = shared.get((id(code), registration.track_dependency_versions))
        snapshots[name] = found if found is not None else shared_snapshot(registration, shared)
    return snapshots


def outdated_tasks(
    spec: Workflow,
    execution_dir: Path,
    *,
    run_config: Mapping[str, Any],
    inputs: Any = None,
) -> dict[str, str] | None:
    """The tasks of ``spec`` an execution under ``run_config`` would not re-use from the attempt
    journaled in ``execution_dir``, each with why: its code or task config changed (its resume key
    differs), its dependencies changed, the run config or the root inputs changed, it cannot be
    snapshotted, or that attempt never recorded it. Tasks that only run again because a dependency
    does are not listed. None when that attempt has no readable journal; an empty mapping when
    every task is up to date."""
    journal_file = journal_path(execution_dir)
    if not journal_file.is_file():
        return None
    previous = read_journal(journal_file)
    if previous is None:
        return None
    run_config_hash = _hash_run_config(run_config)
    inputs_hash = _hash_inputs(inputs)
    roots_match = inputs_hash is not None and previous.header.inputs_hash == inputs_hash
    outdated: dict[str, str] = {}
    for name, snapshot in _snapshot_all(spec).items():
        registration = spec.tasks[name]
        stored = previous.tasks.get(name)
        if isinstance(snapshot, str):
            outdated[name] = snapshot
        elif run_config_hash.startswith("no snapshot key"):
            outdated[name] = run_config_hash
        elif stored is None:
            outdated[name] = "not recorded by the last attempt"
        elif stored.record.snapshot_key.rsplit(":", 1)[0] != snapshot.key:
            outdated[name] = "code or task config changed"
        elif stored.record.snapshot_key != f"{snapshot.key}:{run_config_hash}":
            outdated[name] = "run config changed"
        elif stored.record.depends_on != registration.depends_on:
            outdated[name] = "dependencies changed"
        elif not registration.depends_on and not roots_match:
            outdated[name] = "inputs changed"
    return {name: outdated[name] for name in spec.topological_order() if name in outdated}


def _hash_inputs(inputs: Any) -> str | None:
    from molexp.workflow._hashing import UnhashableInputError, hash_value

    try:
        return hash_value(inputs, label="inputs")
    except UnhashableInputError as exc:
        _logger.info("tasks without dependencies are not resumable: %s", exc)
        return None


def _hash_run_config(run_config: Mapping[str, Any]) -> str:
    """sha256 of the run config, or why it has none (a message starting "no snapshot key")."""
    from molexp.workflow._hashing import UnhashableInputError, hash_value

    try:
        return hash_value(dict(run_config), label="config")
    except UnhashableInputError as exc:
        return f"no snapshot key: {_describe(exc)}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class ResumePlan:
    """Resume decisions and output persistence for one execution attempt under a run.

    Build it with :meth:`open`. A runtime driving the attempt must:

    - not run the tasks in ``resumed_outputs`` but give them status ``TaskStatus.RESUMED`` and
      their stored output (what their dependents see as inputs and ``WorkflowResult.outputs``
      holds); the set is closed under dependencies, so no other task waits on a resumed one;
    - call ``record_success(task, output)`` once for every other task that succeeded (statuses
      ``succeeded`` and ``cached``), from the event-loop thread.

    ``snapshot(task)`` is the task's ``TaskSnapshot`` (for ``cache=True`` lookups), computed once.
    The lifecycle calls ``close()`` and reads ``persistence()`` when the attempt ends.
    """

    def __init__(
        self,
        spec: Workflow,
        *,
        execution_id: str,
        snapshots: Mapping[str, TaskSnapshot | str],
        run_config_hash: str,
        writer: JournalWriter,
        previous: AttemptJournal | None,
        inputs_hash: str | None,
    ) -> None:
        self._spec = spec
        self._snapshots = snapshots
        self._keys: dict[str, str] = {}
        self._no_key: dict[str, str] = {}
        # Tasks sharing a snapshot (see _snapshot_all) share one key string: it is built once,
        # and pickle writes it once per journal frame (then a reference to it).
        shared_keys: dict[int, str] = {}
        no_run_config_hash = run_config_hash.startswith("no snapshot key")
        for name, snapshot in snapshots.items():
            if isinstance(snapshot, str):
                self._no_key[name] = snapshot
            elif no_run_config_hash:
                self._no_key[name] = run_config_hash
            else:
                key = shared_keys.get(id(snapshot))  # snapshots keeps every snapshot alive
                if key is None:
                    key = shared_keys[id(snapshot)] = f"{snapshot.key}:{run_config_hash}"
                self._keys[name] = key
        self._writer = writer
        self._details: dict[str, str] = {}
        self._submitted: set[str] = set()
        self.execution_id = execution_id
        self.previous_execution_id = previous.header.execution_id if previous is not None else None
        self.resumed_outputs: Mapping[str, Any] = (
            self._resume_from(previous, inputs_hash) if previous is not None else {}
        )
        if self.resumed_outputs:
            writer.flush()  # a crash right away must not lose the chain of resumed outputs

    @classmethod
    def open(
        cls,
        spec: Workflow,
        *,
        run_dir: Path,
        execution_id: str,
        execution_dir: Path,
        run_config: Mapping[str, Any],
        inputs: Any,
        resume: bool,
        before_frame: Callable[[], object] | None = None,
    ) -> ResumePlan:
        """Plan the attempt ``execution_id`` and start its journal under ``execution_dir``.

        With ``resume=False`` nothing is re-used, but outputs are still persisted for the next
        attempt. ``run_dir`` only names the run in log messages. ``before_frame`` goes to the
        ``JournalWriter``.
        """
        snapshots = _snapshot_all(spec)
        inputs_hash = _hash_inputs(inputs)
        previous: AttemptJournal | None = None
        if resume:
            previous_path = find_previous_attempt(execution_dir, execution_id)
            if previous_path is not None:
                previous = read_journal(previous_path)
        header = AttemptHeader(
            execution_id=execution_id,
            workflow_id=spec.workflow_id,
            workflow_name=spec.name,
            started_at=time.time(),
            inputs_hash=inputs_hash,
        )
        writer = JournalWriter(journal_path(execution_dir), header, before_frame=before_frame)
        plan = cls(
            spec,
            execution_id=execution_id,
            snapshots=snapshots,
            run_config_hash=_hash_run_config(run_config),
            writer=writer,
            previous=previous,
            inputs_hash=inputs_hash,
        )
        if plan.resumed_outputs:
            _logger.info(
                "workflow %r under run %s: resuming %d of %d tasks from execution %s",
                spec.name,
                run_dir,
                len(plan.resumed_outputs),
                len(spec.tasks),
                plan.previous_execution_id,
            )
        return plan

    def _resume_from(self, previous: AttemptJournal, inputs_hash: str | None) -> dict[str, Any]:
        resumed: dict[str, Any] = {}
        roots_match = inputs_hash is not None and previous.header.inputs_hash == inputs_hash
        for name in self._spec.topological_order():
            stored = previous.tasks.get(name)
            registration = self._spec.tasks[name]
            if (
                stored is None
                or stored.record.snapshot_key != self._keys.get(name)
                or stored.record.depends_on != registration.depends_on
                or not all(dep in resumed for dep in registration.depends_on)
                or (not registration.depends_on and not roots_match)
            ):
                continue
            try:
                output = pickle.loads(stored.record.output)  # the run's own journal
            except Exception as exc:
                _logger.warning(
                    "task %r of workflow %r runs again: its stored output cannot be loaded (%s)",
                    name,
                    self._spec.name,
                    _describe(exc),
                )
                continue
            resumed[name] = output
            self._submitted.add(name)
            self._writer.append(name, stored.data)
        return resumed

    def snapshot(self, task: str) -> TaskSnapshot | None:
        """The task's snapshot, or None when it could not be taken."""
        snapshot = self._snapshots.get(task)
        if snapshot is None or isinstance(snapshot, str):
            return None
        if snapshot.task_id != task:  # shared with an identical task (see _snapshot_all)
            return snapshot.model_copy(update={"task_id": task})
        return snapshot

    def record_success(self, task: str, output: Any) -> None:
        """Persist the output of a task that succeeded in this attempt (never raises)."""
        registration = self._spec.tasks[task]
        self._submitted.add(task)
        if registration.is_actor:
            self._details[task] = "actors are always executed again"
            return
        key = self._keys.get(task)
        if key is None:
            self._details[task] = self._no_key[task]
            return
        try:
            data = pickle.dumps(output, protocol=_PICKLE_PROTOCOL)
        except Exception as exc:
            self._details[task] = f"output is not picklable: {_describe(exc)}"
            _logger.warning(
                "task %r of workflow %r is not resumable: its output (%s) cannot be pickled: %s",
                task,
                self._spec.name,
                type(output).__name__,
                _describe(exc),
            )
            return
        self._writer.append(task, task_output_record(task, key, registration.depends_on, data))

    def close(self) -> None:
        """Write out every buffered record and close the journal."""
        self._writer.close()

    def code_record(self) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """What code this attempt ran: each task's code hash, each task function's source by
        code hash (tasks sharing a function share one entry), and the version of every installed
        distribution the tasks' code reaches."""
        code_hashes: dict[str, str] = {}
        sources: dict[str, str] = {}
        distributions: dict[str, str] = {}
        seen: set[int] = set()  # tasks sharing a snapshot (see _snapshot_all): read it once
        for name, snapshot in self._snapshots.items():
            if isinstance(snapshot, str):
                continue
            code_hashes[name] = snapshot.code_hash
            if id(snapshot) not in seen:
                seen.add(id(snapshot))
                sources.setdefault(snapshot.code_hash, snapshot.code_source)
                distributions.update(snapshot.distributions)
        return code_hashes, sources, dict(sorted(distributions.items()))

    def persistence(self) -> dict[str, TaskPersistence]:
        """Per task: its snapshot key, whether its output reached the journal, and why not."""
        written = self._writer._written_tasks  # read only: no frozenset copy of 1,000 names
        failure = self._writer.failure
        keys = self._keys
        report: dict[str, TaskPersistence] = {}
        # TaskPersistence is frozen: tasks with the same key and outcome share one instance.
        shared: dict[tuple[str | None, bool, str | None], TaskPersistence] = {}
        for name in self._snapshots:
            key = keys.get(name)
            persisted = name in written
            detail = None
            if not persisted and name in self._submitted:
                detail = self._details.get(name, failure)
            found = shared.get((key, persisted, detail))
            if found is None:
                found = shared[key, persisted, detail] = TaskPersistence(
                    snapshot_key=key, output_persisted=persisted, detail=detail
                )
            report[name] = found
        return report
