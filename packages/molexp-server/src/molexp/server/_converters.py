"""Response converters: records, rows and execution states of the workspace turned into the API's
schemas (``_schemas``). Pure functions; ``_service`` does the locked data access around them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from molexp.assets import (
    Asset,
    AssetScope,
    Producer,
)
from molexp.workspace import (
    AttemptDiff,
    ErrorInfo,
    ExecutionRecord,
    FactRow,
    RunSummary,
)
from pydantic_core import to_json

from ._schemas import (
    ArtifactChangeInfo,
    AssetInfo,
    AttemptDiffInfo,
    AttemptInfo,
    BrokenRecord,
    CompareRow,
    CompareSection,
    ErrorDetail,
    ProducerInfo,
    ProjectTable,
    ResultChangeInfo,
    RunSummaryInfo,
    TaskState,
)

__all__ = ["asset_info", "project_table", "run_page_json", "task_states"]

# How the response models write NaN and infinities (pydantic's default, ``ser_json_inf_nan``).
_INF_NAN_MODE = RunSummaryInfo.model_config.get("ser_json_inf_nan", "null")


def _flat_keys(value: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    """Dotted paths of a nested mapping's leaves: ``{"model": {"depth": 3}}`` -> ``model.depth``."""
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            yield from _flat_keys(item, f"{name}.")
        else:
            yield name


def _pick(value: Mapping[str, Any], dotted: str) -> Any:
    current: Any = value
    for part in dotted.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds()


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _summary_fields(row: RunSummary) -> dict[str, Any]:
    """The fields of ``RunSummaryInfo`` for one index row, in the model's order."""
    stale = row.stale_reason()
    return {
        "id": row.id,
        "project_id": row.project,
        "experiment_id": row.experiment,
        "status": row.status.value,
        "created_at": row.created_at,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "params": row.params,
        "results": row.results,
        "profile": row.profile,
        "config_hash": row.config_hash,
        "workflow_id": row.workflow_id,
        "replica_index": row.replica_index,
        "profile_label": row.profile_label,
        "overrides": row.overrides,
        "config": row.config,
        "stale": stale is not None,
        "stale_reason": stale,
        "metrics": {name: float(summary.last) for name, summary in row.metrics.items()},
    }


def _summary_info(row: RunSummary) -> RunSummaryInfo:
    return RunSummaryInfo(**_summary_fields(row))


def run_page_json(
    rows: Sequence[RunSummary],
    *,
    total: int,
    offset: int,
    limit: int,
    broken: Sequence[BrokenRecord],
    broken_pending: bool,
) -> bytes:
    """The JSON of a ``RunPage`` of ``rows``, the same bytes its model would serialize to.

    Written straight from the rows' fields: a page of 100 runs costs a fraction of building
    100 ``RunSummaryInfo`` models and having the framework validate and serialize them again.
    """
    page = {
        "items": [_summary_fields(row) for row in rows],
        "total": total,
        "offset": offset,
        "limit": limit,
        "broken": [record.model_dump() for record in broken],
        "broken_pending": broken_pending,
    }
    return to_json(page, inf_nan_mode=_INF_NAN_MODE)


def project_table(project_id: str, rows: Sequence[RunSummary], limit: int) -> ProjectTable:
    """The project page's table: every run (the first ``limit`` by experiment, then id) with the
    keys of its parameter, config, result and metric columns and the profiles used."""
    ordered = sorted(rows, key=lambda row: (row.experiment, row.id))
    params: dict[str, None] = {}
    config: dict[str, None] = {}
    results: dict[str, None] = {}
    metrics: dict[str, None] = {}
    profiles: dict[str, None] = {}
    for row in ordered:
        params.update(dict.fromkeys(_flat_keys(row.params)))
        config.update(dict.fromkeys(_flat_keys(row.config)))
        results.update(dict.fromkeys(_flat_keys(row.results)))
        metrics.update(dict.fromkeys(row.metrics))
        if row.profile_label:
            profiles[row.profile_label] = None
    return ProjectTable(
        project_id=project_id,
        runs=[_summary_info(row) for row in ordered[:limit]],
        total=len(ordered),
        truncated=len(ordered) > limit,
        experiments=sorted({row.experiment for row in ordered}),
        param_keys=sorted(params),
        config_keys=sorted(config),
        result_keys=sorted(results),
        metric_keys=sorted(metrics),
        profiles=sorted(profiles),
    )


def _compare_rows(
    section: Literal["param", "config", "result"], sources: Sequence[Mapping[str, Any]]
) -> list[CompareRow]:
    """One row per dotted key any of ``sources`` has, with one value per source."""
    keys: dict[str, None] = {}
    for source in sources:
        keys.update(dict.fromkeys(_flat_keys(source)))
    rows = []
    for key in sorted(keys):
        values = [_pick(source, key) for source in sources]
        encoded = {json.dumps(value, sort_keys=True, default=str) for value in values}
        rows.append(CompareRow(key=key, section=section, values=values, differs=len(encoded) > 1))
    return rows


# The sections of ``molexp.workspace.compare_facts`` the compare view adds to its own rows (the
# parameters, profile, config and results it already takes from the run index).
_FACT_SECTIONS: dict[str, CompareSection] = {
    "workflow_id": "workflow",
    "git": "git",
    "code": "code",
    "python": "python",
    "environment": "environment",
    "distributions": "distributions",
}


