"""Tests for Caching and its stores: round trips, LRU, versions, concurrency, explain()."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from molexp.workflow.cache import (
    CACHE_FORMAT_VERSION,
    CacheLookup,
    CacheStore,
    CacheStoreError,
    Caching,
    FileCacheStore,
    MemoryCacheStore,
    WorkspaceCacheStore,
)
from molexp.workflow.snapshot import TaskSnapshot


def featurize(ctx: Any) -> Any:
    return ctx


def other_task(ctx: Any) -> Any:
    return ctx


SNAPSHOT = TaskSnapshot.from_callable(featurize, task_id="featurize", config={"lr": 0.1})


@pytest.fixture(params=["memory", "file"])
def cache(request: pytest.FixtureRequest, tmp_path: Path) -> Caching:
    if request.param == "memory":
        return Caching(MemoryCacheStore(), max_entries=10)
    return Caching(store_dir=tmp_path / "cache", max_entries=10)


@dataclasses.dataclass
class Result:
    energy: float
    forces: list[list[float]]


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None], "b": ("x", b"y")},
        Result(-1.5, [[0.0, 1.0]]),
        {1, 2, 3},
        "text",
        0,
    ],
)
def test_value_read_back_equals_value_stored(cache: Caching, value: Any) -> None:
    key = cache.put(SNAPSHOT, {"x": 1}, value)
    found = cache.lookup(SNAPSHOT, {"x": 1})
    assert found == CacheLookup(True, value, key, "hit")
    assert cache.get(SNAPSHOT, {"x": 1}) == value


def test_key_is_snapshot_key_plus_input_hash(cache: Caching) -> None:
    key = cache.put(SNAPSHOT, [1, 2], "v")
    assert key == cache.key_for(SNAPSHOT, [1, 2])
    assert key.startswith(SNAPSHOT.key + ":")
    assert len(key.split(":")) == 3


def test_miss_says_no_entry_and_get_returns_none(cache: Caching) -> None:
    found = cache.lookup(SNAPSHOT, {"x": 1})
    assert (found.hit, found.value, found.reason) == (False, None, "no entry")
    assert found.key == cache.key_for(SNAPSHOT, {"x": 1})
    assert cache.get(SNAPSHOT, {"x": 1}) is None


def test_inputs_of_other_types_never_hit(cache: Caching) -> None:
    cache.put(SNAPSHOT, {"x": 1}, "int")
    for other in ({"x": 1.0}, {"x": True}, {"x": "1"}, {"x": Path("1")}, {"y": 1}, [1]):
        assert not cache.lookup(SNAPSHOT, other).hit, other


def test_other_task_or_config_never_hits(cache: Caching) -> None:
    cache.put(SNAPSHOT, 1, "value")
    other_config = TaskSnapshot.from_callable(featurize, task_id="featurize", config={"lr": 0.2})
    other_code = TaskSnapshot.from_callable(other_task, task_id="featurize", config={"lr": 0.1})
    assert not cache.lookup(other_config, 1).hit
    assert not cache.lookup(other_code, 1).hit


class Opaque:
    pass


def test_unhashable_input_is_a_miss_with_reason_never_a_hit(cache: Caching) -> None:
    cache.put(SNAPSHOT, {"x": 1}, "stored")
    found = cache.lookup(SNAPSHOT, {"x": Opaque()})
    assert not found.hit and found.key is None and found.value is None
    assert found.reason == "unhashable input: inputs['x']: cannot hash object of type Opaque"
    assert cache.get(SNAPSHOT, [Opaque()]) is None


def test_put_with_unhashable_input_raises_naming_the_task(cache: Caching) -> None:
    with pytest.raises(CacheStoreError, match=r"task 'featurize'.*inputs\['x'\].*Opaque"):
        cache.put(SNAPSHOT, {"x": Opaque()}, 1)
    assert len(cache) == 0


def test_put_of_unpicklable_value_raises_naming_the_task(cache: Caching) -> None:
    with pytest.raises(CacheStoreError, match=r"task 'featurize'.*generator cannot be pickled"):
        cache.put(SNAPSHOT, 1, (i for i in range(3)))
    assert len(cache) == 0


def test_len_clear_and_overwrite(cache: Caching) -> None:
    cache.put(SNAPSHOT, 1, "a")
    cache.put(SNAPSHOT, 2, "b")
    cache.put(SNAPSHOT, 2, "c")
    assert len(cache) == 2
    assert cache.get(SNAPSHOT, 2) == "c"
    cache.clear()
    assert len(cache) == 0
    assert cache.get(SNAPSHOT, 1) is None


def test_lru_eviction_by_last_use(tmp_path: Path) -> None:
    for caching in (
        Caching(MemoryCacheStore(), max_entries=3),
        Caching(store_dir=tmp_path, max_entries=3),
    ):
        for item in "abc":
            caching.put(SNAPSHOT, item, item.upper())
        assert caching.get(SNAPSHOT, "a") == "A"  # a is now the most recently used
        caching.put(SNAPSHOT, "d", "D")
        assert len(caching) == 3
        evicted = caching.lookup(SNAPSHOT, "b")
        assert not evicted.hit and evicted.reason.startswith("evicted")
        assert [caching.get(SNAPSHOT, item) for item in "cda"] == ["C", "D", "A"]
        caching.put(SNAPSHOT, "e", "E")
        assert caching.get(SNAPSHOT, "a") == "A"
        assert caching.get(SNAPSHOT, "c") is None


def test_large_caches_evict_a_batch_of_least_recently_used(tmp_path: Path) -> None:
    caching = Caching(store_dir=tmp_path, max_entries=40)
    for item in range(40):
        caching.put(SNAPSHOT, item, item)
    assert caching.get(SNAPSHOT, 0) == 0
    caching.put(SNAPSHOT, 40, 40)
    assert len(caching) == 38
    assert [caching.lookup(SNAPSHOT, item).hit for item in (1, 2, 3, 0, 40)] == [
        False,
        False,
        False,
        True,
        True,
    ]


def test_put_again_after_eviction_clears_the_evicted_reason() -> None:
    caching = Caching(MemoryCacheStore(), max_entries=1)
    caching.put(SNAPSHOT, 1, "one")
    caching.put(SNAPSHOT, 2, "two")
    assert caching.lookup(SNAPSHOT, 1).reason.startswith("evicted")
    caching.put(SNAPSHOT, 1, "one")
    assert caching.lookup(SNAPSHOT, 1).hit
    assert caching.lookup(SNAPSHOT, 2).reason.startswith("evicted")


def test_seed_usage_works_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    snapshot, inputs, calls = SNAPSHOT, {"smiles": "CCO"}, []

    def run() -> Any:
        cache = Caching(store_dir=Path("./cache"), max_entries=1000)
        cache.initialize()
        hit = cache.get(snapshot, inputs)
        if hit is None:
            calls.append(1)
            result = {"energy": -1.0}
            cache.put(snapshot, inputs, result)
            return result
        return hit

    assert run() == run() == {"energy": -1.0}
    assert calls == [1]
    assert (tmp_path / "cache" / "entries").is_dir()


def test_initialize_is_idempotent_and_lazy(tmp_path: Path) -> None:
    lazy = Caching(store_dir=tmp_path / "lazy")
    lazy.put(SNAPSHOT, 1, "v")
    assert (tmp_path / "lazy" / "entries").is_dir()
    eager = Caching(store_dir=tmp_path / "eager")
    eager.initialize()
    eager.initialize()
    assert (tmp_path / "eager" / "entries").is_dir()
    assert len(eager) == 0


def test_initialize_removes_scratch_left_by_dead_writers(tmp_path: Path) -> None:
    Caching(store_dir=tmp_path).initialize()
    stale, fresh = tmp_path / ".tmp" / "entry-dead", tmp_path / ".tmp" / "entry-live"
    for leftover in (stale, fresh):
        leftover.mkdir()
        (leftover / "payload.pkl").write_bytes(b"partial")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    Caching(store_dir=tmp_path).initialize()
    assert not stale.exists()
    assert fresh.exists()


def test_file_store_persists_across_instances(tmp_path: Path) -> None:
    Caching(store_dir=tmp_path).put(SNAPSHOT, {"x": 1}, [1, 2, 3])
    assert Caching(store_dir=str(tmp_path)).get(SNAPSHOT, {"x": 1}) == [1, 2, 3]


def entry_dir(store_dir: Path, key: str) -> Path:
    return store_dir / "entries" / key.replace(":", "_")


def test_file_layout_is_one_file_per_entry(tmp_path: Path) -> None:
    """Version 3: the value, its metadata and a digest in one file (test_cache_file_format)."""
    key = Caching(store_dir=tmp_path).put(SNAPSHOT, 1, "value")
    assert [p.name for p in entry_dir(tmp_path, key).iterdir()] == ["payload.pkl"]
    meta = FileCacheStore(tmp_path).load_metadata(key)
    assert meta is not None and meta.version == CACHE_FORMAT_VERSION
    assert meta.key == key
    assert meta.task_id == "featurize"
    assert meta.config_data == {"lr": 0.1}
    assert list((tmp_path / ".tmp").iterdir()) == []


@pytest.mark.parametrize(("version", "origin"), [(CACHE_FORMAT_VERSION + 1, "newer"), (0, "older")])
def test_other_format_version_is_a_miss_with_reason(
    tmp_path: Path, version: int, origin: str
) -> None:
    cache = Caching(store_dir=tmp_path)
    key = cache.put(SNAPSHOT, 1, "value")
    store = FileCacheStore(tmp_path)
    entry = store.load(key)
    assert entry is not None
    store.save(entry.model_copy(update={"version": version}))
    found = Caching(store_dir=tmp_path).lookup(SNAPSHOT, 1)
    assert not found.hit
    assert f"format version {version}" in found.reason and origin in found.reason
    cache.put(SNAPSHOT, 1, "rewritten")
    assert cache.get(SNAPSHOT, 1) == "rewritten"


def test_memory_store_checks_the_version_too() -> None:
    store = MemoryCacheStore()
    cache = Caching(store=store)
    key = cache.put(SNAPSHOT, 1, "value")
    entry = store.load(key)
    assert entry is not None
    store.save(entry.model_copy(update={"version": CACHE_FORMAT_VERSION + 1}))
    assert "format version" in cache.lookup(SNAPSHOT, 1).reason


def test_corrupt_entries_are_misses_with_reason(tmp_path: Path) -> None:
    cache = Caching(store_dir=tmp_path)
    key = cache.put(SNAPSHOT, 1, "value")
    payload = entry_dir(tmp_path, key) / "payload.pkl"
    whole = payload.read_bytes()
    payload.write_bytes(whole[:-1])
    assert "trailer" in cache.lookup(SNAPSHOT, 1).reason
    payload.write_bytes(whole[:3] + b"X" + whole[4:])
    assert "does not match its checksum" in cache.lookup(SNAPSHOT, 1).reason


class Vanishing:
    """Pickles fine, but unpickling fails (like a class that no longer exists)."""

    def __reduce__(self) -> Any:
        return (_fail_on_load, ())


def _fail_on_load() -> Any:
    raise ImportError("module renamed")


def test_value_that_cannot_be_unpickled_is_a_miss(cache: Caching) -> None:
    cache.put(SNAPSHOT, 1, Vanishing())
    found = cache.lookup(SNAPSHOT, 1)
    assert not found.hit
    assert "cannot be unpickled: ImportError: module renamed" in found.reason


def test_store_and_constructor_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="either store= or store_dir="):
        Caching(MemoryCacheStore(), store_dir=tmp_path)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="max_entries must be a positive integer"):
            Caching(MemoryCacheStore(), max_entries=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid cache key"):
        FileCacheStore(tmp_path).delete("../escape")
    assert isinstance(Caching(MemoryCacheStore()).store, MemoryCacheStore)
    assert isinstance(Caching(store_dir=tmp_path).store, FileCacheStore)


def test_stores_satisfy_the_protocol(tmp_path: Path) -> None:
    for store in (MemoryCacheStore(), FileCacheStore(tmp_path), WorkspaceCacheStore(tmp_path)):
        assert isinstance(store, CacheStore)


def test_workspace_store_lives_under_subsystems(tmp_path: Path) -> None:
    workspace = SimpleNamespace(root=tmp_path)
    cache = Caching(store=WorkspaceCacheStore(workspace), max_entries=1000)
    cache.initialize()
    cache.put(SNAPSHOT, 1, "v")
    assert (tmp_path / ".subsystems" / "workflow.cache" / "entries").is_dir()
    assert Caching(store_dir=tmp_path / ".subsystems" / "workflow.cache").get(SNAPSHOT, 1) == "v"
    with pytest.raises(TypeError, match="needs a workspace with a .root path, got object"):
        WorkspaceCacheStore(object())


def test_file_store_write_failure_names_the_task(tmp_path: Path) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the cache directory should be")
    with pytest.raises(CacheStoreError, match=r"task 'featurize'.*blocked"):
        Caching(store_dir=blocker).put(SNAPSHOT, 1, "v")


def test_hit_updates_last_use_in_file_store(tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    first = cache.put(SNAPSHOT, 1, "a")
    second = cache.put(SNAPSHOT, 2, "b")
    assert [info.key for info in store.entries()] == [first, second]
    assert cache.get(SNAPSHOT, 1) == "a"
    assert [info.key for info in store.entries()] == [second, first]
    meta = store.load_metadata(first)
    assert meta is not None and meta.last_used_at >= meta.created_at


CONCURRENT_WRITER = """
import sys, time
from pathlib import Path
from molexp.workflow.cache import Caching
from molexp.workflow.snapshot import TaskSnapshot

