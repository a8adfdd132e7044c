"""Benchmark of the workspace layer: run lifecycle cost, listing and queries over the run index.

Creates N runs (3 parameters, 1 result each) through the full
``with run.start() as ctx: ctx.set_result(...)`` lifecycle, then lists them all with
``ws.runs()`` and runs an equality and an OR query. Every figure is printed next to a
naive reference measured in the same process on the same disk:

- lifecycle: one durable JSON file per run (fresh directory, temp file + fsync +
  rename + directory fsync), the floor for recording a run's outcome durably; and, as a second
  reference, the floor of the run record's contract: the same directory with ``run.json``
  written three times, atomically each time (``created`` before the run can start, ``running``
  before its work runs, the outcome at the end) and only the last write durable, as the
  workspace does, with no other work (no locks, index, change feed or attempt directories);
- listing and queries: scanning one JSON file per run (``glob`` + ``json.loads``) and
  filtering in Python.

Usage: ``python benchmarks/bench_workspace.py [--runs 10000] [--dir PATH]``.
Targets at 10k runs: lifecycle <= 2 ms per run, list all <= 100 ms, query <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from molexp.workspace import Experiment, Workspace

LEARNING_RATES = [round(10 ** (-1 - i / 3), 6) for i in range(10)]
BATCHES = [16, 32, 64, 128]
T = TypeVar("T")
CHUNKS = 20
TARGET_CREATE_MS = 2.0
TARGET_LIST_MS = 100.0
TARGET_QUERY_MS = 20.0


def parameters(index: int) -> dict[str, Any]:
    return {
        "lr": LEARNING_RATES[index % len(LEARNING_RATES)],
        "batch": BATCHES[(index // len(LEARNING_RATES)) % len(BATCHES)],
        "depth": index % 7,
    }


def best_of(repeats: int, action: Callable[[], T]) -> tuple[float, T]:
    """Fastest wall time of ``repeats`` calls (seconds) and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return min(times), result


def create_runs(exp: Experiment, indices: range) -> tuple[float, float]:
    """Total lifecycle time and the part spent in ``exp.Run(...)`` (seconds)."""
    creating = 0.0
    start = time.perf_counter()
    for index in indices:
        before = time.perf_counter()
        run = exp.Run(parameters=parameters(index))
        creating += time.perf_counter() - before
        with run.start() as ctx:
            ctx.set_result("loss", 1.0 / (index + 1))
    return time.perf_counter() - start, creating


def _write_record(run_dir: Path, record: dict[str, Any], *, durable: bool) -> None:
    temp = run_dir / ".run.json.tmp"
    with temp.open("w") as handle:
        json.dump(record, handle, indent=2)
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    temp.replace(run_dir / "run.json")
    if durable:
        directory = os.open(run_dir, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def write_naive_runs(root: Path, indices: range) -> float:
    """One durable JSON record per run in its own directory (the reference floor)."""
    start = time.perf_counter()
    for index in indices:
        run_dir = root / f"run-{index:06d}"
        run_dir.mkdir(parents=True)
        record = {
            "id": f"{index:06d}",
            "status": "succeeded",
            "parameters": parameters(index),
            "results": {"loss": 1.0 / (index + 1)},
        }
        _write_record(run_dir, record, durable=True)
    return time.perf_counter() - start


def write_contract_floor_runs(root: Path, indices: range) -> float:
    """Each run's three atomic ``run.json`` states, the last one durable, and nothing else."""
    start = time.perf_counter()
    for index in indices:
        run_dir = root / f"run-{index:06d}"
        run_dir.mkdir(parents=True)
        record: dict[str, Any] = {
            "id": f"{index:06d}",
            "status": "created",
            "parameters": parameters(index),
            "results": {},
        }
        _write_record(run_dir, record, durable=False)
        record["status"] = "running"
        _write_record(run_dir, record, durable=False)
        record["status"] = "succeeded"
        record["results"] = {"loss": 1.0 / (index + 1)}
        _write_record(run_dir, record, durable=True)
    return time.perf_counter() - start


def naive_scan(root: Path, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found = []
    for path in root.glob("projects/*/experiments/*/runs/run-*/run.json"):
        record = json.loads(path.read_bytes())
        if keep(record):
            found.append(record)
    return found


def report(
    label: str, seconds: float, reference: float, target_ms: float | None, per: int = 1
) -> None:
    ms = seconds * 1000 / per
    ref_ms = reference * 1000 / per
    verdict = ""
    if target_ms is not None:
        verdict = f"({'meets' if ms <= target_ms else 'MISSES'} target {target_ms:g} ms)"
    print(
        f"{label:<34} {ms:9.3f} ms   naive {ref_ms:9.3f} ms   ratio {ms / ref_ms:6.2f}x   {verdict}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs to create (default 10000)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: tmp)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-workspace-", dir=args.dir))
    try:
        run_benchmark(scratch, args.runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_benchmark(scratch: Path, count: int) -> None:
    root = scratch / "lab"
    print(f"workspace benchmark: {count} runs under {scratch}")

    # Interleave the two in chunks so both see the same load on a shared machine.
    exp = Workspace(root).Project("bench").Experiment("grid")
    naive_write = floor_write = created = creating = 0.0
    chunk = max(1, count // CHUNKS)
    for first in range(0, count, chunk):
        indices = range(first, min(first + chunk, count))
        naive_write += write_naive_runs(scratch / "naive", indices)
        floor_write += write_contract_floor_runs(scratch / "floor", indices)
        total, in_run = create_runs(exp, indices)
        created += total
        creating += in_run
    report("run lifecycle (per run)", created, naive_write, TARGET_CREATE_MS, per=count)
    print(
        f"  of which exp.Run() {creating * 1000 / count:.3f} ms, "
        f"start + set_result + exit {(created - creating) * 1000 / count:.3f} ms"
    )
    report("  record contract floor (per run)", floor_write, naive_write, None, per=count)

    ws = Workspace(root)
    target_lr = LEARNING_RATES[3]
    list_time, listed = best_of(3, lambda: ws.runs())
    naive_list, naive_listed = best_of(3, lambda: naive_scan(root, lambda record: True))
    assert len(listed) == len(naive_listed) == count
    report("list all runs: ws.runs()", list_time, naive_list, TARGET_LIST_MS)
    records_time, _ = best_of(3, lambda: ws.runs().to_records())
    report("list all + to_records()", records_time, naive_list, None)

    query_time, matched = best_of(5, lambda: ws.runs(f"lr == {target_lr}"))
    naive_query, naive_matched = best_of(
        3, lambda: naive_scan(root, lambda record: record["parameters"]["lr"] == target_lr)
    )
    assert len(matched) == len(naive_matched)
    label = f"query lr == {target_lr} ({len(matched)} rows)"
    report(label, query_time, naive_query, TARGET_QUERY_MS)

    or_query = f"lr == {target_lr} or batch == 64"
    or_time, or_matched = best_of(5, lambda: ws.runs(or_query))
    naive_or, naive_or_matched = best_of(
        3,
        lambda: naive_scan(
            root,
            lambda record: (
                record["parameters"]["lr"] == target_lr or record["parameters"]["batch"] == 64
            ),
        ),
    )
    assert len(or_matched) == len(naive_or_matched)
    report(f"query OR ({len(or_matched)} rows)", or_time, naive_or, TARGET_QUERY_MS)


if __name__ == "__main__":
    main()
