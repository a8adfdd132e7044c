"""Detecting and reaping ``running`` runs whose executing process is gone.

A run's ``owner`` names the host and pid executing it and the time of its last
heartbeat. On the same host the owner is dead when its pid no longer exists
(``os.kill(pid, 0)``; a recycled pid counts as alive). For another host only the
heartbeat can tell: the run is stale when the last heartbeat is older than
``heartbeat_timeout`` seconds, so runs on other hosts should be started with a
``heartbeat_interval`` well below that timeout.

Candidates come from the run index, but the decision is always taken on ``run.json``
(under the run's lock when reaping), and reaping repairs index rows a crashed writer
left one step behind its file.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from molexp.assets import RecordError
from molexp.assets.storage import RECORD_DIR_NAME

from ._layout import scan_records
from ._records import ErrorInfo, OwnerInfo, RunMetadata, RunStatus, utc_now

if TYPE_CHECKING:
    from ._run import Run
    from ._workspace import Workspace

__all__ = [
    "DEFAULT_HEARTBEAT_TIMEOUT",
    "find_stale_runs",
    "last_sign_of_life",
    "owner_is_alive",
    "owner_stale_reason",
    "pid_alive",
    "reap_stale_runs",
    "stale_error",
    "stale_reason",
    "this_host",
]

logger = logging.getLogger("molexp.workspace")

DEFAULT_HEARTBEAT_TIMEOUT = 600.0
STALE_ERROR_TYPE = "StaleRun"


def this_host() -> str:
    return socket.gethostname()


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owner_is_alive(
    owner: OwnerInfo | None,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    now: datetime | None = None,
) -> bool:
    """Whether a run's recorded owner is still executing it.

    On this host its pid is probed; on another host its heartbeat must be younger than
    ``heartbeat_timeout`` seconds.
    """
    if owner is None:
        return False
    if owner.host == this_host():
        return pid_alive(owner.pid)
    return ((now or utc_now()) - owner.heartbeat_at).total_seconds() < heartbeat_timeout


def stale_reason(
    metadata: RunMetadata,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    now: datetime | None = None,
) -> str | None:
    """Why a ``running`` run is stale, or None if it is not running or still owned."""
    return owner_stale_reason(
        metadata.status,
        metadata.owner,
        metadata.started_at or metadata.updated_at,
        heartbeat_timeout=heartbeat_timeout,
        now=now,
    )


def owner_stale_reason(
    status: RunStatus,
    owner: OwnerInfo | None,
    since: datetime,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    now: datetime | None = None,
) -> str | None:
    """``stale_reason`` from a run's parts: its status, its owner and when it started.

    A same-host owner is stale as soon as its pid is gone; another host's once its
    heartbeat is older than ``heartbeat_timeout``; a running run without an owner once
    ``since`` (its start) is that old.
    """
    if status is not RunStatus.running:
        return None
    now = now or utc_now()
    if owner is None:
        if (now - since).total_seconds() > heartbeat_timeout:
            return f"run has been running without an owner since {since.isoformat()}"
        return None
    if owner.host == this_host():
        if pid_alive(owner.pid):
            return None
        return f"owner process {owner.pid} on host {owner.host} is no longer alive"
    silence = (now - owner.heartbeat_at).total_seconds()
    if silence > heartbeat_timeout:
        return (
            f"no heartbeat from process {owner.pid} on host {owner.host} for {silence:.0f} s "
            f"(timeout {heartbeat_timeout:g} s)"
        )
    return None


def last_sign_of_life(metadata: RunMetadata) -> datetime:
    """When the run's executing process last showed it was alive (the reaped attempt's end
    time): its last heartbeat, which every write of the owner to the record refreshes."""
    owner = metadata.owner
    return owner.heartbeat_at if owner is not None else metadata.updated_at


_UNFINISHED = [RunStatus.pending.value, RunStatus.queued.value, RunStatus.running.value]


def _candidates(workspace: Workspace) -> Iterator[tuple[str, Run]]:
    """Every run the index lists as unfinished, with the status of its index row.

    Not only ``running`` rows: a process killed between writing ``run.json`` and
    upserting its index row leaves the row one step behind (still ``pending`` while the
    file says ``running``), and the file is what counts.
    """
    try:
        found = [
            (summary.status.value, summary.id, summary.project, summary.experiment)
            for summary in workspace.runs(where={"status": _UNFINISHED})
        ]
    except Exception as exc:  # no usable index: the records themselves tell
        logger.warning("run index unavailable (%s); scanning the records for stale runs", exc)
        found = [
            (item.status.value, item.id, item.project_id, item.experiment_id)
            for item in scan_records(workspace.root, workspace.id)
            if isinstance(item, RunMetadata) and item.status.value in _UNFINISHED
        ]
    for status, run_id, project_id, experiment_id in found:
        try:
            run = workspace.find_run(run_id, project=project_id, experiment=experiment_id)
        except (KeyError, RecordError):
            continue  # deleted meanwhile, or unreadable (listed by broken_records())
        yield status, run


def find_stale_runs(
    workspace: Workspace,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    now: datetime | None = None,
) -> list[Run]:
    """Runs whose ``run.json`` says ``running`` while their owner is gone (nothing is changed).

    Candidates are the runs the index lists as pending, queued or running.
    """
    return [
        run
        for _indexed, run in _candidates(workspace)
        if stale_reason(run.metadata, heartbeat_timeout=heartbeat_timeout, now=now)
    ]


def reap_stale_runs(
    workspace: Workspace,
    *,
    heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
    now: datetime | None = None,
) -> list[Run]:
    """Mark stale ``running`` runs as failed with an ``ErrorInfo`` saying why; returns them.

    Each run is re-checked under its lock, so a run that finished or sent a heartbeat
    meanwhile is left alone. An index row left behind by a writer that died between
    its file write and its index upsert is brought back in step with the file, and so
    are the asset rows of each reaped run and of its experiment.
    """
    reaped: list[Run] = []
    for indexed, run in _candidates(workspace):
        if run.reap(heartbeat_timeout=heartbeat_timeout, now=now):
            reaped.append(run)
        elif run.status.value != indexed:
            run._sync_index()
    # A dead owner may also have been importing data into its experiment's library.
    for experiment in {id(run.experiment): run.experiment for run in reaped}.values():
        workspace.catalog.reindex_scope(
            experiment.scope, experiment.experiment_dir / RECORD_DIR_NAME
        )
    return reaped


def stale_error(reason: str) -> ErrorInfo:
    """The ``ErrorInfo`` a reaped run (and its open execution attempt) receives."""
    return ErrorInfo(type=STALE_ERROR_TYPE, message=f"reaped as stale: {reason}")
