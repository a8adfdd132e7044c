"""Where cached task results live: the entry model, the ``CacheStore`` protocol and its stores.

In memory (:class:`MemoryCacheStore`), a directory (:class:`FileCacheStore`) and a
workspace-rooted directory (:class:`WorkspaceCacheStore`). Values are stored pickled: only point a
cache at a directory you trust.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import struct
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from molexp.workflow.errors import CacheStoreError, UnreadableCacheEntryError
from molexp.workflow.reads import ReadSource, RunRead
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CacheEntry",
    "CacheEntryInfo",
    "CacheEntryMetadata",
    "CacheLookup",
    "CacheStore",
    "FileCacheStore",
    "MemoryCacheStore",
    "WorkspaceCacheStore",
]

CACHE_FORMAT_VERSION = 3
"""Format of stored entries; entries written with a version this one cannot read are misses."""

_READABLE_VERSIONS = frozenset({2, CACHE_FORMAT_VERSION})
"""Versions whose entries mean what this version's do. Version 2 differs only in its layout on
disk (``meta.json`` beside a bare ``payload.pkl``): its entries keep being read. When snapshot or
key semantics change, bump :data:`CACHE_FORMAT_VERSION` and leave only it here."""

_STALE_SCRATCH_SECONDS = 3600.0


class CacheEntryMetadata(BaseModel):
    """Everything about a cached result except the value itself."""

    model_config = ConfigDict(extra="ignore")

    version: int = CACHE_FORMAT_VERSION
    key: str
    snapshot_key: str
    task_id: str
    task_type: str
    code_hash: str
    config_hash: str
    input_hash: str
    created_at: datetime
    last_used_at: datetime
    body_hash: str = ""
    dependency_hashes: dict[str, str] = Field(default_factory=dict)
    distributions: dict[str, str] = Field(default_factory=dict)
    distribution_records: dict[str, str] = Field(default_factory=dict)
    config_data: dict[str, Any] = Field(default_factory=dict)
    input_hashes: dict[str, str] = Field(
        default_factory=dict, description="per-input sha256 when the inputs are a str mapping"
    )
    kind: Literal["value", "reads"] = Field(
        default="value", description="a stored result, or an index of what results read"
    )
    reads: list[RunRead] = Field(
        default_factory=list, description="the run-derived values the result depends on"
    )
    read_sets: list[list[tuple[ReadSource, str | None]]] = Field(
        default_factory=list,
        description="kind 'reads': the (source, key) read by stored results, newest first",
    )
    payload_size: int
    payload_sha256: str


class CacheEntry(CacheEntryMetadata):
    """A cached result: metadata plus ``payload``, the pickled value."""

    payload: bytes = Field(repr=False)

    def metadata(self) -> CacheEntryMetadata:
        """The entry without its payload."""
        return CacheEntryMetadata.model_validate(self.model_dump(exclude={"payload"}))


_Entry = TypeVar("_Entry", bound=CacheEntryMetadata)


@dataclasses.dataclass(frozen=True, slots=True)
class CacheEntryInfo:
    """Lightweight listing of one entry, enough for LRU eviction."""

    key: str
    last_used_at: datetime


@runtime_checkable
class CacheStore(Protocol):
    """Where :class:`Caching` keeps entries.

    ``load``/``load_metadata`` return None for a missing key and raise
    :class:`UnreadableCacheEntryError` for an entry that exists but cannot be used. ``entries``
    lists entries least recently used first; ``touch`` marks one as just used.
    """

    def initialize(self) -> None: ...
    def load(self, key: str) -> CacheEntry | None: ...
    def load_metadata(self, key: str) -> CacheEntryMetadata | None: ...
    def save(self, entry: CacheEntry) -> None: ...
    def delete(self, key: str) -> None: ...
    def keys(self) -> list[str]: ...
    def touch(self, key: str) -> None: ...
    def entries(self) -> Iterable[CacheEntryInfo]: ...


def _check_version(version: object, key: str) -> None:
    if type(version) is not int or version not in _READABLE_VERSIONS:
        newer = isinstance(version, int) and version > CACHE_FORMAT_VERSION
        origin = "a newer MolExp" if newer else "an older MolExp"
        readable = " and ".join(str(known) for known in sorted(_READABLE_VERSIONS))
        raise UnreadableCacheEntryError(
            f"entry {key} has cache format version {version!r}, written by {origin}; "
            f"this one reads versions {readable}"
        )


class MemoryCacheStore:
    """Entries kept in this process only (thread-safe)."""

    def __init__(self) -> None:
        self._entries: dict[str, CacheEntry] = {}
        self._last_used: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryCacheStore({len(self._entries)} entries)"

    def initialize(self) -> None:
        """Nothing to prepare in memory."""

    def load(self, key: str) -> CacheEntry | None:
        """The entry ``key``.

        Args:
            key: The cache key.

        Returns:
            The entry, or None if there is no entry ``key``.

        Raises:
            UnreadableCacheEntryError: If the entry has another cache format version.
        """
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            _check_version(entry.version, key)
        return entry

    def load_metadata(self, key: str) -> CacheEntryMetadata | None:
        """The metadata of the entry ``key``, with when it was last used.

        Args:
            key: The cache key.

        Returns:
            The entry's metadata, or None if there is no entry ``key``.

        Raises:
            UnreadableCacheEntryError: If the entry has another cache format version.
        """
        entry = self.load(key)
        if entry is None:
            return None
        with self._lock:
            last_used = self._last_used.get(key, entry.last_used_at)
        return entry.metadata().model_copy(update={"last_used_at": last_used})

    def save(self, entry: CacheEntry) -> None:
        """Store ``entry`` as the most recently used, replacing any entry of its key.

        Args:
            entry: The entry to store.
        """
        with self._lock:
            self._entries[entry.key] = entry
            self._last_used[entry.key] = entry.last_used_at
            self._last_used.move_to_end(entry.key)

    def delete(self, key: str) -> None:
        """Remove the entry ``key``; a missing entry is not an error.

        Args:
            key: The cache key.
        """
        with self._lock:
            self._entries.pop(key, None)
            self._last_used.pop(key, None)

    def keys(self) -> list[str]:
        """The keys of all stored entries."""
        with self._lock:
            return list(self._entries)

    def touch(self, key: str) -> None:
        """Mark the entry ``key`` as just used; a missing entry is ignored.

        Args:
            key: The cache key.
        """
        with self._lock:
            if key in self._last_used:
                self._last_used[key] = datetime.now(UTC)
                self._last_used.move_to_end(key)

    def entries(self) -> list[CacheEntryInfo]:
        """Least recently used first."""
        with self._lock:
            return [CacheEntryInfo(key, used) for key, used in self._last_used.items()]


_KEY_PATTERN = re.compile(r"[0-9A-Za-z][0-9A-Za-z.:-]{0,199}")
_clock_lock = threading.Lock()
_last_ns = 0

_T = TypeVar("_T")

# Layout of a version-3 entry file (``payload.pkl``): the pickled value, the metadata as compact
# JSON, the key (ASCII), then a fixed tail: the trailer, the sha256 of everything before the
# digest, and the magic. ``pickle.loads`` ignores bytes past the pickle, so the file still loads
# as the bare value; a version-2 ``payload.pkl`` ends with the pickle's STOP opcode ``.``.
_MAGIC = b"MXCACHE3"
_TRAILER = struct.Struct("<QIHIB")
"""payload size, metadata size, key size, format version, kind (0 value, 1 reads)."""
_DIGEST_SIZE = hashlib.sha256().digest_size
_TAIL_SIZE = _TRAILER.size + _DIGEST_SIZE + len(_MAGIC)
_KINDS: tuple[Literal["value", "reads"], ...] = ("value", "reads")
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
_UTIME_FD = os.utime in os.supports_fd
_SMALL_FILE = 1 << 16


def _new_staging_dir(parent: Path) -> Path:
    """A fresh ``entry-<random>`` directory in ``parent``, mode 0o777 minus the umask.

    Not ``tempfile.mkdtemp``: its 0o700 would stay on the entry once renamed into place,
    and other users of a shared workspace could neither read nor replace it.
    """
    while True:
        candidate = parent / f"entry-{secrets.token_hex(8)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def _strictly_increasing_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing within this process (for LRU order)."""
    global _last_ns
    with _clock_lock:
        _last_ns = max(time.time_ns(), _last_ns + 1)
        return _last_ns


