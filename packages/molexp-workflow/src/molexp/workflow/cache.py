"""Caching of task results keyed by TaskSnapshot + input hash + run reads, with pluggable stores.

Owns :class:`Caching` (the LRU cache tasks opt into) and is the public home of the cache: the
:class:`CacheStore` protocol and its stores (in memory, a directory, a workspace-rooted directory)
live in ``_cache_stores``, the explanation of misses in ``_cache_explain``.

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

import hashlib
import pickle
import threading
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from molexp.workflow._cache_explain import (
    EXPLAIN_SCAN,
    CacheExplanation,
    _compare,
    _input_fingerprint,
    explain_miss,
)
from molexp.workflow._cache_stores import (
    CACHE_FORMAT_VERSION,
    CacheEntry,
    CacheEntryInfo,
    CacheEntryMetadata,
    CacheLookup,
    CacheStore,
    FileCacheStore,
    MemoryCacheStore,
    WorkspaceCacheStore,
    _check_version,
)
from molexp.workflow._hashing import UnhashableInputError, hash_value, sha256_hex
from molexp.workflow.errors import CacheStoreError, UnreadableCacheEntryError
from molexp.workflow.reads import ReadSource, RunRead, RunValues
from molexp.workflow.snapshot import TaskSnapshot

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

_EVICTED_MEMORY = 10_000
_EVICTION_SLACK_DIVISOR = 20
_KNOWN_RESULTS_PER_TASK = 64
MAX_READ_SETS = 16
"""An index keeps the read sets of this many of the most recent results (see the module docs)."""


def _variant_key(
    snapshot_key: str, input_hash: str, reads: Iterable[tuple[str, str | None, str]]
) -> str:
    """Key of a result that read run values: the reads' (source, key, digest) fold into it."""
    rows = sorted([source, key or "", key is None, digest] for source, key, digest in reads)
    return f"{snapshot_key}:{sha256_hex(f'{input_hash}:{hash_value(rows)}')}"


_Found = CacheEntry | str
"""A loaded entry, or why there is none to use."""


class _UnpicklableValueError(Exception):
    """A stored value that cannot be unpickled (its class renamed, ...): a miss with this reason."""


def _unpickle(payload: bytes | memoryview) -> Any:
    try:
        return pickle.loads(payload)
    except Exception as exc:
        reason = f"stored value cannot be unpickled: {type(exc).__name__}: {exc}"
        raise _UnpicklableValueError(reason) from exc


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
        if not self._initialized:
            self.initialize()
        store = self.store
        if isinstance(store, FileCacheStore) and type(store).load is FileCacheStore.load:
            # The common hit, a stored value, is decoded from its one checked file; anything
            # else (an index, an older entry, a miss, damage) takes the general path below.
            try:
                fast = store._load_value(key, _unpickle, touch=touch)
            except _UnpicklableValueError as exc:
                return CacheLookup(False, None, key, str(exc))
            if fast is not None:
                return CacheLookup(True, fast[0], key, "hit")
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
            value = _unpickle(entry.payload)
        except (CacheStoreError, _UnpicklableValueError) as exc:
            return CacheLookup(False, None, entry.key, str(exc))
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
