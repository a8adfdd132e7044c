"""P4 at scale: the run index with 100,000 runs (one experiment), per-host and caught up.

Builds a workspace of ``--runs`` runs (default 100,000): one run through the full
``run.start()`` lifecycle, the rest as copies of its record with their own ids, parameters,
results and creation times (plain writes: building the fixture is not what is measured), then
this host's index from the records (``rebuild_index``). Every query below catches up with the
change feed first, as every ``ws.runs()`` does. Each figure is printed next to a reference
measured in the same process on the same disk:

- first page of 100 (``ws.runs(limit=100)``, workspace-wide and of the experiment) vs reading
  and parsing those 100 ``run.json`` files directly;
- count (``ws.count_runs()``, workspace-wide and of the experiment) vs counting the run
  directories with ``os.scandir``;
- a selective query (``lr == a and batch == b and depth == c``, 1 run in 280) and the full list
  (``ws.runs()``) vs scanning every ``run.json`` and filtering in Python (best of 1: it takes
  seconds);
- with ``--browser`` (needs /usr/bin/chromium): the UI's experiment page first load (until the
  first run row shows) served by ``molexp serve`` vs the app shell alone: while the server's
  first full check of the records runs (in the background), after it with the index unchanged,
  and each load just after a run's record changed.

Usage: ``python benchmarks/bench_scale.py [--runs 100000] [--browser]``; the workspace is kept
in the temp directory between invocations (``--rebuild`` makes it again).
Targets at 100,000 runs: first page <= 20 ms, count <= 20 ms, a query with <= 1% hits <= 20 ms,
full list <= 350 ms; the experiment page in < 1 s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from molexp.workspace import Workspace

LEARNING_RATES = [round(10 ** (-1 - i / 3), 6) for i in range(10)]
BATCHES = [16, 32, 64, 128]
DEPTHS = 7
T = TypeVar("T")
PAGE = 100
PROJECT = "bench"
EXPERIMENT = "grid"
TARGET_PAGE_MS = 20.0
TARGET_COUNT_MS = 20.0
TARGET_QUERY_MS = 20.0
TARGET_LIST_MS = 350.0
TARGET_PAGE_LOAD_S = 1.0


def parameters(index: int) -> dict[str, Any]:
    return {
        "lr": LEARNING_RATES[index % len(LEARNING_RATES)],
        "batch": BATCHES[(index // len(LEARNING_RATES)) % len(BATCHES)],
        "depth": index % DEPTHS,
    }


def build(root: Path, count: int) -> float:
    """The workspace of ``count`` runs in one experiment; seconds taken (index included)."""
    started = time.perf_counter()
    ws = Workspace(root, name="bench-scale")
    experiment = ws.Project(PROJECT).Experiment(EXPERIMENT)
    template_run = experiment.Run(parameters=parameters(0))
    with template_run.start() as ctx:
        ctx.set_result("loss", 1.0)
    template = json.loads((template_run.run_dir / "run.json").read_text())
    runs_dir = template_run.run_dir.parent
    base = datetime.fromisoformat(template["created_at"].replace("Z", "+00:00"))
    for index in range(1, count):
        run_id = f"s{index:07d}"
        created = (base + timedelta(microseconds=index)).isoformat().replace("+00:00", "Z")
        record = {
            **template,
            "id": run_id,
            "parameters": parameters(index),
            "results": {"loss": 1.0 / (index + 1)},
            "created_at": created,
            "updated_at": created,
            "started_at": created,
            "finished_at": created,
            "execution_history": [],
        }
        run_dir = runs_dir / f"run-{run_id}"
        run_dir.mkdir()
        (run_dir / "run.json").write_text(json.dumps(record))
    Workspace.load(root).rebuild_index()
    return time.perf_counter() - started


def best_of(repeats: int, action: Callable[[], T]) -> tuple[float, T]:
    """Fastest wall time of ``repeats`` calls (seconds) and the last result."""
    times = []
    result: T
    for _ in range(repeats):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return min(times), result


def naive_scan(root: Path, keep: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    found = []
    for path in root.glob("projects/*/experiments/*/runs/run-*/run.json"):
        record = json.loads(path.read_bytes())
        if keep(record):
            found.append(record)
    return found


def report(label: str, seconds: float, reference: float, target_ms: float | None) -> None:
    ms, ref_ms = seconds * 1000, reference * 1000
    verdict = ""
    if target_ms is not None:
        verdict = f"({'meets' if ms <= target_ms else 'MISSES'} target {target_ms:g} ms)"
    print(
        f"{label:<44} {ms:9.2f} ms   reference {ref_ms:9.2f} ms   "
        f"ratio {ms / ref_ms:7.3f}x   {verdict}"
    )


def measure(root: Path, count: int) -> None:
    ws = Workspace.load(root)
    ws.runs(limit=1)  # open the index (and catch up) before timing
    runs_dir = root / "projects" / PROJECT / "experiments" / EXPERIMENT / "runs"

    first = ws.runs(limit=PAGE)
    paths = [row.run_dir / "run.json" for row in first]
    read_page, _ = best_of(5, lambda: [json.loads(path.read_bytes()) for path in paths])
    page_all, _ = best_of(5, lambda: ws.runs(limit=PAGE))
    page_exp, _ = best_of(5, lambda: ws.runs(project=PROJECT, experiment=EXPERIMENT, limit=PAGE))
    newest, _ = best_of(
        5,
        lambda: ws.runs(project=PROJECT, experiment=EXPERIMENT, order_by="-created_at", limit=PAGE),
    )
    middle, _ = best_of(
        5, lambda: ws.runs(project=PROJECT, experiment=EXPERIMENT, limit=PAGE, offset=count // 2)
    )
    print(f"reference for pages: reading and parsing the page's {PAGE} run.json files")
    report(f"first page of {PAGE}, whole workspace", page_all, read_page, TARGET_PAGE_MS)
    report(f"first page of {PAGE}, the experiment", page_exp, read_page, TARGET_PAGE_MS)
    report(f"newest {PAGE} (order_by=-created_at)", newest, read_page, None)
    report(f"page at offset {count // 2:,}", middle, read_page, None)

    def scandir_count() -> int:
        with os.scandir(runs_dir) as entries:
            return sum(1 for entry in entries if entry.name.startswith("run-"))

    listed, on_disk = best_of(5, scandir_count)
    count_all, total = best_of(5, lambda: ws.count_runs())
    count_exp, _ = best_of(5, lambda: ws.count_runs(project=PROJECT, experiment=EXPERIMENT))
    assert total == on_disk == count, (total, on_disk, count)
    print("reference for counts: counting the run directories with os.scandir")
    report("count, whole workspace", count_all, listed, TARGET_COUNT_MS)
    report("count, the experiment", count_exp, listed, TARGET_COUNT_MS)

    scan, records = best_of(1, lambda: naive_scan(root, lambda record: True))
    assert len(records) == count
    lr, batch, depth = LEARNING_RATES[3], BATCHES[2], 3
    wanted = {"lr": lr, "batch": batch, "depth": depth}
    query = f"lr == {lr} and batch == {batch} and depth == {depth}"
    query_time, matched = best_of(5, lambda: ws.runs(query))
    expected = sum(1 for index in range(count) if parameters(index) == wanted)
    assert len(matched) == expected, (len(matched), expected)
    query_page, _ = best_of(5, lambda: ws.runs(query, limit=PAGE))
    query_count, _ = best_of(5, lambda: ws.count_runs(query))
    list_time, listed_rows = best_of(3, lambda: ws.runs())
    assert len(listed_rows) == count
    share = len(matched) / count
    print(f"reference for queries and the list: scanning all {count:,} run.json files")
    report(f"query, {len(matched)} hits ({share:.2%})", query_time, scan, TARGET_QUERY_MS)
    report(f"the same query, first page of {PAGE}", query_page, scan, None)
    report("the same query, count", query_count, scan, None)
    report(f"full list of {count:,}", list_time, scan, TARGET_LIST_MS)


def changed_page_load(root: Path, url: str, repeat: int) -> float:
    """Median first load of ``url`` (until a run row shows), each just after a run's record
    changed: nothing the server cached about the index can be reused."""
    import statistics

    from playwright.sync_api import sync_playwright

    run = Workspace.load(root).runs(limit=1)[0]
    record = Workspace.load(root).find_run(run.id)
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--no-first-run"],
        )
        for number in range(repeat):
            record.set_workflow({"workflow_id": f"bench-scale-{number}-{time.time()}"})
            context = browser.new_context()
            page = context.new_page()
            started = time.perf_counter()
            page.goto(url)
            page.get_by_test_id("run-row").first.wait_for(timeout=60_000)
            samples.append(time.perf_counter() - started)
            context.close()
        browser.close()
    return statistics.median(samples)


def first_check_pending(base: str) -> bool:
    """Whether the server's first full check of the records (the broken list) still runs."""
    with urllib.request.urlopen(base + "api/v1/workspace", timeout=60) as response:
        return bool(json.loads(response.read()).get("broken_pending", False))


