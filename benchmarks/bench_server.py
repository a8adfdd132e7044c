"""Benchmarks for molexp.server: what the experiment page costs with many runs.

A workspace with ``--runs`` runs (default 1,000, full ``run.start()`` lifecycle) is served by a
real ``serve()`` process; requests go over HTTP on 127.0.0.1. Every figure is printed as a ratio
against a reference measured in the same run:

* API requests       vs a naive scan: read and ``json.loads`` every ``run.json`` of the
                       experiment, then sort and page in Python (what a server without the run
                       index would do for each page);
* log read           vs reading the same bytes straight from the file;
* browser first load vs loading the app shell alone (bundle and first render, no data): the
                       cost of fetching and rendering the runs table, when Debian's Chromium is
                       at /usr/bin/chromium (skipped otherwise).

Usage: ``python benchmarks/bench_server.py [--runs 1000] [--repeat 15] [--no-browser]``
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path

from molexp.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
PAGE_SIZE = 100
LOG_LINES = 200_000


def median_time(action: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``repeat`` runs of ``action``, in seconds."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def fill(root: Path, runs: int) -> Path:
    """The benchmark workspace; returns the experiment directory."""
    ws = Workspace(root, name="bench")
    experiment = ws.Project("bench").Experiment("sweep", params={"batch": 32})
    for index in range(runs):
        run = experiment.Run(parameters={"lr": 1e-4 * (1 + index % 50), "depth": index % 5})
        with run.start() as ctx:
            ctx.set_result("loss", 1.0 / (1 + index % 50))
            if index == 0:
                log = ctx.log("train")
                for line in range(LOG_LINES):
                    log.append(f"step {line} loss={1.0 / (line + 1):.6f}")
    return experiment.experiment_dir


def naive_page(experiment_dir: Path) -> list[dict[str, object]]:
    """Read every run.json, sort by loss descending, return the first page."""
    records = [
        json.loads(path.read_bytes()) for path in (experiment_dir / "runs").glob("run-*/run.json")
    ]
    records.sort(key=lambda record: -float(record["results"].get("loss", 0.0)))
    return records[:PAGE_SIZE]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("serve() exited early")
        try:
            get(base + "api/v1/workspace")
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError("server did not start")


def report(name: str, seconds: float, reference: float, reference_name: str) -> None:
    print(
        f"{name:<34} {seconds * 1000:8.1f} ms = {seconds / reference:6.2f} x {reference_name}"
        f" ({reference * 1000:.1f} ms)"
    )


def browser_first_load(url: str, test_id: str, repeat: int) -> float:
    """Median time from navigation until ``test_id`` shows, each load in a fresh context."""
    from playwright.sync_api import sync_playwright

    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
            ],
        )
        for _ in range(repeat):
            context = browser.new_context()
            page = context.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.get_by_test_id(test_id).first.wait_for()
            samples.append(time.perf_counter() - started)
            context.close()
        browser.close()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        root = Path(tmp) / "lab"
        started = time.perf_counter()
        experiment_dir = fill(root, args.runs)
        print(f"workspace with {args.runs} runs created in {time.perf_counter() - started:.1f} s")
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        code = f"from molexp.server import serve; serve({str(root)!r}, port={port})"
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
        try:
            wait_until_up(base, process)
            api = base + "api/v1/projects/bench/experiments/sweep"
            run_id = json.loads(get(api + "/runs?limit=1&order_by=created_at"))["items"][0]["id"]
            log_path = experiment_dir / "runs" / f"run-{run_id}" / "logs" / "train.log"

            naive = median_time(lambda: naive_page(experiment_dir), args.repeat)
            requests = {
                "GET experiment (keys, counts)": api,
                "GET runs page sorted by loss": api
                + f"/runs?order_by=-results.loss&limit={PAGE_SIZE}",
                "GET runs page filtered": api
                + f"/runs?where=lr%20%3C%202e-3%20and%20depth%20%3E%3D%202&limit={PAGE_SIZE}",
                "GET runs page 5 (offset 400)": api + f"/runs?limit={PAGE_SIZE}&offset=400",
                "GET workspace overview": base + "api/v1/workspace",
                "GET run detail": base + f"api/v1/runs/{run_id}",
            }
            print(f"\nreference: naive scan of {args.runs} run.json files = {naive * 1000:.1f} ms")
            print("after a change to the run index (nothing reusable):")
            changed = Workspace.load(root).find_run(run_id)
            edits = iter(range(10**9))

            def change_then_get(url: str) -> None:
                changed.set_workflow({"workflow_id": f"bench-{next(edits)}"})
                started = time.perf_counter()
                get(url)
                timings.append(time.perf_counter() - started)

            for name, url in requests.items():
                timings: list[float] = []
                for _ in range(args.repeat):
                    change_then_get(url)
                report(f"  {name}", statistics.median(timings), naive, "naive scan")
            print("repeated while the index is unchanged:")
            for name, url in requests.items():
                get(url)  # warm the server's index cache
                report(
                    f"  {name}", median_time(partial(get, url), args.repeat), naive, "naive scan"
                )

            size = log_path.stat().st_size
            direct = median_time(lambda: log_path.read_bytes(), args.repeat)
            chunk = 8 * 1024 * 1024
            log_url = base + f"api/v1/runs/{run_id}/logs/train?max_bytes={chunk}"

            def read_log_over_http() -> None:
                offset = 0
                while offset < size:
                    offset = json.loads(get(f"{log_url}&since={offset}"))["next_offset"]

            print(f"\nreference: reading the {size / 1e6:.1f} MB log file directly", end="")
            print(f" = {direct * 1000:.1f} ms")
            report(
                "GET whole log in 8 MiB chunks",
                median_time(read_log_over_http, 5),
                direct,
                "file read",
            )

            if args.no_browser or not CHROMIUM.exists():
                print("\nbrowser first load: skipped (needs /usr/bin/chromium)")
                return
            # The app shell alone: bundle and first render, no data (an unknown route).
            shell = browser_first_load(base + "#/bench-shell", "home-link", repeat=5)
            first = browser_first_load(base + "#/p/bench/e/sweep", "run-row", repeat=5)
            print(f"\nreference: loading the app shell alone = {shell * 1000:.1f} ms")
            report(f"browser first load ({args.runs} runs)", first, shell, "app shell")
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
