"""The file store's entry format (version 3: one self-checking file per entry) and its fast hit.

A hit reads one file and verifies its digest, key and format version without validating the
metadata; any changed or truncated byte makes it a miss, and version-2 entries (``meta.json``
beside a bare ``payload.pkl``) keep being read.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow._cache_explain import _input_fingerprint
from molexp.workflow._hashing import hash_value
from molexp.workflow.cache import (
    CACHE_FORMAT_VERSION,
    CacheEntry,
    Caching,
    FileCacheStore,
    MemoryCacheStore,
    UnreadableCacheEntryError,
)
from molexp.workflow.reads import RunRead, RunValues
from molexp.workflow.snapshot import TaskSnapshot


def featurize(ctx: Any) -> Any:
    return ctx


SNAPSHOT = TaskSnapshot.from_callable(featurize, task_id="featurize", config={"lr": 0.1})
MAGIC = b"MXCACHE3"
TAIL = 19 + 32 + len(MAGIC)  # trailer (three sizes, version, kind), sha256 digest, magic


def entry_file(store: FileCacheStore, key: str) -> Path:
    return store.store_dir / "entries" / key.replace(":", "_") / "payload.pkl"


def write_version_2(store_dir: Path, entry: CacheEntry, *, version: int = 2) -> Path:
    """An entry as version 2 wrote it: ``meta.json`` (indented) beside the bare pickle."""
    entry_dir = store_dir / "entries" / entry.key.replace(":", "_")
    entry_dir.mkdir(parents=True)
    (entry_dir / "payload.pkl").write_bytes(entry.payload)
    meta = json.loads(entry.model_dump_json(exclude={"payload"}))
    meta["version"] = version
    (entry_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return entry_dir


def version_2_entry(inputs: Any, value: Any) -> CacheEntry:
    memory = Caching(MemoryCacheStore())
    entry = memory.store.load(memory.put(SNAPSHOT, inputs, value))
    assert entry is not None
    return entry


def test_an_entry_is_one_file_that_still_unpickles(tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path)
    key = Caching(store=store).put(SNAPSHOT, 1, {"energy": -1.5})
    path = entry_file(store, key)
    assert [p.name for p in path.parent.iterdir()] == ["payload.pkl"]
    raw = path.read_bytes()
    assert pickle.loads(raw) == {"energy": -1.5}  # bytes past the pickle are ignored
    assert raw.endswith(MAGIC)
    assert raw[-TAIL - len(key) : -TAIL] == key.encode()
    meta = store.load_metadata(key)
    assert meta is not None and meta.version == CACHE_FORMAT_VERSION == 3
    assert (meta.key, meta.task_id, meta.config_data) == (key, "featurize", {"lr": 0.1})
    assert meta.payload_size == len(pickle.dumps({"energy": -1.5}, pickle.HIGHEST_PROTOCOL))
    assert meta.last_used_at.timestamp() == pytest.approx(path.stat().st_mtime, abs=1e-6)


def test_a_hit_opens_one_file_and_validates_no_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    Caching(store_dir=tmp_path).put(SNAPSHOT, 1, "v")
    cache = Caching(store_dir=tmp_path)
    cache.initialize()
    opened: list[str] = []
    real_open = os.open

    def recording_open(path: Any, *args: Any, **kwargs: Any) -> int:
        opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    def no_validation(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a hit validated the metadata")

    monkeypatch.setattr(os, "open", recording_open)
    monkeypatch.setattr(CacheEntry, "model_validate", no_validation)
    found = cache.lookup(SNAPSHOT, 1)
    monkeypatch.undo()
    assert found.hit and found.value == "v"
    assert [Path(path).name for path in opened] == ["payload.pkl"]


def test_the_input_hash_is_the_one_version_2_computed() -> None:
    """Keys did not change with the format: version-2 entries are found under the same key."""
    pinned = {
        1: "98aac0f3e2272ae0ec4284b0de91e78e8ac2023636cdc82788d51e305bc2d2ac",
        "x": "b146d8e04980c2a88cb3b555a871aad7c0068466e68e30581535829406249f53",
        None: "f04777c8b0a662cba65727cfb1561a4893114a570001ef3148f4cc26618cd4c0",
        (1, "é"): "1796252662649019e3c59f9be1f061e1874ccf8b51e0d1e15187993746ecc86f",
    }
    for value, expected in pinned.items():
        assert _input_fingerprint(value)[0] == expected
        assert expected == hash_value({"value": hash_value(value, label="inputs")})
    assert _input_fingerprint([1, 2.5])[0] == (
        "8d8e4ccfe9d0b636c1eb08537ed1f6aab91f660290e4962d65e15762b549d786"
    )
    assert _input_fingerprint({"a": 1})[0] == (
        "debbeac87077f3264bf7f9c819a65c195f36acd09b2a0260f0cc3d8ea1eac3ae"
    )


REGIONS = ["payload", "metadata", "key", "trailer", "digest", "magic"]


@pytest.mark.parametrize("region", REGIONS)
def test_a_changed_byte_anywhere_in_the_file_is_a_miss(tmp_path: Path, region: str) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    key = cache.put(SNAPSHOT, 1, "value-1")
    path = entry_file(store, key)
    raw = bytearray(path.read_bytes())
    payload_size = len(pickle.dumps("value-1", pickle.HIGHEST_PROTOCOL))
    offset = {
        "payload": raw.index(b"value-1") + 6,
        "metadata": payload_size + 3,
        "key": len(raw) - TAIL - 5,
        "trailer": len(raw) - TAIL + 14,  # the format version
        "digest": len(raw) - 8 - 5,
        "magic": len(raw) - 1,
    }[region]
    raw[offset] ^= 0x03  # in the payload: "value-1" becomes "value-2", still a valid pickle
    path.write_bytes(bytes(raw))
    if region == "payload":
        assert pickle.loads(bytes(raw)) == "value-2"
    found = Caching(store=FileCacheStore(tmp_path)).lookup(SNAPSHOT, 1)
    assert not found.hit and found.value is None
    expected = "neither an entry trailer" if region == "magic" else "does not match its checksum"
    assert expected in found.reason
    with pytest.raises(UnreadableCacheEntryError):
        store.load(key)
    assert not Caching(store=store).explain(SNAPSHOT, 1).hit


@pytest.mark.parametrize("kept", [0, 1, 10, -TAIL, -8, -1])
def test_a_truncated_file_is_a_miss(tmp_path: Path, kept: int) -> None:
    store = FileCacheStore(tmp_path)
    key = Caching(store=store).put(SNAPSHOT, 1, "value")
    path = entry_file(store, key)
    raw = path.read_bytes()
    path.write_bytes(raw[:kept])
    found = Caching(store=store).lookup(SNAPSHOT, 1)
    assert not found.hit
    assert "trailer" in found.reason or "checksum" in found.reason


def test_a_large_entry_is_read_whole_and_checked(tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    value = bytes(range(256)) * 1024  # 256 KiB: more than one read
    key = cache.put(SNAPSHOT, 1, value)
    assert Caching(store=FileCacheStore(tmp_path)).get(SNAPSHOT, 1) == value
    path = entry_file(store, key)
    raw = bytearray(path.read_bytes())
    raw[200_000] ^= 0xFF
    path.write_bytes(bytes(raw))
    found = cache.lookup(SNAPSHOT, 1)
    assert not found.hit and "checksum" in found.reason


def test_another_keys_file_is_a_miss(tmp_path: Path) -> None:
    """A file copied (or renamed) under another key never answers for that key."""
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    one, two = cache.put(SNAPSHOT, 1, "one"), cache.put(SNAPSHOT, 2, "two")
    entry_file(store, two).write_bytes(entry_file(store, one).read_bytes())
    found = cache.lookup(SNAPSHOT, 2)
    assert not found.hit and f"holds key '{one}'" in found.reason


@pytest.mark.parametrize(("version", "origin"), [(CACHE_FORMAT_VERSION + 1, "newer"), (1, "older")])
def test_another_version_in_the_one_file_layout_is_a_miss(
    tmp_path: Path, version: int, origin: str
) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    key = cache.put(SNAPSHOT, 1, "value")
    entry = store.load(key)
    assert entry is not None
    store.save(entry.model_copy(update={"version": version}))
    found = Caching(store=FileCacheStore(tmp_path)).lookup(SNAPSHOT, 1)
    assert not found.hit
    assert f"format version {version}" in found.reason and origin in found.reason
    with pytest.raises(UnreadableCacheEntryError, match="format version"):
        store.load_metadata(key)


def test_version_2_entries_are_still_read(tmp_path: Path) -> None:
    old = version_2_entry(1, {"energy": -2.0})
    write_version_2(tmp_path, old)
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    found = cache.lookup(SNAPSHOT, 1)
    assert found.hit and found.value == {"energy": -2.0} and found.key == old.key
    meta = store.load_metadata(old.key)
    assert meta is not None and meta.version == 2 and meta.task_id == "featurize"
    new = cache.put(SNAPSHOT, 2, "new")
    assert [info.key for info in store.entries()] == [old.key, new]
    assert cache.get(SNAPSHOT, 1) == {"energy": -2.0}  # a hit refreshes its last use
    assert [info.key for info in store.entries()] == [new, old.key]
    assert sorted(p.name for p in entry_file(store, old.key).parent.iterdir()) == [
        "meta.json",
        "payload.pkl",
    ]


def test_damaged_version_2_entries_are_misses_with_reason(tmp_path: Path) -> None:
    old = version_2_entry(1, "value")
    entry_dir = write_version_2(tmp_path, old)
    cache = Caching(store_dir=tmp_path)
    payload, meta = entry_dir / "payload.pkl", entry_dir / "meta.json"
    payload.write_bytes(payload.read_bytes()[:-1])
    assert "does not match its metadata" in cache.lookup(SNAPSHOT, 1).reason
    payload.write_bytes(old.payload)
    assert cache.lookup(SNAPSHOT, 1).hit
    text = meta.read_text()
    meta.write_text("{not json")
    assert "corrupt cache metadata" in cache.lookup(SNAPSHOT, 1).reason
    meta.write_text(json.dumps({"version": 2, "key": old.key}))
    assert "field" in cache.lookup(SNAPSHOT, 1).reason
    meta.unlink()
    assert "neither an entry trailer nor a meta.json" in cache.lookup(SNAPSHOT, 1).reason
    meta.write_text(text)
    payload.unlink()
    assert "cannot read" in cache.lookup(SNAPSHOT, 1).reason


@pytest.mark.parametrize(("version", "origin"), [(CACHE_FORMAT_VERSION + 1, "newer"), (1, "older")])
def test_another_version_in_the_version_2_layout_is_a_miss(
    tmp_path: Path, version: int, origin: str
) -> None:
    write_version_2(tmp_path, version_2_entry(1, "value"), version=version)
    found = Caching(store_dir=tmp_path).lookup(SNAPSHOT, 1)
    assert not found.hit
    assert f"format version {version}" in found.reason and origin in found.reason


def test_a_hit_on_a_store_that_refuses_every_time_update_is_still_a_hit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only mount (EROFS) or a stale handle: recency is a hint, the hit stands."""
    cache = Caching(store_dir=tmp_path)
    cache.put(SNAPSHOT, 1, "v")
    values = RunValues(task_name="featurize", config={"cutoff": 5})
    read = RunRead(source="config", key="cutoff", digest=values.current("config", "cutoff")[0])
    cache.put(SNAPSHOT, 2, "read", reads=[read])  # an index: the general path touches both

    def read_only(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(os, "utime", read_only)
    found = cache.lookup(SNAPSHOT, 1)
    assert found.hit and found.value == "v"
    found = cache.lookup(SNAPSHOT, 2, run=values)
    assert found.hit and found.value == "read"


class Vanishing:
    def __reduce__(self) -> Any:
        return (_fail_on_load, ())


def _fail_on_load() -> Any:
    raise ImportError("module renamed")


def test_a_value_that_cannot_be_unpickled_is_a_miss_and_not_a_use(tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    broken = cache.put(SNAPSHOT, 1, Vanishing())
    fine = cache.put(SNAPSHOT, 2, "fine")
    found = cache.lookup(SNAPSHOT, 1)
    assert not found.hit and found.key == broken
    assert "cannot be unpickled: ImportError: module renamed" in found.reason
    assert [info.key for info in store.entries()] == [broken, fine]


def test_results_that_read_run_values_take_the_general_path(tmp_path: Path) -> None:
    """The index (kind "reads") and the result it points to, both in the one-file layout."""
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    values = RunValues(task_name="featurize", config={"cutoff": 5})
    read = RunRead(source="config", key="cutoff", digest=values.current("config", "cutoff")[0])
    key = cache.put(SNAPSHOT, 1, "at cutoff 5", reads=[read])
    index = store.load(f"{SNAPSHOT.key}:{_input_fingerprint(1)[0]}")
    assert index is not None and index.kind == "reads" and index.version == 3
    fresh = Caching(store=FileCacheStore(tmp_path))
    found = fresh.lookup(SNAPSHOT, 1, run=RunValues(task_name="featurize", config={"cutoff": 5}))
    assert found.hit and found.value == "at cutoff 5" and found.key == key
    other = fresh.lookup(SNAPSHOT, 1, run=RunValues(task_name="featurize", config={"cutoff": 6}))
    assert not other.hit and "values this task read" in other.reason
