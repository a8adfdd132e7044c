"""Caching of task results keyed by TaskSnapshot + input hash + run reads, with pluggable stores.

Owns :class:`Caching` (the LRU cache tasks opt into), the :class:`CacheStore` protocol and three
stores: in-memory, a directory (:class:`FileCacheStore`) and a workspace-rooted directory
(:class:`WorkspaceCacheStore`).

Keys. A result that read nothing from its run is stored under ``f"{snapshot.key}:{input_hash}"``,
i.e. ``code_hash:config_hash:input_hash``. A result whose task read run-derived values (see
:mod:`molexp.workflow.reads`) is stored with those reads under
``f"{snapshot.key}:{sha256(input_hash + reads)}"``, and the entry under
``code_hash:config_hash:input_hash`` is then an index (``kind="reads"``) listing which values
(``params['x']``, ``config['cutoff']``, ...) the stored results read. A lookup reads the index,
computes those values for the run at hand (:class:`~molexp.workflow.reads.RunValues`) and loads
the result stored for exactly those values, if any.

Values are stored pickled: only point a cache at a directory you trust. An entry whose format
``version`` differs from :data:`CACHE_FORMAT_VERSION` is never used: it is a miss whose reason
says so (bump the constant whenever snapshot semantics change).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import pickle
import re
import secrets
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from molexp.workflow._hashing import UnhashableInputError, hash_value, sha256_hex
from molexp.workflow.errors import CacheStoreError, UnreadableCacheEntryError
from molexp.workflow.reads import ReadSource, RunRead, RunValues
from molexp.workflow.snapshot import TaskSnapshot
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "CACHE_FORMAT_VERSION",
    "EXPLAIN_SCAN",
    "MAX_READ_SETS",
    "CacheEntry",
    "CacheEntryInfo",
    "CacheEntryMetadata",
    "CacheExplanation",
    "CacheLookup",
    "CacheStore",
    "CacheStoreError",
    "Caching",
    "FileCacheStore",
    "MemoryCacheStore",
    "UnreadableCacheEntryError",
    "WorkspaceCacheStore",
    "explain_miss",
]

CACHE_FORMAT_VERSION = 2
"""Format of stored entries; entries written with another version are misses."""

_EVICTED_MEMORY = 10_000
_EVICTION_SLACK_DIVISOR = 20
_STALE_SCRATCH_SECONDS = 3600.0
_SHOWN_VALUE_CHARS = 60
_KNOWN_RESULTS_PER_TASK = 64
MAX_READ_SETS = 16
"""An index keeps the read sets of this many of the most recent results (see the module docs)."""


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
    if version != CACHE_FORMAT_VERSION:
        newer = isinstance(version, int) and version > CACHE_FORMAT_VERSION
        origin = "a newer MolExp" if newer else "an older MolExp"
        raise UnreadableCacheEntryError(
            f"entry {key} has cache format version {version!r}, written by {origin}; "
            f"this one reads version {CACHE_FORMAT_VERSION}"
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
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None:
            _check_version(entry.version, key)
        return entry

    def load_metadata(self, key: str) -> CacheEntryMetadata | None:
        entry = self.load(key)
        if entry is None:
            return None
        with self._lock:
            last_used = self._last_used.get(key, entry.last_used_at)
        return entry.metadata().model_copy(update={"last_used_at": last_used})

    def save(self, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[entry.key] = entry
            self._last_used[entry.key] = entry.last_used_at
            self._last_used.move_to_end(entry.key)

    def delete(self, key: str) -> None:
        with self._lock:
            self._entries.pop(key, None)
            self._last_used.pop(key, None)

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._entries)

    def touch(self, key: str) -> None:
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


class FileCacheStore:
    """Entries in a directory: ``<store_dir>/entries/<key>/`` with ``meta.json`` + ``payload.pkl``.

    An entry is written into a private temp directory and renamed into place, so readers see a
    whole entry or none; two processes writing the same key both succeed and one copy is kept.
    The payload's size and sha256 are checked on every read. The last use of an entry is the
    modification time of its ``meta.json`` (a hit costs one ``utime``, not a rewrite). Keys are
    1-200 characters of ``[0-9A-Za-z.:-]`` starting with a letter or digit (``:`` is stored as
    ``_`` in directory names).
    """

    META_FILE = "meta.json"
    PAYLOAD_FILE = "payload.pkl"

    def __init__(self, store_dir: Path | str) -> None:
        self.store_dir = Path(store_dir).expanduser()
        self._entries_dir = self.store_dir / "entries"
        self._scratch_dir = self.store_dir / ".tmp"

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

    def _read_metadata(self, key: str) -> tuple[Path, dict[str, Any]] | None:
        """The entry directory and raw metadata of ``key`` (version checked), or None."""
        entry_dir = self._entry_dir(key)
        meta_path = entry_dir / self.META_FILE
        try:
            with meta_path.open("rb") as handle:
                raw = handle.read()
                used_ns = os.fstat(handle.fileno()).st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise UnreadableCacheEntryError(f"cannot read {meta_path}: {exc}") from exc
        try:
            data = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UnreadableCacheEntryError(f"corrupt cache metadata {meta_path}: {exc}") from None
        if not isinstance(data, dict):
            raise UnreadableCacheEntryError(f"corrupt cache metadata {meta_path}: not an object")
        _check_version(data.get("version"), key)
        if data.get("key") != key:
            raise UnreadableCacheEntryError(f"{meta_path} holds key {data.get('key')!r}, not {key}")
        data["last_used_at"] = datetime.fromtimestamp(used_ns / 1e9, UTC)
        return entry_dir, data

    def _validate(self, model: type[_Entry], data: dict[str, Any], entry_dir: Path) -> _Entry:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise UnreadableCacheEntryError(
                f"corrupt cache metadata {entry_dir / self.META_FILE} (field {field!r}): "
                f"{first['msg']}"
            ) from None

    def load_metadata(self, key: str) -> CacheEntryMetadata | None:
        found = self._read_metadata(key)
        if found is None:
            return None
        entry_dir, data = found
        return self._validate(CacheEntryMetadata, data, entry_dir)

    def load(self, key: str) -> CacheEntry | None:
        found = self._read_metadata(key)
        if found is None:
            return None
        entry_dir, data = found
        payload_path = entry_dir / self.PAYLOAD_FILE
        try:
            data["payload"] = payload_path.read_bytes()
        except OSError as exc:
            raise UnreadableCacheEntryError(f"cannot read {payload_path}: {exc}") from exc
        entry = self._validate(CacheEntry, data, entry_dir)
        if (
            len(entry.payload) != entry.payload_size
            or hashlib.sha256(entry.payload).hexdigest() != entry.payload_sha256
        ):
            raise UnreadableCacheEntryError(
                f"{payload_path} does not match its metadata (changed or truncated)"
            )
        return entry

    def save(self, entry: CacheEntry) -> None:
        target = self._entry_dir(entry.key)
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
            (staging / self.PAYLOAD_FILE).write_bytes(entry.payload)
            meta_path = staging / self.META_FILE
            meta_path.write_text(entry.metadata().model_dump_json(indent=2), encoding="utf-8")
            stamp = _strictly_increasing_ns()
            os.utime(meta_path, ns=(stamp, stamp))
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
        return [name.replace("_", ":") for name in self._entry_names()]

    def touch(self, key: str) -> None:
        stamp = _strictly_increasing_ns()
        meta = self._entry_dir(key) / self.META_FILE
        with contextlib.suppress(FileNotFoundError, NotADirectoryError, PermissionError):
            try:
                os.utime(meta, ns=(stamp, stamp))
            except PermissionError:
                # An entry another user wrote: only its owner may set explicit times, any
                # writer may set "now". Recency is a hint, so a refusal is ignored.
                os.utime(meta)

    def entries(self) -> list[CacheEntryInfo]:
        listed: list[tuple[int, str]] = []
        for name in self._entry_names():
            try:
                used_ns = (self._entries_dir / name / self.META_FILE).stat().st_mtime_ns
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


@dataclasses.dataclass(frozen=True, slots=True)
class CacheExplanation:
    """Why a lookup hit or missed; ``differences`` names the parts that differ from the nearest
    stored entry of the same task (``"code"``, ``"config"``, ``"inputs"``, ``"run"``) and
    ``details`` says how (which function or distribution version, which config key, which
    input, which value read from the run)."""

    task_id: str
    hit: bool
    key: str | None
    reason: str
    differences: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    nearest_key: str | None = None

    def __str__(self) -> str:
        head = f"cache {'hit' if self.hit else 'miss'} for task {self.task_id!r}: {self.reason}"
        return "\n".join([head, *(f"  - {line}" for line in self.details)])

    @property
    def summary(self) -> str:
        """One line: ``"hit"``, or ``"miss: "`` and what differs (else why it missed)."""
        if self.hit:
            return "hit"
        return f"miss: {'; '.join(self.details) or self.reason}"


def _input_fingerprint(inputs: object) -> tuple[str, dict[str, str]]:
    """The input hash, plus per-input hashes when ``inputs`` is a mapping with str keys."""
    if isinstance(inputs, Mapping) and all(type(key) is str for key in inputs):
        per_input = {
            key: hash_value(value, label=f"inputs[{key!r}]") for key, value in inputs.items()
        }
        return hash_value({"mapping": per_input}), per_input
    return hash_value({"value": hash_value(inputs, label="inputs")}), {}


def _shorten(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > _SHOWN_VALUE_CHARS:
        return text[: _SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _tree_differences(old: Any, new: Any, path: str, out: list[str]) -> None:
    both_plain = isinstance(old, dict) and isinstance(new, dict)
    if both_plain and not any(key.startswith("$") for key in [*old, *new]):
        for key in sorted(set(old) | set(new)):
            where = f"{path}[{key!r}]"
            if key not in old:
                out.append(f"{where} added: {_shorten(new[key])}")
            elif key not in new:
                out.append(f"{where} removed (was {_shorten(old[key])})")
            else:
                _tree_differences(old[key], new[key], where, out)
    elif old != new:
        out.append(f"{path} changed: {_shorten(old)} -> {_shorten(new)}")


def _code_differences(old: CacheEntryMetadata, new: TaskSnapshot) -> list[str]:
    details: list[str] = []
    if old.body_hash != new.body_hash:
        details.append("code: the task body changed")
    for name in sorted(set(old.dependency_hashes) | set(new.dependency_hashes)):
        before = old.dependency_hashes.get(name)
        after = new.dependency_hashes.get(name)
        if before is None:
            details.append(f"code: now also depends on {name}")
        elif after is None:
            details.append(f"code: no longer depends on {name}")
        elif before != after:
            details.append(f"code: {name} changed")
    if new.tracks_dependency_versions:
        for name in sorted(set(old.distributions) | set(new.distributions)):
            was, now = old.distributions.get(name), new.distributions.get(name)
            if was is None:
                details.append(f"code: now also uses distribution {name} {now}")
            elif now is None:
                details.append(f"code: no longer uses distribution {name} (was {was})")
            elif was != now:
                details.append(f"code: distribution {name} changed: {was} -> {now}")
            elif old.distribution_records.get(name) != new.distribution_records.get(name):
                details.append(f"code: distribution {name} {now} was reinstalled with other files")
    return details or ["code: the code hash differs"]


def _input_differences(old: CacheEntryMetadata, new_hashes: Mapping[str, str]) -> list[str]:
    if not (old.input_hashes and new_hashes):
        return ["inputs: the inputs differ"]
    details: list[str] = []
    for name in sorted(set(old.input_hashes) | set(new_hashes)):
        before, after = old.input_hashes.get(name), new_hashes.get(name)
        if before is None:
            details.append(f"inputs: inputs[{name!r}] added")
        elif after is None:
            details.append(f"inputs: inputs[{name!r}] removed")
        elif before != after:
            details.append(f"inputs: inputs[{name!r}] changed")
    return details


def _compare(
    stored: CacheEntryMetadata,
    snapshot: TaskSnapshot,
    input_hash: str,
    input_hashes: Mapping[str, str],
    run: RunValues,
) -> tuple[list[str], list[str]]:
    """Which parts (code, config, inputs, run) of a lookup differ from a stored entry, and how."""
    differences: list[str] = []
    details: list[str] = []
    if stored.code_hash != snapshot.code_hash:
        differences.append("code")
        details.extend(_code_differences(stored, snapshot))
    if stored.config_hash != snapshot.config_hash:
        differences.append("config")
        changes: list[str] = []
        _tree_differences(stored.config_data, snapshot.config_data, "config", changes)
        details.extend(f"config: {change}" for change in changes or ["the config differs"])
    if stored.input_hash != input_hash:
        differences.append("inputs")
        details.extend(_input_differences(stored, input_hashes))
    changed = run.differences(stored.reads)
    if changed:
        differences.append("run")
        details.extend(f"run: {change}" for change in changed)
    return differences, details


def _variant_key(
    snapshot_key: str, input_hash: str, reads: Iterable[tuple[str, str | None, str]]
) -> str:
    """Key of a result that read run values: the reads' (source, key, digest) fold into it."""
    rows = sorted([source, key or "", key is None, digest] for source, key, digest in reads)
    return f"{snapshot_key}:{sha256_hex(f'{input_hash}:{hash_value(rows)}')}"


