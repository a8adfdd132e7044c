"""Reusing run-index answers until the index changes.

Owns ``IndexCache``: the experiment page asks for the same experiment's runs several times
(its keys and counts, then a page of rows); with many runs each answer costs a full read of
the index rows. Answers are kept while SQLite's ``PRAGMA data_version`` on a private
connection to the index file is unchanged (it moves whenever any other connection, in any
process, commits) and the file is the same one (a rebuilt or replaced index has a new inode).
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar, cast

__all__ = ["IndexCache"]

T = TypeVar("T")
Version = tuple[int, int, int]


class IndexCache:
    """Memoises computations over the index, dropping them all when the index changes.

    Not thread-safe on its own: the service calls it under its lock.
    """

    def __init__(self, db_path: Path, *, max_entries: int = 64) -> None:
        self._db_path = db_path
        self._max_entries = max_entries
        self._connection: sqlite3.Connection | None = None
        self._inode: tuple[int, int] | None = None
        self._version: Version | None = None
        self._entries: OrderedDict[Hashable, object] = OrderedDict()

    def _current_version(self) -> Version | None:
        """(device, inode, data_version) of the index file, or None when it does not exist."""
        try:
            stat = self._db_path.stat()
        except FileNotFoundError:
            self.close()
            return None
        inode = (stat.st_dev, stat.st_ino)
        if self._connection is None or inode != self._inode:
            self.close()
            # Only ever reads a pragma; used from the service's threads under its lock.
            self._connection = sqlite3.connect(self._db_path, check_same_thread=False)
            self._inode = inode
        (data_version,) = self._connection.execute("PRAGMA data_version").fetchone()
        return (*inode, int(data_version))

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        """The cached value for ``key`` if the index is unchanged since it was computed."""
        version = self._current_version()
        if version is None or version != self._version:
            self._entries.clear()
            self._version = version
        if version is not None and key in self._entries:
            self._entries.move_to_end(key)
            return cast(T, self._entries[key])
        value = compute()
        if version is not None:
            self._entries[key] = value
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._inode = None