def _fact_rows(rows: Iterable[FactRow]) -> list[CompareRow]:
    """The compare rows of the facts ``molexp diff`` shows beyond params, config and results."""
    kept = []
    for row in rows:
        section = _FACT_SECTIONS.get(row.section)
        if section is None:
            continue
        key = row.key.split(".", 1)[1] if "." in row.key else row.key
        kept.append(CompareRow(key=key, section=section, values=row.values, differs=row.differs))
    return kept


def _error_detail(error: ErrorInfo | None) -> ErrorDetail | None:
    if error is None:
        return None
    return ErrorDetail(
        type=error.type,
        message=error.message,
        task_name=error.task_name,
        traceback_path=error.traceback_path,
        occurred_at=error.occurred_at,
    )


def _diff_info(diff: AttemptDiff) -> AttemptDiffInfo:
    return AttemptDiffInfo(
        before=diff.before,
        after=diff.after,
        results=[ResultChangeInfo(**change.model_dump()) for change in diff.results],
        artifacts=[ArtifactChangeInfo(**change.model_dump()) for change in diff.artifacts],
    )


def _attempt_info(
    record: ExecutionRecord,
    diff: AttemptDiff | None = None,
    state: Mapping[str, Any] | None = None,
) -> AttemptInfo:
    """``state``: the attempt's execution state, for the distribution versions its tasks reached."""
    distributions = (state or {}).get("distributions")
    return AttemptInfo(
        execution_id=record.execution_id,
        attempt=record.attempt,
        status=record.status.value,
        started_at=record.started_at,
        finished_at=record.finished_at,
        duration_seconds=_duration(record.started_at, record.finished_at),
        host=record.host,
        pid=record.pid,
        python=record.python,
        python_version=record.python_version,
        environment=None if record.environment is None else record.environment.model_dump(),
        distributions={str(name): str(version) for name, version in distributions.items()}
        if isinstance(distributions, Mapping)
        else {},
        profile_name=record.profile_name,
        config_hash=record.config_hash,
        error=_error_detail(record.error),
        scheduler=record.scheduler,
        results_changed=len(diff.results) if diff is not None and diff.before else 0,
        artifacts_changed=len(diff.artifacts) if diff is not None and diff.before else 0,
    )


def _task_error(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        kind, message = value.get("type"), value.get("message")
        if kind or message:
            return f"{kind}: {message}" if kind and message else str(kind or message)
        return json.dumps(value, default=str)
    return str(value)


def task_states(state: Mapping[str, Any]) -> list[TaskState]:
    """Per-task rows from a recorded execution state.

    Accepts ``{"tasks": {name: {...}}}`` (what the workflow layer writes) and
    ``{"tasks": [{"name": ..., ...}]}``; anything else yields no rows.
    """
    tasks = state.get("tasks")
    items: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(tasks, Mapping):
        items = [(str(name), info) for name, info in tasks.items() if isinstance(info, Mapping)]
    elif isinstance(tasks, list):
        for info in tasks:
            if isinstance(info, Mapping) and isinstance(info.get("name"), str):
                items.append((info["name"], info))
    rows = []
    known = {"name", "status", "started_at", "finished_at", "duration", "error"}
    for name, info in items:
        started, finished = (
            _parse_time(info.get("started_at")),
            _parse_time(info.get("finished_at")),
        )
        duration = info.get("duration")
        status = info.get("status")
        rows.append(
            TaskState(
                name=name,
                status=str(status) if status is not None else None,
                started_at=started,
                finished_at=finished,
                duration_seconds=float(duration)
                if isinstance(duration, int | float) and not isinstance(duration, bool)
                else _duration(started, finished),
                error=_task_error(info.get("error")),
                extra={key: value for key, value in info.items() if key not in known},
            )
        )
    return rows


def _scope_path(scope: AssetScope) -> str:
    return "/".join(part for part in scope.ids[1:] if part is not None)


def _producer_info(producer: Producer | None) -> ProducerInfo | None:
    if producer is None:
        return None
    return ProducerInfo(
        run_id=producer.run_id,
        execution_id=producer.execution_id,
        task_name=producer.task_name,
        input_asset_ids=list(producer.input_asset_ids),
    )


_TYPED_FIELDS = (
    "media_type",
    "line_count",
    "sequence",
    "parent_id",
    "execution_id",
    "error_type",
    "source",
    "action",
)


def asset_info(asset: Asset) -> AssetInfo:
    meta = dict(asset.meta)
    for field in _TYPED_FIELDS:  # kind-specific fields travel in meta for one uniform shape
        if hasattr(asset, field):
            meta.setdefault(field, getattr(asset, field))
    return AssetInfo(
        id=asset.id,
        name=asset.name,
        kind=asset.kind.value,
        scope=_scope_path(asset.scope),
        scope_level=asset.scope.level.value,
        project_id=asset.scope.project_id,
        experiment_id=asset.scope.experiment_id,
        run_id=asset.scope.run_id,
        path=asset.path,
        created_at=asset.created_at,
        updated_at=asset.updated_at,
        size=asset.size,
        content_hash=asset.content_hash,
        tags=list(asset.tags),
        producer=_producer_info(asset.producer),
        meta=meta,
    )
