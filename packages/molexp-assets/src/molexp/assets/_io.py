"""Durable record I/O shared by the persistent layers.

Owns atomic writes (temp file + fsync + ``os.replace``), validation of user-supplied
names, and versioned record loading with errors that name the file, the field and the
offending value. The record locks (``locked``) live in ``molexp.assets._locks`` and are
re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from molexp.assets._locks import LOCK_TIMEOUT_SECONDS, lock_path_for, locked, on_local_filesystem
from molexp.assets._permissions import explain_permission_error, make_dirs
from molexp.assets.errors import RecordError, UnsupportedVersionError
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "LOCK_TIMEOUT_SECONDS",
    "SLOW_WRITES_ENV",
    "RecordError",
    "UnsupportedVersionError",
    "VersionedRecord",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "checked_path",
    "create_exclusive_bytes",
    "decode_json",
    "dump_json",
    "is_valid_unicode",
    "load_record",
    "lock_path_for",
    "locked",
    "lone_surrogate_at",
    "parse_record",
    "read_bytes_if_present",
    "read_json",
    "restore_file",
    "shown_value",
    "slugify",
    "validate_name",
]

MAX_NAME_BYTES = 200
SLOW_WRITES_ENV = "MOLEXP_TEST_SLOW_WRITES"
"""Test hook: seconds every atomic write sleeps between writing its temp file and renaming it.

Read once at import. Crash tests set it in worker processes to widen the window in which a
kill lands mid-write; it is never set in normal use.
"""
_SLOW_WRITES = float(os.environ.get(SLOW_WRITES_ENV) or 0.0)


def validate_name(value: object, what: str = "name") -> str:
    """Return ``value`` if it is safe to use as one path component, else raise ``ValueError``.

    Rejects empty names, ``.``/``..``, path separators, absolute paths, NUL and other
    control characters, surrounding whitespace, and names longer than
    ``MAX_NAME_BYTES`` bytes of UTF-8.
    """
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string, got {type(value).__name__}: {value!r}")
    if value == "":
        raise ValueError(f"{what} must not be empty, got {value!r}")
    if value in {".", ".."}:
        raise ValueError(f"{what} {value!r} is not allowed: it would leave its directory")
    if "/" in value or "\\" in value:
        raise ValueError(f"{what} {value!r} must not contain a path separator")
    if "\x00" in value or any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError(f"{what} {value!r} must not contain NUL or control characters")
    if not is_valid_unicode(value):
        raise ValueError(f"{what} {value!r} is not valid Unicode (it holds a lone surrogate)")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} must not start or end with whitespace")
    size = len(value.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise ValueError(
            f"{what} {shown_value(value)} is too long ({size} bytes > {MAX_NAME_BYTES})"
        )
    return value


def checked_path(value: str | os.PathLike[str], what: str) -> Path:
    """``value`` as a ``Path``, or ``ValueError`` naming ``what`` and the value.

    Rejects what the operating system would refuse with a bare "embedded null byte" or
    an encoding error: NUL characters, text the filesystem encoding cannot represent, and
    values that are not paths at all.
    """
    try:
        text = os.fspath(value)
    except TypeError:
        raise ValueError(
            f"{what} must be a path, got {type(value).__name__}: {shown_value(value)}"
        ) from None
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a text path, got {shown_value(text)}")
    if "\x00" in text:
        raise ValueError(f"{what} {shown_value(text)} must not contain a NUL character")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise ValueError(
            f"{what} {shown_value(text)} cannot be encoded as a file name "
            "(it holds a lone surrogate)"
        ) from None
    return Path(text)


def is_valid_unicode(text: str) -> bool:
    """Whether ``text`` can be encoded as UTF-8 (no lone surrogates), as JSON records need."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def lone_surrogate_at(value: Any, path: str = "") -> str | None:
    """Where in ``value`` (keys included) a string is not valid Unicode, or None.

    Walks dicts, lists, tuples and pydantic models; the answer is a path such as
    ``parameters['a'][2]`` (relative to ``path``).
    """
    if isinstance(value, str):
        return None if is_valid_unicode(value) else (path or "value")
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_valid_unicode(key):
                return f"{path}[{key!r}] (the key)"
            found = lone_surrogate_at(item, f"{path}[{key!r}]")
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = lone_surrogate_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            found = lone_surrogate_at(getattr(value, name), f"{path}.{name}" if path else name)
            if found is not None:
                return found
    return None


_SLUG_STRIP = re.compile(r"[^a-z0-9._-]+")


