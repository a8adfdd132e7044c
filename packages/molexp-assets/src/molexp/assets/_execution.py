"""Per-execution records of a run: the error trace and the execution-state snapshot.

Both live under ``<scope_dir>/execution/<execution_id>/`` (``error.txt`` and
``state.json``) and are registered as ``ErrorTraceAsset`` / ``ExecutionStateAsset``
named ``error-<execution_id>`` / ``state-<execution_id>``; writing again for the
same execution replaces the payload and updates the same asset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from molexp.assets._catalog import RECORD_DIR_NAME, Catalog
from molexp.assets._hashing import digest_payload
from molexp.assets._io import atomic_write_text, validate_name
from molexp.assets._models import (
    AssetKind,
    AssetScope,
    ErrorTraceAsset,
    ExecutionStateAsset,
    Producer,
    asset_id_for,
    utc_now,
)

__all__ = [
    "ERROR_TRACE_FILE_NAME",
    "EXECUTION_DIR_NAME",
    "EXECUTION_STATE_FILE_NAME",
    "write_error_trace",
    "write_execution_state",
]

EXECUTION_DIR_NAME = "execution"
ERROR_TRACE_FILE_NAME = "error.txt"
EXECUTION_STATE_FILE_NAME = "state.json"


def _attributed(producer: Producer | None, execution_id: str) -> Producer | None:
    if producer is None or producer.execution_id is not None:
        return producer
    return producer.model_copy(update={"execution_id": execution_id})


def _execution_dir(scope_dir: Path, execution_id: str) -> Path:
    return Path(scope_dir) / EXECUTION_DIR_NAME / validate_name(execution_id, "execution_id")


ExecutionAsset = TypeVar("ExecutionAsset", ErrorTraceAsset, ExecutionStateAsset)


def _register(
    catalog: Catalog,
    scope: AssetScope,
    scope_dir: Path,
    asset_type: type[ExecutionAsset],
    kind: AssetKind,
    *,
    path: Path,
    name: str,
    execution_id: str,
    producer: Producer | None,
    **fields: Any,
) -> ExecutionAsset:
    """Register the payload at ``path`` (already written) as this execution's asset."""
    digest = digest_payload(path)
    now = utc_now()
    asset = asset_type(
        id=asset_id_for(scope, kind, name),
        name=name,
        scope=scope,
        path=catalog.relative_path(path, kind.value.replace("_", " ")),
        created_at=now,
        updated_at=now,
        producer=_attributed(producer, execution_id),
        content_hash=digest.content_hash,
        size=digest.size,
        execution_id=execution_id,
        **fields,
    )
    return catalog.register(asset, Path(scope_dir) / RECORD_DIR_NAME)


def write_error_trace(
    catalog: Catalog,
    scope: AssetScope,
    scope_dir: Path,
    *,
    execution_id: str,
    error_type: str,
    text: str,
    producer: Producer | None,
) -> ErrorTraceAsset:
    """Write ``execution/<execution_id>/error.txt`` and register its ``ErrorTraceAsset``."""
    path = _execution_dir(scope_dir, execution_id) / ERROR_TRACE_FILE_NAME
    atomic_write_text(path, text)
    return _register(
        catalog,
        scope,
        scope_dir,
        ErrorTraceAsset,
        AssetKind.ERROR_TRACE,
        path=path,
        name=f"error-{execution_id}",
        execution_id=execution_id,
        producer=producer,
        error_type=error_type,
    )


def write_execution_state(
    catalog: Catalog,
    scope: AssetScope,
    scope_dir: Path,
    *,
    execution_id: str,
    state: Mapping[str, Any],
    producer: Producer | None,
) -> ExecutionStateAsset:
    """Write ``execution/<execution_id>/state.json`` and register its ``ExecutionStateAsset``."""
    path = _execution_dir(scope_dir, execution_id) / EXECUTION_STATE_FILE_NAME
    try:
        # Compact on purpose: `indent=` makes json fall back to its pure-Python encoder, which made
        # this write the largest cost of executing a 1,000-task workflow under a run.
        text = json.dumps(dict(state), ensure_ascii=False, separators=(",", ":")) + "\n"
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"execution state of execution {execution_id!r} is not JSON-serializable: {exc}"
        ) from None
    atomic_write_text(path, text)
    return _register(
        catalog,
        scope,
        scope_dir,
        ExecutionStateAsset,
        AssetKind.EXECUTION_STATE,
        path=path,
        name=f"state-{execution_id}",
        execution_id=execution_id,
        producer=producer,
    )
