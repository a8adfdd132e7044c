"""Benchmark of metric series: ``ctx.log_metric`` vs appending the same records with ``O_APPEND``.

Figures, each a ratio against a reference measured in the same run:

* M1 ``ctx.log_metric`` of N points (validation, buffering, batched write + fsync, the summaries
  in run.json and the final flush included) vs ``os.write`` of each point's record, encoded
  beforehand, on an ``O_APPEND`` descriptor (no fsync at all); target <= 5x;
* M2 ``run.metric(name)``: reading the N-point series back from a cold cache (every record
  checked, the columns as Python lists) vs reading the raw bytes of its file; and, for
  comparison, the same points in a text file of earlier versions (``.tsv``) read cold vs reading
  that file's raw bytes;
* M3 ``run.metric(name)`` again, the file unchanged: served from the per-process cache of decoded
  series files (no decoding), vs the same raw read;
* M2 at ``--series-points`` (default 1,000,000): the cold read of that series (seconds; target
  well under 0.5 s) vs the raw read of its file;
* M4 a ``--series-points`` (default 1,000,000) point series through ``molexp serve``:
  ``GET /runs/{id}/metrics/{name}?points=1500`` (read, LTTB, JSON) cold and warm, and, when
  Debian's Chromium is at /usr/bin/chromium, the run page from navigation until its chart of the
  series is drawn, in fresh browser contexts of a fresh server process: the first load reads the
  series cold, the others (median) are served from the server's caches. The issue's target is
  < 1 s; these are absolute times, with the page of a 100-point series as the reference.

Usage: ``python benchmarks/bench_metrics.py [--points 100000] [--repeat 3]
[--series-points 1000000] [--no-browser]``
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from molexp.workspace import MetricSeries, Workspace, clear_series_cache
from molexp.workspace._metrics import encode_points, encode_records, read_series

CHROMIUM = Path("/usr/bin/chromium")
DRAWN = 1500


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
        f"{label:<46} {measured / count * 1e6:8.3f} us/point  "
        f"reference {reference / count * 1e6:8.3f} us/point  ratio {measured / reference:6.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--series-points", type=int, default=1_000_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    points: int = args.points
    with tempfile.TemporaryDirectory(prefix="bench-metrics-") as tmp:
        root = Path(tmp)
        experiment = Workspace(root / "lab").Project("bench").Experiment("metrics")
        values = [1.0 / (step + 1) for step in range(points)]
        stamp = time.time()
        names = {"loss": 0}
        records = [
            encode_records([("loss", step, value, stamp)], names, header=False)
            for step, value in enumerate(values)
        ]
        counter = iter(range(10**9))

        def append_lines() -> None:
            fd = os.open(root / f"ref-{next(counter)}.bin", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                for record in records:
                    os.write(fd, record)
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
        (series_file,) = run.run_dir.glob("execution/*/metrics/*.bin")

        def cold_read() -> object:
            clear_series_cache()
            return run.metric("loss")

        read_ref = timed(series_file.read_bytes, args.repeat)
        read = timed(cold_read, args.repeat)
        read_ref = min(read_ref, timed(series_file.read_bytes, args.repeat))
        assert len(run.metric("loss")) == points
        report(f"M2 run.metric() of {points:,} points, cold", read, read_ref, points)
        warm = timed(lambda: run.metric("loss"), args.repeat)
        report(f"M3 run.metric() of {points:,} points, cached", warm, read_ref, points)
        legacy_read(root, run.metric("loss"), args.repeat)

        served_series(root, args.series_points, args.repeat, browser=not args.no_browser)


def legacy_read(root: Path, series: MetricSeries, repeat: int) -> None:
    """M2 for a text file of earlier versions holding the same points (read as old runs are)."""
    directory = root / "legacy" / "execution" / "e1" / "metrics"
    directory.mkdir(parents=True)
    path = directory / "0123456789ab.tsv"
    columns = zip(series.steps, series.values, series.timestamps, strict=True)
    path.write_bytes(encode_points([(series.name, s, v, t) for s, v, t in columns]))

    def cold_read() -> object:
        clear_series_cache()
        return read_series(root / "legacy", [(1, "e1")], only=series.name)

    reference = timed(path.read_bytes, repeat)
    read = timed(cold_read, repeat)
    reference = min(reference, timed(path.read_bytes, repeat))
    report("M2 the same from a .tsv file (earlier versions)", read, reference, len(series))


def cold_series(root: Path, count: int, repeat: int) -> None:
    """M2 at ``count`` points: the cold read of the served run's series, in seconds."""
    run = Workspace(root / "lab").Project("bench").Experiment("long").get_run("long")
    (path,) = run.run_dir.glob("execution/*/metrics/*.bin")

    def cold_read() -> object:
        clear_series_cache()
        return run.metric("energy")

    reference = timed(path.read_bytes, repeat)
    read = timed(cold_read, repeat)
    reference = min(reference, timed(path.read_bytes, repeat))
    print(
        f"M2 run.metric() of {count:,} points, cold: {read:.3f} s "
        f"(raw read of its {path.stat().st_size / 1e6:.0f} MB file {reference:.3f} s, "
        f"ratio {read / reference:.1f}x)"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return bytes(response.read())


@contextmanager
def serving(root: Path) -> Iterator[str]:
    """The base URL of a fresh ``serve()`` process of the workspace (nothing read or cached)."""
    port = free_port()
    code = f"from molexp.server import serve; serve({str(root / 'lab')!r}, port={port})"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(base + "api/v1/workspace")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def served_series(root: Path, count: int, repeat: int, *, browser: bool) -> None:
    """M4: a ``count``-point series through a real ``serve()`` process and the run page."""
    experiment = Workspace(root / "lab").Project("bench").Experiment("long")
    for run_id, points in (("long", count), ("short", 100)):
        with experiment.Run(id=run_id).start() as ctx:
            for step in range(points):
                ctx.log_metric("energy", -100.0 + 50.0 / (1 + step / 1000) + (step % 7) * 0.01)
    cold_series(root, count, repeat)
    with serving(root) as base:
        url = f"{base}api/v1/runs/long/metrics/energy?points={DRAWN}"
        started = time.perf_counter()
        get(url)
        cold = time.perf_counter() - started
        warm = timed(lambda: get(url), repeat)
    print(f"M4 GET .../metrics/energy?points={DRAWN} of {count:,} points: cold {cold:.3f} s")
    print(f"M4 the same, file unchanged (cached):{'':14} {warm:.3f} s ({warm / cold:.2f}x cold)")
    if browser and CHROMIUM.exists():
        with serving(root) as base:  # a fresh server: the first page load reads the series cold
            page = run_page_draw(f"{base}#/runs/long?p=bench&e=long", count, repeat)
            short = run_page_draw(f"{base}#/runs/short?p=bench&e=long", 100, repeat)
        warm_page, short_page = statistics.median(page[1:]), statistics.median(short[1:])
        print(
            f"M4 run page drawn in headless Chromium: fresh server (series read cold) "
            f"{page[0]:.3f} s, then (median) {warm_page:.3f} s (target < 1 s); with a 100-point "
            f"series, first {short[0]:.3f} s, then {short_page:.3f} s "
            f"({warm_page / short_page:.2f}x)"
        )
    elif browser:
        print("M4 run page: skipped (needs /usr/bin/chromium)")


def run_page_draw(url: str, count: int, repeat: int) -> list[float]:
    """Times from navigation until the run page says the series is drawn, each in a fresh
    browser context (at least 3; the first is the browser's first page)."""
    from playwright.sync_api import expect, sync_playwright

    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        for _ in range(max(repeat, 3)):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            started = time.perf_counter()
            page.goto(url)
            chart = page.get_by_test_id("metric-energy")
            drawn = f" ({DRAWN:,} drawn)" if count > DRAWN else ""
            expect(chart).to_contain_text(f"{count:,} points{drawn}", timeout=60_000)
            chart.locator("canvas").wait_for()
            samples.append(time.perf_counter() - started)
            context.close()
        browser.close()
    return samples


if __name__ == "__main__":
    main()
