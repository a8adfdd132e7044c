"""Per-execution records of a run: the error trace and the execution-state snapshot.

Both live under ``<scope_dir>/execution/<execution_id>/`` (``error.txt`` and
``state.json``) and are registered as ``ErrorTraceAsset`` / ``ExecutionStateAsset``
named ``error-<execution_id>`` / ``state-<execution_id>``; writing again for the
same execution replaces the payload and updates the same asset.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from molexp.assets._catalog import RECORD_DIR_NAME, Catalog
from molexp.assets._hashing import PayloadDigest, digest_payload
from molexp.assets._io import atomic_write_bytes, atomic_write_text, validate_name
from molexp.assets._models import (
    AssetKind,
    AssetScope,
    ErrorTraceAsset,
    ExecutionStateAsset,
    Producer,
    asset_id_for,
    utc_now,
)
from pydantic_core import PydanticSerializationError, to_json

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
    digest: PayloadDigest | None = None,
    **fields: Any,
) -> ExecutionAsset:
    """Register the payload at ``path`` (already written) as this execution's asset.

    ``digest`` is that of the bytes just written, when the caller has them (the file is then
    not read back to hash it); by default the file is hashed.
    """
    if digest is None:
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
    data = encode_state(state, execution_id)
    atomic_write_bytes(path, data)
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
        # The bytes just written: the same content hash as reading the file back, without the
        # read (state.json of a 1,000-task workflow is about 0.5 MB).
        digest=PayloadDigest(hashlib.sha256(data).hexdigest(), len(data)),
    )


def encode_state(state: Mapping[str, Any], execution_id: str) -> bytes:
    """``state`` as compact UTF-8 JSON plus a newline (the content of ``state.json``).

    Encoded by pydantic-core's serializer, about three times faster than ``json.dumps`` (the
    encoding was the largest single cost of recording a 1,000-task execution); the text parses
    to the same values (floats keep their shortest round-trip form, NaN and infinities are
    written as ``json.dumps`` writes them). Values pydantic knows how to write as JSON (tuples,
    sets, datetimes, enums, ...) are written as such; anything else is a ``TypeError``.
    """
    try:
        return to_json(dict(state), inf_nan_mode="constants") + b"\n"
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise TypeError(
            f"execution state of execution {execution_id!r} is not JSON-serializable: {exc}"
        ) from None
