"""Reusing run-index answers until the index changes.

Owns ``IndexCache``: the experiment page asks for the same experiment's runs several times
(its keys and counts, then a page of rows); with many runs each answer costs a full read of
the index rows. Answers are kept while SQLite's ``PRAGMA data_version`` on a private
connection to the index file is unchanged (it moves whenever any other connection, in any
process, commits) and the file is the same one (a rebuilt or replaced index has a new inode).

Also owns ``FieldPaths``: the parameter, result and config keys of an experiment's runs (the
experiment page's columns) cost a pass over every row's JSON (about 0.19 s at 100,000 runs),
yet a change of the index seldom adds or removes one. Once computing them takes
``FIELD_PATHS_SYNC_SECONDS`` or more, an answer after a change reuses the keys computed before
it while a background thread computes them again; they are marked stale until then, so the
answer built on them is not kept. Keys a change added show from the first answer after that
background pass (a fraction of a second at 100,000 runs); a smaller experiment's keys are
computed in the request, exactly.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

__all__ = ["FIELD_PATHS_SYNC_SECONDS", "FieldPaths", "IndexCache"]

logger = logging.getLogger("molexp.server")

T = TypeVar("T")
Version = tuple[int, int, int]
Paths = dict[str, list[str]]
Scope = tuple[str | None, str | None]
FIELD_PATHS_SYNC_SECONDS = 0.05
"""Field paths that took less than this to compute are computed in each request that needs them."""


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

    def version(self) -> Version | None:
        """The index file's current version (None without a file); equal versions, equal index."""
        return self._current_version()

    def get(
        self, key: Hashable, compute: Callable[[], T], *, keep: Callable[[T], bool] | None = None
    ) -> T:
        """The cached value for ``key`` if the index is unchanged since it was computed.

        ``keep``: whether a computed value may be reused (default: always).
        """
        version = self._current_version()
        if version is None or version != self._version:
            self._entries.clear()
            self._version = version
        if version is not None and key in self._entries:
            self._entries.move_to_end(key)
            return cast(T, self._entries[key])
        value = compute()
        if version is not None and (keep is None or keep(value)):
            self._entries[key] = value
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return value

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None
        self._inode = None


@dataclass(frozen=True, slots=True)
class _Known:
    version: Version | None
    seconds: float
    paths: Paths


class FieldPaths:
    """The field paths of each scope (project, experiment), reused while recomputed after a
    change once they are slow to compute (see the module). Thread-safe.

    ``compute`` runs in the request (under the caller's lock); ``compute_aside`` in a
    background thread, one at a time (give it a workspace handle of its own);
    ``current_version`` reads the index version the way requests see it (taking the caller's
    lock if need be).
    """

    def __init__(
        self,
        compute: Callable[[Scope], Paths],
        compute_aside: Callable[[Scope], Paths],
        current_version: Callable[[], Version | None],
        *,
        sync_seconds: float | None = None,
    ) -> None:
        self._compute = compute
        self._compute_aside = compute_aside
        self._current_version = current_version
        self._sync_seconds = FIELD_PATHS_SYNC_SECONDS if sync_seconds is None else sync_seconds
        self._known: dict[Scope, _Known] = {}
        self._refreshing: set[Scope] = set()
        self._lock = threading.Lock()  # guards _known and _refreshing
        self._aside_lock = threading.Lock()  # one background computation at a time

    def get(self, scope: Scope, version: Version | None) -> tuple[Paths, bool]:
        """The paths of ``scope`` and whether they are of the index at ``version`` (else they
        are of an earlier one, and a background computation is under way)."""
        with self._lock:
            known = self._known.get(scope)
            if known is not None and known.version == version and version is not None:
                return known.paths, True
            if known is not None and known.seconds >= self._sync_seconds:
                if scope not in self._refreshing:
                    self._refreshing.add(scope)
                    threading.Thread(
                        target=self._refresh, args=(scope,), name="molexp-field-paths", daemon=True
                    ).start()
                return known.paths, False
        started = time.monotonic()
        paths = self._compute(scope)
        took = time.monotonic() - started
        with self._lock:
            self._known[scope] = _Known(version, took, paths)
        return paths, True

    def refreshing(self) -> bool:
        """Whether a background computation is under way."""
        with self._lock:
            return bool(self._refreshing)

    def _refresh(self, scope: Scope) -> None:
        try:
            with self._aside_lock:
                version = self._current_version()  # before reading: a later change shows stale
                started = time.monotonic()
                paths = self._compute_aside(scope)
                took = time.monotonic() - started
            with self._lock:
                self._known[scope] = _Known(version, took, paths)
        except Exception as exc:  # the previous paths stay; the next change retries
            logger.warning("field paths of %s not recomputed: %s", scope, exc)
        finally:
            with self._lock:
                self._refreshing.discard(scope)
