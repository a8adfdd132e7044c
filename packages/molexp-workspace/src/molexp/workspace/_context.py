"""``RunContext``: the live side of one execution attempt of a run.

Entering the context (``with run.start(profile_config=cfg) as ctx:``) refuses a run
that is already ``running``, then stamps the run as ``running`` with the profile
(name, config, config_hash), the owner (host, pid, heartbeat) and a fresh
``ExecutionRecord``; it creates ``artifacts/`` and ``logs/``
(``execution/<execution_id>/`` is created when first used) and prepares the files of
earlier attempts (``_attempts.prepare_attempt``): each attempt keeps its own results,
artifacts and logs, and the run's current view shows the latest. Leaving it marks the
run ``succeeded``, or ``failed`` when an exception escaped or ``mark_failed`` was
called: the traceback goes to ``execution/<execution_id>/error.txt`` (an
``ErrorTraceAsset``) and an ``ErrorInfo`` onto the run and the execution record.
Exceptions always propagate. A run cancelled by someone else meanwhile stays
``cancelled``; a run another process took over meanwhile (after reaping it) keeps
that process's state, and only this attempt's record is closed.

Results: ``set_result`` stores a value in the run's results (the current view) and in
this attempt's ``ExecutionRecord.results``. It writes through to ``run.json`` when this
context has not written the record during the last ``RESULT_WRITE_INTERVAL`` seconds; a result set
sooner is kept by the context (``get_result`` sees it) and rides along with the next
write of the record: the next such ``set_result``, a heartbeat, ``flush_results()``
(which the workflow layer calls before it journals a task as done, so a task that will
not run again never loses its results), or at the latest the final write when the
context exits. Bursts of results thus cost one write, and a crash of the process loses
at most the results of the last interval of tasks that are not journaled yet.

Metrics: ``log_metric`` buffers points of a named series and appends them to this attempt's
own series file (``_metrics``) in batches, one ``fsync`` each: every ``FLUSH_INTERVAL`` seconds
or ``MAX_BUFFERED_POINTS`` points, on ``log_metrics`` (one batch), ``flush_metrics``,
``flush_results``, a heartbeat and the exit. The series' summaries (last, min, max, count) go
to ``run.json`` like results: written through at most once per ``RESULT_WRITE_INTERVAL``,
else with the next write of the record (at the latest the final one).

Channels (``emit``/``receive``) are named, unbounded, thread-safe FIFO queues that
live in this context object only (one process): actor-style tasks running under the
same context use them to pass messages.
"""

from __future__ import annotations

import logging
import os
import platform
import queue
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any

from molexp.assets import (
    ArtifactStore,
    Asset,
    AssetKind,
    AssetScope,
    CheckpointAsset,
    CheckpointStore,
    DataAssetLibrary,
    ExecutionStateAsset,
    LogHandle,
    Producer,
    make_dirs,
    validate_name,
    write_error_trace,
    write_execution_state,
)
from molexp.assets.storage import checked_path, is_valid_unicode

from ._attempts import prepare_attempt, seal_attempt
from ._data_dirs import data_dir
from ._environment import capture_environment
from ._errors import RunStateError
from ._hashing import ProfileConfig, plain_json
from ._layout import RUN_FILE
from ._metrics import METRICS_DIR, MetricWriter
from ._records import (
    ErrorInfo,
    ExecutionRecord,
    MetricSummary,
    OwnerInfo,
    ProfileInfo,
    RunMetadata,
    RunStatus,
    utc_now,
)
from ._stale import this_host
from ._worker_context import WorkerRunOpener, apply_report

if TYPE_CHECKING:
    from ._experiment import Experiment
    from ._project import Project
    from ._run import Run, WorkflowSnapshot
    from ._workspace import Workspace

__all__ = ["RunContext", "new_execution_id"]

logger = logging.getLogger("molexp.workspace")

ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
EXECUTION_DIR = "execution"
ERROR_FILE = "error.txt"
RESULT_WRITE_INTERVAL = 1.0


