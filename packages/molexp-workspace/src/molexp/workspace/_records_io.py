"""One JSON record file on disk, read and written with optimistic change detection.

Owns ``RecordFile``: it remembers the exact bytes it last read or wrote, so code holding
the record's lock can tell in one small read whether anybody else changed the file
(and skip re-parsing when nobody did), and can put those bytes back when a write fails
after its rename; and ``StaleRecordError`` for saves that would overwrite somebody
else's change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Generic, TypeVar

from molexp.assets import VersionedRecord, atomic_write_bytes, parse_record
from molexp.assets.storage import (
    create_exclusive_bytes,
    decode_json,
    read_record_bytes,
    read_settled,
    restore_file,
)
from pydantic_core import PydanticSerializationError

from ._errors import StaleRecordError

__all__ = ["RecordFile", "StaleRecordError", "read_record"]

M = TypeVar("M", bound=VersionedRecord)


def _decode(path: Path, raw: bytes, model: type[M]) -> M:
    return parse_record(path, decode_json(path, raw), model)


def _read(path: Path, model: type[M]) -> tuple[bytes, M]:
    """The record's bytes and model (a cut-short read on a network filesystem is re-read)."""
    return read_settled(path, lambda raw: _decode(path, raw, model))


def read_record(path: Path, model: type[M]) -> M:
    """Load and validate one record; ``RecordError`` names the file and the field."""
    return _read(path, model)[1]


class RecordFile(Generic[M]):
    """A record file plus the bytes this process last saw in it."""

    def __init__(self, path: Path, model: type[M]) -> None:
        self.path = path
        self.model = model
        self._seen: bytes | None = None

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> M:
        """Read and validate the record, remembering its bytes."""
        raw, record = _read(self.path, self.model)
        self._seen = raw
        return record

    def refresh(self, current: M) -> M:
        """``current`` if the file still holds what this process last saw, else the new record."""
        raw = read_record_bytes(self.path)
        if raw == self._seen:
            return current
        raw, record = read_settled(self.path, lambda raw: _decode(self.path, raw, self.model))
        self._seen = raw
        return record

    def changed_since_seen(self) -> bool:
        """Whether the file differs from what this process last read or wrote."""
        try:
            return self.path.read_bytes() != self._seen
        except FileNotFoundError:
            return self._seen is not None

    def _encode(self, record: M) -> bytes:
        try:
            return (record.model_dump_json(indent=2) + "\n").encode("utf-8")
        except (PydanticSerializationError, UnicodeError) as exc:
            raise ValueError(f"{self.path}: the record cannot be written as JSON: {exc}") from None

    def create(self, record: M, *, durable: bool = True) -> bool:
        """Write ``record`` unless the file exists (exclusive across hosts); True if written."""
        data = self._encode(record)
        if not create_exclusive_bytes(self.path, data, durable=durable):
            return False
        self._seen = data
        return True

    def write(self, record: M, *, durable: bool = True) -> None:
        """Atomically replace the file with ``record`` (call with the record's lock held).

        All or nothing: if the write fails after its rename (the directory fsync), the
        file is put back to what this process last saw in it.
        """
        data = self._encode(record)
        try:
            atomic_write_bytes(self.path, data, durable=durable)
        except BaseException:
            self.restore(self._seen)
            raise
        self._seen = data

    @property
    def seen(self) -> bytes | None:
        """The bytes this process last read or wrote (None: none yet)."""
        return self._seen

    def restore(self, previous: bytes | None) -> None:
        """After a failed write (lock held): put the file back to ``previous`` (None: absent)."""
        restore_file(self.path, previous)
        self._seen = previous

    def forget(self) -> None:
        """Drop the remembered bytes so the next ``refresh`` re-parses the file."""
        self._seen = None
