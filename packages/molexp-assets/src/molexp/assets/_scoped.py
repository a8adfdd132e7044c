"""Common base of the per-scope stores: where a scope keeps payloads and asset records.

A store made with ``per_attempt=True`` is bound to the execution attempt its producer
names: artifacts and logs then live under ``<scope_dir>/execution/<execution_id>/`` and
are shown in the scope's current view (see ``molexp.assets._attempt_files``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from molexp.assets._attempt_files import attempt_dir
from molexp.assets._catalog import RECORD_DIR_NAME, Catalog, load_asset_record
from molexp.assets._hashing import digest_payload
from molexp.assets._io import RecordError
from molexp.assets._models import Asset, AssetScope, Producer

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
        *,
        per_attempt: bool = False,
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
        self._execution_id: str | None = None
        if per_attempt:
            if producer is None or producer.execution_id is None:
                raise ValueError(
                    f"a per-attempt store for {scope.describe()} needs a producer naming "
                    "its execution (Producer(run_id=..., execution_id=...))"
                )
            self._execution_id = producer.execution_id
            attempt_dir(self._scope_dir, producer.execution_id)  # a valid directory name

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

    @property
    def execution_id(self) -> str | None:
        """The attempt this store writes for (``per_attempt``), else None."""
        return self._execution_id

    @property
    def attempt_dir(self) -> Path | None:
        """``<scope_dir>/execution/<execution_id>`` for a per-attempt store, else None."""
        if self._execution_id is None:
            return None
        return attempt_dir(self._scope_dir, self._execution_id)

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

    def _stored_record(self, asset_id: str) -> Asset | None:
        """The record file of ``asset_id`` as it is on disk (None: missing or unreadable)."""
        try:
            return load_asset_record(self._record_dir / f"{asset_id}.json")
        except (RecordError, OSError):
            return None