snapshot = TaskSnapshot.model_validate_json(Path(sys.argv[1]).read_text())
cache = Caching(store_dir=sys.argv[2], max_entries=1000)
go = Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
for round_ in range(40):
    cache.put(snapshot, {"shared": round_ % 5}, {"value": round_ % 5, "pad": "x" * 5000})
    cache.put(snapshot, {"own": sys.argv[4], "i": round_}, sys.argv[4])
    found = cache.lookup(snapshot, {"shared": round_ % 5})
    assert not found.hit or found.value["value"] == round_ % 5, found
print("ok")
"""


def test_concurrent_puts_from_two_processes(tmp_path: Path) -> None:
    snapshot_file = tmp_path / "snapshot.json"
    snapshot_file.write_text(SNAPSHOT.model_dump_json())
    store_dir, go = tmp_path / "cache", tmp_path / "go"
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CONCURRENT_WRITER,
                str(snapshot_file),
                str(store_dir),
                str(go),
                name,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p1", "p2")
    ]
    go.touch()
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
        assert out.strip() == "ok"
    cache = Caching(store_dir=store_dir)
    assert len(cache) == 5 + 2 * 40
    for shared in range(5):
        assert cache.get(SNAPSHOT, {"shared": shared}) == {"value": shared, "pad": "x" * 5000}
    assert cache.get(SNAPSHOT, {"own": "p2", "i": 39}) == "p2"
    assert list((store_dir / ".tmp").iterdir()) == []


# --- explain() ---------------------------------------------------------------------------------

_counter = itertools.count()


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Callable[..., ModuleType]]:
    """Import source as a module; ``name=`` re-imports an edited file under the same name."""
    created: list[str] = []

    def _load(source: str, name: str | None = None) -> ModuleType:
        name = name or f"w2_cachemod_{next(_counter)}"
        path = tmp_path / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        created.append(name)
        spec.loader.exec_module(module)
        return module

    yield _load
    for name in created:
        sys.modules.pop(name, None)


TASK_MODULE = """
def scale(x):
    return x * 2

