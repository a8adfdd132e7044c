"""Read-only views of the catalog: :class:`AssetView`, one scope and everything beneath it."""

from __future__ import annotations

import builtins
from collections.abc import Iterator

from molexp.assets._catalog import Catalog
from molexp.assets._models import Asset, AssetKind, AssetScope

__all__ = ["AssetView"]


class AssetView:
    """A read-only view of the catalog for one scope and everything beneath it."""

    def __init__(self, catalog: Catalog, scope: AssetScope) -> None:
        if scope.workspace_id != catalog.workspace_id:
            raise ValueError(
                f"view scope belongs to workspace {scope.workspace_id!r}, "
                f"but the catalog indexes workspace {catalog.workspace_id!r}"
            )
        self._catalog = catalog
        self._scope = scope

    def __repr__(self) -> str:
        return f"AssetView({self._scope.describe()})"

    @property
    def scope(self) -> AssetScope:
        """The scope this view shows."""
        return self._scope

    def list(self, kind: AssetKind | str | None = None) -> builtins.list[Asset]:
        """Assets in this scope and beneath it, oldest first."""
        return self._catalog.query_assets(within=self._scope, kind=kind)

    def get(self, name: str, kind: AssetKind | str | None = None) -> Asset | None:
        """The asset called ``name``: the one closest to this scope, then the newest."""
        matches = self._catalog.query_assets(within=self._scope, name=name, kind=kind)
        if not matches:
            return None
        return min(matches, key=lambda a: (a.scope.depth, -a.updated_at.timestamp(), a.id))

    def __iter__(self) -> Iterator[Asset]:
        return iter(self.list())

    def __len__(self) -> int:
        return self._catalog.count(within=self._scope)