def _pack(entry: CacheEntry) -> bytes:
    """The version-3 file of ``entry``: payload, metadata, key, trailer, digest, magic."""
    metadata = entry.model_dump_json(exclude={"payload"}).encode("utf-8")
    key = entry.key.encode("ascii")
    trailer = _TRAILER.pack(
        len(entry.payload), len(metadata), len(key), entry.version, _KINDS.index(entry.kind)
    )
    digest = hashlib.sha256(entry.payload)
    for part in (metadata, key, trailer):
        digest.update(part)
    return b"".join([entry.payload, metadata, key, trailer, digest.digest(), _MAGIC])


def _unpack(data: bytes, key: str, path: object) -> tuple[bytes | memoryview, bytes, int]:
    """Payload, metadata JSON and kind of the version-3 entry file ``data`` of ``key``.

    Raises:
        UnreadableCacheEntryError: If ``data`` is not a whole, unchanged version-3 file of
            ``key`` (checked against its digest), or has another format version.
    """
    size = len(data)
    if size < _TAIL_SIZE or not data.endswith(_MAGIC):
        raise UnreadableCacheEntryError(f"{path} has no entry trailer (truncated or changed)")
    end = size - _TAIL_SIZE
    payload_size, metadata_size, key_size, version, kind = _TRAILER.unpack_from(data, end)
    signed = end + _TRAILER.size
    # Slicing copies: cheaper than a memoryview for a small file, not for a large one.
    view: bytes | memoryview = data if size <= _SMALL_FILE else memoryview(data)
    if (
        payload_size + metadata_size + key_size != end
        or hashlib.sha256(view[:signed]).digest() != data[signed : signed + _DIGEST_SIZE]
    ):
        raise UnreadableCacheEntryError(
            f"{path} does not match its checksum (changed or truncated)"
        )
    _check_layout_version(version, key, path)
    metadata_end = payload_size + metadata_size
    if data[metadata_end:end] != key.encode("ascii"):
        stored = data[metadata_end:end].decode("ascii", "replace")
        raise UnreadableCacheEntryError(f"{path} holds key {stored!r}, not {key}")
    if kind >= len(_KINDS):
        raise UnreadableCacheEntryError(f"{path} has an unknown entry kind {kind}")
    return view[:payload_size], data[payload_size:metadata_end], kind


