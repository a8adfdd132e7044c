"""Artifacts: named files a run (or any scope) saves under ``<scope_dir>/artifacts/``.

Each save serializes the data by its type (see ``molexp.assets._payload``), writes it
atomically, and registers an ``ArtifactAsset`` (if that registration fails, the previous
payload is put back: payload and record always agree) whose id is derived from the scope
and the name, so saving the same name again updates the same asset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from molexp.assets._io import locked, validate_name
from molexp.assets._models import ArtifactAsset, AssetKind, asset_id_for, utc_now
from molexp.assets._payload import load_payload, replacing, write_payload
from molexp.assets._permissions import make_dirs
from molexp.assets._scoped import ScopedStore

__all__ = ["ARTIFACTS_DIR_NAME", "ArtifactStore"]

ARTIFACTS_DIR_NAME = "artifacts"


class ArtifactStore(ScopedStore):
    """Saves, lists and loads the artifacts of one scope."""

    @property
    def directory(self) -> Path:
        return self._scope_dir / ARTIFACTS_DIR_NAME

    def path(self, name: str) -> Path:
        """Where the artifact ``name`` lives (whether or not it has been saved yet).

        A tool may write there directly and then call ``save(name, store.path(name))``
        to register the file in place without copying it.
        """
        return self.directory / validate_name(name, "artifact name")

    def save(
        self,
        name: str,
        data: object,
        *,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> ArtifactAsset:
        """Write ``data`` to ``artifacts/<name>`` and register (or update) its asset."""
        dest = self.path(name)
        what = f"artifact {name!r}"
        producer = self._producer_for(task_name, what)
        make_dirs(self.directory)
        with locked(dest), replacing(dest):
            media_type = write_payload(dest, data, what=what)
            payload = self._describe_payload(dest)
            now = utc_now()
            asset = ArtifactAsset(
                id=asset_id_for(self._scope, AssetKind.ARTIFACT, name),
                name=name,
                scope=self._scope,
                path=payload.path,
                created_at=now,
                updated_at=now,
                producer=producer,
                tags=list(tags or ()),
                content_hash=payload.content_hash,
                size=payload.size,
                meta=dict(meta or {}),
                media_type=media_type,
            )
            return self._catalog.register(asset, self._record_dir)

    def get(self, name: str) -> ArtifactAsset | None:
        found = self._catalog.find(name, [self._scope], kind=AssetKind.ARTIFACT)
        return found if isinstance(found, ArtifactAsset) else None

    def list(self) -> list[ArtifactAsset]:
        """The artifacts of exactly this scope, oldest first."""
        found = self._catalog.query_assets(scope=self._scope, kind=AssetKind.ARTIFACT)
        return [asset for asset in found if isinstance(asset, ArtifactAsset)]

    def load(self, name: str) -> object:
        """Read an artifact back: JSON -> object, text -> str, directory -> Path, else bytes."""
        asset = self.get(name)
        if asset is None:
            raise KeyError(f"no artifact named {name!r} in {self._scope.describe()}")
        return load_payload(
            self._catalog.root / asset.path, asset.media_type, what=f"artifact {name!r}"
        )