_Found = CacheEntry | str
"""A loaded entry, or why there is none to use."""


class Caching:
    """An LRU cache of task results keyed by ``TaskSnapshot`` + inputs + what the task read.

    Pass a ``store`` (a :class:`WorkspaceCacheStore`, or ``MemoryCacheStore()`` for a
    process-local cache) or a ``store_dir`` for a :class:`FileCacheStore`: a cache is
    always rooted somewhere the caller chose (seed 03), never silently in memory. At most
    ``max_entries`` entries are kept (a task that read run values uses one more, its index);
    the least recently used (by put or hit) are evicted first. Once a put
    goes beyond ``max_entries``, a batch of 1/20 of ``max_entries`` (none below 20) is evicted
    at once so that a full cache does not scan its store on every put. ``get`` returns None on
    a miss, so a cached ``None`` looks like a miss there: use :meth:`lookup` when None is a
    legitimate result.

    ``run`` (lookups) is what the task would read from its run now; without it, a lookup
    checks stored reads against no run, an empty config and the snapshot's task id as task
    name. ``reads`` (puts) is what the execution that produced the value read.
    """

    def __init__(
        self,
        store: CacheStore | None = None,
        *,
        store_dir: Path | str | None = None,
        max_entries: int = 1000,
    ) -> None:
        if store is not None and store_dir is not None:
            raise ValueError("Caching takes either store= or store_dir=, not both")
        if store is None and store_dir is None:
            raise ValueError(
                "Caching needs a place for its entries: Caching(store=WorkspaceCacheStore(ws)) "
                "for the workspace, Caching(store_dir=PATH) for a directory you choose, or "
                "Caching(store=MemoryCacheStore()) for this process only"
            )
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ValueError(f"max_entries must be a positive integer, got {max_entries!r}")
        if store is None:
            store = FileCacheStore(store_dir)  # type: ignore[arg-type]  # checked above
        self.store: CacheStore = store
        self.max_entries = max_entries
        self._initialized = False
        self._evicted: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._results_by_task: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"Caching(store={self.store!r}, max_entries={self.max_entries})"

    def initialize(self) -> None:
        """Prepare the store (create directories). Idempotent; get/put call it lazily."""
        if not self._initialized:
            self.store.initialize()
            self._initialized = True

    def key_for(self, snapshot: TaskSnapshot, inputs: Any) -> str:
        """The key ``code_hash:config_hash:input_hash``; raises for unhashable inputs."""
        return f"{snapshot.key}:{_input_fingerprint(inputs)[0]}"

    def lookup(
        self, snapshot: TaskSnapshot, inputs: Any, *, run: RunValues | None = None
    ) -> CacheLookup:
        """Find the cached result for this task snapshot, inputs and run; never a false hit."""
        return self._lookup(snapshot, inputs, run, touch=True)

    def _load(self, key: str) -> _Found:
        try:
            entry = self.store.load(key)
        except CacheStoreError as exc:
            return str(exc)
        if entry is None:
            with self._lock:
                evicted = key in self._evicted
            if evicted:
                return f"evicted (least recently used beyond max_entries={self.max_entries})"
            return "no entry"
        return entry

    def _lookup(
        self, snapshot: TaskSnapshot, inputs: Any, run: RunValues | None, *, touch: bool
    ) -> CacheLookup:
        try:
            input_hash, _ = _input_fingerprint(inputs)
        except UnhashableInputError as exc:
            return CacheLookup(False, None, None, f"unhashable input: {exc}")
        key = f"{snapshot.key}:{input_hash}"
        self.initialize()
        found = self._load(key)
        if isinstance(found, str):
            return CacheLookup(False, None, key, found)
        entry = found
        if entry.kind == "reads":
            values = run if run is not None else RunValues(task_name=snapshot.task_id)
            variant = self._variant(entry, snapshot.key, input_hash, values)
            if isinstance(variant, str):
                return CacheLookup(False, None, key, variant)
            if touch:
                self.store.touch(key)
            entry = variant
        try:
            _check_version(entry.version, entry.key)
            value = pickle.loads(entry.payload)
        except CacheStoreError as exc:
            return CacheLookup(False, None, entry.key, str(exc))
        except Exception as exc:
            reason = f"stored value cannot be unpickled: {type(exc).__name__}: {exc}"
            return CacheLookup(False, None, entry.key, reason)
        if touch:
            self.store.touch(entry.key)
        return CacheLookup(True, value, entry.key, "hit")

    def _variant(
        self, index: CacheEntry, snapshot_key: str, input_hash: str, run: RunValues
    ) -> _Found:
        """The stored result whose reads give the same values in ``run``, or why none."""
        for read_set in index.read_sets:
            rows = [(source, key, run.current(source, key)[0]) for source, key in read_set]
            found = self._load(_variant_key(snapshot_key, input_hash, rows))
            if isinstance(found, CacheEntry) and found.kind == "value" and run.matches(found.reads):
                return found
        return "no entry for the values this task read from its run"

    def get(self, snapshot: TaskSnapshot, inputs: Any, *, run: RunValues | None = None) -> Any:
        """The cached value, or None on a miss."""
        found = self.lookup(snapshot, inputs, run=run)
        return found.value if found.hit else None

    def put(
        self,
        snapshot: TaskSnapshot,
        inputs: Any,
        value: Any,
        *,
        reads: Iterable[RunRead] = (),
    ) -> str:
        """Store ``value`` as the result of ``snapshot`` on ``inputs``; returns the key.

        ``reads`` are the run-derived values the execution read (see the module docs). Raises
        :class:`CacheStoreError` naming the task when the inputs cannot be hashed, the value
        cannot be pickled or the store cannot be written.
        """
        failure = f"cannot cache the result of task {snapshot.task_id!r}"
        try:
            input_hash, input_hashes = _input_fingerprint(inputs)
        except UnhashableInputError as exc:
            raise CacheStoreError(f"{failure}: unhashable input: {exc}") from exc
        try:
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            raise CacheStoreError(
                f"{failure}: a value of type {type(value).__qualname__} cannot be pickled "
                f"({type(exc).__name__}: {exc})"
            ) from exc
        stored_reads = list(reads)
        index_key = f"{snapshot.key}:{input_hash}"
        key = index_key
        if stored_reads:
            rows = [(read.source, read.key, read.digest) for read in stored_reads]
            key = _variant_key(snapshot.key, input_hash, rows)
        entry = _entry(snapshot, key, input_hash, input_hashes, payload, reads=stored_reads)
        try:
            self.initialize()
            self.store.save(entry)
            if stored_reads:
                read_set = [(read.source, read.key) for read in stored_reads]
                self.store.save(self._index(snapshot, index_key, input_hash, read_set))
        except CacheStoreError as exc:
            raise CacheStoreError(f"{failure}: {exc}") from exc
        with self._lock:
            self._evicted.pop(key, None)
            self._evicted.pop(index_key, None)
            if self._results_by_task is not None:
                keys = self._results_by_task.setdefault(snapshot.task_id, [])
                if key in keys:
                    keys.remove(key)
                keys.append(key)
                del keys[:-_KNOWN_RESULTS_PER_TASK]
        self._evict(keep={key, index_key})
        return key

    def _index(
        self,
        snapshot: TaskSnapshot,
        key: str,
        input_hash: str,
        read_set: list[tuple[ReadSource, str | None]],
    ) -> CacheEntry:
        """The index at ``key`` with ``read_set`` first (the previous sets after it)."""
        previous = self._load(key)
        sets = [read_set]
        if isinstance(previous, CacheEntry) and previous.kind == "reads":
            sets += [known for known in previous.read_sets if known != read_set]
        return _entry(snapshot, key, input_hash, {}, b"", read_sets=sets[:MAX_READ_SETS])

    def _evict(self, *, keep: set[str]) -> None:
        if len(self.store.keys()) <= self.max_entries:
            return
        listed = sorted(self.store.entries(), key=lambda info: info.last_used_at)
        excess = len(listed) - self.max_entries + self.max_entries // _EVICTION_SLACK_DIVISOR
        for info in listed:
            if excess <= 0:
                break
            if info.key in keep:
                continue
            self.store.delete(info.key)
            excess -= 1
            with self._lock:
                self._evicted[info.key] = None
                if len(self._evicted) > _EVICTED_MEMORY:
                    self._evicted.popitem(last=False)

    def explain(
        self,
        snapshot: TaskSnapshot,
        inputs: Any,
        *,
        run: RunValues | None = None,
        scan: int | None = None,
    ) -> CacheExplanation:
        """Say why this lookup hits or misses, comparing with the nearest entry of the task (one
        that read the same run values if any, else the one differing in the fewest parts).

        By default every entry of the store is read. With ``scan``, only the ``scan`` most recent
        results of the task that this ``Caching`` knows of (the store's entries read once, then
        its own puts) are compared: a small, fixed cost the runtime pays on every miss.
        """
        task_id = snapshot.task_id
        found = self._lookup(snapshot, inputs, run, touch=False)
        if found.hit:
            return CacheExplanation(task_id, True, found.key, "hit")
        if found.key is None:
            return CacheExplanation(
                task_id, False, None, found.reason, ("inputs",), (f"inputs: {found.reason}",)
            )
        input_hash, input_hashes = _input_fingerprint(inputs)
        values = run if run is not None else RunValues(task_name=task_id)
        candidates = self._entries_of(task_id, scan)
        if not candidates:
            return CacheExplanation(
                task_id,
                False,
                found.key,
                f"{found.reason}; no stored entry for task {task_id!r} to compare with",
            )
        # Nearest: an entry of the same run values first (why this run's own earlier result was
        # not reused), then the fewest differing parts, then the most recently used.
        ranked = []
        for metadata in candidates:
            differences, details = _compare(metadata, snapshot, input_hash, input_hashes, values)
            ranked.append(
                (
                    "run" in differences,
                    len(differences),
                    -metadata.last_used_at.timestamp(),
                    metadata.key,
                    differences,
                    details,
                )
            )
        ranked.sort(key=lambda row: row[:4])
        *_, nearest, differences, details = ranked[0]
        if not differences:
            return CacheExplanation(task_id, False, found.key, found.reason, nearest_key=nearest)
        reason = (
            f"{found.reason}; the nearest stored entry of task {task_id!r} "
            f"differs in {' and '.join(differences)}"
        )
        return CacheExplanation(
            task_id, False, found.key, reason, tuple(differences), tuple(details), nearest
        )

    def _entries_of(self, task_id: str, scan: int | None = None) -> list[CacheEntryMetadata]:
        """The stored results (not indexes) of ``task_id``: all, or the ``scan`` most recent
        this instance knows of."""
        if scan is None:
            keys = [info.key for info in self.store.entries()]
        else:
            keys = self._known_results(task_id)[-scan:]
        found: list[CacheEntryMetadata] = []
        for key in keys:
            try:
                metadata = self.store.load_metadata(key)
            except CacheStoreError:
                continue
            if metadata is not None and metadata.task_id == task_id and metadata.kind == "value":
                found.append(metadata)
        return found

    def _known_results(self, task_id: str) -> list[str]:
        """Keys of the results of ``task_id``, least recently used first (read once per
        instance from the store, then kept up to date by this instance's puts)."""
        with self._lock:
            index = self._results_by_task
        if index is None:
            index = {}
            for info in self.store.entries():
                try:
                    metadata = self.store.load_metadata(info.key)
                except CacheStoreError:
                    continue
                if metadata is not None and metadata.kind == "value":
                    index.setdefault(metadata.task_id, []).append(info.key)
            with self._lock:
                if self._results_by_task is None:
                    self._results_by_task = index
                index = self._results_by_task
        with self._lock:
            return list(index.get(task_id, ()))

    def clear(self) -> None:
        """Delete every entry of the store."""
        self.initialize()
        stored = self.store.keys()
        for key in stored:
            self.store.delete(key)
        with self._lock:
            self._evicted.clear()
            self._results_by_task = None

    def __len__(self) -> int:
        return len(self.store.keys())


