"""The run context of a task running on another process or host (a Dask worker).

The run's owner (the process inside ``with run.start() as ctx``) stays the only writer of
``run.json``. ``RunContext.worker_opener()`` hands the workflow layer a picklable
:class:`WorkerRunOpener`; on the worker, ``opener.open(task_name)`` gives a
:class:`WorkerRunContext` that

- writes artifacts and checkpoints itself, atomically, into the run directory on the shared
  filesystem (the attempt's ``execution/<id>/`` files and the catalog, as the owner would), with a
  ``Producer`` naming the run, attempt, task and the worker's host;
- looks assets up (``find_asset``, ``get_data_dir``) in the shared catalog;
- appends metric points (``log_metric``) to a series file of its own in the attempt's
  ``metrics/`` directory (one writer per file, see ``_metrics``) and reports their summaries;
- keeps results (``set_result``) and log lines (``log(name).append``) and returns them from
  ``close()`` as the *report* the owner records (``RunContext.apply_worker_report``): results
  belong in ``run.json``, and appends from several hosts to one log file are not atomic on
  network filesystems, so the owner is the one appender. A worker killed mid-task loses them.

The workspace is opened lazily, on the first helper that needs it, so a task that uses none
runs on workers that cannot see the workspace; a helper that needs it there raises
:class:`WorkspaceUnreachableError` saying so. Opened runs are kept per worker process.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn

from molexp.assets import (
    ArtifactStore,
    Asset,
    AssetKind,
    AssetScope,
    CheckpointAsset,
    CheckpointStore,
    Producer,
    make_dirs,
    validate_name,
)
from molexp.assets.storage import is_valid_unicode

from ._data_dirs import data_dir
from ._hashing import plain_json
from ._metrics import METRICS_DIR, MetricWriter
from ._stale import this_host

if TYPE_CHECKING:
    from ._run import Run
    from ._workspace import Workspace

__all__ = ["WorkerRunContext", "WorkerRunOpener", "WorkspaceUnreachableError"]

_EXECUTION_DIR = "execution"


class WorkspaceUnreachableError(FileNotFoundError):
    """A task on a worker needed the run's records, but the workspace is not visible there."""


@functools.lru_cache(maxsize=8)
def _open_run(run_dir: str) -> Run:
    from ._context import RunContext

    return RunContext.open(run_dir)


@dataclass(frozen=True, slots=True)
class WorkerRunOpener:
    """Picklable: what a worker needs to open the run of one execution attempt."""

    run_dir: str
    run_id: str
    execution_id: str
    params: Mapping[str, Any]
    config: Mapping[str, Any]
    owner_host: str

    def open(self, task_name: str) -> WorkerRunContext:
        """The run context of ``task_name`` on this worker (the workspace opens on first use)."""
        return WorkerRunContext(self, task_name)


class _ReportedLog:
    """``ctx.log(name)`` on a worker: lines kept for the owner to append."""

    def __init__(self, lines: list[str]) -> None:
        self._lines = lines

    def append(self, line: str) -> None:
        self._lines.append(str(line))

    def flush(self) -> None:
        """Nothing to flush: the lines reach the log when the task finishes."""

    def close(self) -> None:
        """Nothing to close (see ``flush``)."""


@dataclass
class _Kept:
    results: dict[str, Any] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)


