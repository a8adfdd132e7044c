"""Execution attempts of a run: each keeps its own results, artifacts, logs and checkpoints.

Layout of a run directory (see docs/concepts/workspace.md, "Attempts")::

    run.json                       results: the current view; execution_history[i].results:
                                   what attempt i set itself
    artifacts/<name>               current view: a hard link to the latest attempt's file
    logs/<name>.log                current view: the latest attempt's logs only
    execution/<execution_id>/
        artifacts/<name>           what that attempt saved (only that attempt writes here)
        logs/<name>.log            what that attempt logged
        .sealed                    its files are final

The current view keeps results and artifacts of earlier attempts the latest did not set
again (a resumed attempt skips the tasks that produced them); logs show the latest attempt.

``prepare_attempt`` runs when an attempt starts, in the process that just won the run (so
the only writer of its files): it settles the files of earlier attempts that never ended
(killed mid-save), moves files of the layout before per-attempt directories into the
attempt that wrote them, and empties the log view. Every step is a ``link``, a ``rename``
or the ``unlink`` of a name whose file has another one, so a crash at any moment loses no
attempt's files and the next attempt does the rest. ``Attempt`` and ``AttemptDiff`` read
any attempt back and tell what changed between two.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from molexp.assets import (
    ArtifactAsset,
    ArtifactStore,
    Asset,
    AssetKind,
    CheckpointAsset,
    LogAsset,
    LogHandle,
    Producer,
    RecordError,
    validate_name,
)
from molexp.assets.storage import (
    ATTEMPT_DIR_NAME,
    RECORD_DIR_NAME,
    SEALED_FILE_NAME,
    TEMP,
    create_exclusive_bytes,
    preserve,
    show_in_view,
)
from pydantic import BaseModel, Field

from ._records import ErrorInfo, ExecutionRecord, RunMetadata, RunStatus

if TYPE_CHECKING:
    from ._run import Run

__all__ = [
    "ArtifactChange",
    "Attempt",
    "AttemptDiff",
    "ResultChange",
    "prepare_attempt",
    "seal_attempt",
]

logger = logging.getLogger("molexp.workspace")

ARTIFACTS_DIR = "artifacts"
LOGS_DIR = "logs"
LOG_SUFFIX = ".log"

Change = Literal["added", "removed", "changed"]


# -- on disk ---------------------------------------------------------------------------------


def _attempt_dir(run_dir: Path, execution_id: str) -> Path | None:
    """``execution/<execution_id>`` of the run, or None for an id that is no valid name."""
    try:
        return run_dir / ATTEMPT_DIR_NAME / validate_name(execution_id, "execution id")
    except ValueError:
        return None


def seal_attempt(run_dir: Path, execution_id: str) -> None:
    """Mark the files of an attempt final (``.sealed``), if it wrote any."""
    directory = _attempt_dir(run_dir, execution_id)
    if directory is not None and directory.is_dir():
        create_exclusive_bytes(directory / SEALED_FILE_NAME, b"", durable=False)


def _only_name(path: Path) -> bool:
    """Whether ``path`` is a regular file no other name links to (its bytes exist only here)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return False
    return not path.is_symlink() and path.is_file() and info.st_nlink == 1


def _free_name(directory: Path, file_name: str) -> Path:
    """``directory/file_name``, or ``<stem>.<n><suffix>`` beside it when that is taken."""
    candidate = directory / file_name
    stem, suffix = PurePosixPath(file_name).stem, PurePosixPath(file_name).suffix
    number = 1
    while candidate.exists() or candidate.is_symlink():
        number += 1
        candidate = directory / f"{stem}.{number}{suffix}"
    return candidate


def _move(source: Path, directory: Path) -> Path | None:
    """Give ``source`` a name in ``directory`` (hard link), then drop ``source``: crash safe
    (the file has at least one name at every moment). Returns the new path."""
    target = directory / source.name
    if target.exists() and not target.samefile(source):
        target = _free_name(directory, source.name)
    if not target.exists():
        preserve(source, target)
    if not target.exists():
        return None
    source.unlink()
    return target


