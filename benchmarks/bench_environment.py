"""Benchmark of the environment each attempt records (issue 12 §4: ≤ 5 ms per attempt).

Prints the cost of ``capture_environment()`` per attempt — the first call of a process (which
probes the machine: platform, CPUs, ``nvidia-smi`` when on PATH) and every later one — as a ratio
to writing one durable JSON record (temp file + fsync + rename), measured in the same process on
the same disk, and the absolute figures against the target.

Usage: ``python benchmarks/bench_environment.py [--attempts 2000]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from molexp.workspace._environment import _machine, capture_environment

TARGET_MS = 5.0


def durable_write(directory: Path, index: int) -> None:
    """The reference: one JSON record written durably."""
    target = directory / f"record-{index % 50}.json"
    temporary = target.with_suffix(".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump({"index": index, "status": "succeeded"}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--attempts", type=int, default=2000)
    args = parser.parse_args()

    _machine.cache_clear()
    started = time.perf_counter()
    capture_environment()
    first_ms = (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    for _ in range(args.attempts):
        capture_environment().model_dump()
    later_ms = (time.perf_counter() - started) * 1000 / args.attempts

    with tempfile.TemporaryDirectory(prefix="bench-environment-") as directory:
        started = time.perf_counter()
        for index in range(args.attempts):
            durable_write(Path(directory), index)
        reference_ms = (time.perf_counter() - started) * 1000 / args.attempts

    print(f"durable JSON write (reference): {reference_ms:.3f} ms")
    print(
        f"first attempt of a process: {first_ms:.3f} ms "
        f"({first_ms / reference_ms:.2f}x the reference; target <= {TARGET_MS} ms)"
    )
    print(
        f"every later attempt:        {later_ms:.4f} ms "
        f"({later_ms / reference_ms:.3f}x the reference; target <= {TARGET_MS} ms)"
    )


if __name__ == "__main__":
    main()
