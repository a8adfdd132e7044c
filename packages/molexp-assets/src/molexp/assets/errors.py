"""Every exception the assets layer raises, under one base: :class:`AssetError`.

Each also derives from the builtin its callers have always caught::

    AssetError
    ├── RecordError (ValueError)                a record file cannot be read: names file and field
    │   └── UnsupportedVersionError              written by a newer MolExp
    └── SharedPermissionError (PermissionError) a write refused by permissions: names path and fix
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["AssetError", "RecordError", "SharedPermissionError", "UnsupportedVersionError"]


class AssetError(Exception):
    """Base of every exception the assets layer raises."""


class RecordError(AssetError, ValueError):
    """A persisted record could not be read: names the file and, when known, the field."""

    def __init__(self, path: Path | str, message: str, *, field: str | None = None) -> None:
        self.path = Path(path)
        self.field = field
        self.message = message
        where = f"{self.path}" + (f" (field {field!r})" if field else "")
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[RecordError], tuple[Path, str], dict[str, object]]:
        # Crosses process boundaries (Dask workers, remote tasks) with its fields intact.
        return type(self), (self.path, self.message), {"field": self.field}


class UnsupportedVersionError(RecordError):
    """A record was written by a newer MolExp than the one reading it."""


class SharedPermissionError(AssetError, PermissionError):
    """A write refused by file permissions; ``str()`` is one line naming the path and the fix."""

    def __init__(self, path: Path, message: str, code: int = errno.EACCES) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.errno = code
        self.filename = str(path)

    def __str__(self) -> str:
        return self.message