def _entry(
    snapshot: TaskSnapshot,
    key: str,
    input_hash: str,
    input_hashes: dict[str, str],
    payload: bytes,
    *,
    reads: list[RunRead] | None = None,
    read_sets: list[list[tuple[ReadSource, str | None]]] | None = None,
) -> CacheEntry:
    now = datetime.now(UTC)
    return CacheEntry(
        key=key,
        snapshot_key=snapshot.key,
        task_id=snapshot.task_id,
        task_type=snapshot.task_type,
        code_hash=snapshot.code_hash,
        config_hash=snapshot.config_hash,
        input_hash=input_hash,
        created_at=now,
        last_used_at=now,
        body_hash=snapshot.body_hash,
        dependency_hashes=snapshot.dependency_hashes,
        distributions=snapshot.distributions,
        distribution_records=snapshot.distribution_records,
        config_data=snapshot.config_data,
        input_hashes=input_hashes,
        kind="value" if read_sets is None else "reads",
        reads=reads or [],
        read_sets=read_sets or [],
        payload_size=len(payload),
        payload_sha256=hashlib.sha256(payload).hexdigest(),
        payload=payload,
    )


EXPLAIN_SCAN = 16
"""The runtime explains a miss against at most this many recent results of the task."""


def explain_miss(
    cache: Any, snapshot: TaskSnapshot, inputs: Any, run: RunValues, lookup: CacheLookup
) -> str:
    """What the runtime records for a ``cache=True`` task that missed: ``"miss: "`` and what
    differs from the nearest recent entry of the task (any cache without ``explain``, or one
    that fails, gives the lookup's reason: an explanation never fails a task)."""
    try:
        explanation: CacheExplanation = cache.explain(snapshot, inputs, run=run, scan=EXPLAIN_SCAN)
    except Exception:
        return f"miss: {lookup.reason}"
    return explanation.summary
