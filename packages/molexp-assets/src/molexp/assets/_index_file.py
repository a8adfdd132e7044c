"""Where a workspace's SQLite index lives on this host, and opening, pinning and discarding it.

The index is a cache of the record files, kept per user and per host *outside* the
workspace: SQLite must never be shared between hosts (its WAL and locks need one
host), and a cache file another user owns must never block anybody. The directory is
``$MOLEXP_INDEX_DIR``, else ``$XDG_CACHE_HOME/molexp/index``, else
``~/.cache/molexp/index``, else ``<tmp>/molexp-index-<uid>``; the file is named after
the workspace id, a hash of its root path and the host name. A corrupt, truncated or
foreign file is discarded (with its WAL) and rebuilt from the records.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "INDEX_DIR_ENV",
    "FileIdentity",
    "discard_index",
    "file_identity",
    "index_dir",
    "index_path",
    "is_corruption",
    "is_locked",
    "open_index",
    "open_pinned",
]

INDEX_DIR_ENV = "MOLEXP_INDEX_DIR"
BUSY_TIMEOUT_SECONDS = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_PIN_ATTEMPTS = 5

FileIdentity = tuple[int, int]


def _usable(directory: Path) -> bool:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(directory, os.W_OK | os.X_OK)


def index_dir() -> Path:
    """This user's index directory on this host (created; see the module for the order)."""
    explicit = os.environ.get(INDEX_DIR_ENV)
    if explicit:
        directory = Path(explicit).expanduser()
        if not _usable(directory):
            raise PermissionError(
                f"{INDEX_DIR_ENV}={explicit}: cannot create or write the index directory "
                f"{directory}; point {INDEX_DIR_ENV} at a writable local directory"
            )
        return directory
    candidates = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        candidates.append(Path(xdg) / "molexp" / "index")
    with contextlib.suppress(RuntimeError, KeyError):
        candidates.append(Path.home() / ".cache" / "molexp" / "index")
    candidates.append(Path(tempfile.gettempdir()) / f"molexp-index-{os.getuid()}")
    for directory in candidates:
        if _usable(directory):
            return directory
    raise PermissionError(
        f"no writable directory for the MolExp index (tried {', '.join(map(str, candidates))}); "
        f"set {INDEX_DIR_ENV} to a writable local directory"
    )


def index_path(root: Path, workspace_id: str) -> Path:
    """The index file of the workspace at ``root`` for this user on this host."""
    host = _UNSAFE.sub("_", socket.gethostname()) or "host"
    digest = hashlib.sha256(os.fsencode(os.fspath(root))).hexdigest()[:16]
    return index_dir() / f"{workspace_id}-{digest}-{host}.sqlite"


def file_identity(path: Path) -> FileIdentity | None:
    """``(st_dev, st_ino)`` of the file at ``path``, or None if there is none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def open_pinned(
    db_path: Path, connect: Callable[[], sqlite3.Connection]
) -> tuple[sqlite3.Connection, FileIdentity | None]:
    """A connection to ``db_path`` and the identity of the file it opened.

    The file is stat'ed before and after connecting; if it was replaced in between,
    connecting is retried, so the identity returned is the connection's file and a later
    mismatch means the file at ``db_path`` is no longer the one being written.
    """
    for _ in range(_PIN_ATTEMPTS):
        before = file_identity(db_path)
        conn = connect()
        after = file_identity(db_path)
        if before is None or before == after:
            return conn, after
        conn.close()
    raise sqlite3.OperationalError(f"{db_path} keeps being replaced while it is opened")


def open_index(db_path: Path, *, autocommit: bool) -> sqlite3.Connection:
    """A connection to the index file (WAL, 30 s busy timeout, synchronous=NORMAL)."""
    db_path.parent.mkdir(parents=True, exist_ok=True)
    if autocommit:
        conn = sqlite3.connect(
            db_path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(db_path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    except BaseException:
        conn.close()
        raise
    return conn


def is_locked(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds the database (worth a retry)."""
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


def is_corruption(exc: BaseException) -> bool:
    """Whether ``exc`` means the index file is damaged (discard and rebuild it)."""
    return isinstance(exc, sqlite3.DatabaseError) and not is_locked(exc)


def discard_index(db_path: Path) -> None:
    """Delete the index file and its WAL/shared-memory/journal files (nothing there: fine)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{db_path}{suffix}").unlink()
