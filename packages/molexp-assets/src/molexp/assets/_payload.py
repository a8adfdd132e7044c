"""Payload serialization and atomic installation, shared by artifacts and checkpoints.

Serialization rules (``write_payload``):

* ``dict`` / ``list`` -> JSON text (``application/json``); pydantic models -> their JSON;
* ``bytes`` / ``bytearray`` -> the raw bytes (``application/octet-stream``);
* ``str`` -> UTF-8 text (``text/plain; charset=utf-8``);
* ``pathlib.Path`` -> a copy of the file (media type guessed from its name) or of the
  directory tree (``inode/directory``, symlinks copied as links);
* anything else -> ``TypeError`` naming the type and the payload.

Every payload is built beside its destination and renamed into place, so readers
see the old payload or the new one, never a partial write. ``replacing(dest)`` keeps
the previous payload restorable until its asset record is written too: a store whose
record write fails (a full disk) puts the old payload back, or removes a new one, so
payload and record never disagree.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from molexp.assets._io import atomic_write_bytes, shown_value
from molexp.assets._permissions import copy_file, copy_tree, make_temp_dir
from pydantic import BaseModel

__all__ = [
    "BINARY_MEDIA_TYPE",
    "DIRECTORY_MEDIA_TYPE",
    "JSON_MEDIA_TYPE",
    "TEXT_MEDIA_TYPE",
    "install_path",
    "load_payload",
    "remove_path",
    "replacing",
    "staging_dir",
    "write_payload",
]

JSON_MEDIA_TYPE = "application/json"
TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
BINARY_MEDIA_TYPE = "application/octet-stream"
DIRECTORY_MEDIA_TYPE = "inode/directory"


def staging_dir(dest: Path) -> Path:
    """A fresh hidden directory beside ``dest`` to build a payload in (umask mode).

    Not ``tempfile.mkdtemp``: its 0o700 would stay on a directory payload renamed
    into place, which the rest of the lab could then neither read nor replace.
    """
    return make_temp_dir(dest.parent, prefix=f".{dest.name}.", suffix=".tmp")


def remove_path(path: Path) -> None:
    """Delete a file, symlink or directory tree if it exists (never following links)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.is_dir():
        shutil.rmtree(path)


def install_path(staged: Path, dest: Path) -> None:
    """Move ``staged`` to ``dest``, replacing whatever ``dest`` was.

    A file replacing a file is one atomic rename. Otherwise the old payload is
    renamed aside first, the new one renamed in, and the old one deleted; if the
    second rename fails the old payload is put back.
    """
    if not (dest.exists() or dest.is_symlink()):
        staged.replace(dest)
        return
    if not dest.is_dir() and not staged.is_dir():
        staged.replace(dest)
        return
    aside = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.old")
    dest.rename(aside)
    try:
        staged.rename(dest)
    except BaseException:
        aside.rename(dest)
        raise
    remove_path(aside)


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _same_file(first: Path, second: Path) -> bool:
    try:
        a, b = first.lstat(), second.lstat()
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _aside_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.old")


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[None]:
    """Make replacing the payload at ``dest`` all-or-nothing together with the block.

    Inside the block the caller installs the new payload at ``dest`` and registers it.
    If the block raises, ``dest`` is restored: the previous file (kept as a hard link, or
    a copy where hard links are not supported, so readers never see it missing) or
    directory (renamed aside meanwhile) comes back, and a payload that did not exist
    before is removed. On success the kept copy is deleted.
    """
    aside: Path | None = None
    if _is_real_dir(dest):
        aside = _aside_name(dest)
        dest.rename(aside)
    elif dest.exists() or dest.is_symlink():
        aside = _aside_name(dest)
        try:
            os.link(dest, aside, follow_symlinks=False)
        except OSError:  # a filesystem without hard links: keep a copy instead
            shutil.copy2(dest, aside, follow_symlinks=False)
    try:
        yield
    except BaseException:
        if aside is None:
            remove_path(dest)
        elif _same_file(aside, dest):
            aside.unlink()  # the block failed before replacing dest
        else:
            if _is_real_dir(dest) or _is_real_dir(aside):
                remove_path(dest)
            aside.replace(dest)  # a file over a file: one atomic rename
        raise
    if aside is not None:
        remove_path(aside)


