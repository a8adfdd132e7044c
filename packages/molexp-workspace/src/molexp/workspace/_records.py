"""Persisted record models of the workspace hierarchy.

Owns the pydantic models written as ``workspace.json``, ``project.json``,
``experiment.json`` and ``run.json`` (with their nested execution, error, owner and
profile records), the run status enumeration and its allowed transitions. Each model
checks its fields with the rules used when they are written (ids are valid names,
timestamps carry an offset, JSON values are finite, ...), so a malformed record is
refused when it is read, with a ``RecordError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from molexp.assets import VersionedRecord, validate_name
from molexp.assets.storage import is_valid_unicode
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from ._hashing import ProfileConfig, plain_json

__all__ = [
    "TERMINAL_STATUSES",
    "ErrorInfo",
    "ExecutionRecord",
    "ExperimentMetadata",
    "MetricSummary",
    "OwnerInfo",
    "ProfileInfo",
    "ProjectMetadata",
    "RunMetadata",
    "RunStatus",
    "WorkspaceMetadata",
    "check_tags",
    "check_text",
    "profile_label",
    "utc_now",
]


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime (every record timestamp uses this)."""
    return datetime.now(UTC)


class RunStatus(StrEnum):
    """Lifecycle state of a run (and of one execution attempt).

    Members are upper case like ``TaskStatus`` (``RunStatus.RUNNING``); the lower-case names
    (``RunStatus.running``) are aliases of the same members, kept for existing code.
    """

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
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


def _refused(message: str) -> PydanticCustomError:
    """A validation error whose message is ``message`` as is (no "Value error, " prefix)."""
    return PydanticCustomError("invalid_record_value", "{reason}", {"reason": message})


def _name_rule(what: str) -> AfterValidator:
    """A valid name (one safe path component, ``validate_name``), as ids are when written."""

    def check(value: str) -> str:
        try:
            return validate_name(value, what)
        except ValueError as exc:
            raise _refused(str(exc).removesuffix(f", got {value!r}")) from None

    return AfterValidator(check)


def _plain_and_finite(value: Any) -> bool:
    """Whether ``value`` holds only plain JSON types and finite floats (no copy made)."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
        elif kind is float:
            if not math.isfinite(item):
                return False
        elif not (item is None or kind is str or kind is int or kind is bool):
            return False
    return True


def _json_rule(what: str) -> AfterValidator:
    """JSON data as ``plain_json`` accepts it when written (finite numbers, valid text)."""

    def check(value: Any) -> Any:
        if _plain_and_finite(value):  # the fast path: data as read from a file
            return value
        try:
            return plain_json(value, what)
        except (TypeError, ValueError, RecursionError) as exc:
            raise _refused(str(exc)) from None

    return AfterValidator(check)


def _tags(value: list[str]) -> list[str]:
    try:
        return check_tags(value, "record")
    except ValueError:
        raise _refused("tags must be non-empty strings") from None


def _at_least(minimum: int) -> AfterValidator:
    def check(value: int | None) -> int | None:
        if value is not None and value < minimum:
            raise _refused(f"must be an integer >= {minimum}")
        return value

    return AfterValidator(check)


def _non_empty(value: str) -> str:
    if not value:
        raise _refused("must be a non-empty string")
    return value


WorkspaceId = Annotated[str, _name_rule("workspace id")]
ProjectId = Annotated[str, _name_rule("project id")]
ExperimentId = Annotated[str, _name_rule("experiment id")]
RunId = Annotated[str, _name_rule("run id")]
Tags = Annotated[list[str], AfterValidator(_tags)]
NonEmpty = Annotated[str, AfterValidator(_non_empty)]


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
    occurred_at: AwareDatetime = Field(default_factory=utc_now)


def _override_text(value: Any) -> str:
    """An override value as ``--set`` would take it back (strings bare unless ambiguous)."""
    if isinstance(value, str) and value and value.strip() == value:
        try:
            json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, ensure_ascii=False)


def profile_label(name: str | None, overrides: Mapping[str, Any] | None = None) -> str | None:
    """``name`` plus its ``--set`` overrides, e.g. ``fast + n_strains=7, model.depth=3``."""
    if name is None:
        return None
    if not overrides:
        return name
    listed = ", ".join(f"{key}={_override_text(value)}" for key, value in overrides.items())
    return f"{name} + {listed}"


class ProfileInfo(_Nested):
    """The profile a run executed under: its name, the merged config and its hash.

    ``overrides`` holds the ``--set`` values merged on top of the named profile (dotted
    keys, in the order given), already part of ``config``; empty when there were none.
    """

    name: str
    config: Annotated[dict[str, Any], _json_rule("config")] = Field(default_factory=dict)
    config_hash: str
    overrides: Annotated[dict[str, Any], _json_rule("overrides")] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        """The name with its overrides: ``fast + n_strains=7`` (just ``fast`` without any)."""
        return profile_label(self.name, self.overrides) or self.name

    @classmethod
    def of(cls, profile: ProfileConfig) -> ProfileInfo:
        """The record of ``profile`` (config and overrides checked as record JSON)."""
        return cls(
            name=profile.name,
            config=plain_json(dict(profile.config), f"profile {profile.name!r} config"),
            config_hash=profile.config_hash,
            overrides=plain_json(dict(profile.overrides), f"profile {profile.name!r} overrides"),
        )


class OwnerInfo(_Nested):
    """Which process currently executes a run; cleared when the execution ends."""

    host: NonEmpty
    pid: Annotated[int, _at_least(1)]
    started_at: AwareDatetime
    heartbeat_at: AwareDatetime


class EnvironmentInfo(_Nested):
    """Where and with what an attempt ran, captured when it starts (see ``_environment``)."""

    implementation: str
    """``CPython``, ``PyPy``, ..."""
    platform: str
    """``platform.platform()``: OS, kernel and machine."""
    cpu_count: int | None = None
    """CPUs this process may use (its affinity), else the machine's."""
    gpus: list[str] = Field(default_factory=list)
    """``name, driver`` per GPU as ``nvidia-smi`` reports them; empty without it."""
    slurm: dict[str, str] = Field(default_factory=dict)
    """The Slurm job, array and node ids when the attempt ran in a Slurm job."""
    variables: dict[str, str] = Field(default_factory=dict)
    """The allow-listed environment variables that were set (never secrets)."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise _refused("must be a finite number")
    return value


Finite = Annotated[float, AfterValidator(_finite)]


class MetricSummary(_Nested):
    """One metric of a run at a glance: the value at its highest step, min, max, point count.

    ``last`` is the value logged at the highest step (of equal steps, the one logged last).
    """

    last: Finite
    last_step: int
    min: Finite
    max: Finite
    count: Annotated[int, _at_least(1)]

    def merged(self, other: MetricSummary) -> MetricSummary:
        """The summary of both series (``other``'s last wins a tie of steps)."""
        later = other if other.last_step >= self.last_step else self
        return MetricSummary(
            last=later.last,
            last_step=later.last_step,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
            count=self.count + other.count,
        )


class ExecutionRecord(_Nested):
    """One execution attempt of a run; attempts are appended, never flattened."""

    execution_id: str
    attempt: Annotated[int, _at_least(1)]
    status: RunStatus
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    host: str | None = None
    pid: Annotated[int | None, _at_least(1)] = None
    python: str | None = None
    """The interpreter that ran the attempt (``sys.executable``; its environment is the prefix)."""
    python_version: str | None = None
    """That interpreter's version, e.g. ``3.11.7``."""
    environment: EnvironmentInfo | None = None
    """Platform, CPUs, GPUs, Slurm ids and allow-listed variables (None: not yet started)."""
    profile_name: str | None = None
    config_hash: str | None = None
    error: ErrorInfo | None = None
    scheduler: Annotated[dict[str, Any] | None, _json_rule("scheduler")] = None
    results: Annotated[dict[str, Any] | None, _json_rule("results")] = None
    """The results this attempt set itself (None: recorded before attempts kept their own)."""
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    """The metrics this attempt logged (``ctx.log_metric``), summarised."""


class WorkspaceMetadata(VersionedRecord):
    """Contents of ``<root>/workspace.json``."""

    id: WorkspaceId
    name: NonEmpty
    description: str | None = None
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)


