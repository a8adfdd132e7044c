"""Persisted record models of the workspace hierarchy.

Owns the pydantic models written as ``workspace.json``, ``project.json``,
``experiment.json`` and ``run.json`` (with their nested execution, error, owner and
profile records), the run status enumeration and its allowed transitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from molexp.assets._io import VersionedRecord, is_valid_unicode
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TERMINAL_STATUSES",
    "ErrorInfo",
    "ExecutionRecord",
    "ExperimentMetadata",
    "OwnerInfo",
    "ProfileInfo",
    "ProjectMetadata",
    "RunMetadata",
    "RunStatus",
    "WorkspaceMetadata",
    "check_tags",
    "check_text",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime (every record timestamp uses this)."""
    return datetime.now(UTC)


class RunStatus(StrEnum):
    """Lifecycle state of a run (and of one execution attempt)."""

    pending = "pending"
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL_STATUSES = frozenset({RunStatus.succeeded, RunStatus.failed, RunStatus.cancelled})


def check_tags(tags: Sequence[str] | None, what: str) -> list[str]:
    """``tags`` as a list of non-empty strings, or ``ValueError`` naming ``what``."""
    if tags is None:
        return []
    if isinstance(tags, str) or not all(
        isinstance(tag, str) and tag and is_valid_unicode(tag) for tag in tags
    ):
        raise ValueError(
            f"{what} tags must be a list of non-empty strings of valid Unicode, got {tags!r}"
        )
    return list(tags)


def check_text(value: str | None, what: str) -> str | None:
    """``value`` if it is None or a string a JSON record can hold, else ``ValueError``."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}: {value!r}")
    if not is_valid_unicode(value):
        raise ValueError(f"{what} {value!r} is not valid Unicode (it holds a lone surrogate)")
    return value


class _Nested(BaseModel):
    """Base for records embedded inside a versioned record (they carry no version)."""

    model_config = ConfigDict(extra="ignore")


class ErrorInfo(_Nested):
    """Structured failure of a run or of one execution attempt."""

    type: str
    message: str
    task_name: str | None = None
    traceback_path: str | None = None
    """POSIX path of the traceback file, relative to the run directory."""
    occurred_at: datetime = Field(default_factory=utc_now)


class ProfileInfo(_Nested):
    """The profile a run executed under: its name, the merged config and its hash."""

    name: str
    config: dict[str, Any] = Field(default_factory=dict)
    config_hash: str


class OwnerInfo(_Nested):
    """Which process currently executes a run; cleared when the execution ends."""

    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


class ExecutionRecord(_Nested):
    """One execution attempt of a run; attempts are appended, never flattened."""

    execution_id: str
    attempt: int
    status: RunStatus
    started_at: datetime | None = None
    finished_at: datetime | None = None
    host: str | None = None
    pid: int | None = None
    profile_name: str | None = None
    config_hash: str | None = None
    error: ErrorInfo | None = None
    scheduler: dict[str, Any] | None = None


class WorkspaceMetadata(VersionedRecord):
    """Contents of ``<root>/workspace.json``."""

    id: str
    name: str
    description: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class ProjectMetadata(VersionedRecord):
    """Contents of ``<root>/projects/<project_id>/project.json``."""

    id: str
    name: str
    workspace_id: str
    description: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class ExperimentMetadata(VersionedRecord):
    """Contents of ``<project_dir>/experiments/<experiment_id>/experiment.json``."""

    id: str
    name: str
    project_id: str
    workspace_id: str
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    n_replicas: int = 1
    seeds: list[int] | None = None
    workflow_source: str | None = None
    """The workflow source exactly as the user gave it."""
    workflow_source_path: str | None = None
    """``workflow_source`` resolved to an absolute path when the experiment was created."""
    workflow_type: str | None = None
    git_commit: str | None = None
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)


class RunMetadata(VersionedRecord):
    """Contents of ``<experiment_dir>/runs/run-<run_id>/run.json``."""

    id: str
    experiment_id: str
    project_id: str
    workspace_id: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = RunStatus.pending
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    results: dict[str, Any] = Field(default_factory=dict)
    profile: ProfileInfo | None = None
    owner: OwnerInfo | None = None
    error: ErrorInfo | None = None
    execution_history: list[ExecutionRecord] = Field(default_factory=list)
    workflow_snapshot: dict[str, Any] | None = None
    workflow_id: str | None = None
    replica_index: int | None = None
    seed: int | None = None
    tags: list[str] = Field(default_factory=list)
    epoch: int = 0
    """How many claimed transitions the record has been through (see ``_claims``)."""
