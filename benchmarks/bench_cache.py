"""Snapshot, hashing and cache benchmarks; every figure is a ratio against a reference measured in
this run.

C1  ``TaskSnapshot.from_callable`` of a task with 3 folded helpers, repeated (memoized analysis)
    vs a naive un-memoized hash of the body alone (getsource + ast.parse + ast.dump + sha256).
C2  ``hash_value`` of a typical input (dict of 20 lists of 500 floats + metadata) vs
    ``json.dumps(sort_keys=True)`` + sha256 of the same data (fast but not type-safe).
C3  ``hash_value`` of a 64 MiB bytes payload vs ``hashlib.sha256`` of it.
C4  ``Caching.lookup`` hit with the memory store vs the unavoidable work (hash the inputs +
    ``pickle.loads`` the value).
C5  ``Caching.lookup`` hit with the file store vs hashing the inputs + reading and unpickling
    the same payload file directly.
C6  ``Caching.put`` into a full file store (max_entries=500, one LRU eviction per put) vs a put
    into a store with room.

Run: ``python benchmarks/bench_cache.py``.
"""

from __future__ import annotations

import ast
import gc
import hashlib
import inspect
import json
import math
import pickle
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from molexp.workflow import hash_value
from molexp.workflow.cache import Caching, MemoryCacheStore
from molexp.workflow.snapshot import TaskSnapshot

SCALE = 3


def _square(x: float) -> float:
    return x * x


def _normalize(values: list[float]) -> list[float]:
    top = max(values)
    return [_square(v) / top * SCALE for v in values]


def featurize(ctx: Any) -> float:
    """A realistic little task body with helpers to fold."""
    values = _normalize(list(ctx["values"]))
    return math.fsum(values) / len(values)


def best_of(repeats: int, run: Callable[[], Any], number: int) -> float:
    """Best per-call seconds over ``repeats`` batches of ``number`` calls."""
    best = math.inf
    for _ in range(repeats):
        gc.disable()
        start = time.perf_counter()
        for _ in range(number):
            run()
        elapsed = (time.perf_counter() - start) / number
        gc.enable()
        best = min(best, elapsed)
    return best


def naive_body_hash(fn: Callable[..., Any]) -> str:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def report(label: str, measured: float, reference: float, note: str) -> None:
    print(
        f"{label:<4} {measured * 1e6:10.1f} us vs {reference * 1e6:10.1f} us  "
        f"ratio {measured / reference:6.2f}  ({note})"
    )


def bench_large_bytes() -> None:
    blob = bytes(64 << 20)
    report(
        "C3",
        best_of(3, lambda: hash_value(blob), 1),
        best_of(3, lambda: hashlib.sha256(blob).hexdigest(), 1),
        "64 MiB bytes vs raw sha256",
    )


def main() -> None:
    config = {"lr": 0.1, "layers": [64, 64], "name": "bench"}
    snapshot = TaskSnapshot.from_callable(featurize, task_id="featurize", config=config)
    assert len(snapshot.dependency_hashes) == 3, snapshot.dependency_hashes
    report(
        "C1",
        best_of(5, lambda: TaskSnapshot.from_callable(featurize, task_id="f", config=config), 500),
        best_of(5, lambda: naive_body_hash(featurize), 500),
        "memoized snapshot incl. helpers+config vs naive body-only hash; lower is better",
    )

    inputs = {
        "values": [float(i) for i in range(500)],
        **{f"series_{k}": [k + i / 7 for i in range(500)] for k in range(19)},
        "meta": {"source": "bench", "ids": list(range(50))},
    }
    report(
        "C2",
        best_of(5, lambda: hash_value(inputs), 20),
        best_of(
            5,
            lambda: hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest(),
            20,
        ),
        "type-safe canonical hash vs sorted json + sha256",
    )

    bench_large_bytes()

    value = {"energy": -1.5, "forces": [[0.1, 0.2, 0.3]] * 200}
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    small_inputs = {"smiles": "CCO", "conformer": 3, "values": list(range(100))}

    memory = Caching(MemoryCacheStore(), max_entries=1000)
    memory.put(snapshot, small_inputs, value)
    assert memory.lookup(snapshot, small_inputs).hit
    report(
        "C4",
        best_of(5, lambda: memory.lookup(snapshot, small_inputs), 500),
        best_of(5, lambda: (hash_value(small_inputs), pickle.loads(payload)), 500),
        "memory-store hit vs hash inputs + unpickle",
    )

    with tempfile.TemporaryDirectory() as scratch:
        files = Caching(store_dir=Path(scratch) / "cache", max_entries=1000)
        files.put(snapshot, small_inputs, value)
        assert files.lookup(snapshot, small_inputs).hit
        payload_file = Path(scratch) / "payload.pkl"
        payload_file.write_bytes(payload)
        report(
            "C5",
            best_of(5, lambda: files.lookup(snapshot, small_inputs), 200),
            best_of(
                5, lambda: (hash_value(small_inputs), pickle.loads(payload_file.read_bytes())), 200
            ),
            "file-store hit (one file: checksum, key, version; touch) vs hash + read + unpickle",
        )

        capacity = 500
        full = Caching(store_dir=Path(scratch) / "full", max_entries=capacity)
        roomy = Caching(store_dir=Path(scratch) / "roomy", max_entries=10 * capacity)
        for i in range(capacity):
            full.put(snapshot, i, value)
            roomy.put(snapshot, i, value)
        counter = iter(range(capacity, 10 * capacity))
        full_put = best_of(3, lambda: full.put(snapshot, next(counter), value), 50)
        room_put = best_of(3, lambda: roomy.put(snapshot, next(counter), value), 50)
        assert len(full) <= capacity
        report("C6", full_put, room_put, f"put with LRU eviction at {capacity} entries vs put")


if __name__ == "__main__":
    main()