class ProjectMetadata(VersionedRecord):
    """Contents of ``<root>/projects/<project_id>/project.json``."""

    id: ProjectId
    name: Annotated[str, _name_rule("project name")]
    workspace_id: WorkspaceId
    description: str | None = None
    owner: str | None = None
    tags: Tags = Field(default_factory=list)
    config: Annotated[dict[str, Any], _json_rule("config")] = Field(default_factory=dict)
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)


class ExperimentMetadata(VersionedRecord):
    """Contents of ``<project_dir>/experiments/<experiment_id>/experiment.json``."""

    id: ExperimentId
    name: Annotated[str, _name_rule("experiment name")]
    project_id: ProjectId
    workspace_id: WorkspaceId
    description: str | None = None
    tags: Tags = Field(default_factory=list)
    parameters: Annotated[dict[str, Any], _json_rule("parameters")] = Field(default_factory=dict)
    n_replicas: Annotated[int, _at_least(1)] = 1
    seeds: list[int] | None = None
    workflow_source: NonEmpty | None = None
    """The workflow source exactly as the user gave it."""
    workflow_source_path: str | None = None
    """``workflow_source`` resolved to an absolute path when the experiment was created."""
    workflow_type: str | None = None
    git_commit: str | None = None
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)

    @field_validator("seeds")
    @classmethod
    def _one_seed_per_replica(cls, seeds: list[int] | None, info: ValidationInfo) -> Any:
        replicas = info.data.get("n_replicas")
        if seeds is not None and replicas is not None and len(seeds) != replicas:
            raise _refused(f"{len(seeds)} seeds for n_replicas={replicas}: one per replica")
        return seeds


class RunMetadata(VersionedRecord):
    """Contents of ``<experiment_dir>/runs/run-<run_id>/run.json``."""

    id: RunId
    experiment_id: ExperimentId
    project_id: ProjectId
    workspace_id: WorkspaceId
    parameters: Annotated[dict[str, Any], _json_rule("parameters")] = Field(default_factory=dict)
    status: RunStatus = RunStatus.pending
    created_at: AwareDatetime = Field(default_factory=utc_now)
    updated_at: AwareDatetime = Field(default_factory=utc_now)
    started_at: AwareDatetime | None = None
    finished_at: AwareDatetime | None = None
    results: Annotated[dict[str, Any], _json_rule("results")] = Field(default_factory=dict)
    metrics: dict[str, MetricSummary] = Field(default_factory=dict)
    """Summaries of the metric series: per name, the latest attempt that logged it."""
    profile: ProfileInfo | None = None
    owner: OwnerInfo | None = None
    error: ErrorInfo | None = None
    execution_history: list[ExecutionRecord] = Field(default_factory=list)
    workflow_snapshot: Annotated[dict[str, Any] | None, _json_rule("workflow snapshot")] = None
    workflow_id: str | None = None
    replica_index: Annotated[int | None, _at_least(0)] = None
    seed: int | None = None
    tags: Tags = Field(default_factory=list)
    epoch: int = 0
    """How many claimed transitions the record has been through (see ``_claims``)."""
