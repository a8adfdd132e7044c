"""Line-oriented logs under ``<scope_dir>/logs/<name>.log``, registered as ``LogAsset``.

``append(line)`` writes one record per call with a single ``write`` on a file opened
with ``O_APPEND``, so concurrent appenders (threads or processes, on a local
filesystem) never interleave inside a line. A line containing newlines (``\\n``,
``\\r\\n`` or ``\\r``) is split into several lines; one trailing newline is dropped.
The ``LogAsset`` is registered on the first append; its ``line_count``, ``size``,
hash and ``updated_at`` are refreshed on ``flush()``/``close()`` (and when a ``with``
block exits) if this handle appended since, or on demand with ``refresh()`` — not on
every line, so appends stay cheap.

A handle bound to an execution attempt (``per_attempt=True``) writes that attempt's own
file ``<scope_dir>/execution/<execution_id>/logs/<name>.log`` under its own asset id, and
shows it as ``<scope_dir>/logs/<name>.log`` (a hard link, so ``tail -f`` on the view sees
the appends): each attempt's lines stay in their own file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from molexp.assets._attempt_files import show_in_view
from molexp.assets._catalog import Catalog
from molexp.assets._io import locked, validate_name
from molexp.assets._models import AssetKind, AssetScope, LogAsset, Producer, asset_id_for, utc_now
from molexp.assets._permissions import explained_permissions, make_dirs
from molexp.assets._scoped import ScopedStore

__all__ = ["LOGS_DIR_NAME", "LogHandle", "encode_log_lines"]

logger = logging.getLogger("molexp.assets")

LOGS_DIR_NAME = "logs"
_TAIL_BLOCK = 64 * 1024
_READ_CHUNK = 1 << 20


def encode_log_lines(line: str) -> bytes:
    """The bytes ``append(line)`` writes: one ``\\n``-terminated UTF-8 line per embedded line."""
    text = line.replace("\r\n", "\n").replace("\r", "\n")
    text = text.removesuffix("\n")
    return (text + "\n").encode("utf-8", errors="backslashreplace")


def _split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


class LogHandle(ScopedStore):
    """An appendable log file of one scope (thread-safe; one handle per process is enough)."""

    def __init__(
        self,
        catalog: Catalog,
        scope: AssetScope,
        scope_dir: Path,
        name: str,
        producer: Producer | None = None,
        *,
        per_attempt: bool = False,
    ) -> None:
        super().__init__(catalog, scope, scope_dir, producer, per_attempt=per_attempt)
        self._name = validate_name(name, "log name")
        file_name = validate_name(f"{name}.log", "log file")
        self._view_path = self._scope_dir / LOGS_DIR_NAME / file_name
        attempt = self.attempt_dir
        self._path = (attempt / LOGS_DIR_NAME / file_name) if attempt else self._view_path
        self._asset_id = asset_id_for(scope, AssetKind.LOG, name, execution_id=self.execution_id)
        self._fd: int | None = None
        self._fd_pid: int | None = None
        self._shown = False
        self._registered = False
        self._dirty = False
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"LogHandle({self._name!r}, {self._scope.describe()})"

    @property
    def name(self) -> str:
        """Name of the log."""
        return self._name

    @property
    def path(self) -> Path:
        """The file this handle appends to (the attempt's own file, when per attempt)."""
        return self._path

    @property
    def view_path(self) -> Path:
        """``<scope_dir>/logs/<name>.log``: the current view of the log."""
        return self._view_path

    @property
    def asset_id(self) -> str:
        """Id of the log's asset record."""
        return self._asset_id

    def _descriptor(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            make_dirs(self._path.parent)
            with explained_permissions(self._path):  # mode: 0o666 minus the umask
                self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
            self._fd_pid = os.getpid()
            if self._path != self._view_path and not self._shown:
                try:
                    self._show()
                except BaseException:
                    os.close(self._fd)
                    self._fd = None
                    raise
        return self._fd

    def _show(self) -> None:
        """Link this attempt's file into the view, unless that would drop the only name of an
        older file (a log of an earlier layout the new attempt has not moved yet)."""
        try:
            info = self._view_path.lstat()
        except FileNotFoundError:
            info = None
        if (
            info is not None
            and info.st_nlink == 1
            and not self._view_path.is_symlink()
            and not self._view_path.samefile(self._path)
        ):
            logger.warning("log %s is not a view of an attempt; left as it is", self._view_path)
            self._shown = True
            return
        show_in_view(self._path, self._view_path, live=True)
        self._shown = True

    def append(self, line: str) -> None:
        """Append ``line`` (split at embedded newlines) to the log."""
        if not isinstance(line, str):
            raise TypeError(f"log {self._name!r}: append() takes a str, got {type(line).__name__}")
        data = encode_log_lines(line)
        with self._lock:
            fd = self._descriptor()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            self._dirty = True
            if not self._registered:
                self.refresh()

    def refresh(self) -> LogAsset:
        """Recount the log file and update its ``LogAsset`` (line count, size, hash).

        The count is taken under the asset record's lock, so when several processes
        refresh the same log the record always ends with the latest count.
        """
        with self._lock, locked(self._record_dir / f"{self._asset_id}.json"):
            digest = hashlib.sha256()
            line_count = 0
            size = 0
            with self._path.open("rb") as handle:
                while chunk := handle.read(_READ_CHUNK):
                    digest.update(chunk)
                    line_count += chunk.count(b"\n")
                    size += len(chunk)
            now = utc_now()
            asset = LogAsset(
                id=self._asset_id,
                name=self._name,
                scope=self._scope,
                path=self._catalog.relative_path(self._path, "log file"),
                created_at=now,
                updated_at=now,
                producer=self._producer,
                content_hash=digest.hexdigest(),
                size=size,
                line_count=line_count,
            )
            registered = self._catalog.register(asset, self._record_dir)
            self._registered = True
            self._dirty = False
        return registered

    def flush(self) -> LogAsset | None:
        """Refresh the ``LogAsset`` (line count, size, hash) if lines were appended.

        Returns the current asset, or ``None`` if nothing was ever appended.
        """
        with self._lock:
            if self._dirty:
                return self.refresh()
        found = self._catalog.get(self._asset_id)
        return found if isinstance(found, LogAsset) else None

    def recover(self) -> LogAsset | None:
        """Re-count the log when its record lags behind the file (its writer was killed
        between appending and refreshing); None when the file does not exist."""
        try:
            size = self._path.stat().st_size
        except FileNotFoundError:
            return None
        existing = self._stored_record(self._asset_id)
        if isinstance(existing, LogAsset) and existing.size == size:
            return existing
        if existing is not None and existing.producer is not None:
            self._producer = existing.producer
        return self.refresh()

    def close(self) -> None:
        """Flush and close the file; a later ``append`` reopens it."""
        self.flush()
        with self._lock:
            if self._fd is not None and self._fd_pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def read(self) -> str:
        """The whole log as text ("" if nothing was written yet)."""
        try:
            return self._path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def lines(self) -> list[str]:
        """Every line of the log, without newlines."""
        return _split_lines(self.read())

    def tail(self, n: int) -> list[str]:
        """The last ``n`` lines, reading only the end of the file."""
        if n <= 0:
            return []
        try:
            handle = self._path.open("rb")
        except FileNotFoundError:
            return []
        with handle:
            position = handle.seek(0, os.SEEK_END)
            data = b""
            while position > 0 and data.count(b"\n") <= n:
                step = min(_TAIL_BLOCK, position)
                position -= step
                handle.seek(position)
                data = handle.read(step) + data
        lines = _split_lines(data.decode("utf-8", errors="replace"))
        if position > 0:
            lines = lines[1:]  # the first line may start before what was read
        return lines[-n:]
