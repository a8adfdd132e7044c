"""Response models of the HTTP API.

Owns the pydantic models every route returns; they define the OpenAPI schema at
``/api/v1/openapi.json`` and the shapes the web UI reads. These are views over the
workspace records, never persisted, so they carry no schema ``version``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ApiError",
    "ArtifactChangeInfo",
    "ArtifactInfo",
    "AssetDetail",
    "AssetInfo",
    "AssetLineage",
    "AssetUseInfo",
    "AttemptDetail",
    "AttemptDiffInfo",
    "AttemptInfo",
    "BrokenRecord",
    "CodeDiff",
    "CompareRow",
    "CompareSection",
    "CompareTable",
    "ErrorDetail",
    "ExperimentInfo",
    "LogChunk",
    "LogInfo",
    "MetricInfo",
    "MetricSeriesInfo",
    "ProducerInfo",
    "ProfileDetail",
    "ProjectInfo",
    "ProjectTable",
    "ResultChangeInfo",
    "RunDetail",
    "RunPage",
    "RunSummaryInfo",
    "StatusCounts",
    "TaskState",
    "WorkspaceCounts",
    "WorkspaceInfo",
]


class ApiError(BaseModel):
    """Body of every 4xx answer: what was wrong, naming the value concerned."""

    detail: str


class BrokenRecord(BaseModel):
    """A record file that could not be read; listed instead of failing the request."""

    path: str = Field(description="Path of the broken file, relative to the workspace root.")
    error: str
    broken: Literal[True] = True


StatusCounts = dict[str, int]


class WorkspaceCounts(BaseModel):
    projects: int
    experiments: int
    runs: int
    by_status: StatusCounts


class WorkspaceInfo(BaseModel):
    id: str
    name: str
    root: str
    counts: WorkspaceCounts
    broken: list[BrokenRecord]
    broken_pending: bool = Field(
        default=False,
        description="The server's first check of every record since it started is still "
        "running (it takes seconds on a large workspace): 'broken' is empty until it ends.",
    )


class ProjectInfo(BaseModel):
    id: str
    name: str
    description: str | None
    tags: list[str]
    created_at: datetime
    experiment_count: int
    run_count: int


class ExperimentInfo(BaseModel):
    id: str
    name: str
    project_id: str
    description: str | None
    tags: list[str]
    params: dict[str, Any]
    n_replicas: int
    workflow_source: str | None
    git_commit: str | None
    created_at: datetime
    run_count: int
    by_status: StatusCounts
    param_keys: list[str] = Field(description="Every parameter key used by a run (dotted).")
    result_keys: list[str] = Field(description="Every result key set by a run (dotted).")
    config_keys: list[str] = Field(
        default_factory=list,
        description="Every profile config key of a run (dotted), '--set' overrides included.",
    )
    stale_count: int = Field(
        default=0, description="Runs recorded as running whose owner process is gone."
    )


class ErrorDetail(BaseModel):
    type: str
    message: str
    task_name: str | None
    traceback_path: str | None
    occurred_at: datetime | None


class RunSummaryInfo(BaseModel):
    """One row of a runs table."""

    id: str
    project_id: str
    experiment_id: str
    status: str
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any]
    results: dict[str, Any]
    profile: str | None
    config_hash: str | None
    workflow_id: str | None
    replica_index: int | None
    profile_label: str | None = Field(
        default=None, description="The profile name with its '--set' overrides: 'fast + n=7'."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="The '--set' values (dotted key -> value)."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="The profile config recorded on the run."
    )
    stale: bool = Field(
        default=False,
        description="Recorded as running, but its owner process is gone (reap to settle it).",
    )
    stale_reason: str | None = None
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="The last value (at the highest step) of each metric series the run logged.",
    )


class ProjectTable(BaseModel):
    """Every run of a project across its experiments, with the keys of their columns."""

    project_id: str
    runs: list[RunSummaryInfo] = Field(description="Ordered by experiment, then run id.")
    total: int = Field(description="Runs of the project (more than `runs` when truncated).")
    truncated: bool
    experiments: list[str]
    param_keys: list[str] = Field(description="Dotted parameter keys any run has.")
    config_keys: list[str]
    result_keys: list[str]
    metric_keys: list[str] = Field(description="Metric names any run logged (last values).")
    profiles: list[str] = Field(description="Profile labels any run used.")


class RunPage(BaseModel):
    """A page of runs plus the run records that could not be read."""

    items: list[RunSummaryInfo]
    total: int
    offset: int
    limit: int
    broken: list[BrokenRecord]
    broken_pending: bool = Field(
        default=False,
        description="The server's first check of every record since it started is still "
        "running (it takes seconds on a large workspace): 'broken' is empty until it ends.",
    )


class ProfileDetail(BaseModel):
    name: str
    config: dict[str, Any]
    config_hash: str
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="The '--set' values (dotted key -> value)."
    )
    label: str = Field(default="", description="The name with its overrides: 'fast + n=7'.")


class AttemptInfo(BaseModel):
    """One execution attempt (never flattened into the run)."""

    execution_id: str
    attempt: int
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    host: str | None
    pid: int | None
    python: str | None = Field(default=None, description="The interpreter that ran the attempt.")
    python_version: str | None = None
    environment: dict[str, Any] | None = Field(
        default=None,
        description="Platform, CPU count, GPUs, Slurm ids and allow-listed variables.",
    )
    distributions: dict[str, str] = Field(
        default_factory=dict,
        description="Versions of the installed distributions the attempt's tasks reached "
        "(from its execution state): in `/runs/{id}/attempts/{n}`; empty in the run's attempts "
        "list, which does not read every attempt's state.",
    )
    profile_name: str | None
    config_hash: str | None
    error: ErrorDetail | None
    scheduler: dict[str, Any] | None
    results_changed: int = Field(
        default=0, description="Result keys added, removed or changed from the attempt before."
    )
    artifacts_changed: int = Field(
        default=0, description="Artifacts added, removed or changed (content hash) from before."
    )


class TaskState(BaseModel):
    """Per-task state from the latest execution state recorded by the workflow layer."""

    name: str
    status: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    error: str | None
    extra: dict[str, Any]


class RunDetail(BaseModel):
    id: str
    project_id: str
    experiment_id: str
    status: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any]
    results: dict[str, Any]
    config: dict[str, Any]
    config_hash: str | None
    profile: ProfileDetail | None
    workflow_id: str | None
    workflow_snapshot: dict[str, Any] | None
    replica_index: int | None
    seed: int | None
    tags: list[str]
    error: ErrorDetail | None
    attempts: list[AttemptInfo]
    tasks: list[TaskState]
    execution_state_id: str | None = Field(
        description="Id of the ExecutionStateAsset the task states come from, if any."
    )
    cancellable: bool
    stale: bool = Field(
        default=False,
        description="Recorded as running, but its owner process is gone (reap to settle it).",
    )
    stale_reason: str | None = None


class LogInfo(BaseModel):
    name: str
    size: int
    updated_at: datetime


class LogChunk(BaseModel):
    """Text of a log from a byte offset; pass ``next_offset`` as ``since`` to read on."""

    text: str
    offset: int
    next_offset: int
    size: int


class MetricInfo(BaseModel):
    """One metric series of a run at a glance (the run record's summary)."""

    name: str
    last: float = Field(description="The value at the highest step.")
    last_step: int
    min: float
    max: float
    count: int = Field(description="Points in the series (of the latest attempt that logged it).")


class MetricSeriesInfo(BaseModel):
    """The points of one metric series (every attempt), downsampled to at most ``points``."""

    name: str
    total: int = Field(description="Points in the whole series.")
    downsampled: bool = Field(description="Whether LTTB picked these points out of more.")
    steps: list[int]
    values: list[float]
    timestamps: list[float] = Field(description="Unix times in seconds.")
    attempts: list[int] = Field(description="The attempt number of each point.")


class ArtifactInfo(BaseModel):
    name: str = Field(description="POSIX path relative to the run's artifacts directory.")
    media_type: str
    size: int
    updated_at: datetime
    asset_id: str | None
    attempt: int | None = Field(default=None, description="The attempt that saved it.")
    content_hash: str | None = Field(default=None, description="sha256 of the artifact.")


class ResultChangeInfo(BaseModel):
    """A result key that differs between two attempts."""

    key: str
    change: Literal["added", "removed", "changed"]
    before: Any = None
    after: Any = None


class ArtifactChangeInfo(BaseModel):
    """An artifact whose content differs between two attempts."""

    name: str
    change: Literal["added", "removed", "changed"]
    before_hash: str | None = None
    after_hash: str | None = None
    before_size: int | None = None
    after_size: int | None = None


class AttemptDiffInfo(BaseModel):
    """What changed from attempt ``before`` (None: nothing before it) to attempt ``after``."""

    before: int | None
    after: int
    results: list[ResultChangeInfo]
    artifacts: list[ArtifactChangeInfo]


class AttemptDetail(BaseModel):
    """One attempt of a run: its record, its view of results and artifacts, its own logs."""

    attempt: AttemptInfo
    latest: bool
    results: dict[str, Any] = Field(
        description="The run's results as they stood when this attempt ended."
    )
    own_results: dict[str, Any] | None = Field(
        description="What this attempt set itself (null: recorded before attempts kept their own)."
    )
    artifacts: list[ArtifactInfo] = Field(
        description="The run's artifacts as they stood when this attempt ended (files)."
    )
    logs: list[LogInfo] = Field(description="This attempt's own logs.")
    checkpoints: int = Field(description="How many checkpoints this attempt saved.")
    tasks: list[TaskState] = Field(description="Per-task state recorded by this attempt.")
    changes: AttemptDiffInfo


class ProducerInfo(BaseModel):
    run_id: str
    execution_id: str | None
    task_name: str | None
    input_asset_ids: list[str]


class AssetInfo(BaseModel):
    id: str
    name: str
    kind: str
    scope: str = Field(
        description="Scope path: '' (workspace), 'project', 'project/experiment' or "
        "'project/experiment/run'."
    )
    scope_level: str
    project_id: str | None
    experiment_id: str | None
    run_id: str | None
    path: str
    created_at: datetime
    updated_at: datetime
    size: int | None
    content_hash: str | None
    tags: list[str]
    producer: ProducerInfo | None
    meta: dict[str, Any]


class AssetUseInfo(BaseModel):
    run_id: str
    execution_id: str | None
    task_name: str | None
    used_at: datetime | None


class AssetLineage(BaseModel):
    produced_by: ProducerInfo | None
    consumed_by: list[AssetUseInfo]
    inputs: list[AssetInfo] = Field(description="Assets the producer declared as its inputs.")


class AssetDetail(BaseModel):
    asset: AssetInfo
    lineage: AssetLineage


CompareSection = Literal[
    "param",
    "profile",
    "config",
    "result",
    "workflow",
    "git",
    "code",
    "python",
    "environment",
    "distributions",
]


class CompareRow(BaseModel):
    key: str
    section: CompareSection = Field(
        description="'profile' is the profile label (name + '--set' overrides); 'config' rows "
        "are the recorded profile config, key by key; 'workflow' and 'git' the workflow id and "
        "the git state of its script; 'code' each task's code hash; 'python', 'environment' and "
        "'distributions' where and with what the latest attempt ran (as `molexp diff` shows)."
    )
    values: list[Any] = Field(description="One value per compared run, in the order of `runs`.")
    differs: bool


class CodeDiff(BaseModel):
    """The unified diff of a task's recorded source between the first compared run and another."""

    task: str
    base: str = Field(description="The first compared run (the `a` side).")
    run: str = Field(description="The run compared with it (the `b` side).")
    diff: str


class CompareTable(BaseModel):
    runs: list[RunSummaryInfo]
    rows: list[CompareRow]
    code_diffs: list[CodeDiff] = Field(
        default_factory=list,
        description="Changed task sources of each run against the first one.",
    )
    metrics: list[str] = Field(
        default_factory=list, description="Names of the metric series any compared run logged."
    )
