"""A filesystem journal that undoes every change made while it is active (used by ``--dry-run``).

``molexp run --dry-run`` must leave the disk exactly as it found it, yet it has to import the user
script, and scripts create their workspace, projects and experiments at import time. The journal
records every file-system mutation the process makes through Python (via ``sys.addaudithook``:
``open`` for writing, ``mkdir``, ``rename``/``replace``, ``remove``, ``rmdir``, ``link``,
``symlink``, ``truncate``, ``shutil.rmtree`` and ``sqlite3.connect``), keeping a copy of any
pre-existing file before it is changed. :meth:`FilesystemJournal.rollback` then restores those
copies and deletes everything that did not exist before. Mutations made by native code that bypass
these Python entry points (other than SQLite's own ``-wal``/``-shm``/``-journal`` files, which are
tracked) are not seen.

Audit hooks cannot be removed, so one process-wide hook is installed on first use and forwards
events only to the journal that is currently active.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import sqlite3
import stat
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["FilesystemJournal", "journaled"]

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

_hook_lock = threading.Lock()
_hook_installed = False
_active: FilesystemJournal | None = None
_local = threading.local()


@dataclass
class _Saved:
    """What existed at a path before the journal changed it."""

    kind: str  # "file", "symlink" or "dir"
    content: bytes = b""
    target: str = ""
    mode: int = 0o644


class FilesystemJournal:
    """Records file-system changes while active; :meth:`rollback` reverts them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._created: list[Path] = []
        self._created_set: set[Path] = set()
        self._saved: dict[Path, _Saved] = {}
        self._databases: list[Path] = []

    @property
    def touched(self) -> list[Path]:
        """Every path created or changed so far (created first, then changed)."""
        with self._lock:
            return [*self._created, *self._saved]

    def handle(self, event: str, args: tuple[Any, ...]) -> None:
        """Audit-hook entry point: record the state of the paths ``event`` is about to change."""
        if event == "open":
            path, _mode, flags = args
            if isinstance(flags, int) and flags & _WRITE_FLAGS:
                self._before_write(_resolve(path, None))
        elif event == "os.mkdir":
            self._before_create(_resolve(args[0], args[2]))
        elif event == "os.rename":
            source = _resolve(args[0], args[2])
            self._before_remove(source)
            self._before_write(_resolve(args[1], args[3]))
        elif event in {"os.remove", "os.rmdir"}:
            self._before_remove(_resolve(args[0], args[1]))
        elif event == "os.symlink":
            self._before_write(_resolve(args[1], args[2]))
        elif event == "os.link":
            self._before_write(_resolve(args[1], args[3]))
        elif event == "os.truncate":
            self._before_write(_resolve(args[0], None))
        elif event == "shutil.rmtree":
            self._before_remove_tree(_resolve(args[0], args[1]))
        elif event == "sqlite3.connect":
            self._before_database(args[0])

    def rollback(self) -> None:
        """Restore every changed pre-existing path and delete every created one."""
        with _suspended():
            self._close_changed_databases()
            with self._lock:
                saved = dict(self._saved)
                created = list(self._created)
            for path, before in sorted(saved.items(), key=lambda item: len(item[0].parts)):
                _restore(path, before)
            for path in reversed(created):
                if path in saved:
                    continue
                _delete(path)

    # recording -------------------------------------------------------------------------------

    def _before_create(self, path: Path | None) -> None:
        self._note(path, keep_existing=False)  # creating what exists fails: nothing to keep

    def _before_write(self, path: Path | None) -> None:
        self._note(path, keep_existing=True)

    def _note(self, path: Path | None, *, keep_existing: bool) -> None:
        """Remember ``path`` as created by the run if it does not exist yet, else (when
        ``keep_existing``) its contents as they were before the run first changed it."""
        if path is None:
            return
        with self._lock:
            if path in self._created_set or path in self._saved:
                return
            if not os.path.lexists(path):
                self._created.append(path)
                self._created_set.add(path)
            elif keep_existing and (saved := _snapshot(path)) is not None:
                self._saved[path] = saved

    def _before_remove(self, path: Path | None) -> None:
        self._before_write(path)

    def _before_remove_tree(self, root: Path | None) -> None:
        if root is None or not root.is_dir() or root.is_symlink():
            return
        for directory, dirnames, filenames in os.walk(root):
            base = Path(directory)
            self._before_write(base)
            for name in [*dirnames, *filenames]:
                self._before_write(base / name)

    def _before_database(self, database: Any) -> None:
        if not isinstance(database, str | bytes | os.PathLike):
            return
        text = os.fsdecode(database)
        if text == ":memory:" or text.startswith("file:") or not text:
            return
        path = _resolve(text, None)
        if path is None:
            return
        self._before_write(path)
        for suffix in _SQLITE_SIDE_FILES:
            self._before_write(path.with_name(path.name + suffix))
        with self._lock:
            self._databases.append(path)

    def _close_changed_databases(self) -> None:
        """Close open SQLite connections if a pre-existing database file changed underneath.

        Rewriting a database file under an open connection would let that connection checkpoint
        stale pages over the restored copy when it is closed later.
        """
        with self._lock:
            changed = [
                path
                for path in self._databases
                if path in self._saved and _snapshot(path) != self._saved[path]
            ]
        if not changed:
            return
        for obj in gc.get_objects():
            if isinstance(obj, sqlite3.Connection):
                with contextlib.suppress(sqlite3.Error):
                    obj.close()


