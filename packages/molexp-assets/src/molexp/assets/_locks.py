"""Inter-process record locks: ``locked(path)`` around every read-modify-write of a record.

On a local filesystem (Linux: ext4, xfs, btrfs, tmpfs, ...) the lock is a ``flock`` on
the record's *directory*, so locking leaves no file behind. Records are replaced by
renames inside that directory, while the directory itself is never replaced, so its
inode is a stable thing to lock. One lock covers every record of a directory.

Elsewhere — network filesystems (NFS, Lustre, GPFS, CIFS, FUSE ...), where a ``flock``
on a directory may be granted locally without excluding other hosts, and systems
without ``/proc/self/mountinfo`` — the lock is a ``flock`` on a persistent lock file
``.<record name>.lock`` beside the record (the file is never deleted: deleting a lock
file someone may be waiting on would let two holders in). The choice is made per
filesystem (``st_dev``), so every process on the host locks the same object.

Either way the lock is taken on a freshly opened descriptor with ``LOCK_NB`` polling
(exponential back-off, up to ``timeout`` seconds, then ``filelock.Timeout``), then
checked to still be the object the path names (a directory or lock file replaced
meanwhile is locked again). Locks are re-entrant within one thread of one process
(keyed by the locked inode); other threads and processes wait. Releasing unlocks
explicitly, so a child forked meanwhile does not keep the lock alive. On Windows the
lock files are handled by ``filelock``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from filelock import Timeout
from molexp.assets._permissions import explain_permission_error, make_dirs

__all__ = [
    "LOCAL_FILESYSTEMS",
    "LOCK_TIMEOUT_SECONDS",
    "directory_locking",
    "lock_path_for",
    "locked",
    "on_local_filesystem",
]

LOCK_TIMEOUT_SECONDS = 60.0
LOCAL_FILESYSTEMS = frozenset(
    {
        "bcachefs",
        "btrfs",
        "ext2",
        "ext3",
        "ext4",
        "f2fs",
        "jfs",
        "nilfs2",
        "overlay",
        "ramfs",
        "reiserfs",
        "tmpfs",
        "xfs",
        "zfs",
    }
)
"""Filesystems on which a ``flock`` on a directory excludes every process that can see it."""

_MOUNTINFO = Path("/proc/self/mountinfo")
_FIRST_BACKOFF = 0.0001
_MAX_BACKOFF = 0.02


def lock_path_for(path: Path) -> Path:
    """The lock file used for ``path`` where directory locks are not used."""
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


def _unescape_mount_path(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    parts = text.split("\\")
    out = [parts[0]]
    for part in parts[1:]:
        if len(part) >= 3 and part[:3].isdigit():
            out.append(chr(int(part[:3], 8)) + part[3:])
        else:
            out.append("\\" + part)
    return "".join(out)


def _filesystem_type(st_dev: int, directory: Path) -> str | None:
    """The type of the filesystem holding ``directory`` (device ``st_dev``), if it can be told.

    Matches the device number against ``/proc/self/mountinfo``; when no mount has that
    number (btrfs subvolumes report their own) the longest mount point containing the
    directory decides.
    """
    try:
        lines = _MOUNTINFO.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    device = f"{os.major(st_dev)}:{os.minor(st_dev)}"
    resolved = os.path.realpath(directory)
    best: tuple[int, str] | None = None
    for line in lines:
        fields = line.split(" ")
        try:
            separator = fields.index("-")
        except ValueError:
            continue
        if separator + 1 >= len(fields) or len(fields) < 5:
            continue
        fs_type = fields[separator + 1]
        if fields[2] == device:
            return fs_type
        mount_point = _unescape_mount_path(fields[4])
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and (best is None or len(mount_point) > best[0]):
            best = (len(mount_point), fs_type)
    return best[1] if best else None


_directory_locking: dict[int, bool] = {}
_directory_locking_guard = threading.Lock()


def directory_locking(st_dev: int, directory: Path) -> bool:
    """Whether records on device ``st_dev`` are locked through their directory (cached)."""
    with _directory_locking_guard:
        known = _directory_locking.get(st_dev)
    if known is None:
        known = _filesystem_type(st_dev, directory) in LOCAL_FILESYSTEMS
        with _directory_locking_guard:
            _directory_locking[st_dev] = known
    return known


def on_local_filesystem(path: Path) -> bool:
    """Whether ``path`` lies on a local filesystem (see ``LOCAL_FILESYSTEMS``)."""
    directory = Path(path).parent
    try:
        device = directory.stat().st_dev
    except OSError:
        return True
    return directory_locking(device, directory)


@dataclass
class _Held:
    fd: int
    depth: int
    pid: int


class _ThreadLocks(threading.local):
    def __init__(self) -> None:
        self.held: dict[tuple[int, int], _Held] = {}


_thread_locks = _ThreadLocks()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    from filelock import FileLock

    @contextlib.contextmanager
    def locked(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the lock file ``.<name>.lock`` of the record at ``path`` (see the module)."""
        lock_file = lock_path_for(path)
        make_dirs(lock_file.parent)
        lock = FileLock(str(lock_file.absolute()), is_singleton=True)
        lock.acquire(timeout=timeout)
        try:
            yield
        finally:
            lock.release()

