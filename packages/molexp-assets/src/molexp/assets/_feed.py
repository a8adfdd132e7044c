"""The change feed: which record files changed, told through per-process journal files.

Every process that writes records appends one line per change to a journal of its own,
``<root>/.molexp/changes/<host>.<pid>.<token>.jsonl`` (one writer per file, so appends
are safe on network filesystems), once before and once after it replaces the record.
Indexes on every host catch up by reading each journal past the offset they consumed
and re-reading the records the lines name: a line only says *where to look*, the record
file is the truth. A torn last line (a writer killed mid-append) is left for later and
never misread.

Journals are bounded in time: a writer starts a new journal once its current one is
``RETENTION_SECONDS / 2`` old, and catch-up deletes journals untouched for
``RETENTION_SECONDS``; an index that has not caught up for ``RETENTION_SECONDS / 2`` is
rebuilt from the records instead (it may have missed a deleted journal).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ACTIVE_JOURNAL_SECONDS",
    "FEED_DIR",
    "RETENTION_SECONDS",
    "Change",
    "FeedLine",
    "FeedSpan",
    "JournalState",
    "changing",
    "feed_dir",
    "journal_states",
    "note_change",
    "read_journal",
]

FEED_DIR = Path(".molexp") / "changes"
RETENTION_SECONDS = 86400.0
ACTIVE_JOURNAL_SECONDS = 300.0
"""On a network filesystem, journals written this recently are re-read whatever size is listed
(a client may hold a stale size); every follower of the feed applies it."""
_SUFFIX = ".jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(frozen=True)
class FeedLine:
    """One change: ``kind`` (e.g. ``"run"``, ``"asset"``) and the path or id it names."""

    kind: str
    target: str


@dataclass(frozen=True)
class FeedSpan:
    """Bytes ``start``..``end`` of journal ``journal``: lines this process appended."""

    journal: str
    start: int
    end: int


@dataclass(frozen=True)
class JournalState:
    """A journal file as listed: its name, size and modification time (the server's clock)."""

    name: str
    size: int
    mtime: float


def feed_dir(root: Path) -> Path:
    """The directory of the change-feed journals of the workspace at ``root``."""
    return Path(root) / FEED_DIR


class _Journal:
    """This process's open journal for one workspace root."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.fd = -1
        self.pid = -1
        self.opened = 0.0
        self.name = ""
        self.size = 0

    def _open(self) -> None:
        host = _UNSAFE.sub("_", socket.gethostname()) or "host"
        self.directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        while True:
            name = f"{host}.{os.getpid()}.{secrets.token_hex(4)}{_SUFFIX}"
            try:
                self.fd = os.open(self.directory / name, flags, 0o666)  # umask applies
                self.name, self.size = name, 0
                break
            except FileExistsError:
                continue
        self.pid = os.getpid()
        self.opened = time.monotonic()

    def append(self, data: bytes) -> FeedSpan:
        if self.fd >= 0 and self.pid == os.getpid():
            if time.monotonic() - self.opened > RETENTION_SECONDS / 2:
                os.close(self.fd)
                self.fd = -1
        elif self.fd >= 0:
            self.fd = -1  # inherited through fork: the parent owns that journal
        if self.fd < 0:
            self._open()
        start = self.size
        written = os.write(self.fd, data)
        self.size += written
        if written != len(data):  # a short append leaves a torn line: start a new journal
            os.close(self.fd)
            self.fd = -1
            raise OSError(f"short write to the change feed in {self.directory}")
        return FeedSpan(self.name, start, self.size)


_journals: dict[str, _Journal] = {}
_journals_lock = threading.Lock()
_warned: set[Path] = set()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock when it forked; the child's journals are
    # its own (each _Journal also notices the new pid).
    global _journals_lock
    _journals_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


def note_change(root: Path, kind: str, target: str) -> FeedSpan | None:
    """Append ``kind target`` to this process's journal of ``root``; where it went.

    Never raises: a journal that cannot be written is warned about once per directory
    (the record write goes on; ``rebuild_index`` still finds the record).
    """
    # ASCII with \u escapes: any path text (even one a filesystem gave undecodable) encodes.
    line = (json.dumps({"k": kind, "p": target}) + "\n").encode("ascii")
    key = os.fspath(root)
    with _journals_lock:
        journal = _journals.get(key)
        if journal is None:
            journal = _journals[key] = _Journal(feed_dir(root))
        directory = journal.directory
        try:
            return journal.append(line)
        except OSError as exc:
            if directory not in _warned:
                _warned.add(directory)
                warnings.warn(
                    f"cannot write the change feed in {directory}: {exc.strerror or exc}; "
                    "other processes' indexes see this process's records only after "
                    "rebuild_index()",
                    RuntimeWarning,
                    stacklevel=2,
                )
            return None


class Change:
    """What :func:`changing` appended: ``span`` covers both lines when nothing came between."""

    def __init__(self) -> None:
        self.span: FeedSpan | None = None


@contextlib.contextmanager
def changing(root: Path, kind: str, target: str) -> Iterator[Change]:
    """Announce a change of ``target`` before the body replaces it, and again after.

    The line before makes a record visible even when its writer dies right after the
    rename; the line after makes every index re-read the record once it is final.
    """
    change = Change()
    before = note_change(root, kind, target)
    try:
        yield change
    finally:
        after = note_change(root, kind, target)
        if (
            before is not None
            and after is not None
            and before.journal == after.journal
            and before.end == after.start
        ):
            change.span = FeedSpan(before.journal, before.start, after.end)


_POKE_INTERVAL = 1.0
_poked: dict[str, float] = {}


def _poke(directory: Path) -> None:
    """Create and remove a file in ``directory``: a network-filesystem client drops its cached
    listing of a directory it changes itself, so the next listing is fresh (at most once a
    second per directory)."""
    key = os.fspath(directory)
    now = time.monotonic()
    if now - _poked.get(key, -_POKE_INTERVAL) < _POKE_INTERVAL:
        return
    _poked[key] = now
    probe = directory / f".poke.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(4)}"
    with contextlib.suppress(OSError):
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()


def journal_states(root: Path, *, refresh: bool = False) -> list[JournalState]:
    """Every journal under ``root`` with its size as listed (none: an empty list).

    ``refresh``: on a network filesystem, make the listing fresh first (see ``_poke``).
    """
    states = []
    if refresh:
        _poke(feed_dir(root))
    try:
        entries = list(os.scandir(feed_dir(root)))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if not entry.name.endswith(_SUFFIX) or entry.name.startswith("."):
            continue
        with contextlib.suppress(FileNotFoundError):
            stat = entry.stat()
            states.append(JournalState(entry.name, stat.st_size, stat.st_mtime))
    return states


def read_journal(root: Path, name: str, offset: int) -> tuple[list[FeedLine], int]:
    """The complete lines of journal ``name`` from ``offset`` on, and the offset after them.

    A torn last line is not consumed; a complete line that is not a feed line is skipped.
    """
    try:
        with open(feed_dir(root) / name, "rb") as handle:  # noqa: PTH123
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = []
    for raw in _split(data[:end]):
        try:
            item = json.loads(raw)
            lines.append(FeedLine(str(item["k"]), str(item["p"])))
        except (ValueError, KeyError, TypeError):
            continue
    return lines, offset + end


def _split(data: bytes) -> Iterator[bytes]:
    for raw in data.split(b"\n"):
        if raw:
            yield raw