def browser(root: Path) -> None:
    """The experiment page's first load in headless Chromium vs the app shell alone."""
    spec = importlib.util.spec_from_file_location(
        "bench_server", Path(__file__).resolve().parent / "bench_server.py"
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(helpers)  # its first-load timing, port and start-up helpers
    if not helpers.CHROMIUM.exists():
        print("browser first load: skipped (needs /usr/bin/chromium)")
        return
    port = helpers.free_port()
    base = f"http://127.0.0.1:{port}/"
    code = f"from molexp.server import serve; serve({str(root)!r}, port={port})"
    launched = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL)
    experiment_page = base + f"#/p/{PROJECT}/e/{EXPERIMENT}"
    try:
        helpers.wait_until_up(base, process)
        up = time.perf_counter()
        checked: list[float] = []

        def watch() -> None:  # when the server's first full check of the records ends
            while first_check_pending(base):
                time.sleep(0.1)
            checked.append(time.perf_counter())

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        shell = helpers.browser_first_load(base + "#/bench-shell", "home-link", repeat=5)
        # The first full check (the broken list) may still run in the background: these
        # loads are served meanwhile.
        early = helpers.browser_first_load(experiment_page, "run-row", repeat=5)
        early_end = time.perf_counter()
        watcher.join()
        print(
            f"server started: first answer after {up - launched:.1f} s, its first full check of"
            f" the records over after {checked[0] - launched:.1f} s; the loads marked (*) ran"
            f" {up - launched:.1f}-{early_end - launched:.1f} s after the start"
        )
        page = helpers.browser_first_load(experiment_page, "run-row", repeat=5)
        changed = changed_page_load(root, experiment_page, repeat=5)
        print(f"reference: loading the app shell alone = {shell * 1000:.0f} ms")
        for label, seconds in (
            ("(*) experiment page, first loads after start", early),
            ("experiment page first load (index unchanged)", page),
            ("the same, just after a run's record changed", changed),
        ):
            verdict = "meets" if seconds < TARGET_PAGE_LOAD_S else "MISSES"
            print(
                f"{label:<46} {seconds * 1000:9.0f} ms   "
                f"ratio {seconds / shell:6.2f}x the app shell   ({verdict} target < 1 s)"
            )
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--browser", action="store_true", help="also time the UI's first load")
    parser.add_argument("--rebuild", action="store_true", help="make the workspace again")
    args = parser.parse_args()
    cache = Path(tempfile.gettempdir()) / f"bench-scale-{args.runs}"
    os.environ.setdefault("MOLEXP_INDEX_DIR", str(cache / "index"))
    root = cache / "lab"
    if args.rebuild or not (cache / "done").is_file():
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir(parents=True)
        took = build(root, args.runs)
        (cache / "done").write_text(str(args.runs))
        print(f"built {args.runs:,} runs and the index in {took:.1f} s (kept in {cache})")
    print(f"P4 at scale: {args.runs:,} runs in one experiment, per-host index caught up")
    measure(root, args.runs)
    if args.browser:
        browser(root)


if __name__ == "__main__":
    main()
