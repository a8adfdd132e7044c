"""Checkpoints: a linear chain of saved states per scope under ``<scope_dir>/.ckpt/``.

Each save gets the next sequence number of the scope (whatever its name) and points
at the previous checkpoint through ``parent_id``. The payload is written to
``.ckpt/<sequence:06d>-<name>`` with the artifact serialization rules; saving without
data writes an empty marker file and records ``media_type=None``. Sequence numbers
are allocated under a lock of the ``.ckpt`` directory itself, so concurrent savers in
several processes still form one chain; a save whose registration fails removes its
payload again, and a payload left without a record by a process that died mid-save is
removed by the next save, so the chain never continues from an unregistered checkpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

from molexp.assets._io import atomic_write_bytes, locked, validate_name
from molexp.assets._models import AssetKind, CheckpointAsset, asset_id_for, utc_now
from molexp.assets._payload import load_payload, remove_path, replacing, write_payload
from molexp.assets._permissions import make_dirs
from molexp.assets._scoped import ScopedStore

__all__ = ["CHECKPOINT_DIR_NAME", "CheckpointStore"]

CHECKPOINT_DIR_NAME = ".ckpt"
_ENTRY = re.compile(r"^(\d+)-(.+)$")


def _entry_name(sequence: int, name: str) -> str:
    return f"{sequence:06d}-{name}"


class CheckpointStore(ScopedStore):
    """Saves and reads back the checkpoint chain of one scope."""

    @property
    def directory(self) -> Path:
        """Directory that holds this scope's checkpoints."""
        return self._scope_dir / CHECKPOINT_DIR_NAME

    def _last_entry(self) -> tuple[int, str] | None:
        """The newest checkpoint of the chain (call with the chain lock held).

        A payload without an asset record belongs to a save that died between writing
        the payload and registering it (a live saver would hold the lock): it is
        removed, so the chain continues from the last registered checkpoint.
        """
        if not self.directory.is_dir():
            return None
        entries = []
        for entry in self.directory.iterdir():
            match = _ENTRY.match(entry.name)
            if match:
                entries.append((int(match.group(1)), entry.name))
        for sequence, name in sorted(entries, reverse=True):
            record = (
                self._record_dir / f"{asset_id_for(self._scope, AssetKind.CHECKPOINT, name)}.json"
            )
            if record.is_file():
                return sequence, name
            remove_path(self.directory / name)
        return None

    def save(
        self, name: str, data: object = None, *, task_name: str | None = None
    ) -> CheckpointAsset:
        """Append a checkpoint called ``name`` to the chain (``data=None`` saves a marker)."""
        validate_name(name, "checkpoint name")
        what = f"checkpoint {name!r}"
        producer = self._producer_for(task_name, what)
        make_dirs(self.directory)
        with locked(self.directory / "chain"):
            previous = self._last_entry()
            sequence = previous[0] + 1 if previous else 1
            entry = validate_name(_entry_name(sequence, name), "checkpoint file name")
            dest = self.directory / entry
            with replacing(dest):
                if data is None:
                    atomic_write_bytes(dest, b"")
                    media_type = None
                else:
                    media_type = write_payload(dest, data, what=what)
                payload = self._describe_payload(dest)
                now = utc_now()
                asset = CheckpointAsset(
                    id=asset_id_for(self._scope, AssetKind.CHECKPOINT, entry),
                    name=name,
                    scope=self._scope,
                    path=payload.path,
                    created_at=now,
                    updated_at=now,
                    producer=producer,
                    content_hash=payload.content_hash,
                    size=payload.size,
                    sequence=sequence,
                    parent_id=(
                        asset_id_for(self._scope, AssetKind.CHECKPOINT, previous[1])
                        if previous
                        else None
                    ),
                    media_type=media_type,
                )
                return self._catalog.register(asset, self._record_dir)

    def chain(self) -> list[CheckpointAsset]:
        """Every checkpoint of this scope in sequence order."""
        found = self._catalog.query_assets(scope=self._scope, kind=AssetKind.CHECKPOINT)
        checkpoints = [asset for asset in found if isinstance(asset, CheckpointAsset)]
        return sorted(checkpoints, key=lambda asset: asset.sequence)

    def latest(self, name: str | None = None) -> CheckpointAsset | None:
        """The most recent checkpoint (of that ``name``, if given)."""
        candidates = [c for c in self.chain() if name is None or c.name == name]
        return candidates[-1] if candidates else None

    def load(self, checkpoint: CheckpointAsset | str) -> object:
        """The data of a checkpoint (or of the latest one called ``checkpoint``)."""
        if isinstance(checkpoint, str):
            found = self.latest(checkpoint)
            if found is None:
                raise KeyError(f"no checkpoint named {checkpoint!r} in {self._scope.describe()}")
            checkpoint = found
        return load_payload(
            self._catalog.root / checkpoint.path,
            checkpoint.media_type,
            what=f"checkpoint {checkpoint.name!r} #{checkpoint.sequence}",
        )
