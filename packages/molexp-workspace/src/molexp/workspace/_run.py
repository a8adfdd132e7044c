"""The ``Run``: one concrete execution record under ``runs/run-<run_id>/run.json``.

Owns run creation and loading, every change to ``run.json`` (each one a locked
read-modify-write, its index row then queued for the workspace's next flush) and the status
transitions that are not part of executing it: cancel, queue for a scheduler,
attach a workflow snapshot, reap.

Durability: every write is atomic (temp file + rename), so readers and crashes only
ever see a whole record. A write that leaves the run in a state other than
``running`` (terminal statuses, queueing, cancelling, explicit saves) is also
fsynced. Creating a run and the writes made while it is ``running`` (entering it,
results, heartbeats) are not fsynced: they survive a crash of the process, but an
operating-system crash may roll them back to the previous fsynced state (for a new
run: no run) - the same trade-off as SQLite's WAL mode with ``synchronous=NORMAL``.
The terminal write at the end of an execution carries every result set during it.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from molexp.assets import AssetScope, AssetView, RecordError, locked, make_dirs
from molexp.assets.storage import RECORD_DIR_NAME, changing, on_local_filesystem, read_settled
from pydantic import ValidationError

from ._claims import claim_exists, claim_path, prune_claims, read_claim, try_claim
from ._errors import RunStateError
from ._hashing import ProfileConfig, plain_json
from ._layout import RUN_CHANGE, RUN_FILE, check_run, run_dir_name
from ._metrics import MetricSeries, attempt_summaries, check_metric_name, read_series
from ._records import (
    TERMINAL_STATUSES,
    ExecutionRecord,
    MetricSummary,
    ProfileInfo,
    RunMetadata,
    RunStatus,
    utc_now,
)
from ._records_io import RecordFile, StaleRecordError
from ._stale import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    last_sign_of_life,
    stale_error,
    stale_reason,
    this_host,
)

if TYPE_CHECKING:
    from ._attempts import Attempt
    from ._context import RunContext
    from ._experiment import Experiment
    from ._project import Project
    from ._workspace import Workspace

__all__ = ["Run"]

MAX_FRESH_ID_ATTEMPTS = 100
MAX_CLAIM_ROUNDS = 100

# A mutation of the run record; returning False means "nothing to write".
Mutation = Callable[[RunMetadata], bool | None]


@dataclass(frozen=True, slots=True)
class WorkflowSnapshot:
    """A checked workflow snapshot for ``run.json`` (``set_workflow``, ``start(workflow=)``)."""

    snapshot: dict[str, Any]
    workflow_id: str | None

    @classmethod
    def of(cls, payload: Mapping[str, Any]) -> WorkflowSnapshot:
        """A plain copy of ``payload``; ``ValueError`` if it is not plain JSON or its
        ``workflow_id`` is not a string."""
        snapshot = plain_json(dict(payload), "workflow snapshot")
        workflow_id = snapshot.get("workflow_id")
        if workflow_id is not None and not isinstance(workflow_id, str):
            raise ValueError(
                f"workflow snapshot: workflow_id must be a string, got {workflow_id!r}"
            )
        return cls(snapshot, workflow_id)

    def apply(self, metadata: RunMetadata) -> None:
        """Store it on ``metadata`` (in place; the caller writes the record)."""
        metadata.workflow_snapshot = self.snapshot
        if self.workflow_id is not None:
            metadata.workflow_id = self.workflow_id


class Run:
    """One run of an experiment; create it with ``experiment.Run(...)``."""

    def __init__(
        self, experiment: Experiment, metadata: RunMetadata, record: RecordFile[RunMetadata]
    ) -> None:
        self._experiment = experiment
        self._metadata = metadata
        self._record = record
        self._lock = threading.RLock()
        self._local_filesystem: bool | None = None
        self._target: str | None = None

    # -- creation ------------------------------------------------------------------

    def _check(self, metadata: RunMetadata) -> RunMetadata:
        return check_run(
            self._record.path,
            metadata,
            self.workspace.id,
            self._experiment.project.id,
            self._experiment.id,
        )

    @classmethod
    def _load(cls, experiment: Experiment, run_dir: Path) -> Run:
        record = RecordFile(run_dir / RUN_FILE, RunMetadata)
        run = cls(experiment, record.load(), record)
        run._check(run._metadata)
        return run

    @classmethod
    def _open_or_create(
        cls,
        experiment: Experiment,
        run_dir: Path,
        run_id: str,
        new_metadata: Callable[[str], RunMetadata],
    ) -> Run:
        record = RecordFile(run_dir / RUN_FILE, RunMetadata)
        with locked(record.path):
            if not record.exists():
                run = cls(experiment, new_metadata(run_id), record)
                # Exclusive across hosts: a creator that loses adopts the winner's record.
                if run._persist(durable=False, create=True):
                    return run
            run = cls(experiment, record.load(), record)
            run._check(run._metadata)
            return run

    @classmethod
    def _create_fresh(
        cls,
        experiment: Experiment,
        runs_dir: Path,
        new_id: Callable[[], str],
        new_metadata: Callable[[str], RunMetadata],
    ) -> Run:
        # Creating the directory claims the id: no other writer can know it yet, so
        # the first write needs no lock.
        for _ in range(MAX_FRESH_ID_ATTEMPTS):
            run_id = new_id()
            run_dir = runs_dir / run_dir_name(run_id)
            try:
                make_dirs(run_dir, exist_ok=False)  # a refusal names the directory and fix
            except FileExistsError:
                continue
            run = cls(experiment, new_metadata(run_id), RecordFile(run_dir / RUN_FILE, RunMetadata))
            run._persist(durable=False)
            return run
        raise RuntimeError(
            f"could not find a free run id in {runs_dir} after {MAX_FRESH_ID_ATTEMPTS} attempts"
        )

    def __repr__(self) -> str:
        return f"Run({self.id!r}, status={self.status.value!r}, experiment={self._experiment.id!r})"

    def _repr_html_(self) -> str:
        """A compact table for notebooks: where the run is, its status, params and results."""
        from ._html import facts_html

        meta = self._metadata
        stale = stale_reason(meta)
        status = f"{meta.status.value} (stale: {stale})" if stale else meta.status.value
        duration = None
        if meta.started_at is not None and meta.finished_at is not None:
            duration = f"{(meta.finished_at - meta.started_at).total_seconds():.3g} s"
        error = None
        if meta.error is not None:
            task = f"{meta.error.task_name}: " if meta.error.task_name else ""
            error = f"{task}{meta.error.type}: {meta.error.message}"
        return facts_html(
            f"Run {meta.id}",
            [
                ("experiment", f"{meta.project_id}/{meta.experiment_id}"),
                ("status", status),
                ("replica", meta.replica_index),
                ("seed", meta.seed),
                ("params", meta.parameters),
                ("profile", None if meta.profile is None else meta.profile.label),
                ("results", meta.results),
                ("error", error),
                ("tags", meta.tags),
                ("created", meta.created_at),
                ("started", meta.started_at),
                ("finished", meta.finished_at),
                ("duration", duration),
                ("attempts", len(meta.execution_history) or None),
                ("run_dir", self.run_dir),
            ],
        )

    # -- properties ----------------------------------------------------------------

    @property
    def experiment(self) -> Experiment:
        """The experiment the run belongs to."""
        return self._experiment

    @property
    def project(self) -> Project:
        """The project the run belongs to."""
        return self._experiment.project

    @property
    def workspace(self) -> Workspace:
        """The workspace the run belongs to."""
        return self._experiment.project.workspace

    @property
    def metadata(self) -> RunMetadata:
        """The run record as last read or written by this process."""
        return self._metadata

    @property
    def id(self) -> str:
        """The run's id."""
        return self._metadata.id

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters."""
        return self._metadata.parameters

    @property
    def status(self) -> RunStatus:
        """The run's status as last loaded or written."""
        return self._metadata.status

    @property
    def results(self) -> dict[str, Any]:
        """The run's results as last loaded or written."""
        return self._metadata.results

    @property
    def metric_summaries(self) -> dict[str, MetricSummary]:
        """Last value, min, max and count of each metric series, as last loaded or written."""
        return self._metadata.metrics

    def metrics(self) -> dict[str, MetricSeries]:
        """Every metric series of the run (all attempts), by name (re-reads ``run.json`` first
        when another process changed it)."""
        self.refresh()
        return read_series(self.run_dir, self._attempt_ids())

    def metric(self, name: str) -> MetricSeries:
        """The series of metric ``name`` (all attempts); ``KeyError`` naming the run and its
        metrics when it has none of that name."""
        check_metric_name(name)
        self.refresh()
        found = read_series(self.run_dir, self._attempt_ids(), only=name).get(name)
        if found is None:
            known = ", ".join(sorted(self._metadata.metrics)) or "none"
            raise KeyError(f"run {self.id!r} has no metric {name!r} (its metrics: {known})")
        return found

    def _attempt_ids(self) -> list[tuple[int, str]]:
        return [(r.attempt, r.execution_id) for r in self._metadata.execution_history]

    @property
    def run_dir(self) -> Path:
        """The run's directory."""
        return self._record.path.parent

    @property
    def record_path(self) -> Path:
        """Path of the run's record file (run.json)."""
        return self._record.path

    @property
    def scope(self) -> AssetScope:
        """The asset scope of this run."""
        return AssetScope.for_run(
            self.workspace.id, self._experiment.project.id, self._experiment.id, self.id
        )

    @property
    def assets(self) -> AssetView:
        """Read-only view of the assets this run produced."""
        return AssetView(self.workspace.catalog, self.scope)

    @property
    def attempts(self) -> list[Attempt]:
        """Every execution attempt with its own results, artifacts and logs, oldest first.

        Re-reads ``run.json`` first when another process changed it.
        """
        from ._attempts import attempts_of

        self.refresh()
        return attempts_of(self, self._metadata)

    def attempt(self, number: int) -> Attempt:
        """Attempt ``number`` (1 is the first; -1 the latest); ``KeyError`` naming the run."""
        if isinstance(number, bool) or not isinstance(number, int):
            raise TypeError(f"attempt numbers are integers, got {number!r}")
        attempts = self.attempts
        found = [a for a in attempts if a.number == number] if number > 0 else []
        if found:
            return found[0]
        if number < 0 and -number <= len(attempts):
            return attempts[number]
        raise KeyError(
            f"run {self.id!r} has no attempt {number}; it has "
            + (f"attempts 1 to {len(attempts)}" if attempts else "no attempts yet")
        )

    # -- persistence -----------------------------------------------------------------

    def _persist(self, *, durable: bool, create: bool = False) -> bool:
        """Write the in-memory record, then queue its index row (caller holds the lock or owns
        the run).

        The write is announced on the change feed before and after it, so every host's
        index catches up. When the write fails after its rename (the directory fsync), the
        file is put back to what it held before (for a new run: removed). The row reaches
        this host's index at the workspace object's next flush (``Workspace._index_run``),
        best effort: a failing index never fails or undoes the record write. With
        ``create`` the file is only written if absent (exclusive across hosts); returns
        whether this call wrote it.
        """
        workspace = self.workspace
        if self._target is None:
            self._target = self._record.path.relative_to(workspace.root).as_posix()
        with changing(workspace.root, RUN_CHANGE, self._target) as change:
            if create:
                if not self._record.create(self._metadata, durable=durable):
                    return False
            else:
                self._record.write(self._metadata, durable=durable)
        workspace._index_run(self._metadata, self._record, change.span)
        return True

    def _update(self, mutate: Mutation, action: str, *, owner_write: bool = False) -> None:
        """Read-modify-write of ``run.json`` as one claimed transition, plus its index row.

        ``mutate`` receives the current on-disk record (re-read only if another writer
        changed the file) and changes it in place; it raises before changing anything
        when the step is not allowed. The write moves the record to the next epoch only
        after winning that epoch's ``O_EXCL`` claim (see ``_claims``), so concurrent
        writers on any hosts never lose each other's updates: a loser adopts the winner's
        record and applies ``mutate`` to it (which may now refuse, naming the winner).
        ``owner_write``: a write of the executing process to its own running attempt
        (results, heartbeats); it needs no claim while nobody else has moved the run on.
        The record's directory lock is held too, as a same-host shortcut.
        """
        with self._lock, locked(self._record.path):
            for _ in range(MAX_CLAIM_ROUNDS):
                try:
                    current = self._check(self._record.refresh(self._metadata))
                    self._metadata = current
                    if self._needs_claims() and self._roll_forward(current):
                        continue
                    claimed = not (owner_write and self._owned_here(current))
                    if mutate(current) is False:
                        return
                    current.updated_at = utc_now()
                    if not claimed and current.owner is not None:
                        current.owner.heartbeat_at = current.updated_at  # a write is a sign of life
                    if claimed:
                        current.epoch += 1
                        if self._needs_claims() and not self._claim(current, action):
                            self._record.forget()
                            self._reload_quietly()
                            continue
                except BaseException:
                    self._record.forget()
                    self._reload_quietly()
                    raise
                try:
                    self._persist(durable=current.status is not RunStatus.running)
                except BaseException:
                    self._record.forget()
                    self._reload_quietly()
                    raise
                if claimed and self._needs_claims():
                    prune_claims(self.run_dir, current.epoch)
                return
        raise RunStateError(
            f"run {self.id!r}: {action} found no free transition after {MAX_CLAIM_ROUNDS} "
            "attempts (other processes keep changing it); try again"
        )

    @staticmethod
    def _owned_here(metadata: RunMetadata) -> bool:
        owner = metadata.owner
        return (
            metadata.status is RunStatus.running
            and owner is not None
            and owner.host == this_host()
            and owner.pid == os.getpid()
        )

    def _needs_claims(self) -> bool:
        """Whether transitions need claims: on a local filesystem every writer is on this host
        and the record's directory lock already excludes the others (see ``locked``)."""
        if self._local_filesystem is None:
            self._local_filesystem = on_local_filesystem(self._record.path)
        return not self._local_filesystem

    def _claim(self, record: RunMetadata, action: str) -> bool:
        """Win the claim of ``record.epoch``; False if another process holds it."""
        if not try_claim(self.run_dir, action, record):
            return False
        # A reader that fell behind may re-create a pruned claim of an old epoch (claims are
        # pruned once the record is past them): a record already past ours voids it. (The
        # record at our epoch is ours: another process rolled our claim forward.)
        on_disk = self._epoch_on_disk()
        if on_disk is not None and on_disk > record.epoch:
            with contextlib.suppress(OSError):
                claim_path(self.run_dir, record.epoch).unlink()
            return False
        return True

    def _epoch_on_disk(self) -> int | None:
        """The epoch ``run.json`` holds now (None: it cannot be read)."""

        def parse(raw: bytes) -> Any:
            try:
                return json.loads(raw)
            except ValueError:
                raise RecordError(self._record.path, "not valid JSON") from None

        try:
            data = read_settled(self._record.path, parse)[1]
        except RecordError:
            return None
        epoch = data.get("epoch", 0) if isinstance(data, dict) else None
        return epoch if isinstance(epoch, int) else None

    def _roll_forward(self, current: RunMetadata) -> bool:
        """Write the record of a claim newer than ``current`` whose winner did not (yet); True
        if the record on disk moved on (re-read it)."""
        epoch = current.epoch + 1
        if not claim_exists(self.run_dir, epoch):
            return False
        try:
            claim = read_claim(self.run_dir, epoch)
        except FileNotFoundError:
            return True  # pruned: the record is further on already
        on_disk = self._epoch_on_disk()
        if on_disk is not None and on_disk != current.epoch:
            return True
        if claim is None:  # its claimer died while writing it: the epoch passes empty
            record = current.model_copy(update={"epoch": epoch})
        else:
            try:
                record = self._check(RunMetadata.model_validate(claim.record))
            except (ValidationError, RecordError):
                record = current.model_copy(update={"epoch": epoch})
        self._metadata = record
        self._persist(durable=True)
        return True

    def _reload_quietly(self) -> None:
        try:
            self._metadata = self._check(self._record.load())
        except RecordError:
            self._record.forget()

    def _sync_index(self) -> None:
        """Queue the index row of ``run.json`` as it is now (under the run's lock)."""
        with self._lock, locked(self._record.path):
            self._metadata = self._check(self._record.refresh(self._metadata))
            self.workspace._index_run(self._metadata, self._record, None)

    def refresh(self) -> Run:
        """Adopt the on-disk record if another writer changed it (cheap when unchanged)."""
        with self._lock:
            self._metadata = self._check(self._record.refresh(self._metadata))
        return self

    def reload(self) -> Run:
        """Re-read ``run.json``, discarding unsaved in-memory edits."""
        with self._lock:
            self._metadata = self._check(self._record.load())
        return self

    def save(self) -> None:
        """Persist edits to ``metadata``; ``StaleRecordError`` if the file changed meanwhile."""
        with self._lock, locked(self._record.path):
            if self._record.changed_since_seen():
                raise StaleRecordError(self._record.path)
            try:
                validated = RunMetadata.model_validate(self._metadata.model_dump(warnings=False))
            except ValidationError as exc:
                first = exc.errors()[0]
                field = ".".join(str(part) for part in first["loc"])
                raise ValueError(
                    f"run {self.id!r}: metadata field {field!r} is invalid: {first['msg']}"
                ) from None
            self._metadata = validated
            self._metadata.parameters = plain_json(self._metadata.parameters, "parameters")
            self._metadata.results = plain_json(self._metadata.results, "results")
            self._metadata.updated_at = utc_now()
            self._metadata.epoch += 1
            if self._needs_claims() and not self._claim(self._metadata, "save"):
                self._metadata.epoch -= 1
                raise StaleRecordError(self._record.path)
            self._persist(durable=True)
            if self._needs_claims():
                prune_claims(self.run_dir, self._metadata.epoch)

    # -- lifecycle ---------------------------------------------------------------------

    def _refuse(self, action: str, metadata: RunMetadata) -> RunStateError:
        return RunStateError(
            f"cannot {action} run {metadata.id!r} of experiment {self._experiment.id!r}: "
            f"it is {metadata.status.value}"
        )

    def cancel(self) -> None:
        """Mark a pending, queued or running run as cancelled (terminal; sets ``finished_at``).

        A process still executing the run keeps ``cancelled`` when it finishes.
        """

        def apply(metadata: RunMetadata) -> None:
            if metadata.status in TERMINAL_STATUSES:
                raise self._refuse("cancel", metadata)
            now = utc_now()
            metadata.status = RunStatus.cancelled
            metadata.finished_at = now
            metadata.owner = None
            if metadata.execution_history:
                last = metadata.execution_history[-1]
                if last.status not in TERMINAL_STATUSES:
                    last.status = RunStatus.cancelled
                    last.finished_at = now

        self._update(apply, "cancel")

    def mark_queued(
        self, scheduler: Mapping[str, Any], *, profile: ProfileConfig | None = None
    ) -> ExecutionRecord:
        """Set ``queued`` and append a pending execution record carrying ``scheduler`` info.

        ``profile``, the profile the run will execute with, is recorded at once (on the run and
        the record), so queued runs are listed and queried by profile and config like the
        others. The next ``start()`` executes that same record (keeping its id and scheduler
        info) instead of appending another one.
        """
        info = plain_json(dict(scheduler), "scheduler")
        profile_info = None if profile is None else ProfileInfo.of(profile)
        created: list[ExecutionRecord] = []

        def apply(metadata: RunMetadata) -> None:
            if metadata.status in (RunStatus.running, RunStatus.queued):
                raise self._refuse("queue", metadata)
            from ._context import new_execution_id

            record = ExecutionRecord(
                execution_id=new_execution_id(),
                attempt=len(metadata.execution_history) + 1,
                status=RunStatus.pending,
                scheduler=info,
                results={},
            )
            if profile_info is not None:
                record.profile_name = profile_info.name
                record.config_hash = profile_info.config_hash
                metadata.profile = profile_info
            metadata.status = RunStatus.queued
            metadata.finished_at = None
            metadata.execution_history.append(record)
            created.append(record)

        self._update(apply, "queue")
        return created[0]

    START_RECORDS_WORKFLOW: ClassVar[bool] = True
    """``start(workflow=...)`` stores the workflow snapshot in the attempt's first ``run.json``
    write (what ``set_workflow`` would write separately): the workflow lifecycle uses it."""

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        """Store an opaque workflow snapshot dict (and its ``workflow_id``, when present)."""
        snapshot = WorkflowSnapshot.of(payload)
        self._update(snapshot.apply, "set-workflow")

    def start(
        self,
        profile_config: ProfileConfig | Mapping[str, Any] | None = None,
        *,
        heartbeat_interval: float | None = None,
        workflow: Mapping[str, Any] | None = None,
    ) -> RunContext:
        """A ``RunContext`` for one execution attempt; use it as ``with run.start() as ctx:``.

        ``profile_config`` is a ``ProfileConfig``, a plain mapping (the config of profile
        ``"default"``) or None (an empty default profile). With ``heartbeat_interval``
        a background thread refreshes the owner heartbeat every that many seconds.
        ``workflow`` is a workflow snapshot stored as ``set_workflow`` stores it, but in the
        same ``run.json`` write that starts the attempt (checked here, before anything starts).
        """
        from ._context import RunContext

        snapshot = WorkflowSnapshot.of(workflow) if workflow is not None else None

        if profile_config is None:
            profile = ProfileConfig()
        elif isinstance(profile_config, ProfileConfig):
            profile = profile_config
        elif isinstance(profile_config, Mapping):
            profile = ProfileConfig(config=dict(profile_config))
        else:
            raise TypeError(
                "profile_config must be a ProfileConfig, a mapping or None, "
                f"got {type(profile_config).__name__}"
            )
        return RunContext(self, profile, heartbeat_interval=heartbeat_interval, workflow=snapshot)

    def is_stale(
        self,
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        now: datetime | None = None,
    ) -> bool:
        """Whether the run is ``running`` but its owner is gone (see ``reap_stale_runs``)."""
        self.refresh()
        return (
            stale_reason(self._metadata, heartbeat_timeout=heartbeat_timeout, now=now) is not None
        )

    def reap(
        self,
        *,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        now: datetime | None = None,
    ) -> bool:
        """Mark this run ``failed`` if it is stale (checked under its lock); True if it was.

        The summaries of the metric series its last attempt wrote are recounted from the
        series files (the dead owner may not have written the latest ones).

        A reaped run's asset index rows are then brought in step with its asset records:
        the dead owner may have been killed between writing a record and indexing it.
        """
        reaped: list[bool] = []

        def apply(metadata: RunMetadata) -> bool:
            reason = stale_reason(metadata, heartbeat_timeout=heartbeat_timeout, now=now)
            if reason is None:
                return False
            error = stale_error(reason)
            finished = last_sign_of_life(metadata)
            metadata.status = RunStatus.failed
            metadata.finished_at = finished
            metadata.error = error
            metadata.owner = None
            if metadata.execution_history:
                last = metadata.execution_history[-1]
                if last.status not in TERMINAL_STATUSES:
                    last.status = RunStatus.failed
                    last.finished_at = finished
                    last.error = error
                # The dead owner's summaries may lag its series files: count them again.
                summaries = attempt_summaries(self.run_dir, last.execution_id)
                last.metrics.update(summaries)
                metadata.metrics.update(summaries)
            reaped.append(True)
            return True

        self._update(apply, "reap")
        if reaped:
            self.workspace.catalog.reindex_scope(self.scope, self.run_dir / RECORD_DIR_NAME)
        return bool(reaped)