def slugify(name: str) -> str:
    """A stable, filesystem-safe id for a human name: ``"QM9 Baseline"`` -> ``"qm9-baseline"``."""
    validate_name(name)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _SLUG_STRIP.sub("-", ascii_name.lower()).strip("-.")
    if not slug:
        raise ValueError(f"name {name!r} has no characters usable in an id; pass an explicit id")
    return validate_name(slug, "slug")


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_TEMP_ATTEMPTS = 100


def _open_temp(directory: str, name: str, mode: int = 0o666) -> tuple[int, str]:
    """Create ``<directory>/.<name>.<random>.tmp`` exclusively (``mode`` minus the umask).

    The directory is created only when it is missing, so the common case costs one
    ``open``. A name taken (by anyone) is skipped; a directory that refuses the file
    raises ``SharedPermissionError`` naming it and the fix.
    """
    for _ in range(_TEMP_ATTEMPTS):
        # str paths and os calls on purpose: this is the hot path of every record write.
        tmp_name = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")  # noqa: PTH118
        try:
            return os.open(tmp_name, _TEMP_FLAGS, mode), tmp_name
        except FileNotFoundError:
            make_dirs(Path(directory))
        except FileExistsError:
            continue
        except PermissionError as exc:
            raise explain_permission_error(exc, tmp_name) from exc
    raise FileExistsError(f"no free temp file name for {name!r} in {directory}")


def _fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(
    path: Path, data: bytes, *, durable: bool = True, executable: bool = False
) -> None:
    """Write ``data`` to ``path`` so readers see the old or the new content, never a mix.

    The bytes go to a temp file in the same directory (mode 0o666, or 0o777 when
    ``executable``, minus the umask), are fsynced, then renamed over ``path``; replacing
    a file another user owns needs only a writable directory. The directory is fsynced after the
    rename. On any error the temp file is removed and ``path`` is untouched (an error
    from the final directory fsync comes after the rename: ``path`` then holds the new
    content, which may not yet be durable). ``durable=False`` skips both fsyncs: the
    write still survives a crash of the process, not necessarily one of the system.
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    directory = directory or "."
    fd, tmp_name = _open_temp(directory, name, 0o777 if executable else 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if _SLOW_WRITES:
                time.sleep(_SLOW_WRITES)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)  # noqa: PTH105
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)  # noqa: PTH108
        if isinstance(exc, PermissionError):
            raise explain_permission_error(exc, target) from exc
        raise
    if durable:
        _fsync_dir(directory)


def create_exclusive_bytes(path: Path, data: bytes, *, durable: bool = True) -> bool:
    """Create ``path`` holding ``data`` unless it exists; True if this call created it.

    The complete content is written to a temp file first and hard-linked into place:
    ``link`` fails on an existing name atomically on local and network filesystems
    (NFS, Lustre, GPFS, sshfs), so of concurrent creators on any hosts exactly one wins
    and readers never see a partial file. (An NFS ``link`` whose reply was lost reports
    EEXIST although it worked: the temp file's link count tells.)
    """
    target = os.fspath(path)
    directory, name = os.path.split(target)
    directory = directory or "."
    fd, tmp_name = _open_temp(directory, name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp_name, target)
            created = True
        except (FileExistsError, PermissionError) as exc:
            # sshfs reports a link onto an existing name as EPERM, not EEXIST.
            if isinstance(exc, PermissionError) and not os.path.lexists(target):
                raise
            created = os.stat(tmp_name).st_nlink == 2  # noqa: PTH116
    except PermissionError as exc:
        raise explain_permission_error(exc, target) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)  # noqa: PTH108
    if created and durable:
        _fsync_dir(directory)
    return created


def read_bytes_if_present(path: Path) -> bytes | None:
    """The bytes of ``path``, or None when there is no such file."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return None


def restore_file(path: Path, previous: bytes | None) -> None:
    """Best effort after a failed write: put ``path`` back to ``previous`` (None: absent).

    Touches the file only when it no longer holds ``previous`` - the failed write got as
    far as its rename (the directory fsync failed) or a later step (an index write)
    failed. Errors are swallowed: the caller is already raising the original one.
    """
    with contextlib.suppress(OSError):
        if read_bytes_if_present(path) == previous:
            return
        if previous is None:
            Path(path).unlink(missing_ok=True)
        else:
            atomic_write_bytes(path, previous)


def atomic_write_text(
    path: Path, text: str, *, durable: bool = True, executable: bool = False
) -> None:
    """``atomic_write_bytes`` of ``text`` encoded as UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), durable=durable, executable=executable)


def dump_json(obj: Any) -> str:
    """Canonical, human-readable JSON used for every record MolExp writes."""
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


def atomic_write_json(path: Path, obj: Any, *, durable: bool = True) -> None:
    """Atomically write a pydantic model (its JSON) or a plain object (``dump_json``)."""
    text = obj.model_dump_json(indent=2) + "\n" if isinstance(obj, BaseModel) else dump_json(obj)
    atomic_write_text(path, text, durable=durable)


class VersionedRecord(BaseModel):
    """Base for every persisted record: carries a schema ``version``.

    Subclasses set ``SCHEMA_VERSION``; reading a record whose version is newer is an
    ``UnsupportedVersionError`` rather than a silent misread.
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=False)
    SCHEMA_VERSION: ClassVar[int] = 1

    version: int = 1