class _RunFiles:
    """The records and files of one run's attempts, as ``prepare_attempt`` works on them."""

    def __init__(self, run: Run, history: Sequence[ExecutionRecord], current: str) -> None:
        self.run = run
        self.run_dir = run.run_dir
        self.catalog = run.workspace.catalog
        self.earlier = [r.execution_id for r in history if r.execution_id != current]
        self.order = {execution_id: index for index, execution_id in enumerate(self.earlier)}
        self.run_rel = PurePosixPath(self.catalog.relative_path(self.run_dir, "run directory"))
        self._records: dict[str, Asset] | None = None

    def records(self) -> dict[str, Asset]:
        """The run's artifact and log records by id (read once)."""
        if self._records is None:
            found = self.catalog.query_assets(scope=self.run.scope)
            self._records = {
                asset.id: asset
                for asset in found
                if asset.kind in (AssetKind.ARTIFACT, AssetKind.LOG)
            }
        return self._records

    def owner(self, asset: Asset) -> str:
        """The earlier attempt that wrote ``asset`` (its producer's, else the last one)."""
        producer = asset.producer
        if producer is not None and producer.execution_id in self.order:
            return producer.execution_id
        return self.earlier[-1]

    def in_run(self, asset: Asset) -> tuple[str, ...]:
        try:
            return PurePosixPath(asset.path).relative_to(self.run_rel).parts
        except ValueError:
            return ()

    def repoint(self, asset: Asset, path: Path) -> None:
        """Re-register ``asset`` at ``path`` (same id, times and producer)."""
        moved = asset.model_copy(update={"path": self.catalog.relative_path(path, "payload")})
        self.catalog.register(moved, self.run_dir / RECORD_DIR_NAME)
        if self._records is not None:
            self._records[asset.id] = moved


def prepare_attempt(run: Run, history: Sequence[ExecutionRecord], execution_id: str) -> None:
    """Make the run directory ready for attempt ``execution_id`` (see the module docstring).

    Moving files of the old layout must succeed (a later save would replace their only name),
    so its errors propagate; settling a killed attempt and tidying the views only keep the
    record tidy, so their errors (another user's files, say) are logged and skipped.
    """
    if all(record.execution_id == execution_id for record in history):
        return  # a first attempt: nothing earlier to keep (the common case, kept cheap)
    files = _RunFiles(run, history, execution_id)
    touched = _settle_unsealed(files)
    _move_old_layout(files)
    try:
        _refresh_artifact_view(files, touched)
        _empty_log_view(files)
        _drop_view_temps(files)
    except OSError as error:
        logger.warning("run %s: the current view was not tidied (%s)", run.id, error)


def _settle_unsealed(files: _RunFiles) -> set[str]:
    """Recover the files of every earlier attempt that did not end (no ``.sealed``) and seal
    them; returns the artifact names those attempts saved."""
    touched: set[str] = set()
    for execution_id in files.earlier:
        directory = _attempt_dir(files.run_dir, execution_id)
        if directory is None or not directory.is_dir():
            continue
        if (directory / SEALED_FILE_NAME).exists():
            continue
        try:
            touched |= _settle(files, directory, execution_id)
        except (OSError, RecordError) as error:
            logger.warning(
                "run %s: the files of attempt %s were not settled (%s); the next attempt tries "
                "again",
                files.run.id,
                execution_id,
                error,
            )
    return touched


def _settle(files: _RunFiles, directory: Path, execution_id: str) -> set[str]:
    producer = Producer(run_id=files.run.id, execution_id=execution_id)
    scope = files.run.scope
    store = ArtifactStore(files.catalog, scope, files.run_dir, producer, per_attempt=True)
    store.recover()
    touched: set[str] = set()
    if store.directory.is_dir():
        touched.update(p.name for p in store.directory.iterdir() if not p.name.startswith("."))
    logs = directory / LOGS_DIR
    if logs.is_dir():
        for path in sorted(logs.glob(f"*{LOG_SUFFIX}")):
            name = path.name.removesuffix(LOG_SUFFIX)
            try:
                handle = LogHandle(
                    files.catalog, scope, files.run_dir, name, producer, per_attempt=True
                )
            except ValueError:
                continue
            handle.recover()
    seal_attempt(files.run_dir, execution_id)
    return touched


