"""Reading files of a run for the API without ever leaving the workspace.

Owns the path checks behind every route that serves a file (``..``, absolute paths,
hostile names and symlinks that resolve outside the workspace are refused), the
listing of a run's logs and artifacts, media-type guessing, and reading a log from a
byte offset in whole lines of valid UTF-8.
"""

from __future__ import annotations

import mimetypes
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from molexp.assets import validate_name

__all__ = [
    "LOG_SUFFIX",
    "FileEntry",
    "LogRead",
    "PathRejected",
    "list_files",
    "list_logs",
    "media_type_for",
    "read_log",
    "resolve_inside",
]

LOG_SUFFIX = ".log"
MIN_CHUNK_BYTES = 4  # one whole UTF-8 character always fits, so reading always progresses
GENERIC_MEDIA_TYPE = "application/octet-stream"
TEXT_MEDIA_TYPES = {".log": "text/plain", ".md": "text/markdown", ".yaml": "application/x-yaml"}


class PathRejected(ValueError):
    """A requested path is malformed or points outside where it may; ``status`` is 400 or 404."""

    def __init__(self, message: str, *, status: int) -> None:
        self.status = status
        super().__init__(message)


def resolve_inside(base: Path, relative: str, *, root: Path, what: str) -> Path:
    """The existing file ``base/relative``, refusing anything that could escape ``root``.

    ``relative`` is a POSIX path; each component must pass ``validate_name`` (no ``..``,
    no separators inside a component, no NUL). The fully resolved path (symlinks
    followed) must lie inside ``root``. Raises ``PathRejected``: 400 for a malformed
    path, 404 when the file is missing or resolves outside the workspace.
    """
    if relative == "" or relative.startswith("/") or "\\" in relative:
        raise PathRejected(f"{what} {relative!r} must be a relative POSIX path", status=400)
    parts = PurePosixPath(relative).parts
    if len(parts) != len(relative.split("/")):
        raise PathRejected(f"{what} {relative!r} has empty path components", status=400)
    for part in parts:
        try:
            validate_name(part, what)
        except ValueError as exc:
            raise PathRejected(str(exc), status=400) from None
    candidate = base.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        raise PathRejected(f"{what} {relative!r} not found", status=404) from None
    except (OSError, RuntimeError):  # symlink loops and unreadable parents
        raise PathRejected(f"{what} {relative!r} not found", status=404) from None
    if not resolved.is_relative_to(root.resolve()):
        # Do not tell the client where the link points.
        raise PathRejected(f"{what} {relative!r} not found", status=404)
    return resolved


@dataclass(frozen=True, slots=True)
class FileEntry:
    """A regular file below some directory, named by its POSIX path relative to it."""

    name: str
    path: Path
    size: int
    updated_at: datetime


def _entry(name: str, path: Path, stat: os.stat_result) -> FileEntry:
    return FileEntry(
        name=name,
        path=path,
        size=stat.st_size,
        updated_at=datetime.fromtimestamp(stat.st_mtime, UTC),
    )


def list_files(directory: Path, *, root: Path) -> list[FileEntry]:
    """Every regular file under ``directory`` (sorted), skipping hidden names and escaping links."""
    if not directory.is_dir():
        return []
    resolved_root = root.resolve()
    entries: list[FileEntry] = []
    for current, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith("."))
        for filename in sorted(filenames):
            if filename.startswith("."):
                continue
            path = Path(current) / filename
            try:
                if not path.resolve(strict=True).is_relative_to(resolved_root):
                    continue
                stat = path.stat()
            except (OSError, RuntimeError):
                continue
            entries.append(_entry(path.relative_to(directory).as_posix(), path, stat))
    return sorted(entries, key=lambda entry: entry.name)


def list_logs(logs_dir: Path, *, root: Path) -> list[FileEntry]:
    """The ``<name>.log`` files directly in ``logs_dir``, named without the suffix."""
    logs = []
    for entry in list_files(logs_dir, root=root):
        if "/" not in entry.name and entry.name.endswith(LOG_SUFFIX):
            logs.append(
                FileEntry(
                    name=entry.name[: -len(LOG_SUFFIX)],
                    path=entry.path,
                    size=entry.size,
                    updated_at=entry.updated_at,
                )
            )
    return logs


def media_type_for(name: str, recorded: str | None = None) -> str:
    """The recorded media type when it says more than "bytes", else a guess from the name."""
    if recorded and recorded != GENERIC_MEDIA_TYPE:
        return recorded
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in TEXT_MEDIA_TYPES:
        return TEXT_MEDIA_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or GENERIC_MEDIA_TYPE


def _utf8_complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` that does not end inside a UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0b1100_0000 != 0b1000_0000:  # not a continuation byte: a sequence start
            need = (
                1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            )
            return len(data) if back >= need else len(data) - back
    return len(data)


@dataclass(frozen=True, slots=True)
class LogRead:
    text: str
    offset: int
    next_offset: int
    size: int


def read_log(path: Path, since: int, *, max_bytes: int, whole_lines: bool) -> LogRead:
    """Text of ``path`` from byte ``since``, at most ``max_bytes`` of it.

    With ``whole_lines`` the text stops after the last complete line (a writer may be
    mid-line; a line longer than ``max_bytes`` is sent in pieces); otherwise it stops
    at the end of the file. A read that stops before the end ends on a line boundary
    when the chunk holds one, and never inside a UTF-8 character. An offset past the
    end (a truncated log) reads from the end.
    """
    if max_bytes < MIN_CHUNK_BYTES:
        raise ValueError(f"max_bytes must be at least {MIN_CHUNK_BYTES}, got {max_bytes}")
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        start = min(since, size)
        handle.seek(start)
        data = handle.read(min(max_bytes, size - start))
    more_after = start + len(data) < size
    newline = data.rfind(b"\n")
    if newline >= 0 and (whole_lines or more_after):
        cut = newline + 1  # end on a line boundary when there is one
    elif whole_lines and not more_after:
        cut = 0  # only a partial last line so far: wait for its end
    else:
        cut = len(data)  # the rest of the file, or a piece of a line longer than a chunk
    cut = _utf8_complete_prefix(data[:cut])
    text = data[:cut].decode("utf-8", errors="replace")
    return LogRead(text=text, offset=start, next_offset=start + cut, size=size)