M = TypeVar("M", bound=VersionedRecord)
T = TypeVar("T")


def read_record_bytes(path: Path) -> bytes:
    """The bytes of a record file; ``RecordError`` naming it when missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise RecordError(path, "record file is missing") from None
    except OSError as exc:
        raise RecordError(path, f"cannot read record: {exc.strerror or exc}") from exc


SETTLE_SECONDS = 3.0
"""How long a record on a network filesystem that does not parse is re-read."""


def read_settled(path: Path, parse: Callable[[bytes], T]) -> tuple[bytes, T]:
    """Read a record file and ``parse`` its bytes; the bytes and the parsed value.

    On a network filesystem a client may still hold the size of the version another
    host just replaced (sshfs caches attributes; NFS does between opens), so a read can
    come back cut short. There a record that fails to parse is re-read for up to
    ``SETTLE_SECONDS`` before its ``RecordError`` stands; on local disks it stands at once.
    """
    path = Path(path)
    raw = read_record_bytes(path)
    try:
        return raw, parse(raw)
    except RecordError:
        if on_local_filesystem(path):
            raise
    deadline = time.monotonic() + SETTLE_SECONDS
    delay = 0.05
    while True:
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
        raw = read_record_bytes(path)
        try:
            return raw, parse(raw)
        except RecordError:
            if time.monotonic() >= deadline:
                raise


def read_json(path: Path) -> Any:
    """Read and decode a JSON record file, raising ``RecordError`` naming the file."""
    path = Path(path)
    return read_settled(path, lambda raw: decode_json(path, raw))[1]


def decode_json(path: Path, raw: bytes) -> Any:
    """Decode the bytes of a JSON record file, raising ``RecordError`` naming the file.

    Besides syntax errors this covers invalid UTF-8, integers too long to convert,
    nesting too deep for the decoder and ``\\u`` escapes of lone surrogates (text that
    could never be written back as UTF-8).
    """
    try:
        data = json.loads(raw)
    except RecursionError:
        raise RecordError(path, "not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise RecordError(path, f"not valid JSON ({exc})") from None
    if b"\\ud" in raw or b"\\uD" in raw:  # only \u escapes can smuggle in a lone surrogate
        where = lone_surrogate_at(data)
        if where is not None:
            raise RecordError(
                path, f"not valid JSON text: {where} holds a lone surrogate (\\ud800-\\udfff)"
            )
    return data


def load_record(path: Path, model: type[M]) -> M:
    """Read and validate a JSON record, raising ``RecordError`` naming file and field."""
    path = Path(path)
    return parse_record(path, read_json(path), model)


def parse_record(path: Path, data: Any, model: type[M]) -> M:
    """Validate already-decoded JSON ``data`` as ``model``; errors name ``path`` and the field."""
    if not isinstance(data, dict):
        raise RecordError(path, f"expected a JSON object, got {type(data).__name__}")
    version = data.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise RecordError(path, f"version must be an integer, got {version!r}", field="version")
    if version > model.SCHEMA_VERSION:
        raise UnsupportedVersionError(
            path,
            f"schema version {version} is newer than this MolExp understands "
            f"({model.SCHEMA_VERSION}); upgrade MolExp to read it",
            field="version",
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"]
        if "input" in first and first["type"] != "missing":
            message += f", got {shown_value(first['input'])}"
        raise RecordError(path, message, field=field) from None
    except RecursionError:
        raise RecordError(path, "record is nested too deeply to validate") from None


SHOWN_VALUE_CHARS = 80


def shown_value(value: Any) -> str:
    """``repr(value)`` cut to ``SHOWN_VALUE_CHARS`` characters, for error messages."""
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__ must not hide the real error
        text = f"<{type(value).__name__}>"
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[: SHOWN_VALUE_CHARS - 3] + "..."
    return text