def new_execution_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class _Pending:
    """What this context holds back from ``run.json`` until its next write."""

    results: dict[str, Any]
    metrics: dict[str, MetricSummary]

    def __bool__(self) -> bool:
        return bool(self.results or self.metrics)


def _store_results(
    metadata: RunMetadata,
    execution_id: str,
    results: Mapping[str, Any],
    metrics: Mapping[str, MetricSummary] = MappingProxyType({}),
) -> None:
    """Put results and metric summaries into the attempt's own record and, while it is the
    latest attempt, into the run's current view (an attempt reaped and superseded meanwhile
    no longer changes the view)."""
    if not results and not metrics:
        return
    history = metadata.execution_history
    for index in range(len(history) - 1, -1, -1):
        record = history[index]
        if record.execution_id == execution_id:
            if results:
                record.results = {**(record.results or {}), **results}
            record.metrics.update(metrics)
            if index < len(history) - 1:
                return
            break
    metadata.results.update(results)
    metadata.metrics.update(metrics)


@dataclass(frozen=True)
class _Failure:
    type: str
    message: str
    task_name: str | None
    text: str


def _recordable(text: str) -> str:
    """``text`` with lone surrogates (e.g. undecodable file names) escaped, so JSON can hold it."""
    if is_valid_unicode(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _safe_str(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # a hostile __str__ must not keep the run from ending failed
        return f"<{type(error).__name__} whose message cannot be shown>"


def _failure_from(error: BaseException | str, task_name: str | None) -> _Failure:
    """What a failed attempt records; every text is made storable in JSON records."""
    if isinstance(error, BaseException):
        try:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        except Exception:
            text = f"{type(error).__name__}: {_safe_str(error)}\n"
        task = task_name if task_name is not None else getattr(error, "task_name", None)
        return _Failure(
            type=_recordable(type(error).__name__),
            message=_recordable(_safe_str(error) or type(error).__name__),
            task_name=_recordable(task) if isinstance(task, str) else None,
            text=_recordable(text),
        )
    if not isinstance(error, str):
        raise TypeError(f"mark_failed takes an exception or a message, got {type(error).__name__}")
    message = _recordable(error)
    task = _recordable(task_name) if task_name is not None else None
    return _Failure(type="Error", message=message, task_name=task, text=message + "\n")


class RunContext:
    """One execution attempt of a run (create it with ``run.start(...)``)."""

    def __init__(
        self,
        run: Run,
        profile: ProfileConfig,
        *,
        heartbeat_interval: float | None = None,
        workflow: WorkflowSnapshot | None = None,
    ) -> None:
        if heartbeat_interval is not None and not heartbeat_interval > 0:
            raise ValueError(f"heartbeat_interval must be > 0 seconds, got {heartbeat_interval!r}")
        self._run = run
        self._profile = ProfileInfo.of(profile)
        self._config = MappingProxyType(self._profile.config)
        self._execution_id = new_execution_id()
        self._heartbeat_interval = heartbeat_interval
        self._workflow = workflow
        self._state = "new"
        self._failure: _Failure | None = None
        self._pending_results: dict[str, Any] = {}
        self._pending_metrics: dict[str, MetricSummary] = {}
        self._reported_metrics: dict[str, MetricSummary] = {}
        self._metric_writer: MetricWriter | None = None
        self._last_write = 0.0
        self._logs: dict[str, LogHandle] = {}
        self._channels: dict[str, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._stop_heartbeat = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        self._artifact: ArtifactStore | None = None
        self._checkpoints: CheckpointStore | None = None

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str]) -> Run:
        """The ``Run`` stored in ``run_dir``, with its workspace, project and experiment.

        Walks up from ``run_dir`` to the nearest ``workspace.json``. Returns the run
        (not an entered context) so the caller can pick the profile: for example
        ``RunContext.open(d).start(profile_config=cfg)``.
        """
        from ._workspace import Workspace

        directory = checked_path(run_dir, "run directory").expanduser().resolve()
        record = directory / RUN_FILE
        try:
            is_run = record.is_file()
        except OSError as exc:  # e.g. a name too long for the filesystem
            raise FileNotFoundError(
                f"{directory} is not a run directory: {exc.strerror or exc}"
            ) from None
        if not is_run:
            raise FileNotFoundError(f"{directory} is not a run directory: {record} is missing")
        root = next(
            (parent for parent in directory.parents if (parent / "workspace.json").is_file()),
            None,
        )
        if root is None:
            raise FileNotFoundError(f"no workspace.json in any parent directory of {directory}")
        relative = directory.relative_to(root).parts
        if (
            len(relative) != 6
            or relative[0] != "projects"
            or relative[2] != "experiments"
            or relative[4] != "runs"
            or not relative[5].startswith("run-")
        ):
            raise ValueError(
                f"{directory} is not laid out as "
                "<workspace>/projects/<project>/experiments/<experiment>/runs/run-<id>"
            )
        workspace = Workspace.load(root)
        experiment = workspace.project(relative[1]).experiment(relative[3])
        return experiment.get_run(relative[5].removeprefix("run-"))

    def __repr__(self) -> str:
        return f"RunContext(run={self._run.id!r}, execution={self._execution_id!r}, {self._state})"

    # -- hierarchy -----------------------------------------------------------------

    @property
    def run(self) -> Run:
        """The run this context executes."""
        return self._run

    @property
    def experiment(self) -> Experiment:
        """The run's experiment."""
        return self._run.experiment

    @property
    def project(self) -> Project:
        """The run's project."""
        return self._run.project

    @property
    def workspace(self) -> Workspace:
        """The run's workspace."""
        return self._run.workspace

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters (read-only)."""
        return MappingProxyType(self._run.parameters)

    @property
    def config(self) -> Mapping[str, Any]:
        """The profile's merged config (read-only)."""
        return self._config

    @property
    def profile(self) -> ProfileInfo:
        """Profile name, config and config_hash stored on the run."""
        return self._profile

    @property
    def run_dir(self) -> Path:
        """The run's directory."""
        return self._run.run_dir

    @property
    def execution_id(self) -> str:
        """Id of this attempt (a run queued with ``mark_queued`` keeps its queued id on entry)."""
        return self._execution_id

    @property
    def execution_dir(self) -> Path:
        """``<run_dir>/execution/<execution_id>/`` (created on first access while active)."""
        directory = self._run.run_dir / EXECUTION_DIR / self._execution_id
        if self._state == "active" and not directory.is_dir():
            make_dirs(directory)
        return directory

    @property
    def active(self) -> bool:
        """Whether the context has been entered and not yet left."""
        return self._state == "active"

    # -- lifecycle -------------------------------------------------------------------

    def __enter__(self) -> RunContext:
        if self._state != "new":
            raise RuntimeError(
                "a RunContext can be entered only once; call run.start() for a new attempt"
            )
        host, pid = this_host(), os.getpid()

        def begin(metadata: RunMetadata) -> None:
            if metadata.status is RunStatus.running:
                owner = metadata.owner
                where = f" by process {owner.pid} on host {owner.host}" if owner else ""
                raise RunStateError(
                    f"run {metadata.id!r} of experiment {metadata.experiment_id!r} is already "
                    f"running{where}; reap it with reap_stale_runs() if that process is gone"
                )
            now = utc_now()
            history = metadata.execution_history
            queued = history[-1] if history and history[-1].status is RunStatus.pending else None
            if queued is not None:
                self._execution_id = queued.execution_id
                record = queued
            else:
                record = ExecutionRecord(
                    execution_id=self._execution_id,
                    attempt=len(history) + 1,
                    status=RunStatus.running,
                )
                history.append(record)
            earlier = [r for r in history if r is not record]
            if earlier and earlier[-1].results is None:
                # Recorded before attempts kept their own results: what the run showed then.
                earlier[-1].results = dict(metadata.results)
            record.results = record.results or {}
            record.status = RunStatus.running
            record.started_at = now
            record.host = host
            record.pid = pid
            record.python = sys.executable or None
            record.python_version = platform.python_version()
            record.environment = capture_environment()
            record.profile_name = self._profile.name
            record.config_hash = self._profile.config_hash
            metadata.status = RunStatus.running
            metadata.started_at = now
            metadata.finished_at = None
            metadata.error = None
            metadata.profile = self._profile
            metadata.owner = OwnerInfo(host=host, pid=pid, started_at=now, heartbeat_at=now)
            if self._workflow is not None:  # run.start(workflow=...): one write, not two
                self._workflow.apply(metadata)

        self._run._update(begin, "start")
        self._last_write = time.monotonic()
        self._state = "active"
        try:
            prepare_attempt(self._run, self._run.metadata.execution_history, self._execution_id)
            for directory in (self.run_dir / ARTIFACTS_DIR, self.run_dir / LOGS_DIR):
                directory.mkdir(exist_ok=True)
        except BaseException as error:  # the attempt is ours now: end it failed, not running
            self.__exit__(type(error), error, error.__traceback__)
            raise
        if self._heartbeat_interval is not None:
            self._heartbeat_thread = threading.Thread(
                target=self._heartbeat_loop,
                args=(self._heartbeat_interval,),
                name=f"molexp-heartbeat-{self._run.id}",
                daemon=True,
            )
            self._heartbeat_thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state != "active":
            return
        self._stop_heartbeat.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join()
        cleanup_error: BaseException | None = None
        for handle in self._logs.values():
            try:
                handle.close()
            except Exception as error:  # finalize the run even if a log cannot be closed
                cleanup_error = cleanup_error or error
        if self._metric_writer is not None:
            try:
                self._metric_writer.close()
            except Exception as error:  # finalize the run even if metrics cannot be written
                cleanup_error = cleanup_error or error
            self._hold_metrics()
        failure = _failure_from(exc, None) if exc is not None else self._failure
        error_info = None
        if failure is not None:
            error_info = ErrorInfo(
                type=failure.type, message=failure.message, task_name=failure.task_name
            )
            try:
                write_error_trace(
                    self.workspace.catalog,
                    self._run.scope,
                    self.run_dir,
                    execution_id=self._execution_id,
                    error_type=failure.type,
                    text=failure.text,
                    producer=self._producer(),
                )
                error_info.traceback_path = str(
                    PurePosixPath(EXECUTION_DIR, self._execution_id, ERROR_FILE)
                )
            except Exception as error:  # the run must still end failed
                cleanup_error = cleanup_error or error
        try:
            seal_attempt(self.run_dir, self._execution_id)
        except Exception as error:  # the next attempt settles an unsealed one
            cleanup_error = cleanup_error or error
        final = RunStatus.failed if failure is not None else RunStatus.succeeded
        execution_id = self._execution_id
        me = (this_host(), os.getpid())
        pending = self._take_pending()

        def finish(metadata: RunMetadata) -> None:
            now = utc_now()
            _store_results(metadata, execution_id, pending.results, pending.metrics)
            record = next(
                (r for r in metadata.execution_history if r.execution_id == execution_id), None
            )
            if metadata.status is RunStatus.cancelled:
                if record is not None:
                    record.status = RunStatus.cancelled
                    record.finished_at = record.finished_at or now
                return
            owner = metadata.owner
            if metadata.status is RunStatus.running and owner and (owner.host, owner.pid) != me:
                # Reaped meanwhile and restarted by another process: only close our attempt.
                if record is not None:
                    record.status = final
                    record.finished_at = now
                    record.error = error_info
                return
            metadata.status = final
            metadata.finished_at = now
            metadata.error = error_info
            metadata.owner = None
            if record is not None:
                record.status = final
                record.finished_at = now
                record.error = error_info

        try:
            self._run._update(finish, "finish")
        finally:
            self._state = "closed"
        if cleanup_error is not None and exc is None:
            raise cleanup_error

    def _require_active(self, action: str) -> None:
        if self._state != "active":
            state = "has not been entered" if self._state == "new" else "has already finished"
            raise RuntimeError(
                f"cannot {action}: the run context of run {self._run.id!r} {state} "
                "(use it as `with run.start() as ctx:`)"
            )

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None:
        """End this attempt as failed even if the ``with`` block exits normally.

        The first call wins; its exception traceback (or message) becomes error.txt.
        """
        self._require_active("mark the run failed")
        failure = _failure_from(error, task_name)
        with self._lock:
            if self._failure is None:
                self._failure = failure

    # -- heartbeat -------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Refresh ``owner.heartbeat_at`` (no-op if this process no longer owns the run)."""
        self._require_active("send a heartbeat")
        pid = os.getpid()
        self._flush_metric_series()
        pending = self._take_pending()
        execution_id = self._execution_id

        def beat(metadata: RunMetadata) -> bool:
            owner = metadata.owner
            _store_results(metadata, execution_id, pending.results, pending.metrics)
            if metadata.status is not RunStatus.running or owner is None or owner.pid != pid:
                return bool(pending)
            owner.heartbeat_at = utc_now()
            return True

        self._write_with_results(beat, pending)

    def _heartbeat_loop(self, interval: float) -> None:
        while not self._stop_heartbeat.wait(interval):
            try:
                self.heartbeat()
            except Exception:
                logger.exception("heartbeat of run %s failed", self._run.id)

    # -- results -----------------------------------------------------------------------

    def _take_pending(self) -> _Pending:
        with self._lock:
            pending = _Pending(self._pending_results, self._pending_metrics)
            self._pending_results, self._pending_metrics = {}, {}
        return pending

    def _write_with_results(
        self, mutate: Callable[[RunMetadata], bool | None], pending: _Pending
    ) -> None:
        """Apply ``mutate`` (which stores ``pending``); on failure keep it pending."""
        try:
            self._run._update(mutate, "results", owner_write=True)
        except BaseException:
            with self._lock:
                self._pending_results = {**pending.results, **self._pending_results}
                self._pending_metrics = {**pending.metrics, **self._pending_metrics}
            raise
        self._last_write = time.monotonic()

    def _write_pending(self) -> None:
        """Write what is held back to ``run.json`` now (nothing held: no write)."""
        pending = self._take_pending()
        if not pending:
            return
        execution_id = self._execution_id

        def store(metadata: RunMetadata) -> None:
            _store_results(metadata, execution_id, pending.results, pending.metrics)

        self._write_with_results(store, pending)

    def set_result(self, key: str, value: Any) -> None:
        """Store ``value`` (plain JSON data) under ``key`` in the run's results (run.json).

        Written through unless the record was written less than
        ``RESULT_WRITE_INTERVAL`` seconds ago; then it is saved with the next write
        (see the module docstring).
        """
        self._require_active("set a result")
        if not isinstance(key, str) or not key or not is_valid_unicode(key):
            raise ValueError(f"result keys must be non-empty strings of valid Unicode, got {key!r}")
        plain = plain_json(value, f"result {key!r}")
        with self._lock:
            self._pending_results[key] = plain
            if time.monotonic() - self._last_write < RESULT_WRITE_INTERVAL:
                return
        self._write_pending()

    def flush_results(self) -> None:
        """Write the buffered metric points to their series file, then the results and metric
        summaries held back to ``run.json`` (none held: no write).

        The workflow layer calls this before it journals tasks as done, since a journaled
        task is not run again by the next attempt and could not set its results again.
        """
        self._require_active("flush results")
        self._flush_metric_series()
        self._write_pending()

    def get_result(self, key: str, default: Any = None) -> Any:
        """A result of this attempt or a stored one (earlier attempts too), else ``default``."""
        with self._lock:
            if key in self._pending_results:
                return self._pending_results[key]
        return self._run.results.get(key, default)

    # -- metrics -----------------------------------------------------------------------

    def _metrics(self) -> MetricWriter:
        with self._lock:
            if self._metric_writer is None:
                self._metric_writer = MetricWriter(self.execution_dir / METRICS_DIR)
            return self._metric_writer

    def _hold_metrics(self, names: Iterable[str] | None = None) -> None:
        """Hold back, for ``run.json``, this attempt's summary of the metrics ``names`` (None:
        every metric this context logged): its own points and those reported by others."""
        own = self._metric_writer.summaries() if self._metric_writer is not None else {}
        with self._lock:
            for name in own if names is None else names:
                summary, reported = own.get(name), self._reported_metrics.get(name)
                if reported is not None:
                    summary = reported if summary is None else reported.merged(summary)
                if summary is not None:
                    self._pending_metrics[name] = summary

    def _metrics_flushed(self) -> None:
        self._hold_metrics()
        if time.monotonic() - self._last_write >= RESULT_WRITE_INTERVAL:
            self._write_pending()

    def _flush_metric_series(self) -> None:
        if self._metric_writer is not None:
            self._metric_writer.flush()
            self._hold_metrics()

    def log_metric(
        self,
        name: str,
        value: float,
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> None:
        """Add a point to the metric series ``name`` of this attempt.

        ``step`` defaults to one more than this context's last step of ``name`` (0 first);
        ``timestamp`` (Unix seconds or an aware datetime) to now. The point is buffered and
        written with the next batch (see the module docstring); the value must be a finite
        real number and ``name`` one path component (``ValueError`` naming it otherwise).
        """
        self._require_active("log a metric")
        writer = self._metrics()
        if writer.log(name, value, step, timestamp):
            self._metrics_flushed()

    def log_metrics(
        self,
        values: Mapping[str, float],
        *,
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> None:
        """Log one point per ``name -> value`` (same step and time) and write them, with any
        buffered points, as one durable batch (one ``fsync``) before returning."""
        self._require_active("log metrics")
        writer = self._metrics()
        writer.log_many(values, step, timestamp)
        self._metrics_flushed()

    def flush_metrics(self) -> None:
        """Write the buffered points to the series file and the summaries to ``run.json`` now."""
        self._require_active("flush metrics")
        self._flush_metric_series()
        self._write_pending()

    def record_metric_summaries(self, summaries: Mapping[str, Mapping[str, Any]]) -> None:
        """Count the summaries of series another process wrote into this attempt's files
        (a task on a worker or in a Slurm job); ``run.json`` gets them with the next write."""
        self._require_active("record metric summaries")
        parsed = {name: MetricSummary.model_validate(data) for name, data in summaries.items()}
        with self._lock:
            for name, summary in parsed.items():
                known = self._reported_metrics.get(name)
                self._reported_metrics[name] = summary if known is None else known.merged(summary)
        self._hold_metrics(parsed)

    # -- files -------------------------------------------------------------------------

    def _producer(self, task_name: str | None = None) -> Producer:
        return Producer(run_id=self._run.id, execution_id=self._execution_id, task_name=task_name)

    @property
    def artifact(self) -> ArtifactStore:
        """Artifacts of this attempt: ``ctx.artifact.save(name, data)`` writes
        ``execution/<execution_id>/artifacts/<name>``, shown as ``artifacts/<name>``."""
        self._require_active("save artifacts")
        with self._lock:
            if self._artifact is None:
                self._artifact = ArtifactStore(
                    self.workspace.catalog,
                    self._run.scope,
                    self.run_dir,
                    self._producer(),
                    per_attempt=True,
                )
            return self._artifact

    def log(self, name: str) -> LogHandle:
        """This attempt's log ``execution/<execution_id>/logs/<name>.log``, shown as
        ``logs/<name>.log`` (one handle per name; closed when the context exits)."""
        self._require_active("open a log")
        validate_name(name, "log name")
        with self._lock:
            handle = self._logs.get(name)
            if handle is None:
                handle = LogHandle(
                    self.workspace.catalog,
                    self._run.scope,
                    self.run_dir,
                    name,
                    self._producer(),
                    per_attempt=True,
                )
                self._logs[name] = handle
            return handle

    def checkpoint(self, name: str, data: Any = None) -> CheckpointAsset:
        """Append a checkpoint to this run's linear chain (``data=None`` records a marker)."""
        self._require_active("save a checkpoint")
        with self._lock:
            if self._checkpoints is None:
                self._checkpoints = CheckpointStore(
                    self.workspace.catalog, self._run.scope, self.run_dir, self._producer()
                )
            store = self._checkpoints
        return store.save(name, data)

    def record_execution_state(self, state: Mapping[str, Any]) -> ExecutionStateAsset:
        """Write ``execution/<execution_id>/state.json`` and register it."""
        self._require_active("record the execution state")
        return write_execution_state(
            self.workspace.catalog,
            self._run.scope,
            self.run_dir,
            execution_id=self._execution_id,
            state=state,
            producer=self._producer(),
        )

    # -- tasks on other processes and hosts (Dask workers) -----------------------------

    def worker_opener(self) -> WorkerRunOpener:
        """A picklable opener of this attempt's run context on workers (``_worker_context``)."""
        self._require_active("open the run on workers")
        return WorkerRunOpener(
            run_dir=str(self.run_dir),
            run_id=self._run.id,
            execution_id=self._execution_id,
            params=dict(self._run.parameters),
            config=dict(self._config),
            owner_host=this_host(),
        )

    def apply_worker_report(self, report: Mapping[str, Any], task_name: str) -> None:
        """Record what a worker's run context kept for the owner: results, then log lines."""
        self._require_active("record a worker's report")
        apply_report(self, report, task_name)

    # -- assets --------------------------------------------------------------------------

    @property
    def data_assets(self) -> DataAssetLibrary:
        """The experiment's data-asset library (promote run outputs into it)."""
        return self._run.experiment.data_assets

    def _lookup_scopes(self) -> list[AssetScope]:
        return [
            self._run.scope,
            self._run.experiment.scope,
            self._run.project.scope,
            self.workspace.scope,
        ]

    def find_asset(self, name: str, kind: AssetKind | str | None = None) -> Asset | None:
        """The asset ``name`` from the run, else experiment, project, workspace scope.

        A match produced elsewhere is recorded as used by this execution (lineage).
        """
        validate_name(name, "asset name")
        asset = self.workspace.catalog.find(name, self._lookup_scopes(), kind=kind)
        if asset is not None and self.active:
            producer = asset.producer
            if producer is None or producer.run_id != self._run.id:
                self.workspace.catalog.record_use(
                    asset.id, run_id=self._run.id, execution_id=self._execution_id
                )
        return asset

    def get_data_dir(self, asset_name: str, fallback: str | os.PathLike[str] | None = None) -> Path:
        """Absolute path of the asset ``asset_name`` (looked up like ``find_asset``).

        If there is no such asset and ``fallback`` is given, the directory
        ``<workspace root>/<fallback>`` is created and returned; ``fallback`` must be a
        relative path staying inside the workspace.
        """
        asset = self.find_asset(asset_name)
        return data_dir(
            self.workspace.root, asset, asset_name, run_id=self._run.id, fallback=fallback
        )

    # -- channels ------------------------------------------------------------------------

    def _channel(self, channel: str) -> queue.Queue[Any]:
        if not isinstance(channel, str) or not channel:
            raise ValueError(f"channel names must be non-empty strings, got {channel!r}")
        with self._lock:
            found = self._channels.get(channel)
            if found is None:
                found = self._channels[channel] = queue.Queue()
            return found

    def emit(self, channel: str, message: Any) -> None:
        """Put ``message`` on the named in-process channel (created on first use)."""
        self._channel(channel).put(message)

    def receive(self, channel: str, timeout: float | None = None) -> Any:
        """Take the oldest message from the channel, waiting up to ``timeout`` seconds.

        ``timeout=None`` waits indefinitely; ``TimeoutError`` names the channel when
        nothing arrives in time.
        """
        try:
            return self._channel(channel).get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message on channel {channel!r} within {timeout} s") from None
