"""Asset records: kinds, scopes, producer attribution and the typed ``Asset`` subclasses.

Owns the persisted shape of every asset (one JSON record per asset, validated by
pydantic), the discriminated union used to read them back, and the deterministic
asset ids that make re-saving an output update the same asset.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, ClassVar, Literal

from molexp.assets._io import RecordError, VersionedRecord, parse_record, validate_name
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AnyAsset",
    "ArtifactAsset",
    "Asset",
    "AssetKind",
    "AssetScope",
    "AssetUse",
    "CheckpointAsset",
    "DataAsset",
    "ErrorTraceAsset",
    "ExecutionStateAsset",
    "ImportAction",
    "Lineage",
    "LogAsset",
    "Producer",
    "ScopeLevel",
    "asset_id_for",
    "parse_asset",
    "utc_now",
]

ASSET_ID_HEX_CHARS = 16


def utc_now() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def _as_utc(value: datetime, field: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"{field} must be timezone-aware (got naive datetime {value.isoformat()})")
    return value.astimezone(UTC)


class AssetKind(StrEnum):
    """What an asset is; each kind has its own ``Asset`` subclass."""

    DATA = "data"
    ARTIFACT = "artifact"
    LOG = "log"
    CHECKPOINT = "checkpoint"
    ERROR_TRACE = "error_trace"
    EXECUTION_STATE = "execution_state"


class ScopeLevel(StrEnum):
    """The level of the Workspace -> Project -> Experiment -> Run hierarchy an asset belongs to."""

    WORKSPACE = "workspace"
    PROJECT = "project"
    EXPERIMENT = "experiment"
    RUN = "run"


_DEPTH = {
    ScopeLevel.WORKSPACE: 0,
    ScopeLevel.PROJECT: 1,
    ScopeLevel.EXPERIMENT: 2,
    ScopeLevel.RUN: 3,
}
_ID_FIELDS = ("project_id", "experiment_id", "run_id")


class AssetScope(BaseModel):
    """Where an asset lives in the hierarchy.

    The ids required by ``level`` must be set and the deeper ones must be ``None``;
    every id must be a valid single path component (see ``validate_name``).
    """

    model_config = ConfigDict(frozen=True)

    level: ScopeLevel
    workspace_id: str
    project_id: str | None = None
    experiment_id: str | None = None
    run_id: str | None = None

    @model_validator(mode="after")
    def _check_ids(self) -> AssetScope:
        validate_name(self.workspace_id, "workspace_id")
        depth = _DEPTH[self.level]
        for index, field in enumerate(_ID_FIELDS, start=1):
            value = getattr(self, field)
            if index <= depth:
                if value is None:
                    raise ValueError(f"a {self.level.value} scope needs {field}")
                validate_name(value, field)
            elif value is not None:
                raise ValueError(f"a {self.level.value} scope must not set {field} (got {value!r})")
        return self

    @classmethod
    def for_workspace(cls, workspace_id: str) -> AssetScope:
        return cls(level=ScopeLevel.WORKSPACE, workspace_id=workspace_id)

    @classmethod
    def for_project(cls, workspace_id: str, project_id: str) -> AssetScope:
        return cls(level=ScopeLevel.PROJECT, workspace_id=workspace_id, project_id=project_id)

    @classmethod
    def for_experiment(cls, workspace_id: str, project_id: str, experiment_id: str) -> AssetScope:
        return cls(
            level=ScopeLevel.EXPERIMENT,
            workspace_id=workspace_id,
            project_id=project_id,
            experiment_id=experiment_id,
        )

    @classmethod
    def for_run(
        cls, workspace_id: str, project_id: str, experiment_id: str, run_id: str
    ) -> AssetScope:
        return cls(
            level=ScopeLevel.RUN,
            workspace_id=workspace_id,
            project_id=project_id,
            experiment_id=experiment_id,
            run_id=run_id,
        )

    @property
    def depth(self) -> int:
        """0 for a workspace scope, 1 project, 2 experiment, 3 run."""
        return _DEPTH[self.level]

    @property
    def ids(self) -> tuple[str | None, str | None, str | None, str | None]:
        """``(workspace_id, project_id, experiment_id, run_id)``, None where unset."""
        return (self.workspace_id, self.project_id, self.experiment_id, self.run_id)

    def contains(self, other: AssetScope) -> bool:
        """True if ``other`` is this scope or lies beneath it (a project contains its runs)."""
        if other.depth < self.depth:
            return False
        return self.ids[: self.depth + 1] == other.ids[: self.depth + 1]

    @property
    def parent(self) -> AssetScope | None:
        """The enclosing scope, or ``None`` for a workspace scope."""
        if self.level is ScopeLevel.WORKSPACE:
            return None
        levels = list(_DEPTH)
        parent_level = levels[self.depth - 1]
        kept = {field: getattr(self, field) for field in _ID_FIELDS[: self.depth - 1]}
        return AssetScope(level=parent_level, workspace_id=self.workspace_id, **kept)

    def ancestors(self) -> list[AssetScope]:
        """This scope followed by each enclosing scope up to the workspace (lookup order)."""
        chain: list[AssetScope] = []
        scope: AssetScope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        return chain

    def describe(self) -> str:
        """A short human label, e.g. ``run ws/proj/exp/run-1``."""
        ids = "/".join(part for part in self.ids if part is not None)
        return f"{self.level.value} {ids}"


class Producer(BaseModel):
    """Which run (and, when known, which execution attempt, task and host) produced an asset.

    ``host`` is set when the producer ran on a host other than the run's owner process's
    (a task on a Dask worker); ``None`` otherwise.
    """

    run_id: str
    execution_id: str | None = None
    task_name: str | None = None
    host: str | None = None
    input_asset_ids: list[str] = Field(default_factory=list)


class AssetUse(BaseModel):
    """One recorded consumption of an asset by a run."""

    run_id: str
    execution_id: str | None = None
    task_name: str | None = None
    used_at: datetime = Field(default_factory=utc_now)

    @field_validator("used_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value, "used_at")


class Lineage(BaseModel):
    """Where an asset came from and which runs have used it."""

    asset_id: str
    produced_by: Producer | None
    consumed_by: list[AssetUse]


class Asset(VersionedRecord):
    """Base record for every asset. Read records back with ``parse_asset``.

    ``path`` is the POSIX path of the payload relative to the workspace root.
    ``content_hash`` is the sha256 of a file payload, or for a directory a sha256
    over its sorted relative file paths and their hashes. ``uses`` is the
    persisted consumption history (see ``Catalog.record_use``).
    """

    SCHEMA_VERSION: ClassVar[int] = 1

    id: str
    name: str
    kind: AssetKind
    scope: AssetScope
    path: str
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    producer: Producer | None = None
    tags: list[str] = Field(default_factory=list)
    content_hash: str | None = None
    size: int | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    uses: list[AssetUse] = Field(default_factory=list)

    @model_validator(mode="after")
    def _new_asset_updated_when_created(self) -> Asset:
        if "updated_at" not in self.model_fields_set:
            self.updated_at = self.created_at
        return self

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str) -> str:
        return validate_name(value, "asset id")

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return validate_name(value, "asset name")

    @field_validator("path")
    @classmethod
    def _relative_posix(cls, value: str) -> str:
        posix = PurePosixPath(value)
        if value == "" or posix.is_absolute() or "\\" in value:
            raise ValueError(f"asset path {value!r} must be a relative POSIX path")
        if ".." in posix.parts:
            raise ValueError(f"asset path {value!r} must not contain '..'")
        return posix.as_posix()

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _as_utc(value, "timestamp")

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        for tag in value:
            if not tag or tag != tag.strip():
                raise ValueError(f"tag {tag!r} must be non-empty without surrounding whitespace")
        return list(dict.fromkeys(value))


ImportAction = Literal["copy", "move", "symlink", "hardlink"]


class DataAsset(Asset):
    """Reusable data imported into a scope's data-asset library."""

    kind: Literal[AssetKind.DATA] = AssetKind.DATA
    source: str | None = None
    action: ImportAction | None = None