@contextlib.contextmanager
def journaled() -> Iterator[FilesystemJournal]:
    """Run the body with a journal active, then roll every change back (even on error)."""
    global _active
    _install_hook()
    journal = FilesystemJournal()
    with _hook_lock:
        if _active is not None:
            raise RuntimeError("a filesystem journal is already active in this process")
        _active = journal
    try:
        yield journal
    finally:
        with _hook_lock:
            _active = None
        journal.rollback()


def _install_hook() -> None:
    global _hook_installed
    with _hook_lock:
        if not _hook_installed:
            sys.addaudithook(_audit_hook)
            _hook_installed = True


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    journal = _active
    if journal is None or getattr(_local, "suspended", False):
        return
    _local.suspended = True
    try:
        journal.handle(event, args)
    except OSError:
        # A path the journal cannot inspect is one it cannot restore either; never let
        # bookkeeping break the operation being audited.
        pass
    finally:
        _local.suspended = False


@contextlib.contextmanager
def _suspended() -> Iterator[None]:
    previous = getattr(_local, "suspended", False)
    _local.suspended = True
    try:
        yield
    finally:
        _local.suspended = previous


def _resolve(path: Any, dir_fd: Any) -> Path | None:
    if isinstance(path, int) or not isinstance(path, str | bytes | os.PathLike):
        return None
    text = os.fsdecode(path)
    if not text:
        return None
    path = Path(text)
    if not path.is_absolute():
        base = Path.cwd()
        if isinstance(dir_fd, int) and dir_fd >= 0:
            try:
                base = Path(f"/proc/self/fd/{dir_fd}").readlink()
            except OSError:
                return None
        path = base / path
    return Path(os.path.normpath(path))


def _snapshot(path: Path) -> _Saved | None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return _Saved(kind="symlink", target=str(path.readlink()))
    if stat.S_ISDIR(info.st_mode):
        return _Saved(kind="dir", mode=stat.S_IMODE(info.st_mode))
    if stat.S_ISREG(info.st_mode):
        return _Saved(kind="file", content=Path(path).read_bytes(), mode=stat.S_IMODE(info.st_mode))
    return None


def _restore(path: Path, before: _Saved) -> None:
    try:
        current = _snapshot(path) if os.path.lexists(path) else None
    except OSError:
        current = None
    if current == before:
        return
    if current is not None and (current.kind != before.kind or before.kind != "dir"):
        _delete(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if before.kind == "dir":
        path.mkdir(mode=before.mode, exist_ok=True)
    elif before.kind == "symlink":
        path.symlink_to(before.target)
    else:
        path.write_bytes(before.content)
        path.chmod(before.mode)


def _delete(path: Path) -> None:
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
