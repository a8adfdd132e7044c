"""A workspace shared by a lab: modes that follow the umask, errors that name the fix.

A lab shares one workspace: a directory owned by the lab's group with the setgid bit,
and members with ``umask 0002``. MolExp never picks a mode of its own: files are
created with 0o666 (0o777 when executable), directories with 0o777, both minus the
creating process's umask, and the kernel gives them the directory's group. Nothing
here calls ``chmod``, so the setgid bit that propagates the group is never cleared.
Copies (``copy_file``, ``copy_tree``) take their modes from the umask too, not from
the source, whose owner may have made it private.

A write that permissions still block - a member with ``umask 0022`` created a
directory others cannot write into, a user outside the group - raises
:class:`SharedPermissionError`: one line naming the path that blocks the write, its
owner and mode, and the fix.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from molexp.assets.errors import SharedPermissionError

__all__ = [
    "SHARED_WORKSPACE_HELP",
    "SharedPermissionError",
    "copy_file",
    "copy_tree",
    "explain_permission_error",
    "explained_permissions",
    "file_mode",
    "make_dirs",
    "make_temp_dir",
    "process_umask",
]

SHARED_WORKSPACE_HELP = "docs/howto/cluster.md#a-shared-lab-workspace"
"""Where the documentation explains how a lab sets up a shared workspace."""

_PROC_STATUS = "/proc/self/status"
_TEMP_DIR_ATTEMPTS = 100
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC


def _umask_at_import() -> int:
    # Read-and-restore is not thread-safe, so it runs once, at import, as a fallback only.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_IMPORT_UMASK = _umask_at_import()


def process_umask() -> int:
    """This process's umask, read without changing it (Linux ``/proc``; else as at import)."""
    try:
        with open(_PROC_STATUS, "rb") as status:  # noqa: PTH123 - a hot, tiny read
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORT_UMASK


def file_mode(*, executable: bool = False) -> int:
    """The mode a new file gets here: 0o666 (0o777 executable) minus the umask."""
    return (0o777 if executable else 0o666) & ~process_umask()


def _name(lookup: str, ident: int) -> str:
    try:
        if lookup == "user":
            import pwd

            return pwd.getpwuid(ident).pw_name
        import grp

        return grp.getgrgid(ident).gr_name
    except (ImportError, KeyError):
        return str(ident)


def _writable(path: Path) -> bool:
    effective = os.access in os.supports_effective_ids
    want = os.W_OK | (os.X_OK if path.is_dir() else 0)
    return os.access(path, want, effective_ids=effective)


def _blocker(path: Path) -> Path | None:
    """The existing path whose permissions refuse this process a write at ``path``."""
    with contextlib.suppress(OSError):
        if os.path.lexists(path) and not path.is_symlink() and not _writable(path):
            return path
        for parent in path.parents:
            if parent.is_dir():
                return None if _writable(parent) else parent
    return None


def _sticky_owner(path: Path) -> str | None:
    """The owner of ``path`` when a sticky directory keeps this process from replacing it."""
    try:
        info, parent = path.lstat(), path.parent.stat()
    except OSError:
        return None
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None or not parent.st_mode & stat.S_ISVTX:
        return None
    if geteuid() in (0, info.st_uid, parent.st_uid):
        return None
    return _name("user", info.st_uid)


def _in_group(gid: int) -> bool:
    getgroups = getattr(os, "getgroups", None)
    if getgroups is None:  # pragma: no cover - Windows
        return True
    return gid == os.getegid() or gid in getgroups()