class ArtifactAsset(Asset):
    """A file (or directory) a run saved under ``artifacts/``."""

    kind: Literal[AssetKind.ARTIFACT] = AssetKind.ARTIFACT
    media_type: str | None = None


class LogAsset(Asset):
    """A line-oriented log under ``logs/<name>.log``."""

    kind: Literal[AssetKind.LOG] = AssetKind.LOG
    line_count: int = 0


class CheckpointAsset(Asset):
    """One link of a scope's linear checkpoint chain under ``.ckpt/``.

    ``media_type`` is ``None`` for a marker checkpoint saved without data.
    """

    kind: Literal[AssetKind.CHECKPOINT] = AssetKind.CHECKPOINT
    sequence: int
    parent_id: str | None = None
    media_type: str | None = None


class ErrorTraceAsset(Asset):
    """The traceback of a failed execution attempt."""

    kind: Literal[AssetKind.ERROR_TRACE] = AssetKind.ERROR_TRACE
    execution_id: str
    error_type: str


class ExecutionStateAsset(Asset):
    """A JSON snapshot of workflow execution state for one execution attempt."""

    kind: Literal[AssetKind.EXECUTION_STATE] = AssetKind.EXECUTION_STATE
    execution_id: str


AnyAsset = Annotated[
    DataAsset | ArtifactAsset | LogAsset | CheckpointAsset | ErrorTraceAsset | ExecutionStateAsset,
    Field(discriminator="kind"),
]

_CLASS_BY_KIND: dict[str, type[Asset]] = {
    AssetKind.DATA: DataAsset,
    AssetKind.ARTIFACT: ArtifactAsset,
    AssetKind.LOG: LogAsset,
    AssetKind.CHECKPOINT: CheckpointAsset,
    AssetKind.ERROR_TRACE: ErrorTraceAsset,
    AssetKind.EXECUTION_STATE: ExecutionStateAsset,
}


def parse_asset(data: Any, *, path: Path | str = "<asset record>") -> Asset:
    """Validate decoded JSON as the ``Asset`` subclass named by its ``kind``.

    Errors are ``RecordError`` naming ``path`` and the field; a record from a newer
    schema is an ``UnsupportedVersionError``.
    """
    if not isinstance(data, dict):
        raise RecordError(path, f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    model = _CLASS_BY_KIND.get(kind, Asset) if isinstance(kind, str) else Asset
    # An unknown kind falls through to the base model, whose enum check (after the
    # version check) reports the bad value with the field name.
    return parse_record(Path(path), data, model)


def asset_id_for(
    scope: AssetScope, kind: AssetKind | str, name: str, *, execution_id: str | None = None
) -> str:
    """Deterministic id: 16 hex chars of sha256 over the scope ids, the kind and the name.

    With ``execution_id`` the attempt is folded in too, so each execution attempt of a run
    keeps its own record of an output it saves under the same name as an earlier attempt.
    """
    parts = [scope.level.value, *(part or "" for part in scope.ids), AssetKind(kind).value, name]
    if execution_id is not None:
        parts.append(f"execution={execution_id}")
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:ASSET_ID_HEX_CHARS]
