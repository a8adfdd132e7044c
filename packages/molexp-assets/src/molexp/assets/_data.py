"""The data-asset library of a scope: external data imported under a stable name.

``import_asset`` places the payload at
``<scope_dir>/data_assets/<asset_id>/payload/<basename(src)>`` using one of four
actions — ``copy``, ``move``, ``symlink`` (an absolute link to the source) or
``hardlink`` (for a directory, every file is hardlinked into a new tree) — and
registers a ``DataAsset`` recording the original location and the action. The
payload is assembled in a hidden staging directory and renamed into place, so a
failed import leaves no half-imported asset (and a failed move puts the source back);
if registering the record fails, the payload is removed again (a replaced asset gets
its previous payload back), so a retry finds nothing in its way.
"""

from __future__ import annotations

import builtins
import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast, get_args

from molexp.assets._catalog import Catalog
from molexp.assets._io import locked, validate_name
from molexp.assets._models import (
    AssetKind,
    AssetScope,
    DataAsset,
    ImportAction,
    asset_id_for,
    utc_now,
)
from molexp.assets._payload import install_path, remove_path, replacing, staging_dir
from molexp.assets._permissions import copy_file, copy_tree, make_dirs
from molexp.assets._scoped import ScopedStore

__all__ = ["DATA_ASSETS_DIR_NAME", "IMPORT_ACTIONS", "PAYLOAD_DIR_NAME", "DataAssetLibrary"]

DATA_ASSETS_DIR_NAME = "data_assets"
PAYLOAD_DIR_NAME = "payload"
IMPORT_ACTIONS: tuple[str, ...] = get_args(ImportAction)


def _hardlink_tree(source: Path, dest: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, dest, symlinks=True, copy_function=os.link)
    else:
        dest.hardlink_to(source)


def _materialize(source: Path, dest: Path, action: str, what: str) -> None:
    if action == "copy":  # modes from the umask; moved and linked files keep theirs
        if source.is_dir():
            copy_tree(source, dest)
        else:
            copy_file(source, dest)
    elif action == "move":
        shutil.move(source, dest)
    elif action == "symlink":
        dest.symlink_to(source.resolve(), target_is_directory=source.is_dir())
    else:
        try:
            _hardlink_tree(source, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            raise OSError(
                exc.errno,
                f"{what}: cannot hardlink {source} into {dest.parent}: they are on different "
                "filesystems; use action='copy' or 'symlink'",
            ) from exc


class DataAssetLibrary(ScopedStore):
    """Imports, finds and removes the data assets of one scope."""

    def __init__(self, catalog: Catalog, scope: AssetScope, scope_dir: Path) -> None:
        super().__init__(catalog, scope, scope_dir, producer=None)

    @property
    def directory(self) -> Path:
        """Directory that holds this scope's data assets."""
        return self._scope_dir / DATA_ASSETS_DIR_NAME

    def import_asset(
        self,
        name: str,
        src: str | os.PathLike[str],
        action: str = "copy",
        meta: dict[str, Any] | None = None,
        *,
        overwrite: bool = False,
        tags: Sequence[str] | None = None,
    ) -> DataAsset:
        """Import ``src`` (file or directory) as the data asset ``name``.

        Raises ``ValueError`` for an unknown action or an existing name without
        ``overwrite=True``, and ``FileNotFoundError`` if ``src`` does not exist.
        """
        validate_name(name, "data asset name")
        what = f"data asset {name!r}"
        if action not in IMPORT_ACTIONS:
            raise ValueError(
                f"{what}: unknown import action {action!r}; "
                f"expected one of: {', '.join(IMPORT_ACTIONS)}"
            )
        source = Path(src).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"{what}: source {source} does not exist")
        source = source.absolute()
        original_location = str(source.resolve())
        basename = validate_name(
            source.resolve().name if source.name == ".." else source.name, "source file name"
        )
        asset_id = asset_id_for(self._scope, AssetKind.DATA, name)
        asset_dir = self.directory / asset_id
        if source.is_dir() and self.directory.resolve().is_relative_to(source.resolve()):
            raise ValueError(
                f"{what}: cannot import {source}: the directory contains the destination "
                f"{asset_dir} (the copy would never end)"
            )
        make_dirs(self.directory)
        with locked(asset_dir):
            if not overwrite and (self._catalog.get(asset_id) is not None or asset_dir.exists()):
                raise ValueError(
                    f"{what} already exists in {self._scope.describe()}; "
                    "pass overwrite=True to replace it"
                )
            with replacing(asset_dir):
                self._install(source, asset_dir, basename, action, what)
                installed = asset_dir / PAYLOAD_DIR_NAME / basename
                try:
                    payload = self._describe_payload(installed)
                    now = utc_now()
                    asset = DataAsset(
                        id=asset_id,
                        name=name,
                        scope=self._scope,
                        path=payload.path,
                        created_at=now,
                        updated_at=now,
                        tags=list(tags or ()),
                        content_hash=payload.content_hash,
                        size=payload.size,
                        meta=dict(meta or {}),
                        source=original_location,
                        action=cast(ImportAction, action),
                    )
                    return self._catalog.register(asset, self._record_dir)
                except BaseException:
                    if action == "move":
                        shutil.move(installed, source)
                    raise

    @staticmethod
    def _install(source: Path, asset_dir: Path, basename: str, action: str, what: str) -> None:
        staging = staging_dir(asset_dir)
        staged = staging / PAYLOAD_DIR_NAME / basename
        staged.parent.mkdir()
        try:
            _materialize(source, staged, action, what)
            install_path(staging, asset_dir)
        except BaseException:
            if action == "move" and (staged.exists() or staged.is_symlink()):
                shutil.move(staged, source)
            raise
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def get(self, name: str) -> DataAsset | None:
        """The data asset ``name`` in this library's scope.

        Args:
            name: Name of the data asset.

        Returns:
            The data asset, or None if there is none.
        """
        found = self._catalog.find(name, [self._scope], kind=AssetKind.DATA)
        return found if isinstance(found, DataAsset) else None

    def list(self) -> builtins.list[DataAsset]:
        """The data assets of exactly this scope, oldest first."""
        found = self._catalog.query_assets(scope=self._scope, kind=AssetKind.DATA)
        return [asset for asset in found if isinstance(asset, DataAsset)]

    def _require(self, name: str) -> DataAsset:
        asset = self.get(name)
        if asset is None:
            raise KeyError(f"no data asset named {name!r} in {self._scope.describe()}")
        return asset

    def path(self, name: str) -> Path:
        """Absolute path of the asset's payload (``KeyError`` naming asset and scope if absent)."""
        return self._catalog.root / self._require(name).path

    def remove(self, name: str) -> None:
        """Delete the asset's payload directory, record and index row."""
        asset = self._require(name)
        asset_dir = self.directory / asset.id
        with locked(asset_dir):
            remove_path(asset_dir)
            self._catalog.delete(asset.id)
