"""Test helpers: build and register assets of any kind without going through a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molexp.assets import (
    Asset,
    AssetKind,
    AssetScope,
    Catalog,
    Producer,
    asset_id_for,
    parse_asset,
)

_EXTRA: dict[AssetKind, dict[str, Any]] = {
    AssetKind.DATA: {"source": "/data/src", "action": "copy"},
    AssetKind.ARTIFACT: {"media_type": "application/json"},
    AssetKind.LOG: {"line_count": 1},
    AssetKind.CHECKPOINT: {"sequence": 1},
    AssetKind.ERROR_TRACE: {"execution_id": "x", "error_type": "ValueError"},
    AssetKind.EXECUTION_STATE: {"execution_id": "x"},
}


def scope_dir(root: Path, scope: AssetScope) -> Path:
    return root.joinpath(*(part for part in scope.ids if part is not None))


def register(
    catalog: Catalog,
    scope: AssetScope,
    name: str,
    kind: AssetKind = AssetKind.ARTIFACT,
    *,
    tags: list[str] | None = None,
    producer_run: str | None = None,
) -> Asset:
    """Register a record-only asset of ``kind`` in ``scope`` (no payload file)."""
    data: dict[str, Any] = {
        "id": asset_id_for(scope, kind, name),
        "name": name,
        "kind": kind.value,
        "scope": scope.model_dump(mode="json"),
        "path": f"payloads/{name}",
        "tags": tags or [],
        "producer": Producer(run_id=producer_run).model_dump() if producer_run else None,
        **_EXTRA[kind],
    }
    record_dir = scope_dir(catalog.root, scope) / ".assets"
    return catalog.register(parse_asset(data), record_dir)


def dumps(assets: list[Asset]) -> list[dict[str, Any]]:
    return [asset.model_dump(mode="json") for asset in assets]