def explain_permission_error(
    exc: OSError, path: str | os.PathLike[str] | None = None
) -> SharedPermissionError:
    """``exc`` (raised writing ``path``, default its filename) as one line naming the fix.

    Finds what refuses the write - ``path`` itself, or the nearest existing directory
    above it - and says who owns it with which mode, and what to change: the umask
    that would have made it group-writable, or membership of its group.
    """
    if isinstance(exc, SharedPermissionError):
        return exc
    target = Path(os.fspath(path if path is not None else exc.filename or "."))
    blocker = _blocker(target)
    code = exc.errno or errno.EACCES
    where = f"see {SHARED_WORKSPACE_HELP}"
    sticky = _sticky_owner(target)
    if sticky is not None:
        return SharedPermissionError(
            target,
            f"cannot replace {target}: it belongs to {sticky} and its directory has the "
            f"sticky bit, which lets only the owner replace it; remove the bit with "
            f"`chmod -t {target.parent}` ({where})",
            code,
        )
    if blocker is None:
        reason = exc.strerror or str(exc)
        return SharedPermissionError(
            target,
            f"cannot write {target}: {reason}; in a shared workspace every member needs "
            f"write access through the group and umask 0002 ({where})",
            code,
        )
    info = blocker.lstat()
    owner = _name("user", info.st_uid)
    group = _name("group", info.st_gid)
    mode = stat.S_IMODE(info.st_mode)
    kind = "in directory" if stat.S_ISDIR(info.st_mode) else "file"
    me = _name("user", os.geteuid()) if hasattr(os, "geteuid") else "this user"
    if not _in_group(info.st_gid):
        message = (
            f"cannot write {kind} {blocker}: owned by {owner}:{group} with mode {mode:04o}, "
            f"and {me} is not in group {group}; lab members must share the workspace's group "
            f"(an administrator adds {me} to it, or {owner} runs `chgrp -R <lab group> "
            f"{blocker}`; {where})"
        )
    elif not mode & stat.S_IWGRP:
        message = (
            f"cannot write {kind} {blocker}: owned by {owner} with mode {mode:04o} "
            f"(not group-writable); lab members need umask 0002 ({owner} repairs it with "
            f"`chmod -R g+rwX {blocker}`; {where})"
        )
    else:
        message = (
            f"cannot write {kind} {blocker}: {exc.strerror or 'permission denied'} "
            f"(owned by {owner}:{group} with mode {mode:04o}); {where}"
        )
    return SharedPermissionError(blocker, message, code)


@contextlib.contextmanager
def explained_permissions(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Re-raise a ``PermissionError`` from the block as :class:`SharedPermissionError`."""
    try:
        yield
    except SharedPermissionError:
        raise
    except PermissionError as exc:
        raise explain_permission_error(exc, path) from exc


def make_dirs(path: Path, *, exist_ok: bool = True) -> None:
    """``mkdir -p`` with umask modes; a refused ``mkdir`` is a :class:`SharedPermissionError`."""
    with explained_permissions(path):
        Path(path).mkdir(parents=True, exist_ok=exist_ok)


def make_temp_dir(parent: Path, prefix: str = "", suffix: str = ".tmp") -> Path:
    """A new, uniquely named directory in ``parent``, like ``tempfile.mkdtemp``.

    Unlike ``mkdtemp`` (mode 0o700) its mode is 0o777 minus the umask, so a payload
    built in it and renamed into place can be read and replaced by the lab.
    """
    make_dirs(parent)
    for _ in range(_TEMP_DIR_ATTEMPTS):
        candidate = parent / f"{prefix}{secrets.token_hex(6)}{suffix}"
        try:
            with explained_permissions(candidate):
                candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"no free temporary directory name in {parent}")


def copy_file(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str:
    """Copy one file's bytes and times to ``dst``, whose mode follows the umask.

    Executable sources give executable copies. Usable as ``copy_function`` of
    ``shutil.copytree``; returns ``dst``.
    """
    info = Path(src).stat()
    if not stat.S_ISREG(info.st_mode):  # a FIFO would block the copy
        raise shutil.SpecialFileError(f"{os.fspath(src)} is not a regular file; cannot copy it")
    with explained_permissions(dst):
        # Created first with the umask's mode; copyfile then keeps it (and copies fast).
        os.close(os.open(dst, _NEW_FILE_FLAGS, 0o777 if info.st_mode & 0o111 else 0o666))
    shutil.copyfile(src, dst)
    os.utime(dst, ns=(info.st_atime_ns, info.st_mtime_ns))
    return os.fspath(dst)


def copy_tree(src: Path, dst: Path, *, link: bool = False) -> None:
    """Copy a directory tree (symlinks as links) with modes from the umask, not the source;
    ``link``: hard-link each file instead, copying only where a link fails."""
    make_dirs(dst, exist_ok=False)
    with os.scandir(src) as entries:
        for entry in entries:
            target = dst / entry.name
            if entry.is_symlink():
                target.symlink_to(Path(entry.path).readlink())
            elif entry.is_dir():
                copy_tree(Path(entry.path), target, link=link)
            elif link:
                try:
                    os.link(entry.path, target, follow_symlinks=False)
                except OSError:
                    copy_file(entry.path, target)
            else:
                copy_file(entry.path, target)