def _move_old_layout(files: _RunFiles) -> None:
    """Files of the layout before per-attempt directories (``artifacts/<name>``,
    ``logs/<name>.log`` written in place) get a name in the attempt that wrote them, and
    their records point there; the artifact view keeps showing the same files."""
    named: set[str] = set()
    for asset in list(files.records().values()):
        if asset.kind is AssetKind.ARTIFACT:
            named.add(asset.name)
        parts = files.in_run(asset)
        if len(parts) != 2 or parts[0] not in (ARTIFACTS_DIR, LOGS_DIR):
            continue
        directory = _attempt_dir(files.run_dir, files.owner(asset))
        if directory is None:
            continue
        source = files.run_dir / parts[0] / parts[1]
        if asset.kind is AssetKind.ARTIFACT:
            target = directory / ARTIFACTS_DIR / parts[1]
            if source.exists():
                preserve(source, target)
            if target.exists():
                files.repoint(asset, target)
        else:
            target = directory / LOGS_DIR / parts[1]
            if _only_name(source):
                moved = _move(source, target.parent)
                if moved is not None:
                    files.repoint(asset, moved)
            elif target.exists():
                files.repoint(asset, target)
    # Files of the old layout nobody registered (written in place, or a crash before the
    # record): keep them with the last attempt before a new save could replace them.
    last = _attempt_dir(files.run_dir, files.earlier[-1])
    if last is None:
        return
    view = files.run_dir / ARTIFACTS_DIR
    if view.is_dir():
        for path in sorted(view.iterdir()):
            if path.name.startswith(".") or path.name in named:
                continue
            preserve(path, last / ARTIFACTS_DIR / path.name)
    logs = files.run_dir / LOGS_DIR
    if logs.is_dir():
        for path in sorted(logs.iterdir()):
            if not path.name.startswith(".") and _only_name(path):
                _move(path, last / LOGS_DIR)


def _latest_by_name(files: _RunFiles, kind: AssetKind) -> dict[str, Asset]:
    latest: dict[str, tuple[tuple[int, datetime], Asset]] = {}
    for asset in files.records().values():
        if asset.kind is not kind:
            continue
        execution = asset.producer.execution_id if asset.producer is not None else None
        position = files.order.get(execution, -1) if execution is not None else -1
        key = (position, asset.updated_at)
        known = latest.get(asset.name)
        if known is None or key >= known[0]:
            latest[asset.name] = (key, asset)
    return {name: asset for name, (_key, asset) in latest.items()}


def _refresh_artifact_view(files: _RunFiles, names: Iterable[str]) -> None:
    """Point the view of ``names`` at the latest attempt's file again (after a crash)."""
    wanted = set(names)
    if not wanted:
        return
    latest = _latest_by_name(files, AssetKind.ARTIFACT)
    for name in sorted(wanted):
        asset = latest.get(name)
        if asset is None:
            continue
        source = files.catalog.root / asset.path
        view = files.run_dir / ARTIFACTS_DIR / name
        if source.exists() and source != view:
            show_in_view(source, view)


def _empty_log_view(files: _RunFiles) -> None:
    """Drop the log view's links (every file they show has its name in an attempt)."""
    logs = files.run_dir / LOGS_DIR
    if not logs.is_dir():
        return
    for path in logs.iterdir():
        if path.name.startswith("."):
            continue
        if path.is_symlink() or (path.is_file() and path.lstat().st_nlink > 1):
            path.unlink()


def _drop_view_temps(files: _RunFiles) -> None:
    """Remove temp names a killed writer left in the views (``.<name>.<token>.tmp``): a temp
    is never the only name of anything recorded (a view link's file is in its attempt)."""
    for view in (files.run_dir / ARTIFACTS_DIR, files.run_dir / LOGS_DIR):
        if not view.is_dir():
            continue
        for path in view.iterdir():
            if TEMP.match(path.name) is None:
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


# -- reading attempts back -------------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class ResultChange(BaseModel):
    """One result key that differs between two attempts."""

    key: str
    change: Change
    before: Any = None
    after: Any = None


class ArtifactChange(BaseModel):
    """One artifact whose content differs between two attempts (by content hash)."""

    name: str
    change: Change
    before_hash: str | None = None
    after_hash: str | None = None
    before_size: int | None = None
    after_size: int | None = None