def task(ctx):
    return scale(ctx["a"]) + ctx["b"]
"""


def test_explain_hit_and_unrelated_miss(cache: Caching) -> None:
    cache.put(SNAPSHOT, {"a": 1}, "v")
    hit = cache.explain(SNAPSHOT, {"a": 1})
    assert hit.hit and hit.reason == "hit" and hit.key == cache.key_for(SNAPSHOT, {"a": 1})
    other = TaskSnapshot.from_callable(featurize, task_id="other")
    miss = cache.explain(other, {"a": 1})
    assert not miss.hit and miss.differences == ()
    assert "no stored entry for task 'other'" in miss.reason
    assert "cache miss for task 'other'" in str(miss)


def test_explain_names_the_changed_helper(cache: Caching, load: Callable[..., ModuleType]) -> None:
    module = load(TASK_MODULE)
    stored = TaskSnapshot.from_callable(module.task, task_id="t")
    cache.put(stored, {"a": 1, "b": 2}, 4)
    edited_module = load(TASK_MODULE.replace("x * 2", "x * 3"), name=module.__name__)
    edited = TaskSnapshot.from_callable(edited_module.task, task_id="t")
    explanation = cache.explain(edited, {"a": 1, "b": 2})
    assert explanation.differences == ("code",)
    assert "differs in code" in explanation.reason
    assert explanation.details == (f"code: {module.__name__}.scale changed",)


def test_explain_names_the_changed_body(cache: Caching, load: Callable[..., ModuleType]) -> None:
    module = load(TASK_MODULE)
    stored = TaskSnapshot.from_callable(module.task, task_id="t")
    cache.put(stored, {"a": 1, "b": 2}, 4)
    edited = load(TASK_MODULE.replace('+ ctx["b"]', '- ctx["b"]'), name=module.__name__)
    explanation = cache.explain(
        TaskSnapshot.from_callable(edited.task, task_id="t"), {"a": 1, "b": 2}
    )
    assert explanation.differences == ("code",)
    assert "code: the task body changed" in explanation.details


def test_explain_names_a_changed_constant_and_picks_the_nearest(
    cache: Caching, load: Callable[..., ModuleType]
) -> None:
    module = load(TASK_MODULE + "FACTOR = 1\n")
    stored = TaskSnapshot.from_callable(module.task, task_id="t")
    cache.put(stored, {"a": 1, "b": 2}, 4)
    source = TASK_MODULE.replace("x * 2", "x * FACTOR") + "FACTOR = 1\n"
    helper_module = load(source)
    first = TaskSnapshot.from_callable(helper_module.task, task_id="t")
    cache.put(first, {"a": 1, "b": 2}, 4)
    setattr(helper_module, "FACTOR", 5)  # noqa: B010 - the module is loaded at run time
    changed = TaskSnapshot.from_callable(helper_module.task, task_id="t")
    explanation = cache.explain(changed, {"a": 1, "b": 2})
    assert explanation.differences == ("code",)
    assert explanation.details == (f"code: {helper_module.__name__}.FACTOR changed",)
    assert explanation.nearest_key == cache.key_for(first, {"a": 1, "b": 2})


def test_explain_names_config_keys_and_values(cache: Caching) -> None:
    stored = TaskSnapshot.from_callable(featurize, task_id="f", config={"lr": 0.1, "opt": {"m": 1}})
    cache.put(stored, 1, "v")
    now = TaskSnapshot.from_callable(
        featurize, task_id="f", config={"lr": 0.2, "opt": {"m": 1, "n": 2}}
    )
    explanation = cache.explain(now, 1)
    assert explanation.differences == ("config",)
    assert explanation.details == (
        "config: config['lr'] changed: 0.1 -> 0.2",
        "config: config['opt']['n'] added: 2",
    )
    assert "config['lr'] changed" in str(explanation)


def test_explain_names_changed_inputs(cache: Caching) -> None:
    cache.put(SNAPSHOT, {"a": 1, "b": 2}, "v")
    explanation = cache.explain(SNAPSHOT, {"a": 1, "b": 3, "c": 0})
    assert explanation.differences == ("inputs",)
    assert explanation.details == ("inputs: inputs['b'] changed", "inputs: inputs['c'] added")
    plain = cache.explain(SNAPSHOT, [1, 2])
    assert plain.details == ("inputs: the inputs differ",)


def test_explain_prefers_the_nearest_entry(cache: Caching) -> None:
    far = TaskSnapshot.from_callable(other_task, task_id="featurize", config={"lr": 9})
    cache.put(far, {"a": 0}, "far")
    cache.put(SNAPSHOT, {"a": 0}, "near")
    explanation = cache.explain(SNAPSHOT, {"a": 1})
    assert explanation.differences == ("inputs",)
    assert explanation.nearest_key == cache.key_for(SNAPSHOT, {"a": 0})


def test_explain_unhashable_and_evicted() -> None:
    cache = Caching(MemoryCacheStore(), max_entries=1)
    explanation = cache.explain(SNAPSHOT, {"a": Opaque()})
    assert explanation.differences == ("inputs",)
    assert explanation.reason.startswith("unhashable input: inputs['a']")
    cache.put(SNAPSHOT, 1, "one")
    cache.put(SNAPSHOT, 2, "two")
    evicted = cache.explain(SNAPSHOT, 1)
    assert evicted.reason.startswith("evicted")
    assert evicted.differences == ("inputs",)


def test_explain_does_not_touch_lru(tmp_path: Path) -> None:
    store = FileCacheStore(tmp_path)
    cache = Caching(store=store)
    first = cache.put(SNAPSHOT, 1, "a")
    second = cache.put(SNAPSHOT, 2, "b")
    assert cache.explain(SNAPSHOT, 1).hit
    assert [info.key for info in store.entries()] == [first, second]


def test_environment_is_untouched_by_store_paths(tmp_path: Path) -> None:
    home_cache = Path(os.path.expanduser("~")) / ".molexp" / "cache"
    existed = home_cache.exists()
    Caching(store_dir=tmp_path).put(SNAPSHOT, 1, "v")
    Caching(MemoryCacheStore()).put(SNAPSHOT, 1, "v")
    assert home_cache.exists() == existed