else:
    import fcntl

    _DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
    _LOCK_FILE_FLAGS = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    _READ_ONLY_FLAGS = os.O_RDONLY | os.O_CLOEXEC

    def _open_lock_file(lock_file: Path) -> int:
        """Open (or create, mode 0o666 minus the umask) a lock file.

        One another user left without group write is opened read-only: ``flock`` needs
        no write access on local filesystems (on NFS it then fails, see ``_flock_until``).
        """
        try:
            return os.open(lock_file, _LOCK_FILE_FLAGS, 0o666)
        except PermissionError as exc:
            try:
                return os.open(lock_file, _READ_ONLY_FLAGS)
            except OSError:
                raise explain_permission_error(exc, lock_file) from exc

    def _open_lock_target(path: Path) -> tuple[int, Path]:
        """An open descriptor of what to lock for ``path`` and that object's path."""
        directory = path.parent
        try:
            fd = os.open(directory, _DIRECTORY_FLAGS)
        except FileNotFoundError:
            make_dirs(directory)
            fd = os.open(directory, _DIRECTORY_FLAGS)
        try:
            if directory_locking(os.fstat(fd).st_dev, directory):
                return fd, directory
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
        lock_file = lock_path_for(path)
        return _open_lock_file(lock_file), lock_file

    def _identity(stat: os.stat_result) -> tuple[int, int]:
        return stat.st_dev, stat.st_ino

    def _still_names(target: Path, identity: tuple[int, int]) -> bool:
        try:
            return _identity(target.stat()) == identity
        except FileNotFoundError:
            return False

    def _flock_until(fd: int, target: Path, deadline: float | None) -> None:
        delay = _FIRST_BACKOFF
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
                # NFS emulates flock with write locks: a read-only lock file is not enough.
                denied = PermissionError(errno.EACCES, "Permission denied", str(target))
                raise explain_permission_error(denied, target) from exc
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise Timeout(str(target))
            time.sleep(delay if deadline is None else min(delay, max(0.0, deadline - now)))
            delay = min(delay * 2, _MAX_BACKOFF)

    def _acquire(path: Path, timeout: float) -> tuple[int, int]:
        deadline = None if timeout < 0 else time.monotonic() + timeout
        held = _thread_locks.held
        pid = os.getpid()
        while True:
            fd, target = _open_lock_target(path)
            try:
                identity = _identity(os.fstat(fd))
                mine = held.get(identity)
                if mine is not None and mine.pid == pid:
                    os.close(fd)
                    mine.depth += 1
                    return identity
                _flock_until(fd, target, deadline)
            except BaseException:
                os.close(fd)
                raise
            if _still_names(target, identity):
                held[identity] = _Held(fd=fd, depth=1, pid=pid)
                return identity
            # The directory or lock file was replaced while we waited: lock the new one.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _release(identity: tuple[int, int]) -> None:
        held = _thread_locks.held
        mine = held[identity]
        mine.depth -= 1
        if mine.depth == 0:
            del held[identity]
            try:
                fcntl.flock(mine.fd, fcntl.LOCK_UN)
            finally:
                os.close(mine.fd)

    @contextlib.contextmanager
    def locked(path: Path, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold an inter-process lock for a read-modify-write of the record at ``path``.

        The lock is the record's directory on a local filesystem, else the lock file
        ``.<name>.lock`` beside it (see the module). Re-entrant within one thread of
        one process; other threads and processes wait up to ``timeout`` seconds
        (negative: forever), then get ``filelock.Timeout``.
        """
        identity = _acquire(Path(path), timeout)
        try:
            yield
        finally:
            _release(identity)
