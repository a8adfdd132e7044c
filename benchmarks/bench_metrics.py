"""Benchmark of metric series: ``ctx.log_metric`` vs appending the same lines with ``O_APPEND``.

Figures, each a ratio against a reference measured in the same run:

* M1 ``ctx.log_metric`` of N points (validation, buffering, batched write + fsync, the summaries
  in run.json and the final flush included) vs ``os.write`` of each point's line, formatted
  beforehand, on an ``O_APPEND`` descriptor (no fsync at all); target <= 5x;
* M2 ``run.metric(name)``: reading the N-point series back (every field checked, sorted by
  step) vs the least a reader does: read the file and ``float`` each line's value field.

Usage: ``python benchmarks/bench_metrics.py [--points 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from molexp.workspace import Workspace


def timed(action: Callable[[], object], repeat: int) -> float:
    """Best wall time of ``repeat`` runs of ``action``, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def report(label: str, measured: float, reference: float, count: int) -> None:
    print(
        f"{label:<46} {measured / count * 1e6:8.2f} us/point  "
        f"reference {reference / count * 1e6:8.2f} us/point  ratio {measured / reference:6.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    points: int = args.points
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        experiment = Workspace(root / "lab").Project("bench").Experiment("metrics")
        values = [1.0 / (step + 1) for step in range(points)]
        stamp = time.time()
        lines = [
            f"loss\t{step}\t{value!r}\t{stamp!r}\n".encode() for step, value in enumerate(values)
        ]
        counter = iter(range(10**9))

        def append_lines() -> None:
            fd = os.open(root / f"ref-{next(counter)}.tsv", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                for line in lines:
                    os.write(fd, line)
            finally:
                os.close(fd)

        runs = []

        def log_metric() -> None:
            run = experiment.Run()
            runs.append(run)
            with run.start() as ctx:
                start = time.perf_counter()
                for value in values:
                    ctx.log_metric("loss", value)
                ctx.flush_metrics()
                elapsed.append(time.perf_counter() - start)

        elapsed: list[float] = []
        reference = timed(append_lines, args.repeat)
        timed(log_metric, args.repeat)
        reference = min(reference, timed(append_lines, args.repeat))
        report(f"M1 ctx.log_metric x {points:,}", min(elapsed), reference, points)

        run = runs[-1]
        (series_file,) = run.run_dir.glob("execution/*/metrics/*.tsv")

        def bare_read() -> list[float]:
            return [float(line.split(b"\t")[2]) for line in series_file.read_bytes().splitlines()]

        read_ref = timed(bare_read, args.repeat)
        read = timed(lambda: run.metric("loss"), args.repeat)
        assert len(run.metric("loss")) == points
        report(f"M2 run.metric() of {points:,} points", read, read_ref, points)


if __name__ == "__main__":
    main()
