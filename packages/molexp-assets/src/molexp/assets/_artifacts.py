"""Artifacts: named files a run (or any scope) saves under ``<scope_dir>/artifacts/``.

Each save serializes the data by its type (see ``molexp.assets._payload``), writes it
atomically, and registers an ``ArtifactAsset`` (if that registration fails, the previous
payload is put back: payload and record always agree) whose id is derived from the scope
and the name, so saving the same name again updates the same asset.

A store bound to an execution attempt (``per_attempt=True``) keeps each attempt's files
apart: payloads go to ``<scope_dir>/execution/<execution_id>/artifacts/<name>``, the asset
id folds in the execution id (an attempt never replaces an earlier attempt's record), and
``<scope_dir>/artifacts/<name>`` - the current view - is a hard link to the latest saved
payload of that name. ``recover()`` settles a save a killed writer left half done.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from molexp.assets._attempt_files import ASIDE, TEMP, show_in_view
from molexp.assets._hashing import digest_payload
from molexp.assets._io import locked, validate_name
from molexp.assets._models import ArtifactAsset, AssetKind, Producer, asset_id_for, utc_now
from molexp.assets._payload import load_payload, remove_path, replacing, write_payload
from molexp.assets._permissions import make_dirs
from molexp.assets._scoped import ScopedStore

__all__ = ["ARTIFACTS_DIR_NAME", "ArtifactStore"]

ARTIFACTS_DIR_NAME = "artifacts"


class ArtifactStore(ScopedStore):
    """Saves, lists and loads the artifacts of one scope (or of one attempt of a run)."""

    @property
    def directory(self) -> Path:
        """Where saves write: the attempt's ``execution/<id>/artifacts/`` or ``artifacts/``."""
        attempt = self.attempt_dir
        base = attempt if attempt is not None else self._scope_dir
        return base / ARTIFACTS_DIR_NAME

    @property
    def view_directory(self) -> Path:
        """``<scope_dir>/artifacts/``: the latest payload of every name."""
        return self._scope_dir / ARTIFACTS_DIR_NAME

    def path(self, name: str) -> Path:
        """Where the artifact ``name`` is written (whether or not it has been saved yet).

        A tool may write there directly (the directory exists once this returns) and then call
        ``save(name, store.path(name))`` to register the file in place without copying it. For
        a per-attempt store this is the attempt's own file, never one an earlier attempt wrote.
        """
        target = self._target(name)
        self.directory.mkdir(parents=True, exist_ok=True)
        return target

    def _target(self, name: str) -> Path:
        """Where the artifact ``name`` goes, creating nothing (saves make their directory only
        once the payload is accepted)."""
        return self.directory / validate_name(name, "artifact name")

    def asset_id(self, name: str) -> str:
        """The id the artifact ``name`` of this store is registered under."""
        return asset_id_for(self._scope, AssetKind.ARTIFACT, name, execution_id=self.execution_id)

    def save(
        self,
        name: str,
        data: object,
        *,
        task_name: str | None = None,
        tags: Sequence[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> ArtifactAsset:
        """Write ``data`` to the artifact ``name`` and register (or update) its asset."""
        dest = self._target(name)
        what = f"artifact {name!r}"
        producer = self._producer_for(task_name, what)
        created = _missing_dirs(self.directory, self._scope_dir)
        make_dirs(self.directory)
        try:
            return self._save(name, dest, data, what, producer, tags, meta)
        except BaseException:
            for directory in created:  # a refused save leaves no trace (deepest first)
                with contextlib.suppress(OSError):
                    directory.rmdir()
            raise

    def _save(
        self,
        name: str,
        dest: Path,
        data: object,
        what: str,
        producer: Producer | None,
        tags: Sequence[str] | None,
        meta: dict[str, Any] | None,
    ) -> ArtifactAsset:
        with locked(dest):
            with replacing(dest):
                media_type = write_payload(dest, data, what=what)
                payload = self._describe_payload(dest)
                now = utc_now()
                asset = ArtifactAsset(
                    id=self.asset_id(name),
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
                registered = self._catalog.register(asset, self._record_dir)
            if self.execution_id is not None:
                show_in_view(dest, self.view_directory / name)
        return registered

    def get(self, name: str) -> ArtifactAsset | None:
        """The artifact ``name`` of this scope (the latest attempt's, for a run)."""
        found = self._catalog.find(name, [self._scope], kind=AssetKind.ARTIFACT)
        return found if isinstance(found, ArtifactAsset) else None

    def list(self) -> list[ArtifactAsset]:
        """The artifacts of exactly this scope, one per name (the latest), oldest first."""
        found = self._catalog.query_assets(scope=self._scope, kind=AssetKind.ARTIFACT)
        latest: dict[str, ArtifactAsset] = {}
        for asset in found:
            if not isinstance(asset, ArtifactAsset):
                continue
            known = latest.get(asset.name)
            if known is None or asset.updated_at >= known.updated_at:
                latest[asset.name] = asset
        return sorted(latest.values(), key=lambda asset: (asset.created_at, asset.id))

    def load(self, name: str) -> object:
        """Read an artifact back: JSON -> object, text -> str, directory -> Path, else bytes."""
        asset = self.get(name)
        if asset is None:
            raise KeyError(f"no artifact named {name!r} in {self._scope.describe()}")
        return load_payload(
            self._catalog.root / asset.path, asset.media_type, what=f"artifact {name!r}"
        )

    def recover(self) -> builtins.list[str]:
        """Make this store's payloads agree with their records again; returns the names fixed.

        A writer killed inside ``save`` may leave the previous payload aside
        (``.<name>.<uuid>.old``, see ``replacing``) and temp files behind. For each aside the
        payload its record describes is kept (the aside is put back when the record still
        describes it), temp files are removed. Only for a store whose writer is gone.
        """
        directory = self.directory
        if not directory.is_dir():
            return []
        fixed: builtins.list[str] = []
        with os.scandir(directory) as scan:
            names = sorted(entry.name for entry in scan)
        for entry in names:
            aside = ASIDE.match(entry)
            if aside is not None:
                name = aside.group("name")
                with locked(directory / name):
                    if self._settle(name, directory / entry):
                        fixed.append(name)
            elif TEMP.match(entry) is not None:
                remove_path(directory / entry)
        return fixed

    def _settle(self, name: str, aside: Path) -> bool:
        """Keep whichever of ``name`` and its ``aside`` its record describes; True if changed."""
        dest = self.directory / name
        if not (dest.exists() or dest.is_symlink()):
            aside.rename(dest)  # killed between moving a directory aside and installing the new
            return True
        record = self._stored_record(self.asset_id(name))
        if record is None or _describes(record, dest):
            remove_path(aside)
            return False
        if _describes(record, aside):
            if dest.is_dir() and not dest.is_symlink():
                remove_path(dest)
            aside.replace(dest)
            return True
        # Neither matches (an earlier crash left the record behind too): the payload wins.
        remove_path(aside)
        payload = self._describe_payload(dest)
        update = {"content_hash": payload.content_hash, "size": payload.size}
        self._catalog.register(record.model_copy(update=update), self._record_dir)
        return True


def _missing_dirs(directory: Path, stop: Path) -> builtins.list[Path]:
    """The directories from ``directory`` up to (not including) ``stop`` that do not exist."""
    missing = []
    while directory != stop and directory.parent != directory and not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    return missing


def _describes(record: object, payload: Path) -> bool:
    if not isinstance(record, ArtifactAsset):
        return False
    try:
        digest = digest_payload(payload)
    except OSError:
        return False
    return (digest.content_hash, digest.size) == (record.content_hash, record.size)
