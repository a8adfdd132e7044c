"""Common base of the per-scope stores: where a scope keeps payloads and asset records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from molexp.assets._catalog import RECORD_DIR_NAME, Catalog
from molexp.assets._hashing import digest_payload
from molexp.assets._models import AssetScope, Producer

__all__ = ["PayloadInfo", "ScopedStore"]


@dataclass(frozen=True)
class PayloadInfo:
    """The payload fields of an asset record."""

    path: str
    content_hash: str
    size: int


class ScopedStore:
    """Binds a catalog to one scope, its directory and (for run outputs) a producer."""

    def __init__(
        self,
        catalog: Catalog,
        scope: AssetScope,
        scope_dir: Path,
        producer: Producer | None = None,
    ) -> None:
        if scope.workspace_id != catalog.workspace_id:
            raise ValueError(
                f"scope {scope.describe()!r} belongs to workspace {scope.workspace_id!r}, "
                f"but the catalog indexes workspace {catalog.workspace_id!r}"
            )
        self._catalog = catalog
        self._scope = scope
        self._scope_dir = Path(scope_dir)
        self._record_dir = self._scope_dir / RECORD_DIR_NAME
        self._producer = producer

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    @property
    def scope(self) -> AssetScope:
        return self._scope

    @property
    def scope_dir(self) -> Path:
        return self._scope_dir

    @property
    def producer(self) -> Producer | None:
        return self._producer

    def _producer_for(self, task_name: str | None, what: str) -> Producer | None:
        if task_name is None:
            return self._producer
        if self._producer is None:
            raise ValueError(
                f"{what}: task_name={task_name!r} needs a producer run, "
                f"but this store for {self._scope.describe()} has none"
            )
        return self._producer.model_copy(update={"task_name": task_name})

    def _describe_payload(self, payload: Path) -> PayloadInfo:
        """Where a payload lives (relative to the root) and its content hash and size."""
        digest = digest_payload(payload)
        return PayloadInfo(
            path=self._catalog.relative_path(payload, "payload"),
            content_hash=digest.content_hash,
            size=digest.size,
        )