def _json_text(data: object, what: str) -> str:
    try:
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} cannot be serialized as JSON: {exc}") from None


def _utf8(text: str, what: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{what} cannot be written as UTF-8: {shown_value(exc.object[exc.start : exc.end])} "
            f"at position {exc.start} is a lone surrogate"
        ) from None


def _copy_into_place(src: Path, dest: Path, what: str) -> str:
    if not (src.exists() or src.is_symlink()):
        raise FileNotFoundError(f"{what}: source path {src} does not exist")
    if dest.exists() and src.resolve() == dest.resolve():
        # Already written in place (e.g. to ``store.path(name)``): just register it.
        return DIRECTORY_MEDIA_TYPE if dest.is_dir() else _guess_media_type(dest)
    staging = staging_dir(dest)
    try:
        staged = staging / "payload"
        if src.is_dir():
            copy_tree(src, staged)
        else:
            copy_file(src, staged)
        install_path(staged, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DIRECTORY_MEDIA_TYPE if dest.is_dir() else _guess_media_type(dest)


def _guess_media_type(path: Path) -> str:
    guessed, _encoding = mimetypes.guess_type(path.name)
    return guessed or BINARY_MEDIA_TYPE


def _replace_with_file(dest: Path, write: bytes) -> None:
    if dest.is_dir() and not dest.is_symlink():
        staging = staging_dir(dest)
        try:
            staged = staging / "payload"
            atomic_write_bytes(staged, write)
            install_path(staged, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    else:
        atomic_write_bytes(dest, write)


def write_payload(dest: Path, data: object, *, what: str) -> str:
    """Serialize ``data`` to ``dest`` (see the module rules); returns the media type."""
    if isinstance(data, BaseModel):
        try:
            text = data.model_dump_json(indent=2) + "\n"
        except ValueError as exc:  # PydanticSerializationError
            raise ValueError(f"{what} cannot be serialized as JSON: {exc}") from None
        _replace_with_file(dest, _utf8(text, what))
        return JSON_MEDIA_TYPE
    if isinstance(data, dict | list):
        _replace_with_file(dest, _utf8(_json_text(data, what), what))
        return JSON_MEDIA_TYPE
    if isinstance(data, bytes | bytearray):
        _replace_with_file(dest, bytes(data))
        return BINARY_MEDIA_TYPE
    if isinstance(data, str):
        _replace_with_file(dest, _utf8(data, what))
        return TEXT_MEDIA_TYPE
    if isinstance(data, Path):
        return _copy_into_place(data, dest, what)
    raise TypeError(
        f"{what}: cannot save a value of type {type(data).__name__}; "
        "pass a dict, list or pydantic model (JSON), bytes, str (text) or pathlib.Path (copy)"
    )


def load_payload(path: Path, media_type: str | None, *, what: str) -> object:
    """Read a payload back: JSON -> object, ``text/*`` -> str, directory -> its Path, else bytes.

    ``media_type`` ``None`` marks a payload-less record (e.g. a marker checkpoint)
    and loads as ``None``.
    """
    if media_type is None:
        return None
    if not (path.exists() or path.is_symlink()):
        raise FileNotFoundError(f"{what}: payload {path} is missing")
    if media_type == DIRECTORY_MEDIA_TYPE:
        return path
    if media_type == JSON_MEDIA_TYPE:
        return json.loads(path.read_text(encoding="utf-8"))
    if media_type.startswith("text/"):
        return path.read_text(encoding="utf-8")
    return path.read_bytes()