class WorkerRunContext:
    """One task's run context on a worker (see the module docstring for what goes where)."""

    def __init__(self, opener: WorkerRunOpener, task_name: str) -> None:
        self._opener = opener
        self._task_name = task_name
        self._host = this_host()
        self._kept = _Kept()
        self._lock = threading.Lock()
        self._artifact: ArtifactStore | None = None
        self._metric_writer: MetricWriter | None = None

    def __repr__(self) -> str:
        opener = self._opener
        return (
            f"WorkerRunContext(run={opener.run_id!r}, execution={opener.execution_id!r}, "
            f"task={self._task_name!r}, host={self._host!r})"
        )

    # -- what travels with the opener ----------------------------------------------------

    @property
    def params(self) -> Mapping[str, Any]:
        return MappingProxyType(dict(self._opener.params))

    @property
    def config(self) -> Mapping[str, Any]:
        return MappingProxyType(dict(self._opener.config))

    @property
    def run_dir(self) -> Path:
        return Path(self._opener.run_dir)

    @property
    def execution_id(self) -> str:
        return self._opener.execution_id

    @property
    def execution_dir(self) -> Path:
        """``<run_dir>/execution/<execution_id>/`` (created on access)."""
        directory = self.run_dir / _EXECUTION_DIR / self._opener.execution_id
        self._run()
        if not directory.is_dir():
            make_dirs(directory)
        return directory

    # -- the shared workspace ------------------------------------------------------------

    def _run(self) -> Run:
        opener = self._opener
        try:
            return _open_run(opener.run_dir)
        except FileNotFoundError as exc:
            raise WorkspaceUnreachableError(
                f"task {self._task_name!r} on host {self._host!r} needs the records of run "
                f"{opener.run_id!r}, but {opener.run_dir} is not readable there ({exc}). The "
                "run context on Dask workers needs the workspace on a filesystem shared with "
                "every worker, at the same path as on the submitting host "
                f"({opener.owner_host!r})."
            ) from None

    @property
    def workspace(self) -> Workspace:
        return self._run().workspace

    def _producer(self) -> Producer:
        opener = self._opener
        return Producer(
            run_id=opener.run_id,
            execution_id=opener.execution_id,
            task_name=self._task_name,
            host=self._host,
        )

    @property
    def artifact(self) -> ArtifactStore:
        """Saves this attempt's artifacts directly into the shared run directory."""
        with self._lock:
            if self._artifact is None:
                run = self._run()
                self._artifact = ArtifactStore(
                    run.workspace.catalog,
                    run.scope,
                    run.run_dir,
                    self._producer(),
                    per_attempt=True,
                )
            return self._artifact

    def checkpoint(self, name: str, data: Any = None) -> CheckpointAsset:
        """Append a checkpoint to the run's chain, written by this worker."""
        run = self._run()
        store = CheckpointStore(run.workspace.catalog, run.scope, run.run_dir, self._producer())
        return store.save(name, data)

    def _lookup_scopes(self, run: Run) -> list[AssetScope]:
        return [run.scope, run.experiment.scope, run.project.scope, run.workspace.scope]

    def find_asset(self, name: str, kind: AssetKind | str | None = None) -> Asset | None:
        """Like ``RunContext.find_asset``: run, experiment, project, workspace; use recorded."""
        validate_name(name, "asset name")
        run = self._run()
        catalog = run.workspace.catalog
        asset = catalog.find(name, self._lookup_scopes(run), kind=kind)
        if asset is not None and (asset.producer is None or asset.producer.run_id != run.id):
            catalog.record_use(
                asset.id,
                run_id=run.id,
                execution_id=self._opener.execution_id,
                task_name=self._task_name,
            )
        return asset

    def get_data_dir(self, asset_name: str, fallback: str | os.PathLike[str] | None = None) -> Path:
        """Like ``RunContext.get_data_dir`` (the fallback directory is created on the share)."""
        asset = self.find_asset(asset_name)
        return data_dir(
            self.workspace.root, asset, asset_name, run_id=self._opener.run_id, fallback=fallback
        )

    # -- kept for the owner --------------------------------------------------------------

    def set_result(self, key: str, value: Any) -> None:
        """Keep ``value`` (plain JSON data); the owner stores it when the task finishes."""
        if not isinstance(key, str) or not key or not is_valid_unicode(key):
            raise ValueError(f"result keys must be non-empty strings of valid Unicode, got {key!r}")
        plain = plain_json(value, f"result {key!r}")
        with self._lock:
            self._kept.results[key] = plain

    def get_result(self, key: str, default: Any = None) -> Any:
        """A result this task set, else one in ``run.json`` now (the owner may still hold some)."""
        with self._lock:
            if key in self._kept.results:
                return self._kept.results[key]
        return self._run().reload().results.get(key, default)

    def log(self, name: str) -> _ReportedLog:
        """The log ``name``: lines reach ``logs/<name>.log`` (appended by the owner) at the end."""
        validate_name(name, "log name")
        with self._lock:
            return _ReportedLog(self._kept.logs.setdefault(name, []))

    def _metrics(self) -> MetricWriter:
        writer = self._metric_writer
        if writer is None:
            directory = self.execution_dir / METRICS_DIR  # checks the workspace is reachable
            with self._lock:
                if self._metric_writer is None:
                    self._metric_writer = MetricWriter(directory)
                writer = self._metric_writer
        return writer

    def log_metric(
        self,
        name: str,
        value: float,
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> None:
        """Like ``RunContext.log_metric``: buffered, then appended to this task's series file."""
        self._metrics().log(name, value, step, timestamp)

    def log_metrics(
        self,
        values: Mapping[str, float],
        *,
        step: int | None = None,
        timestamp: float | datetime | None = None,
    ) -> None:
        """Like ``RunContext.log_metrics``: one durable batch in this task's series file."""
        self._metrics().log_many(values, step, timestamp)

    def flush_metrics(self) -> None:
        """Write the buffered points to this task's series file now."""
        if self._metric_writer is not None:
            self._metric_writer.flush()

    def record_execution_state(self, state: Mapping[str, Any]) -> NoReturn:
        self._owner_only("record_execution_state")

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> NoReturn:
        self._owner_only("mark_failed")

    def _owner_only(self, helper: str) -> NoReturn:
        raise RuntimeError(
            f"task {self._task_name!r}: {helper} is the run owner's, not available on a worker "
            "(raise an exception to fail the task)"
        )

    def close(self) -> dict[str, Any] | None:
        """End the task's context: the report for ``RunContext.apply_worker_report`` (or None)."""
        with self._lock:
            kept, self._kept = self._kept, _Kept()
            writer, self._metric_writer = self._metric_writer, None
        metrics: dict[str, Any] = {}
        if writer is not None:
            writer.close()
            metrics = {name: s.model_dump() for name, s in writer.summaries().items()}
        if not kept.results and not kept.logs and not metrics:
            return None
        report: dict[str, Any] = {"results": kept.results, "logs": kept.logs, "host": self._host}
        if metrics:
            report["metrics"] = metrics
        return report


def apply_report(context: Any, report: Mapping[str, Any], task_name: str) -> None:
    """Record a worker's report through the owner's ``context`` (results, metric summaries,
    then log lines)."""
    for key, value in report.get("results", {}).items():
        context.set_result(key, value)
    if report.get("metrics"):
        context.record_metric_summaries(report["metrics"])
    for name, lines in report.get("logs", {}).items():
        handle = context.log(name)
        for line in lines:
            handle.append(line)
