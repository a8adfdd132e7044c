"""Benchmark of the record locks (``molexp.assets.locked``) against a filelock reference.

Every figure is a ratio against a reference measured in the same process run: a fresh
``filelock.FileLock`` acquired and released per use (what ``locked()`` did before it
took ``flock`` itself). Figures:

- uncontended acquire + release, directory lock (local filesystems: no lock file);
- uncontended acquire + release, lock-file mode (network filesystems);
- contended: 4 processes each doing read-modify-write rounds on one record under its lock.

Usage: ``python benchmarks/bench_locks.py [--rounds 20000] [--contended 400]``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from filelock import FileLock
from molexp.assets import _locks, locked

_fork = multiprocessing.get_context("fork")
PROCESSES = 4


@contextmanager
def filelock_reference(path: Path) -> Iterator[None]:
    lock = FileLock(str(_locks.lock_path_for(path)))
    with lock:
        yield


@contextmanager
def lock_file_mode() -> Iterator[None]:
    """Pretend the filesystem is a network one: ``locked`` uses lock files."""
    saved = dict(_locks._directory_locking)
    real = _locks._filesystem_type
    _locks._directory_locking.clear()
    _locks._filesystem_type = lambda st_dev, directory: "nfs4"
    try:
        yield
    finally:
        _locks._filesystem_type = real
        _locks._directory_locking.clear()
        _locks._directory_locking.update(saved)


def per_use(lock: Callable[[Path], AbstractContextManager[None]], path: Path, rounds: int) -> float:
    """Best of 3: seconds per acquire + release."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            with lock(path):
                pass
        best = min(best, (time.perf_counter() - start) / rounds)
    return best


def _increment(lock_name: str, path: Path, rounds: int) -> None:
    lock = filelock_reference if lock_name == "filelock" else locked
    for _ in range(rounds):
        with lock(path):
            value = int(path.read_text())
            path.write_text(str(value + 1))


def contended(lock_name: str, path: Path, rounds: int) -> float:
    path.write_text("0")
    workers = [
        _fork.Process(target=_increment, args=(lock_name, path, rounds)) for _ in range(PROCESSES)
    ]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    assert int(path.read_text()) == PROCESSES * rounds, "lost update: the lock did not exclude"
    return elapsed


def report(label: str, measured: float, reference: float, unit: str) -> None:
    print(
        f"{label:<44} {measured * 1e6:10.1f} us{unit:<10} "
        f"filelock {reference * 1e6:10.1f} us   ratio {measured / reference:6.3f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--contended", type=int, default=400, help="rounds per process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-locks-") as scratch:
        root = Path(scratch)
        record = root / "run.json"
        print(f"record locks: {args.rounds} uses, {PROCESSES} x {args.contended} contended rounds")
        reference = per_use(filelock_reference, record, args.rounds)
        report(
            "locked(), directory flock (local FS)",
            per_use(locked, record, args.rounds),
            reference,
            "/use",
        )
        with lock_file_mode():
            in_lock_files = per_use(locked, root / "other.json", args.rounds)
        report("locked(), lock file (network FS)", in_lock_files, reference, "/use")
        reference = contended("filelock", root / "counter-ref", args.contended)
        mine = contended("locked", root / "counter", args.contended)
        per_round = PROCESSES * args.contended
        report(
            f"{PROCESSES} processes, read-modify-write",
            mine / per_round,
            reference / per_round,
            "/round",
        )
        leftovers = sorted(p.name for p in root.iterdir() if p.name.endswith(".lock"))
        print(f"lock files left: {leftovers} (the reference and the lock-file mode leave theirs)")
        print(f"pid {os.getpid()} done")


if __name__ == "__main__":
    main()