def _check_layout_version(version: int, key: str, path: object) -> None:
    """A file in the version-3 layout must say version 3 (another one says why it cannot)."""
    if version != CACHE_FORMAT_VERSION:
        _check_version(version, key)
        raise UnreadableCacheEntryError(f"{path} says format version {version} in a layout of 3")


def _read_all(fd: int, size: int) -> bytes:
    """The ``size`` bytes of the open file ``fd`` from its current offset (short reads retried)."""
    data = os.read(fd, size)
    if len(data) == size:
        return data
    chunks = [data]
    got = len(data)
    while got < size:
        chunk = os.read(fd, size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _read_at(fd: int, size: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return _read_all(fd, size)


def _parse_metadata(raw: bytes, key: str, path: object) -> dict[str, Any]:
    """The JSON object ``raw`` of the entry ``key``, its version and key checked."""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableCacheEntryError(f"corrupt cache metadata {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UnreadableCacheEntryError(f"corrupt cache metadata {path}: not an object")
    _check_version(data.get("version"), key)
    if data.get("key") != key:
        raise UnreadableCacheEntryError(f"{path} holds key {data.get('key')!r}, not {key}")
    return data


def _touch_fd(fd: int, path: str) -> None:
    """Set the modification time of an open entry file to now (a hint: refusals are ignored)."""
    target: int | str = fd if _UTIME_FD else path
    stamp = _strictly_increasing_ns()
    with contextlib.suppress(OSError):
        try:
            os.utime(target, ns=(stamp, stamp))
        except PermissionError:
            # An entry another user wrote: only its owner may set explicit times, any
            # writer may set "now".
            os.utime(target)


class FileCacheStore:
    """Entries in a directory: ``<store_dir>/entries/<key>/payload.pkl``, one file per entry.

    The file is the pickled value followed by the entry's metadata (compact JSON), its key, a
    trailer (sizes, format version, kind), the sha256 of all of that, and a magic
    (``MXCACHE3``). A hit reads this one file and checks the key, the format version and the
    digest, so a changed or truncated entry is a miss; ``pickle.loads`` of the file still gives
    the value. Entries of format version 2 (``meta.json`` beside a bare ``payload.pkl``) are
    still read.

    An entry is written into a private temp directory and renamed into place, so readers see a
    whole entry or none; two processes writing the same key both succeed and one copy is kept.
    The last use of an entry is the modification time of its ``payload.pkl`` (a hit costs one
    ``utime`` of the file it already has open, not a rewrite). Keys are 1-200 characters of
    ``[0-9A-Za-z.:-]`` starting with a letter or digit (``:`` is stored as ``_`` in directory
    names).
    """

    META_FILE = "meta.json"
    """The metadata of a version-2 entry (version 3 keeps it inside :attr:`PAYLOAD_FILE`)."""
    PAYLOAD_FILE = "payload.pkl"

    def __init__(self, store_dir: Path | str) -> None:
        self.store_dir = Path(store_dir).expanduser()
        self._entries_dir = self.store_dir / "entries"
        self._scratch_dir = self.store_dir / ".tmp"
        self._entries_prefix = f"{os.fspath(self._entries_dir)}{os.sep}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.store_dir)!r})"

    def initialize(self) -> None:
        """Create the store directories (idempotent) and remove scratch left by dead writers."""
        try:
            self._entries_dir.mkdir(parents=True, exist_ok=True)
            self._scratch_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheStoreError(f"cannot create cache directory {self.store_dir}: {exc}") from exc
        self._remove_stale_scratch()

    def _remove_stale_scratch(self) -> None:
        """Staging/trash directories older than an hour belong to processes that died mid-write."""
        cutoff = time.time() - _STALE_SCRATCH_SECONDS
        with contextlib.suppress(OSError):
            for leftover in self._scratch_dir.iterdir():
                with contextlib.suppress(OSError):
                    if leftover.lstat().st_mtime < cutoff:
                        shutil.rmtree(leftover, ignore_errors=True)

    def _entry_dir(self, key: str) -> Path:
        if not isinstance(key, str) or _KEY_PATTERN.fullmatch(key) is None:
            raise ValueError(
                f"invalid cache key {key!r} for {self!r}: expected 1-200 characters of "
                f"[0-9A-Za-z.:-] starting with a letter or digit"
            )
        return self._entries_dir / key.replace(":", "_")

    def _load_value(
        self, key: str, decode: Callable[[bytes | memoryview], _T], *, touch: bool
    ) -> tuple[_T] | None:
        """The fast path of a hit: ``(decode(payload),)`` for a stored value of this version.

        Reads the one entry file and checks it like :meth:`load` (digest, key, format version),
        without parsing or validating the metadata, which a stored value does not need. With
        ``touch``, the entry is marked as used once ``decode`` returned. None when :meth:`load`
        has to answer: no entry, an index (kind ``reads``), an entry of version 2 or another
        version, an invalid key, any damage or read error (``load`` then says why).
        Exceptions raised by ``decode`` propagate.
        """
        if type(key) is not str or _KEY_PATTERN.fullmatch(key) is None:
            return None
        path = f"{self._entries_prefix}{key.replace(':', '_')}{os.sep}{self.PAYLOAD_FILE}"
        try:
            fd = os.open(path, _READ_FLAGS)
        except OSError:
            return None
        try:
            try:
                # One read for a small file (a short read fails the checks: load() retries).
                data = os.read(fd, _SMALL_FILE)
                if len(data) == _SMALL_FILE:
                    data = _read_at(fd, os.fstat(fd).st_size, 0)
                if not data.endswith(_MAGIC):  # version 2, or damaged: load() tells
                    return None
                payload, _, kind = _unpack(data, key, path)
            except (OSError, UnreadableCacheEntryError):
                return None
            if kind != 0:
                return None
            value = decode(payload)
            if touch:
                _touch_fd(fd, path)
            return (value,)
        finally:
            os.close(fd)

    def _read(self, key: str, *, with_payload: bool) -> tuple[dict[str, Any], bytes, Path] | None:
        """The raw metadata of ``key`` (version and key checked, ``last_used_at`` set) and, with
        ``with_payload``, its payload checked against the digest (else ``b""``), or None."""
        entry_dir = self._entry_dir(key)
        payload_path = entry_dir / self.PAYLOAD_FILE
        try:
            fd = os.open(payload_path, _READ_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return self._read_version_2(key, entry_dir, None, with_payload=with_payload)
        except OSError as exc:
            raise UnreadableCacheEntryError(f"cannot read {payload_path}: {exc}") from exc
        try:
            status = os.fstat(fd)
            size = status.st_size
            if size < _TAIL_SIZE or _read_at(fd, len(_MAGIC), size - len(_MAGIC)) != _MAGIC:
                payload = _read_at(fd, size, 0) if with_payload else None
                return self._read_version_2(key, entry_dir, payload, with_payload=with_payload)
            if with_payload:
                payload_view, metadata, _ = _unpack(_read_at(fd, size, 0), key, payload_path)
                payload = bytes(payload_view)
            else:
                tail = _read_at(fd, _TRAILER.size, size - _TAIL_SIZE)
                payload_size, metadata_size, key_size, version, _ = _TRAILER.unpack(tail)
                _check_layout_version(version, key, payload_path)
                if payload_size + metadata_size + key_size != size - _TAIL_SIZE:
                    raise UnreadableCacheEntryError(
                        f"{payload_path} does not match its trailer (changed or truncated)"
                    )
                metadata = _read_at(fd, metadata_size, payload_size)
                payload = b""
        except OSError as exc:
            raise UnreadableCacheEntryError(f"cannot read {payload_path}: {exc}") from exc
        finally:
            os.close(fd)
        data = _parse_metadata(metadata, key, payload_path)
        data["last_used_at"] = datetime.fromtimestamp(status.st_mtime_ns / 1e9, UTC)
        return data, payload, entry_dir

    def _read_version_2(
        self, key: str, entry_dir: Path, payload: bytes | None, *, with_payload: bool
    ) -> tuple[dict[str, Any], bytes, Path] | None:
        """A version-2 entry: ``meta.json`` beside the bare pickle ``payload`` (None: absent)."""
        meta_path = entry_dir / self.META_FILE
        try:
            with meta_path.open("rb") as handle:
                raw = handle.read()
                meta_used_ns = os.fstat(handle.fileno()).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            if payload is None and not (entry_dir / self.PAYLOAD_FILE).exists():
                return None
            raise UnreadableCacheEntryError(
                f"{entry_dir / self.PAYLOAD_FILE} has neither an entry trailer nor a "
                f"{self.META_FILE} beside it (truncated or changed)"
            ) from None
        except OSError as exc:
            raise UnreadableCacheEntryError(f"cannot read {meta_path}: {exc}") from exc
        data = _parse_metadata(raw, key, meta_path)
        payload_path = entry_dir / self.PAYLOAD_FILE
        try:
            used_ns = payload_path.stat().st_mtime_ns
        except OSError:
            used_ns = meta_used_ns
        data["last_used_at"] = datetime.fromtimestamp(used_ns / 1e9, UTC)
        if not with_payload:
            return data, b"", entry_dir
        if payload is None:
            raise UnreadableCacheEntryError(f"cannot read {payload_path}: no such file")
        return data, payload, entry_dir  # load() checks it against the metadata

    def _validate(self, model: type[_Entry], data: dict[str, Any], entry_dir: Path) -> _Entry:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise UnreadableCacheEntryError(
                f"corrupt cache metadata of {entry_dir} (field {field!r}): {first['msg']}"
            ) from None

    def load_metadata(self, key: str) -> CacheEntryMetadata | None:
        """The metadata of the entry ``key``, without reading its payload.

        The payload is not read, so the digest is not checked here: :meth:`load` checks it.

        Args:
            key: The cache key.

        Returns:
            The entry's metadata, or None if there is no entry ``key``.

        Raises:
            ValueError: If ``key`` is not a valid cache key.
            UnreadableCacheEntryError: If the entry exists but cannot be read or validated.
        """
        found = self._read(key, with_payload=False)
        if found is None:
            return None
        data, _, entry_dir = found
        return self._validate(CacheEntryMetadata, data, entry_dir)

    def load(self, key: str) -> CacheEntry | None:
        """The entry ``key`` with its payload, checked against its digest, size and SHA-256.

        Args:
            key: The cache key.

        Returns:
            The entry, or None if there is no entry ``key``.

        Raises:
            ValueError: If ``key`` is not a valid cache key.
            UnreadableCacheEntryError: If the entry exists but cannot be read, fails validation, or
                its payload does not match its metadata.
        """
        found = self._read(key, with_payload=True)
        if found is None:
            return None
        data, payload, entry_dir = found
        data["payload"] = payload
        entry = self._validate(CacheEntry, data, entry_dir)
        if (
            len(entry.payload) != entry.payload_size
            or hashlib.sha256(entry.payload).hexdigest() != entry.payload_sha256
        ):
            raise UnreadableCacheEntryError(
                f"{entry_dir / self.PAYLOAD_FILE} does not match its metadata (changed or "
                f"truncated)"
            )
        return entry

    def save(self, entry: CacheEntry) -> None:
        """Write ``entry`` atomically (staged, then moved into place), replacing its key's entry.

        Args:
            entry: The entry to store.

        Raises:
            ValueError: If the entry's key is not a valid cache key.
            CacheStoreError: If the cache directory or the entry cannot be written.
        """
        target = self._entry_dir(entry.key)
        content = _pack(entry)
        try:
            try:
                staging = _new_staging_dir(self._scratch_dir)
            except FileNotFoundError:
                self.initialize()
                staging = _new_staging_dir(self._scratch_dir)
        except OSError as exc:
            raise CacheStoreError(
                f"cannot write to cache directory {self.store_dir}: {exc}"
            ) from exc
        try:
            payload_path = staging / self.PAYLOAD_FILE
            payload_path.write_bytes(content)
            stamp = _strictly_increasing_ns()
            os.utime(payload_path, ns=(stamp, stamp))
            self._move_into_place(staging, target)
        except OSError as exc:
            raise CacheStoreError(f"cannot write cache entry {target}: {exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _move_into_place(self, staging: Path, target: Path) -> None:
        """Rename ``staging`` to ``target``, replacing an existing entry (last writer wins).

        An existing entry is renamed aside first and only deleted once the new one is in
        place; if that rename fails, the previous entry is put back.
        """
        try:
            staging.rename(target)
            return
        except OSError:
            if not target.exists():
                raise
        aside = self._scratch_dir / f"trash-{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):  # deleted meanwhile: nothing to keep
            target.rename(aside)
        try:
            staging.rename(target)
        except OSError:
            if not target.exists():
                # Nobody else put an entry in place: restore the previous one, if any.
                with contextlib.suppress(FileNotFoundError):
                    aside.rename(target)
                raise
            # A concurrent writer put its own copy in place meanwhile: keep theirs.
        finally:
            shutil.rmtree(aside, ignore_errors=True)

    def _discard(self, entry_dir: Path) -> None:
        """Move an entry out of sight in one rename, then remove it."""
        trash = self._scratch_dir / f"trash-{uuid.uuid4().hex}"
        try:
            entry_dir.rename(trash)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CacheStoreError(f"cannot delete cache entry {entry_dir}: {exc}") from exc
        shutil.rmtree(trash, ignore_errors=True)

    def delete(self, key: str) -> None:
        """Remove the entry ``key``; a missing entry is not an error.

        Args:
            key: The cache key.

        Raises:
            ValueError: If ``key`` is not a valid cache key.
            CacheStoreError: If the entry exists but cannot be removed.
        """
        self._discard(self._entry_dir(key))

    def _entry_names(self) -> list[str]:
        try:
            return [
                path.name
                for path in self._entries_dir.iterdir()
                if _KEY_PATTERN.fullmatch(path.name.replace("_", ":"))
            ]
        except FileNotFoundError:
            return []

    def keys(self) -> list[str]:
        """The keys of all stored entries."""
        return [name.replace("_", ":") for name in self._entry_names()]

    def touch(self, key: str) -> None:
        """Mark the entry ``key`` as just used; a missing entry or a failed update is ignored.

        Args:
            key: The cache key.

        Raises:
            ValueError: If ``key`` is not a valid cache key.
        """
        stamp = _strictly_increasing_ns()
        payload = self._entry_dir(key) / self.PAYLOAD_FILE
        with contextlib.suppress(OSError):  # no entry, a read-only store, ...
            try:
                os.utime(payload, ns=(stamp, stamp))
            except PermissionError:
                # An entry another user wrote: only its owner may set explicit times, any
                # writer may set "now". Recency is a hint, so a refusal is ignored.
                os.utime(payload)

    def entries(self) -> list[CacheEntryInfo]:
        """All entries with when each was last used, least recently used first."""
        listed: list[tuple[int, str]] = []
        for name in self._entry_names():
            try:
                used_ns = (self._entries_dir / name / self.PAYLOAD_FILE).stat().st_mtime_ns
            except OSError:
                continue
            listed.append((used_ns, name.replace("_", ":")))
        listed.sort()
        return [CacheEntryInfo(key, datetime.fromtimestamp(ns / 1e9, UTC)) for ns, key in listed]


class WorkspaceCacheStore(FileCacheStore):
    """A :class:`FileCacheStore` under ``<workspace.root>/.subsystems/workflow.cache/``.

    ``workspace`` is any object with a ``root`` path attribute (the workspace layer's
    ``Workspace`` satisfies it); this module does not import the workspace layer.
    """

    def __init__(self, workspace: Any) -> None:
        root = getattr(workspace, "root", None)
        if not isinstance(root, str | os.PathLike):
            raise TypeError(
                f"WorkspaceCacheStore needs a workspace with a .root path, "
                f"got {type(workspace).__name__} with root={root!r}"
            )
        self.workspace = workspace
        super().__init__(Path(root) / ".subsystems" / "workflow.cache")


@dataclasses.dataclass(frozen=True, slots=True)
class CacheLookup:
    """Result of :meth:`Caching.lookup`: ``value`` is meaningful only when ``hit``."""

    hit: bool
    value: Any
    key: str | None
    reason: str