class AttemptDiff(BaseModel):
    """What changed from attempt ``before`` (None: nothing before) to attempt ``after``.

    Both sides are the attempts' views: results and artifacts as they stood when the
    attempt ended, including what earlier attempts set and it did not set again.
    """

    before: int | None = None
    after: int
    results: list[ResultChange] = Field(default_factory=list)
    artifacts: list[ArtifactChange] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing changed."""
        return not self.results and not self.artifacts


class _History:
    """One read of a run's attempts and their asset records, shared by its ``Attempt``s."""

    def __init__(self, run: Run, metadata: RunMetadata) -> None:
        self.run = run
        self.metadata = metadata
        self.records = list(metadata.execution_history)
        self.order = {record.execution_id: index for index, record in enumerate(self.records)}
        self._assets: list[Asset] | None = None

    def assets(self) -> list[Asset]:
        if self._assets is None:
            self._assets = self.run.workspace.catalog.query_assets(scope=self.run.scope)
        return self._assets

    def position(self, asset: Asset) -> int:
        """Index of the attempt that produced ``asset`` (-1: none recorded)."""
        producer = asset.producer
        if producer is None or producer.execution_id is None:
            return -1
        return self.order.get(producer.execution_id, -1)


class Attempt:
    """One execution attempt of a run, as recorded (``run.attempts``, ``run.attempt(n)``).

    ``results`` and ``artifacts`` are the attempt's view: what the run showed when the
    attempt ended, earlier attempts' values it did not set again included;
    ``own_results`` and ``own_artifacts`` are what the attempt set and saved itself.
    ``logs`` are the attempt's own log files.
    """

    def __init__(self, history: _History, index: int) -> None:
        self._history = history
        self._index = index
        self._record = history.records[index]

    def __repr__(self) -> str:
        return (
            f"Attempt({self.number}, run={self._history.run.id!r}, "
            f"execution={self.execution_id!r}, {self.status.value})"
        )

    # -- the execution record --------------------------------------------------------

    @property
    def record(self) -> ExecutionRecord:
        """The attempt's execution record as stored."""
        return self._record

    @property
    def number(self) -> int:
        """1 for the first attempt of the run."""
        return self._record.attempt

    @property
    def execution_id(self) -> str:
        """Id of the attempt."""
        return self._record.execution_id

    @property
    def status(self) -> RunStatus:
        """The attempt's status."""
        return self._record.status

    @property
    def started_at(self) -> datetime | None:
        """When the attempt started, None if it has not."""
        return self._record.started_at

    @property
    def finished_at(self) -> datetime | None:
        """When the attempt finished, None if it has not."""
        return self._record.finished_at

    @property
    def host(self) -> str | None:
        """The host the attempt ran on, if recorded."""
        return self._record.host

    @property
    def error(self) -> ErrorInfo | None:
        """Why the attempt failed, None if it did not."""
        return self._record.error

    @property
    def is_latest(self) -> bool:
        """Whether this is the run's most recent attempt."""
        return self._index == len(self._history.records) - 1

    @property
    def execution_dir(self) -> Path:
        """``<run_dir>/execution/<execution_id>``: this attempt's files."""
        return self._history.run.run_dir / ATTEMPT_DIR_NAME / self.execution_id

    # -- results ---------------------------------------------------------------------

    @property
    def own_results(self) -> dict[str, Any] | None:
        """The results this attempt set (None: recorded before attempts kept their own)."""
        results = self._record.results
        return None if results is None else dict(results)

    @property
    def results(self) -> dict[str, Any]:
        """The run's results as they stood when this attempt ended."""
        if self.is_latest:
            return dict(self._history.metadata.results)
        view: dict[str, Any] = {}
        for record in self._history.records[: self._index + 1]:
            view.update(record.results or {})
        return view

    # -- files -----------------------------------------------------------------------

    def _assets_of(self, kind: AssetKind) -> list[Asset]:
        return [asset for asset in self._history.assets() if asset.kind is kind]

    @property
    def own_artifacts(self) -> list[ArtifactAsset]:
        """The artifacts this attempt saved, oldest first."""
        return [
            asset
            for asset in self._assets_of(AssetKind.ARTIFACT)
            if isinstance(asset, ArtifactAsset) and self._history.position(asset) == self._index
        ]

    @property
    def artifacts(self) -> dict[str, ArtifactAsset]:
        """The run's artifacts by name as they stood when this attempt ended."""
        chosen: dict[str, tuple[tuple[int, datetime], ArtifactAsset]] = {}
        for asset in self._assets_of(AssetKind.ARTIFACT):
            position = self._history.position(asset)
            if not isinstance(asset, ArtifactAsset) or position > self._index:
                continue
            key = (position, asset.updated_at)
            known = chosen.get(asset.name)
            if known is None or key >= known[0]:
                chosen[asset.name] = (key, asset)
        return {name: chosen[name][1] for name in sorted(chosen)}

    def number_of(self, asset: Asset) -> int | None:
        """The number of the attempt of this run that produced ``asset`` (None: unknown)."""
        position = self._history.position(asset)
        return self._history.records[position].attempt if position >= 0 else None

    def artifact_path(self, name: str) -> Path:
        """The file of artifact ``name`` in this attempt's view (``KeyError`` if none)."""
        asset = self.artifacts.get(name)
        if asset is None:
            raise KeyError(
                f"attempt {self.number} of run {self._history.run.id!r} has no artifact {name!r}"
            )
        return self._history.run.workspace.root / asset.path

    @property
    def logs(self) -> dict[str, Path]:
        """This attempt's log files by name.

        Logs of a run written before attempts kept their own are the latest attempt's.
        """
        found: dict[str, Path] = {}
        directory = self.execution_dir / LOGS_DIR
        if directory.is_dir():
            for path in sorted(directory.glob(f"*{LOG_SUFFIX}")):
                if not path.name.startswith(".") and path.is_file():
                    found[path.name.removesuffix(LOG_SUFFIX)] = path
        elif self.is_latest:
            view = self._history.run.run_dir / LOGS_DIR
            for path in sorted(view.glob(f"*{LOG_SUFFIX}")) if view.is_dir() else []:
                if not path.name.startswith(".") and _only_name(path):
                    found[path.name.removesuffix(LOG_SUFFIX)] = path
        return found

    def read_log(self, name: str) -> str:
        """The text of this attempt's log ``name`` (``KeyError`` naming the logs it has)."""
        path = self.logs.get(name)
        if path is None:
            available = ", ".join(self.logs) or "none"
            raise KeyError(
                f"attempt {self.number} of run {self._history.run.id!r} has no log {name!r}; "
                f"its logs: {available}"
            )
        return path.read_text(encoding="utf-8", errors="replace")

    @property
    def log_assets(self) -> list[LogAsset]:
        """The ``LogAsset`` records of this attempt's logs."""
        return [
            asset
            for asset in self._assets_of(AssetKind.LOG)
            if isinstance(asset, LogAsset) and self._history.position(asset) == self._index
        ]

    @property
    def checkpoints(self) -> list[CheckpointAsset]:
        """The checkpoints this attempt saved, in chain order."""
        found = [
            asset
            for asset in self._assets_of(AssetKind.CHECKPOINT)
            if isinstance(asset, CheckpointAsset) and self._history.position(asset) == self._index
        ]
        return sorted(found, key=lambda asset: asset.sequence)

    # -- comparison ------------------------------------------------------------------

    def diff(self, other: Attempt | None = None) -> AttemptDiff:
        """What changed from ``other`` (default: the previous attempt) to this attempt."""
        if other is None and self._index > 0:
            other = Attempt(self._history, self._index - 1)
        before_results = other.results if other is not None else {}
        after_results = self.results
        results: list[ResultChange] = []
        for key in sorted(set(before_results) | set(after_results)):
            if key not in before_results:
                results.append(ResultChange(key=key, change="added", after=after_results[key]))
            elif key not in after_results:
                results.append(ResultChange(key=key, change="removed", before=before_results[key]))
            elif _canonical(before_results[key]) != _canonical(after_results[key]):
                results.append(
                    ResultChange(
                        key=key,
                        change="changed",
                        before=before_results[key],
                        after=after_results[key],
                    )
                )
        old = other.artifacts if other is not None else {}
        new = self.artifacts
        artifacts: list[ArtifactChange] = []
        for name in sorted(set(old) | set(new)):
            first, second = old.get(name), new.get(name)
            if first is not None and second is not None:
                if (first.content_hash, first.size) == (second.content_hash, second.size):
                    continue
                change: Change = "changed"
            else:
                change = "added" if first is None else "removed"
            artifacts.append(
                ArtifactChange(
                    name=name,
                    change=change,
                    before_hash=first.content_hash if first else None,
                    after_hash=second.content_hash if second else None,
                    before_size=first.size if first else None,
                    after_size=second.size if second else None,
                )
            )
        return AttemptDiff(
            before=other.number if other is not None else None,
            after=self.number,
            results=results,
            artifacts=artifacts,
        )


def attempts_of(run: Run, metadata: RunMetadata) -> list[Attempt]:
    """Every attempt of ``run`` (as ``metadata`` records them), oldest first."""
    history = _History(run, metadata)
    return [Attempt(history, index) for index in range(len(history.records))]
