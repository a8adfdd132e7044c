"""Files of one execution attempt, and the scope's current view of them.

A store bound to an attempt (``per_attempt=True`` with a producer naming an execution)
writes under ``<scope_dir>/execution/<execution_id>/artifacts|logs/``, where only that
attempt writes, and shows each file in the scope's current view (``<scope_dir>/artifacts/``,
``<scope_dir>/logs/``) as a **hard link** installed by one rename. A later attempt that
saves the same name renames its own link over the view entry: the earlier attempt's
file keeps its bytes and its name, and nothing is ever copied. Everything here relies
only on what network filesystems guarantee between hosts (``link``, ``rename``).

- ``show_in_view(source, view)``: make ``view`` the same file as ``source`` (a directory
  becomes a tree of hard links); where hard links fail, a copy (a log: a relative
  symlink, so appends stay visible).
- ``preserve(source, target)``: give ``source`` a second name ``target`` unless it exists
  (moving an older layout's file into its attempt, crash safe: at worst two names).
- ``ASIDE`` / ``TEMP``: the names ``replacing`` and atomic writes leave behind when a writer
  is killed, which ``ArtifactStore.recover`` settles.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from pathlib import Path

from molexp.assets._io import validate_name
from molexp.assets._payload import install_path, staging_dir
from molexp.assets._permissions import copy_file, copy_tree, explained_permissions, make_dirs

__all__ = [
    "ASIDE",
    "ATTEMPT_DIR_NAME",
    "SEALED_FILE_NAME",
    "TEMP",
    "attempt_dir",
    "preserve",
    "show_in_view",
]

ATTEMPT_DIR_NAME = "execution"
SEALED_FILE_NAME = ".sealed"
"""Created in an attempt's directory once its files are final (see the workspace layer)."""
ASIDE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{32}\.old$")
"""A previous payload ``replacing`` kept restorable: ``.<name>.<uuid>.old``."""
TEMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{12}\.tmp$")
"""A temp file or staging directory of an atomic write: ``.<name>.<token>.tmp``."""


def attempt_dir(scope_dir: Path, execution_id: str) -> Path:
    """``<scope_dir>/execution/<execution_id>``: the files of one execution attempt."""
    return Path(scope_dir) / ATTEMPT_DIR_NAME / validate_name(execution_id, "execution_id")


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def show_in_view(source: Path, view: Path, *, live: bool = False) -> None:
    """Make the view entry ``view`` show ``source`` (atomically replacing what it showed).

    A file gets a hard link, renamed over ``view``; where hard links are not supported it
    is copied, or with ``live`` (a file still being appended to) symlinked relatively. A
    directory is rebuilt beside ``view`` as a tree of hard links and renamed into place.
    """
    source, view = Path(source), Path(view)
    make_dirs(view.parent)
    if source.is_dir() and not source.is_symlink():
        staging = staging_dir(view)
        try:
            staged = staging / "payload"
            copy_tree(source, staged, link=True)
            install_path(staged, view)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return
    temp = _temp_name(view)
    try:
        with explained_permissions(temp):
            try:
                os.link(source, temp, follow_symlinks=False)
            except OSError:
                if live:
                    temp.symlink_to(os.path.relpath(source, view.parent))
                else:
                    copy_file(source, temp)
        install_path(temp, view)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def preserve(source: Path, target: Path) -> bool:
    """Give ``source`` the second name ``target`` unless ``target`` exists; True if created.

    A file is hard-linked (``link`` fails on an existing name, on any host), or copied to a
    temp file that is then linked into place; a directory is rebuilt as a tree of hard
    links beside ``target`` and renamed into place. ``source`` is left as it is.
    """
    source, target = Path(source), Path(target)
    if target.exists() or target.is_symlink():
        return False
    make_dirs(target.parent)
    if source.is_dir() and not source.is_symlink():
        staging = staging_dir(target)
        try:
            staged = staging / "payload"
            copy_tree(source, staged, link=True)
            try:
                staged.rename(target)
            except OSError:
                if target.exists():
                    return False
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return True
    try:
        os.link(source, target, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError:
        if target.exists():
            return False
    temp = _temp_name(target)
    try:
        copy_file(source, temp)
        try:
            os.link(temp, target)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
