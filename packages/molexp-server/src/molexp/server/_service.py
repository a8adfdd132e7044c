"""Read-mostly access to one workspace, shaped as the API's response models.

Owns ``WorkspaceService``: every route goes through it. It serialises access to the
``Workspace`` object (routes run on a thread pool), reports broken records instead of
failing and maps user mistakes to ``ServiceError`` with the HTTP status to answer; the
records, index rows and assets become response models in ``_converters``.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from molexp.assets import (
    ArtifactAsset,
    AssetKind,
    AssetScope,
    ExecutionStateAsset,
    RecordError,
    validate_name,
)
from molexp.workspace import (
    AmbiguousRunIdError,
    Attempt,
    Experiment,
    QuerySyntaxError,
    Run,
    RunMetadata,
    RunQueryResult,
    RunStateError,
    RunStatus,
    RunSummary,
    Workspace,
    attempt_state,
    code_diffs,
    compare_facts,
    run_facts,
    stale_reason,
)

from ._broken import BrokenRecordScanner
from ._cache import FieldPaths, IndexCache, Version
from ._converters import (
    _attempt_info,
    _compare_rows,
    _diff_info,
    _error_detail,
    _fact_rows,
    _producer_info,
    _summary_info,
    asset_info,
    project_table,
    run_page_json,
    task_states,
)
from ._files import (
    FileEntry,
    LogRead,
    PathRejected,
    list_files,
    list_logs,
    media_type_for,
    read_log,
    resolve_inside,
)
from ._lttb import lttb
from ._schemas import (
    ArtifactInfo,
    AssetDetail,
    AssetInfo,
    AssetLineage,
    AssetUseInfo,
    AttemptDetail,
    BrokenRecord,
    CodeDiff,
    CompareRow,
    CompareTable,
    ExperimentInfo,
    LogChunk,
    LogInfo,
    MetricInfo,
    MetricSeriesInfo,
    ProfileDetail,
    ProjectInfo,
    ProjectTable,
    RunDetail,
    TaskState,
    WorkspaceCounts,
    WorkspaceInfo,
)

__all__ = ["CANCELLABLE_STATUSES", "RunRef", "ServiceError", "WorkspaceService"]

logger = logging.getLogger("molexp.server")

T = TypeVar("T")

CANCELLABLE_STATUSES = frozenset({RunStatus.pending, RunStatus.queued, RunStatus.running})
TERMINAL_STATUSES = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled})
ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
MAX_EXECUTION_STATE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _RunStats:
    """What the experiment views need from all of an experiment's index rows."""

    count: int
    by_status: dict[str, int]
    param_keys: list[str]
    result_keys: list[str]
    config_keys: list[str]
    running: tuple[RunSummary, ...]
    """The running runs: whether their owner is gone is judged at each request, since a
    process dies (or a heartbeat times out) without the index changing."""


