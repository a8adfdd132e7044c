"""What the objects of the hierarchy share: one JSON record each, read, edited and saved alike.

``StoredRecord`` gives Workspace, Project and Experiment their ``metadata``, ``id``, ``name``,
``record_path``, ``save()`` (``StaleRecordError`` when someone else changed the file since it
was read) and ``reload()``. A subclass checks that a record belongs where it was found
(``_check``) and normalizes edits before they are written (``_before_save``). ``Run`` keeps its
own writes: each is a claimed transition (see ``_run``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from molexp.assets import VersionedRecord, locked

from ._errors import StaleRecordError
from ._records import utc_now
from ._records_io import RecordFile

__all__ = ["StoredRecord"]

M = TypeVar("M", bound=VersionedRecord)


class StoredRecord(Generic[M]):
    """An object backed by one record file; see the module."""

    _metadata: M
    _record: RecordFile[M]
    _lock: threading.RLock

    def _init_record(self, metadata: M, record: RecordFile[M]) -> None:
        self._metadata = metadata
        self._record = record
        self._lock = threading.RLock()

    @property
    def metadata(self) -> M:
        """The record as last read or written; edit it and call ``save()`` to persist it."""
        return self._metadata

    @property
    def id(self) -> str:
        return str(getattr(self._metadata, "id"))  # noqa: B009 - every hierarchy record has one

    @property
    def name(self) -> str:
        return str(getattr(self._metadata, "name"))  # noqa: B009 - every hierarchy record has one

    @property
    def record_path(self) -> Path:
        return self._record.path

    def _check(self, metadata: M) -> M:
        """Raise ``RecordError`` unless ``metadata`` belongs where this object found it."""
        return metadata

    def _before_save(self, metadata: M) -> None:
        """Validate or normalize edits before ``save()`` writes them (raise to refuse)."""

    def save(self) -> None:
        """Persist edits to ``metadata``; ``StaleRecordError`` if the file changed meanwhile."""
        with self._lock, locked(self._record.path):
            if self._record.changed_since_seen():
                raise StaleRecordError(self._record.path)
            self._before_save(self._metadata)
            updated: Any = self._metadata
            updated.updated_at = utc_now()
            self._record.write(self._metadata)

    def reload(self) -> Self:
        """Re-read the record file, discarding unsaved edits."""
        with self._lock:
            self._metadata = self._check(self._record.load())
        return self