class ServiceError(Exception):
    """A request the workspace cannot answer; ``status`` is the HTTP status to send."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True, slots=True)
class RunRef:
    """A run named by id, optionally narrowed to one project and experiment."""

    run_id: str
    project: str | None = None
    experiment: str | None = None


def _checked(value: str, what: str) -> str:
    try:
        return validate_name(value, what)
    except ValueError as exc:
        raise ServiceError(400, str(exc)) from None


class WorkspaceService:
    """The workspace as the API sees it. Thread-safe: one lock guards the workspace object."""

    def __init__(self, workspace: Workspace) -> None:
        self._ws = workspace
        self._lock = threading.RLock()
        self._busy = 0  # requests inside the lock (the scans give way to them)
        self._scanner = BrokenRecordScanner(
            workspace.root, workspace.id, busy=lambda: self._busy > 0
        )
        self._scanner.start()  # the first full scan runs while the first pages are served
        self._cache = IndexCache(workspace.catalog.db_path)
        self._aside: Workspace | None = None  # a handle of its own for background computations
        self._field_paths = FieldPaths(
            lambda scope: self._ws.run_field_paths(project=scope[0], experiment=scope[1]),
            self._field_paths_aside,
            self._index_version_aside,
        )

    @property
    def root(self) -> Path:
        return self._ws.root

    def _call(self, work: Callable[[], T]) -> T:
        """Run ``work`` under the lock, mapping workspace errors to ``ServiceError``."""
        with self._lock:
            self._busy += 1
            try:
                return self._mapping_errors(work)
            finally:
                self._busy -= 1

    @staticmethod
    def _mapping_errors(work: Callable[[], T]) -> T:
        """``work()``, its workspace errors raised as ``ServiceError``."""
        try:
            return work()
        except ServiceError:
            raise
        except QuerySyntaxError as exc:
            raise ServiceError(400, f"invalid query: {exc}") from None
        except AmbiguousRunIdError as exc:
            raise ServiceError(409, str(exc)) from None
        except RecordError as exc:
            raise ServiceError(409, f"record is broken: {exc}") from None
        except PathRejected as exc:
            raise ServiceError(exc.status, str(exc)) from None
        except RunStateError as exc:
            raise ServiceError(409, str(exc)) from None
        except KeyError as exc:
            raise ServiceError(404, str(exc.args[0]) if exc.args else "not found") from None
        except ValueError as exc:  # the workspace's word for a malformed argument
            raise ServiceError(400, str(exc)) from None

    def _relative(self, path: Path) -> str:
        try:
            return path.relative_to(self._ws.root).as_posix()
        except ValueError:
            return str(path)

    def _broken(
        self, project: str | None = None, experiment: str | None = None
    ) -> tuple[list[BrokenRecord], bool]:
        """The broken records and whether the first scan is still running
        (see ``molexp.server._broken``).

        The scanner has locks of its own: a page's check need not hold the service's lock.
        """
        report = self._scanner.check(project, experiment)
        records = [
            BrokenRecord(path=self._relative(item.path), error=item.error)
            for item in report.records
        ]
        return records, report.pending

    # -- hierarchy -------------------------------------------------------------------

    def workspace_info(self) -> WorkspaceInfo:
        broken, pending = self._broken()

        def work() -> WorkspaceInfo:
            projects = self._ws.list_projects()
            experiments = sum(len(project.list_experiments()) for project in projects)
            statuses = Counter(row.status.value for row in self._runs())
            return WorkspaceInfo(
                id=self._ws.id,
                name=self._ws.name,
                root=str(self._ws.root),
                counts=WorkspaceCounts(
                    projects=len(projects),
                    experiments=experiments,
                    runs=sum(statuses.values()),
                    by_status=dict(statuses),
                ),
                broken=broken,
                broken_pending=pending,
            )

        return self._call(work)

    def projects(self) -> list[ProjectInfo]:
        def work() -> list[ProjectInfo]:
            run_counts = Counter(row.project for row in self._runs())
            return [
                ProjectInfo(
                    id=project.id,
                    name=project.name,
                    description=project.description,
                    tags=list(project.tags),
                    created_at=project.metadata.created_at,
                    experiment_count=len(project.list_experiments()),
                    run_count=run_counts.get(project.id, 0),
                )
                for project in self._ws.list_projects()
            ]

        return self._call(work)

    def _runs(
        self,
        where: str | None = None,
        order_by: str | None = None,
        project: str | None = None,
        experiment: str | None = None,
    ) -> RunQueryResult:
        """``ws.runs(...)``, reused until the run index changes."""
        self._catch_up()
        key = ("runs", where, order_by, project, experiment)
        return self._cache.get(
            key,
            lambda: self._ws.runs(
                where=where, order_by=order_by, project=project, experiment=experiment
            ),
        )

    def _page(
        self,
        where: str | None,
        order_by: str | None,
        project: str | None,
        experiment: str | None,
        limit: int,
        offset: int,
    ) -> tuple[RunQueryResult, int]:
        """One page of ``ws.runs(...)`` and the number of matching runs, read from the index
        as a page and a count (never every matching row), reused until the index changes."""
        self._catch_up()
        rows = self._cache.get(
            ("page", where, order_by, project, experiment, limit, offset),
            lambda: self._ws.runs(
                where=where,
                order_by=order_by,
                limit=limit,
                offset=offset,
                project=project,
                experiment=experiment,
            ),
        )
        total = self._cache.get(
            ("count", where, project, experiment),
            lambda: self._ws.count_runs(where=where, project=project, experiment=experiment),
        )
        return rows, total

    def _catch_up(self) -> None:
        """Bring this host's index up to date with every host's change feed (cheap if idle)."""
        try:
            self._ws.catalog.catch_up()
        except Exception as exc:  # answer from the index as it is
            logger.warning("run index could not catch up: %s", exc)

    def _index_version(self) -> Version | None:
        with self._lock:
            return self._cache.version()

    def _workspace_aside(self) -> Workspace:
        """The workspace handle of the background passes (one at a time, without the lock)."""
        if self._aside is None:
            self._aside = Workspace.load(self._ws.root)
        return self._aside

    def _index_version_aside(self) -> Version | None:
        """The index version a background pass computes at, read once its handle caught up:
        a catch-up may write the index (a fresh handle records when it caught up), which read
        the other way round would look like a change after the pass and start another."""
        self._workspace_aside().catalog.catch_up()
        return self._index_version()

    def _field_paths_aside(self, scope: tuple[str | None, str | None]) -> dict[str, list[str]]:
        """``run_field_paths`` on the background passes' handle."""
        return self._workspace_aside().run_field_paths(project=scope[0], experiment=scope[1])

    def _run_stats(self, project_id: str, experiment_id: str) -> _RunStats:
        self._catch_up()
        fresh = True

        def compute() -> _RunStats:
            nonlocal fresh
            # Counted and collected in the index: no row but the running ones is read out.
            ws, project, experiment = self._ws, project_id, experiment_id
            by_status = ws.run_status_counts(project=project, experiment=experiment)
            # The keys may be those from before the last change while they are recomputed
            # aside (see ``FieldPaths``): such an answer is not kept.
            paths, fresh = self._field_paths.get((project, experiment), self._cache.version())
            running = ws.runs(
                f"status == {json.dumps(RunStatus.running.value)}",
                project=project,
                experiment=experiment,
            )
            return _RunStats(
                count=sum(by_status.values()),
                by_status=by_status,
                param_keys=paths["params"],
                result_keys=paths["results"],
                config_keys=paths["config"],
                running=tuple(running),
            )

        return self._cache.get(
            ("stats", project_id, experiment_id), compute, keep=lambda _stats: fresh
        )

    def _experiment_info(self, project_id: str, experiment: Experiment) -> ExperimentInfo:
        stats = self._run_stats(project_id, experiment.id)
        metadata = experiment.metadata
        return ExperimentInfo(
            id=experiment.id,
            name=experiment.name,
            project_id=project_id,
            description=metadata.description,
            tags=list(metadata.tags),
            params=dict(metadata.parameters),
            n_replicas=metadata.n_replicas,
            workflow_source=metadata.workflow_source,
            git_commit=metadata.git_commit,
            created_at=metadata.created_at,
            run_count=stats.count,
            by_status=dict(stats.by_status),
            param_keys=list(stats.param_keys),
            result_keys=list(stats.result_keys),
            config_keys=list(stats.config_keys),
            stale_count=sum(1 for row in stats.running if row.stale),
        )

    def project_table(self, project_id: str, limit: int) -> ProjectTable:
        """Every run of the project across its experiments (see ``_converters.project_table``)."""
        _checked(project_id, "project id")

        def work() -> ProjectTable:
            project = self._ws.project(project_id)
            return project_table(project.id, self._runs(project=project.id), limit)

        return self._call(work)

    def experiments(self, project_id: str) -> list[ExperimentInfo]:
        _checked(project_id, "project id")

        def work() -> list[ExperimentInfo]:
            project = self._ws.project(project_id)
            return [
                self._experiment_info(project.id, experiment)
                for experiment in project.list_experiments()
            ]

        return self._call(work)

    def experiment(self, project_id: str, experiment_id: str) -> ExperimentInfo:
        _checked(project_id, "project id")
        _checked(experiment_id, "experiment id")

        def work() -> ExperimentInfo:
            project = self._ws.project(project_id)
            experiment = project.experiment(experiment_id)
            return self._experiment_info(project.id, experiment)

        return self._call(work)

    # -- runs ------------------------------------------------------------------------

    def run_page(
        self,
        *,
        where: str | None,
        statuses: Sequence[str],
        order_by: str | None,
        limit: int,
        offset: int,
        project_id: str | None = None,
        experiment_id: str | None = None,
    ) -> bytes:
        """A ``RunPage`` of the matching runs, as its JSON (see ``run_page_json``)."""
        wanted = []
        for status in statuses:
            try:
                wanted.append(RunStatus(status))
            except ValueError:
                known = ", ".join(item.value for item in RunStatus)
                raise ServiceError(400, f"unknown status {status!r} (one of: {known})") from None
        query = where.strip() if where else ""
        if wanted:
            listed = ", ".join(json.dumps(status.value) for status in wanted)
            query = f"({query}) and status in [{listed}]" if query else f"status in [{listed}]"

        def work() -> tuple[RunQueryResult, int]:
            if project_id is not None:
                project = self._ws.project(_checked(project_id, "project id"))
                if experiment_id is not None:
                    project.experiment(_checked(experiment_id, "experiment id"))
            return self._page(
                query or None, order_by or None, project_id, experiment_id, limit, offset
            )

        rows, total = self._call(work)
        # Outside the service's lock: neither the check nor writing the rows out (most of
        # a page's cost) need stall the other requests.
        broken, pending = self._broken(project_id, experiment_id)
        return run_page_json(
            rows, total=total, offset=offset, limit=limit, broken=broken, broken_pending=pending
        )

    def _find_run(self, ref: RunRef) -> Run:
        _checked(ref.run_id, "run id")
        if ref.project is not None:
            _checked(ref.project, "project id")
        if ref.experiment is not None:
            _checked(ref.experiment, "experiment id")
        return self._ws.find_run(ref.run_id, project=ref.project, experiment=ref.experiment)

    def _run_scope(self, metadata: RunMetadata) -> AssetScope:
        return AssetScope.for_run(
            self._ws.id, metadata.project_id, metadata.experiment_id, metadata.id
        )

    def _latest_execution_state(
        self, metadata: RunMetadata, execution_id: str | None = None
    ) -> tuple[str | None, list[TaskState]]:
        """The task states of the latest attempt that recorded any (or of ``execution_id``)."""
        states = [
            asset
            for asset in self._ws.catalog.query_assets(
                kind=AssetKind.EXECUTION_STATE, scope=self._run_scope(metadata)
            )
            if isinstance(asset, ExecutionStateAsset)
            and (execution_id is None or asset.execution_id == execution_id)
        ]
        if not states:
            return None, []
        order = {
            record.execution_id: index for index, record in enumerate(metadata.execution_history)
        }
        latest = max(
            states, key=lambda asset: (order.get(asset.execution_id, -1), asset.updated_at)
        )
        try:
            path = resolve_inside(
                self._ws.root, latest.path, root=self._ws.root, what="execution state"
            )
            if path.stat().st_size > MAX_EXECUTION_STATE_BYTES:
                return latest.id, []
            state = json.loads(path.read_bytes())
        except (PathRejected, OSError, ValueError):
            return latest.id, []  # an unreadable state shows as "no task states", never a 500
        return latest.id, task_states(state) if isinstance(state, Mapping) else []

    def _run_detail(self, run: Run) -> RunDetail:
        metadata = run.metadata
        state_id, tasks = self._latest_execution_state(metadata)
        profile = metadata.profile
        stale = stale_reason(metadata)
        return RunDetail(
            id=metadata.id,
            project_id=metadata.project_id,
            experiment_id=metadata.experiment_id,
            status=metadata.status.value,
            created_at=metadata.created_at,
            updated_at=metadata.updated_at,
            started_at=metadata.started_at,
            finished_at=metadata.finished_at,
            params=metadata.parameters,
            results=metadata.results,
            config=dict(profile.config) if profile else {},
            config_hash=profile.config_hash if profile else None,
            profile=ProfileDetail(
                name=profile.name,
                config=profile.config,
                config_hash=profile.config_hash,
                overrides=profile.overrides,
                label=profile.label,
            )
            if profile
            else None,
            workflow_id=metadata.workflow_id,
            workflow_snapshot=metadata.workflow_snapshot,
            replica_index=metadata.replica_index,
            seed=metadata.seed,
            tags=list(metadata.tags),
            error=_error_detail(metadata.error),
            attempts=[_attempt_info(attempt.record, attempt.diff()) for attempt in run.attempts],
            tasks=tasks,
            execution_state_id=state_id,
            cancellable=metadata.status in CANCELLABLE_STATUSES,
            stale=stale is not None,
            stale_reason=stale,
        )

    def run_detail(self, ref: RunRef) -> RunDetail:
        return self._call(lambda: self._run_detail(self._find_run(ref)))

    def terminal_probe(self, ref: RunRef) -> Callable[[], bool]:
        """Whether the run has reached a terminal status, asked again at each call.

        The run is found once; each call re-reads only its ``run.json`` (when it changed),
        without the service's lock, so a live log tail never waits behind other requests.
        A run whose record is gone or unreadable counts as over (nothing more is written).
        """
        run = self._call(lambda: self._find_run(ref))

        def terminal() -> bool:
            try:
                return run.refresh().status in TERMINAL_STATUSES
            except (RecordError, OSError):
                return True

        return terminal

    def cancel(self, ref: RunRef) -> RunDetail:
        def work() -> RunDetail:
            run = self._find_run(ref)
            if run.status not in CANCELLABLE_STATUSES:
                allowed = ", ".join(sorted(status.value for status in CANCELLABLE_STATUSES))
                raise ServiceError(
                    409,
                    f"run {run.id!r} is {run.status.value}; only {allowed} runs can be cancelled",
                )
            run.cancel()  # RunStateError (409) if the run moved on meanwhile
            return self._run_detail(run)

        return self._call(work)

    # -- files of a run --------------------------------------------------------------

    def _attempt(self, run: Run, number: int | None) -> Attempt | None:
        """Attempt ``number`` of ``run`` (None: the latest that started, or None when none)."""
        if number is not None and number < 1:
            raise ServiceError(400, f"attempt numbers count from 1, got {number}")
        attempts = run.attempts
        if number is None:
            started = [attempt for attempt in attempts if attempt.started_at is not None]
            return (started or attempts)[-1] if attempts else None
        found = [attempt for attempt in attempts if attempt.number == number]
        if not found:
            raise ServiceError(
                404, f"run {run.id!r} has no attempt {number} (it has {len(attempts)})"
            )
        return found[0]

    def _log_entries(self, run: Run, attempt: Attempt | None) -> list[FileEntry]:
        """The logs of ``attempt`` (its own files), or the run's log view without one."""
        if attempt is None:
            return list_logs(run.run_dir / LOGS_DIR, root=self._ws.root)
        entries = []
        for name, path in attempt.logs.items():
            try:
                resolved = resolve_inside(path.parent, path.name, root=self._ws.root, what="log")
                stat = resolved.stat()
            except (PathRejected, OSError):
                continue
            entries.append(
                FileEntry(
                    name=name,
                    path=resolved,
                    size=stat.st_size,
                    updated_at=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
        return entries

    def logs(self, ref: RunRef, attempt: int | None = None) -> list[LogInfo]:
        """The logs of the latest attempt, or of attempt ``attempt``."""

        def work() -> list[LogInfo]:
            run = self._find_run(ref)
            return [
                LogInfo(name=entry.name, size=entry.size, updated_at=entry.updated_at)
                for entry in self._log_entries(run, self._attempt(run, attempt))
            ]

        return self._call(work)

    def metrics(self, ref: RunRef) -> list[MetricInfo]:
        """The summaries of the run's metric series, by name."""

        def work() -> list[MetricInfo]:
            run = self._find_run(ref).refresh()
            return [
                MetricInfo(name=name, **summary.model_dump())
                for name, summary in sorted(run.metric_summaries.items())
            ]

        return self._call(work)

    def metric_series(self, ref: RunRef, name: str, points: int) -> MetricSeriesInfo:
        """The series ``name`` across attempts, downsampled by LTTB to at most ``points``."""
        _checked(name, "metric name")
        series = self._call(lambda: self._find_run(ref).metric(name))
        kept = lttb(series.values, points)
        return MetricSeriesInfo(
            name=name,
            total=len(series),
            downsampled=len(kept) < len(series),
            steps=[series.steps[i] for i in kept],
            values=[series.values[i] for i in kept],
            timestamps=[series.timestamps[i] for i in kept],
            attempts=[series.attempts[i] for i in kept],
        )

    def log_path(self, ref: RunRef, name: str, attempt: int | None = None) -> Path:
        _checked(name, "log name")

        def work() -> Path:
            run = self._find_run(ref)
            chosen = self._attempt(run, attempt)
            for entry in self._log_entries(run, chosen):
                if entry.name == name:
                    return entry.path
            which = f"attempt {chosen.number} of run" if chosen else "run"
            raise ServiceError(404, f"log {name!r} not found in {which} {run.id!r}")

        return self._call(work)

    def read_log(
        self, ref: RunRef, name: str, since: int, max_bytes: int, attempt: int | None = None
    ) -> LogChunk:
        path = self.log_path(ref, name, attempt)
        chunk: LogRead = read_log(path, since, max_bytes=max_bytes, whole_lines=False)
        return LogChunk(
            text=chunk.text, offset=chunk.offset, next_offset=chunk.next_offset, size=chunk.size
        )

    def _artifact_assets(self, metadata: RunMetadata) -> dict[str, ArtifactAsset]:
        """The run's registered artifacts by name, the latest of each (media types and ids)."""
        latest: dict[str, ArtifactAsset] = {}
        for asset in self._ws.catalog.query_assets(
            kind=AssetKind.ARTIFACT, scope=self._run_scope(metadata)
        ):
            if isinstance(asset, ArtifactAsset):
                known = latest.get(asset.name)
                if known is None or asset.updated_at >= known.updated_at:
                    latest[asset.name] = asset
        return latest

    def _artifact_info(
        self, entry: FileEntry, asset: ArtifactAsset | None, attempt: Attempt | None
    ) -> ArtifactInfo:
        whole = asset is not None and entry.name == asset.name  # not a file inside a directory
        return ArtifactInfo(
            name=entry.name,
            media_type=media_type_for(entry.name, asset.media_type if whole and asset else None),
            size=entry.size,
            updated_at=entry.updated_at,
            asset_id=asset.id if asset else None,
            attempt=attempt.number_of(asset) if asset and attempt else None,
            content_hash=asset.content_hash if whole and asset else None,
        )

    def _artifact_entries(self, asset: ArtifactAsset) -> list[FileEntry]:
        """The file of ``asset`` (or the files of a directory artifact) named from its name."""
        root = self._ws.root
        base = root / asset.path
        try:
            if base.is_dir() and not base.is_symlink():
                return [
                    FileEntry(f"{asset.name}/{e.name}", e.path, e.size, e.updated_at)
                    for e in list_files(base, root=root)
                ]
            path = resolve_inside(base.parent, base.name, root=root, what="artifact")
            stat = path.stat()
        except (PathRejected, OSError):
            return []
        updated = datetime.fromtimestamp(stat.st_mtime, UTC)
        return [FileEntry(asset.name, path, stat.st_size, updated)]

    def artifacts(self, ref: RunRef, attempt: int | None = None) -> list[ArtifactInfo]:
        """The run's current artifacts (its ``artifacts/`` view), or attempt ``attempt``'s."""

        def work() -> list[ArtifactInfo]:
            run = self._find_run(ref)
            chosen = self._attempt(run, attempt)
            infos = []
            if attempt is not None and chosen is not None:
                for asset in chosen.artifacts.values():
                    for entry in self._artifact_entries(asset):
                        infos.append(self._artifact_info(entry, asset, chosen))
                return sorted(infos, key=lambda info: info.name)
            registered = (
                chosen.artifacts if chosen is not None else self._artifact_assets(run.metadata)
            )
            for entry in list_files(run.run_dir / ARTIFACTS_DIR, root=self._ws.root):
                shown = registered.get(entry.name.split("/", 1)[0])
                infos.append(self._artifact_info(entry, shown, chosen))
            return infos

        return self._call(work)

    def artifact(self, ref: RunRef, name: str, attempt: int | None = None) -> tuple[Path, str]:
        def work() -> tuple[Path, str]:
            run = self._find_run(ref)
            asset: ArtifactAsset | None
            if attempt is None:
                base = run.run_dir / ARTIFACTS_DIR
                asset = self._artifact_assets(run.metadata).get(name)
            else:
                chosen = self._attempt(run, attempt)
                asset = chosen.artifacts.get(name.split("/", 1)[0]) if chosen else None
                if asset is None:
                    raise ServiceError(
                        404, f"artifact {name!r} not found in attempt {attempt} of run {run.id!r}"
                    )
                base = (self._ws.root / asset.path).parent
            path = resolve_inside(base, name, root=self._ws.root, what="artifact")
            if not path.is_file():
                raise ServiceError(
                    400, f"artifact {name!r} is a directory; download its files one by one"
                )
            recorded = asset.media_type if asset is not None and asset.name == name else None
            return path, media_type_for(name, recorded)

        return self._call(work)

    def attempt_detail(self, ref: RunRef, number: int, against: int | None = None) -> AttemptDetail:
        """Attempt ``number`` of a run, and what changed from ``against`` (default: the last)."""

        def work() -> AttemptDetail:
            run = self._find_run(ref)
            chosen = self._attempt(run, number)
            if chosen is None:  # pragma: no cover - _attempt raises for a missing number
                raise ServiceError(404, f"run {run.id!r} has no attempt {number}")
            other = self._attempt(run, against) if against is not None else None
            _state_id, tasks = self._latest_execution_state(run.metadata, chosen.execution_id)
            artifacts = [
                self._artifact_info(entry, asset, chosen)
                for asset in chosen.artifacts.values()
                for entry in self._artifact_entries(asset)
            ]
            return AttemptDetail(
                attempt=_attempt_info(chosen.record, chosen.diff(), attempt_state(chosen)),
                latest=chosen.is_latest,
                results=chosen.results,
                own_results=chosen.own_results,
                artifacts=sorted(artifacts, key=lambda info: info.name),
                logs=[
                    LogInfo(name=entry.name, size=entry.size, updated_at=entry.updated_at)
                    for entry in self._log_entries(run, chosen)
                ],
                checkpoints=len(chosen.checkpoints),
                tasks=tasks,
                changes=_diff_info(chosen.diff(other)),
            )

        return self._call(work)

    # -- assets ----------------------------------------------------------------------

    def _scope_from_path(self, scope: str) -> AssetScope:
        parts = [part for part in scope.split("/") if part] if scope else []
        if len(parts) > 3:
            raise ServiceError(400, f"scope {scope!r} has more than project/experiment/run")
        for part, what in zip(parts, ("project id", "experiment id", "run id"), strict=False):
            _checked(part, what)
        ws_id = self._ws.id
        if len(parts) == 0:
            return AssetScope.for_workspace(ws_id)
        if len(parts) == 1:
            return AssetScope.for_project(ws_id, parts[0])
        if len(parts) == 2:
            return AssetScope.for_experiment(ws_id, parts[0], parts[1])
        return AssetScope.for_run(ws_id, parts[0], parts[1], parts[2])

    def assets(
        self,
        *,
        kind: str | None,
        scope: str,
        exact: bool,
        name: str | None,
        tag: str | None,
    ) -> list[AssetInfo]:
        if kind is not None:
            try:
                AssetKind(kind)
            except ValueError:
                known = ", ".join(item.value for item in AssetKind)
                raise ServiceError(400, f"unknown asset kind {kind!r} (one of: {known})") from None
        target = self._scope_from_path(scope)

        def work() -> list[AssetInfo]:
            found = self._ws.catalog.query_assets(
                kind=kind,
                name=name,
                tag=tag,
                scope=target if exact else None,
                within=None if exact else target,
            )
            return [asset_info(asset) for asset in found]

        return self._call(work)

    def asset_detail(self, asset_id: str) -> AssetDetail:
        _checked(asset_id, "asset id")

        def work() -> AssetDetail:
            catalog = self._ws.catalog
            asset = catalog.get(asset_id)
            if asset is None:
                raise ServiceError(404, f"no asset with id {asset_id!r}")
            lineage = catalog.lineage(asset_id)
            inputs = []
            if lineage.produced_by is not None:
                for input_id in lineage.produced_by.input_asset_ids:
                    used = catalog.get(input_id)
                    if used is not None:
                        inputs.append(asset_info(used))
            return AssetDetail(
                asset=asset_info(asset),
                lineage=AssetLineage(
                    produced_by=_producer_info(lineage.produced_by),
                    consumed_by=[
                        AssetUseInfo(
                            run_id=use.run_id,
                            execution_id=use.execution_id,
                            task_name=use.task_name,
                            used_at=use.used_at,
                        )
                        for use in lineage.consumed_by
                    ],
                    inputs=inputs,
                ),
            )

        return self._call(work)

    # -- comparison ------------------------------------------------------------------

    def compare(self, project_id: str, experiment_id: str, run_ids: Sequence[str]) -> CompareTable:
        _checked(project_id, "project id")
        _checked(experiment_id, "experiment id")
        wanted = list(dict.fromkeys(_checked(run_id, "run id") for run_id in run_ids))
        if len(wanted) < 2:
            raise ServiceError(400, "compare needs at least two distinct run ids in ?runs=a,b")

        def work() -> CompareTable:
            project = self._ws.project(project_id)
            experiment = project.experiment(experiment_id)
            rows = {row.id: row for row in self._runs(project=project.id, experiment=experiment.id)}
            missing = [run_id for run_id in wanted if run_id not in rows]
            if missing:
                where = f"experiment {experiment.id!r} of project {project.id!r}"
                raise ServiceError(404, f"no run {missing[0]!r} in {where}")
            chosen = [rows[run_id] for run_id in wanted]
            runs = [
                self._ws.find_run(run_id, project=project.id, experiment=experiment.id)
                for run_id in wanted
            ]
            return self._compare_table(chosen, runs)

        return self._call(work)

    def compare_runs(self, refs: Sequence[str]) -> CompareTable:
        """Runs of any experiments and projects side by side; each ref is ``project/experiment/
        run_id`` or a run id that names one run of the workspace."""
        wanted: list[RunRef] = []
        for ref in dict.fromkeys(part.strip() for part in refs if part.strip()):
            parts = ref.split("/")
            if len(parts) == 3:
                project, experiment, run_id = (_checked(p, "run reference") for p in parts)
                wanted.append(RunRef(run_id, project, experiment))
            elif len(parts) == 1:
                wanted.append(RunRef(_checked(ref, "run id")))
            else:
                raise ServiceError(
                    400, f"run reference {ref!r}: give project/experiment/run_id or a run id"
                )
        if len(wanted) < 2:
            raise ServiceError(400, "compare needs at least two distinct runs in ?runs=p/e/a,p/e/b")

        def work() -> CompareTable:
            runs = [self._find_run(ref) for ref in wanted]
            chosen: list[RunSummary] = []
            for run in runs:
                meta = run.metadata
                rows = self._runs(project=meta.project_id, experiment=meta.experiment_id)
                found = next((row for row in rows if row.id == run.id), None)
                if found is None:
                    where = f"experiment {meta.experiment_id!r} of project {meta.project_id!r}"
                    raise ServiceError(404, f"run {run.id!r} of {where} is not in the run index")
                chosen.append(found)
            return self._compare_table(chosen, runs)

        return self._call(work)

    def _compare_table(self, chosen: Sequence[RunSummary], runs: Sequence[Run]) -> CompareTable:
        """The rows of the compare view: params, profile, config and results from the index
        rows, then the facts ``molexp diff`` compares, the code diffs and the metric names."""
        labels: list[Any] = [row.profile_label for row in chosen]
        table = [
            *_compare_rows("param", [row.params for row in chosen]),
            CompareRow(
                key="profile", section="profile", values=labels, differs=len(set(labels)) > 1
            ),
            *_compare_rows("config", [row.config for row in chosen]),
            *_compare_rows("result", [row.results for row in chosen]),
            *_fact_rows(compare_facts([run_facts(run) for run in runs])),
        ]
        diffs = [
            CodeDiff(task=task, base=runs[0].id, run=other.id, diff=text)
            for other in runs[1:]
            for task, text in code_diffs(runs[0], other).items()
        ]
        metrics = sorted({name for run in runs for name in run.metric_summaries})
        return CompareTable(
            runs=[_summary_info(row) for row in chosen],
            rows=table,
            code_diffs=diffs,
            metrics=metrics,
        )
