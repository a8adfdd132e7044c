"""The web UI in a real browser against a real `serve()` process.

Drives Debian's Chromium (/usr/bin/chromium) with Playwright: open the experiment page of an
experiment with 1,000 runs (its first load is timed), filter and sort the runs table, open a
run, watch a log line appended while the page is open arrive over SSE, open the sweep plot and
the compare view; runs that differ only by profile or ``--set`` (profile and config columns,
config filters, compare rows), a run whose owner died (stale badge and reason), a run executed
twice after a code change (any attempt's results, artifacts and logs, what changed), and the
metric series of a run drawn as line charts (one line per attempt); the project page of a sweep
made of one experiment per grid point (table, plot against any parameter coloured by profile or a
parameter, parallel coordinates), the compare view's metric overlays, code, environment and
distribution rows and code diffs, and each attempt's environment on the run page.
Screenshots go to $MOLEXP_UI_SCREENSHOTS or a pytest temp directory.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from molexp.assets import LogHandle
from molexp.workspace import OwnerInfo, ProfileConfig, Run, RunStatus, Workspace
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
RUN_COUNT = 1000
FIRST_LOAD_BUDGET_SECONDS = 3.0  # the target is 1 s; the budget leaves room for a loaded CI host

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)


@dataclass
class Served:
    url: str
    root: Path
    live: Run
    live_log: LogHandle
    shots: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lr_of(index: int) -> float:
    return round(1e-4 * (1 + index % 50), 6)


def depth_of(index: int) -> int:
    return 2 + index % 4


def loss_of(index: int) -> float:
    return round(1.0 / (1 + index % 50) + 0.01 * (index % 4), 6)


FILTER = "lr <= 0.0002 and depth == 2"
FILTERED = sum(1 for i in range(RUN_COUNT) if lr_of(i) <= 0.0002 and depth_of(i) == 2)


def _fill(root: Path) -> Workspace:
    ws = Workspace(root, name="UI Lab")
    project = ws.Project("qm9")
    sweep = project.Experiment("sweep", params={"batch": 32})
    for index in range(RUN_COUNT):
        run = sweep.Run(
            parameters={"lr": lr_of(index), "depth": depth_of(index)},
            id=f"r{index:04d}",
        )
        with run.start() as ctx:
            ctx.set_result("loss", loss_of(index))
            if index < 2:
                ctx.artifact.save("metrics.json", {"loss": 1.0, "note": f"run {index}"})
                ctx.log("train").append(f"finished run {index}")
                started = datetime.now(UTC)
                ctx.record_execution_state(
                    {
                        "tasks": {
                            "train": {
                                "status": "succeeded",
                                "started_at": started.isoformat(),
                                "finished_at": (started + timedelta(seconds=0.2)).isoformat(),
                            }
                        }
                    }
                )
    _fill_profiles(ws)
    _fill_attempts(ws)
    _fill_cache_notes(ws)
    _fill_metrics(ws)
    _fill_project_grid(ws)
    _fill_code_pair(ws)
    return ws


GRID = [(lr, depth) for lr in (0.1, 0.2, 0.4) for depth in (2, 4)]


def _fill_project_grid(ws: Workspace) -> None:
    """The documented sweep pattern: one experiment per grid point, two profiles, a metric."""
    project = ws.Project("grid")
    for index, (lr, depth) in enumerate(GRID):
        width = (32, 64, 128)[index % 3]
        experiment = project.Experiment(f"lr{lr}-d{depth}", params={"lr": lr, "depth": depth})
        name, steps = ("fast", 10) if index % 2 == 0 else ("accurate", 100)
        profile = ProfileConfig(name=name, config={"steps": steps})
        run = experiment.Run(parameters={"width": width}, id=f"g{index}")
        with run.start(profile_config=profile) as ctx:
            ctx.set_result("loss", round(lr * depth / width * 100, 6))
            for step in range(20):
                ctx.log_metric("energy", -10.0 * depth + lr * step, step=step)


SOURCE = "def fit(volumes, energies):\n    return {eos}(volumes, energies)\n"


def _fill_code_pair(ws: Workspace) -> None:
    """Two runs of one experiment whose task code, numpy version, result and metric differ."""
    experiment = ws.Project("md").Experiment("code")
    for run_id, eos, numpy, b0 in (
        ("c1", "murnaghan", "2.0.0", 140.1),
        ("c2", "birch", "2.1.0", 138.7),
    ):
        with experiment.Run(id=run_id, parameters={"eos": eos}).start() as ctx:
            ctx.set_result("b0", b0)
            for step in range(50):
                ctx.log_metric(
                    "energy", b0 / 100 - step / (10 if eos == "birch" else 20), step=step
                )
            code_hash = f"{eos[:4]}" * 8
            ctx.record_execution_state(
                {
                    "tasks": {"fit": {"status": "succeeded", "code_hash": code_hash}},
                    "sources": {code_hash: SOURCE.format(eos=eos)},
                    "distributions": {"numpy": numpy, "ase": "3.23.0"},
                }
            )


METRIC_POINTS = 1_000_000 - 100  # with the second attempt's 100: a 1,000,000-point series
# The target for drawing it is < 1 s (benchmarks/bench_metrics.py measures it). The test
# asserts a generous bound for the run page opened again once the server has read the series (its
# decoded file cached): a loaded 2-core CI host shares its cores with the browser and the server.
# The first, cold load decodes 30 MB of text and is checked for correctness only.
METRIC_PAGE_BUDGET_SECONDS = 3.0


def _fill_metrics(ws: Workspace) -> None:
    """A run of two attempts logging an energy series (the first a long one) and a temperature."""
    run = ws.Project("md").Experiment("nve").Run(id="energy")
    with run.start() as ctx:
        for step in range(METRIC_POINTS):
            ctx.log_metric("energy", -100.0 + 50.0 / (1 + step / 1000) + (step % 7) * 0.01)
    with run.start() as ctx:
        for step in range(100):
            ctx.log_metrics({"energy": -99.0 - step / 100, "temperature": 300.0 - step}, step=step)


def _fill_cache_notes(ws: Workspace) -> None:
    """A run whose cache=True tasks hit and missed, as the workflow runtime records them."""
    with ws.Project("eos").Experiment("scan").Run(id="edited").start() as ctx:
        ctx.record_execution_state(
            {
                "tasks": {
                    "relax": {"status": "cached", "duration": 0.0, "cache": "hit"},
                    "strain_scan": {
                        "status": "succeeded",
                        "duration": 1.5,
                        "cache": "miss: code: helpers.emt_energy changed",
                    },
                }
            }
        )


def _fill_attempts(ws: Workspace) -> None:
    """A run executed twice, the fit changed in between (as `molexp run --force` after an edit)."""
    run = ws.Project("eos").Experiment("fit").Run(id="murnaghan")
    for eos, b0 in (("murnaghan", 140.1), ("birch", 138.7)):
        with run.start() as ctx:
            ctx.set_result("eos", eos)
            ctx.set_result("b0", b0)
            ctx.artifact.save("fit.json", {"eos": eos, "b0": b0})
            if eos == "murnaghan":
                ctx.set_result("n_strains", 5)
                ctx.artifact.save("strains.json", [0.98, 0.99, 1.0, 1.01, 1.02])
            ctx.log("fit").append(f"fitted {eos}: B0 = {b0} GPa")


DEAD_PID = 2**22 + 4321


def _fill_profiles(ws: Workspace) -> None:
    """Runs of one experiment that differ only by profile or ``--set``, and a stale run."""
    exp = ws.Project("eos").Experiment("cu", params={"element": "Cu"})
    fast = {"n_strains": 5, "model": {"depth": 1}}
    for run_id, profile in (
        ("fast", ProfileConfig(name="fast", config=fast)),
        (
            "fast7",
            ProfileConfig(name="fast", config={**fast, "n_strains": 7}, overrides={"n_strains": 7}),
        ),
        ("accurate", ProfileConfig(name="accurate", config={"n_strains": 9})),
    ):
        with exp.Run(id=run_id).start(profile_config=profile) as ctx:
            ctx.set_result("e0", -3.5 - profile.config["n_strains"] / 100)
    killed = exp.Run(id="killed")  # as a SIGKILLed `molexp run` leaves it: running, owner gone
    now = datetime.now(UTC)
    killed.metadata.status = RunStatus.running
    killed.metadata.started_at = now
    killed.metadata.owner = OwnerInfo(
        host=socket.gethostname(), pid=DEAD_PID, started_at=now, heartbeat_at=now
    )
    killed.save()


def _wait_until_up(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"serve() exited early:\n{process.stdout.read() if process.stdout else ''}"
            )
        try:
            with urllib.request.urlopen(url + "api/v1/workspace", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"server at {url} did not answer within {timeout} s")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("ui") / "lab"
    ws = _fill(root)
    live = ws.project("qm9").experiment("sweep").Run(parameters={"lr": 0.5, "depth": 9}, id="live")
    shots = Path(os.environ.get("MOLEXP_UI_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    code = f"from molexp.server import serve; serve({str(root)!r}, port={port})"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, process)
        with live.start() as ctx:
            log = ctx.log("train")
            log.append("step 1: warming up")
            log.flush()
            yield Served(url=url, root=root, live=live, live_log=log, shots=shots)
    finally:
        process.terminate()
        process.wait(timeout=10)
    print(f"\nscreenshots: {shots}")


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_experiment_page_first_load_filter_sort_and_open_a_run(page: Page, served: Served) -> None:
    started = time.perf_counter()
    page.goto(served.url + "#/p/qm9/e/sweep")
    page.get_by_test_id("run-row").first.wait_for()
    first_load = time.perf_counter() - started
    total = page.get_by_test_id("run-total")
    expect(total).to_have_text(f"{RUN_COUNT + 1} runs")
    assert page.get_by_test_id("run-row").count() == 100
    page.screenshot(path=str(served.shots / "1-experiment.png"), full_page=False)
    (served.shots / "first-load.json").write_text(json.dumps({"seconds": first_load}))
    print(f"\nexperiment page with {RUN_COUNT} runs: first load {first_load * 1000:.0f} ms")
    assert first_load < FIRST_LOAD_BUDGET_SECONDS

    page.get_by_test_id("filter-input").fill(FILTER)
    page.get_by_test_id("filter-input").press("Enter")
    expect(total).to_have_text(f"{FILTERED} runs")
    page.get_by_test_id("col-results.loss").click()
    expect(page.get_by_test_id("col-results.loss")).to_contain_text("▲")
    losses = [
        float(text)
        for text in page.locator("tr[data-testid=run-row] td:last-child").all_inner_texts()
    ]
    assert losses == sorted(losses)
    page.get_by_test_id("status-chip-running").click()
    expect(total).to_have_text("0 runs")
    page.get_by_test_id("status-chip-running").click()
    expect(total).to_have_text(f"{FILTERED} runs")

    bad = page.get_by_test_id("filter-input")
    bad.fill("lr <")
    bad.press("Enter")
    expect(page.get_by_test_id("error")).to_contain_text("column")
    page.screenshot(path=str(served.shots / "2-filter-error.png"))
    bad.fill(FILTER)
    bad.press("Enter")
    expect(total).to_have_text(f"{FILTERED} runs")
    page.screenshot(path=str(served.shots / "3-filtered.png"))

    page.get_by_test_id("run-link").filter(has_text="r0000").click()
    expect(page.get_by_test_id("run-page")).to_be_visible()
    expect(page.get_by_test_id("run-results")).to_contain_text("loss")
    page.get_by_test_id("artifact-metrics.json").click()
    expect(page.get_by_test_id("artifact-preview")).to_contain_text('"note": "run 0"')
    expect(page.get_by_test_id("log-text")).to_contain_text("finished run 0")
    expect(page.get_by_test_id("tasks")).to_contain_text("train")
    expect(page.locator("[data-testid=timeline-chart] canvas")).to_be_visible()
    page.screenshot(path=str(served.shots / "4-run.png"), full_page=True)


def test_live_log_line_arrives_over_sse(page: Page, served: Served) -> None:
    page.goto(served.url + "#/runs/live?p=qm9&e=sweep")
    log_text = page.get_by_test_id("log-text")
    expect(log_text).to_contain_text("step 1: warming up")
    expect(page.get_by_test_id("log-live")).to_have_text("● live")
    served.live_log.append("step 2: appended while the page is open")
    expect(log_text).to_contain_text("step 2: appended while the page is open", timeout=10_000)
    expect(page.get_by_test_id("cancel-run")).to_be_visible()
    page.screenshot(path=str(served.shots / "5-live-log.png"), full_page=True)


def test_sweep_plot_and_compare(page: Page, served: Served) -> None:
    page.goto(served.url + "#/p/qm9/e/sweep")
    page.get_by_test_id("run-row").first.wait_for()
    page.get_by_test_id("sweep-link").click()
    expect(page.get_by_test_id("sweep-count")).to_have_text(
        f"{RUN_COUNT} of {RUN_COUNT + 1} runs plotted"
    )
    expect(page.locator("[data-testid=sweep-chart] canvas")).to_be_visible()
    # The default x axis is a parameter that varies (batch is the same in every run).
    expect(page.get_by_test_id("sweep-x")).to_have_value("depth")
    page.get_by_test_id("sweep-x").select_option("lr")
    page.get_by_test_id("sweep-group").select_option("depth")
    expect(page.get_by_test_id("sweep-group")).to_have_value("depth")
    page.wait_for_timeout(300)
    page.screenshot(path=str(served.shots / "6-sweep.png"), full_page=True)

    page.goto(served.url + "#/p/qm9/e/sweep?sort=id")
    page.get_by_test_id("select-r0000").check()
    page.get_by_test_id("select-r0001").check()
    page.get_by_test_id("compare-button").click()
    table = page.get_by_test_id("compare-table")
    expect(table).to_contain_text("r0000")
    expect(table).to_contain_text("r0001")
    expect(page.locator("tr.differs").first).to_be_visible()
    expect(page.locator("[data-testid=compare-chart] canvas")).to_be_visible()
    page.screenshot(path=str(served.shots / "7-compare.png"), full_page=True)


def test_overview_lists_projects_and_recent_runs(page: Page, served: Served) -> None:
    page.goto(served.url)
    expect(page.get_by_test_id("workspace-name")).to_have_text("UI Lab")
    expect(page.get_by_test_id("experiment-link-sweep")).to_be_visible()
    expect(page.get_by_test_id("count-running").first).to_have_text("running 2")
    expect(page.get_by_test_id("stale-count-cu")).to_have_text("stale 1")
    recent = page.get_by_test_id("recent-runs")
    expect(recent.get_by_test_id("stale-badge")).to_have_count(1)
    page.screenshot(path=str(served.shots / "0-overview.png"), full_page=True)


def test_profiles_config_and_stale_runs_are_visible(page: Page, served: Served) -> None:
    """Runs differing only by profile or --set are told apart; a dead owner shows as stale."""
    page.goto(served.url + "#/p/eos/e/cu?sort=id")
    total = page.get_by_test_id("run-total")
    expect(total).to_have_text("4 runs")
    profiles = page.get_by_test_id("run-profile")
    expect(profiles).to_have_text(["accurate", "fast", "fast + n_strains=7", ""])
    expect(page.get_by_test_id("col-config.n_strains")).to_be_visible()
    expect(page.get_by_test_id("col-config.model.depth")).to_be_visible()
    expect(page.get_by_test_id("column-groups")).to_contain_text("config")
    stale = page.get_by_test_id("stale-badge")
    expect(stale).to_have_count(1)
    expect(stale).to_have_attribute(
        "title",
        f"stale: owner process {DEAD_PID} on host {socket.gethostname()} is no longer alive",
    )
    expect(page.get_by_test_id("stale-note")).to_contain_text("stale 1")
    page.screenshot(path=str(served.shots / "8-profiles-and-stale.png"), full_page=True)

    page.get_by_test_id("filter-input").fill("config.n_strains == 7")
    page.get_by_test_id("filter-input").press("Enter")
    expect(total).to_have_text("1 runs")
    expect(profiles).to_have_text(["fast + n_strains=7"])
    page.get_by_test_id("filter-input").fill("profile == 'fast'")
    page.get_by_test_id("filter-input").press("Enter")
    expect(total).to_have_text("2 runs")

    page.get_by_test_id("select-fast").check()
    page.get_by_test_id("select-fast7").check()
    page.get_by_test_id("compare-button").click()
    profile_row = page.get_by_test_id("compare-row-profile-profile")
    expect(profile_row).to_contain_text("fast + n_strains=7")
    expect(profile_row).to_have_class("differs")
    strains = page.get_by_test_id("compare-row-config-n_strains")
    expect(strains).to_contain_text("5")
    expect(strains).to_contain_text("7")
    expect(strains).to_have_class("differs")
    expect(page.get_by_test_id("compare-row-config-model.depth")).not_to_have_class("differs")
    page.screenshot(path=str(served.shots / "9-compare-profiles.png"), full_page=True)

    page.goto(served.url + "#/runs/killed?p=eos&e=cu")
    expect(page.get_by_test_id("run-stale")).to_contain_text(
        f"owner process {DEAD_PID} on host {socket.gethostname()} is no longer alive"
    )
    expect(page.get_by_test_id("run-page").get_by_test_id("stale-badge")).to_be_visible()
    page.screenshot(path=str(served.shots / "10-stale-run.png"), full_page=True)
    page.goto(served.url + "#/runs/fast7?p=eos&e=cu")
    expect(page.get_by_test_id("run-profile-label")).to_have_text("fast + n_strains=7")
    expect(page.get_by_test_id("run-stale")).to_have_count(0)


def test_any_attempt_of_a_run_its_files_and_what_changed(page: Page, served: Served) -> None:
    """The latest attempt is shown by default; picking attempt 1 shows its results, its
    artifact bytes and its log, kept although attempt 2 saved the same names."""
    page.goto(served.url + "#/runs/murnaghan?p=eos&e=fit")
    expect(page.get_by_test_id("run-results")).to_contain_text("birch")
    expect(page.get_by_test_id("attempt-row-2")).to_contain_text("2 results, 1 artifact changed")
    detail = page.get_by_test_id("attempt-detail")
    expect(detail).to_contain_text("Attempt 2 of 2 (latest)")
    eos = page.get_by_test_id("change-result-eos")
    expect(eos).to_contain_text("murnaghan")
    expect(eos).to_contain_text("birch")
    expect(page.get_by_test_id("change-artifact-fit.json")).to_contain_text("changed")
    expect(page.get_by_test_id("attempt-results")).to_contain_text("(earlier attempt)")
    expect(page.get_by_test_id("log-text")).to_have_text("fitted birch: B0 = 138.7 GPa\n")
    expect(page.get_by_test_id("artifact-attempt-strains.json")).to_have_text("1")
    page.screenshot(path=str(served.shots / "11-attempt-latest.png"), full_page=True)

    page.get_by_test_id("attempt-select-1").click()
    expect(detail).to_contain_text("Attempt 1 of 2")
    expect(detail).to_contain_text("First attempt")
    expect(page.get_by_test_id("attempt-row-1")).to_have_class("selected")
    expect(page.get_by_test_id("attempt-results")).to_contain_text("murnaghan")
    expect(page.get_by_test_id("log-text")).to_have_text("fitted murnaghan: B0 = 140.1 GPa\n")
    expect(page.get_by_test_id("artifact-attempt-fit.json")).to_have_text("1")
    page.get_by_test_id("artifact-fit.json").click()
    expect(page.get_by_test_id("artifact-preview")).to_contain_text('"eos": "murnaghan"')
    page.screenshot(path=str(served.shots / "12-attempt-1.png"), full_page=True)

    page.get_by_test_id("attempt-latest").click()
    expect(detail).to_contain_text("(latest)")
    expect(page.get_by_test_id("log-text")).to_contain_text("fitted birch")


def test_the_run_page_draws_each_metric_series(page: Page, served: Served) -> None:
    """One chart per metric, the 1,000,000-point series downsampled by the server (LTTB)."""
    started = time.perf_counter()
    page.goto(served.url + "#/runs/energy?p=md&e=nve")
    energy = page.get_by_test_id("metric-energy")
    expect(energy).to_contain_text(f"{METRIC_POINTS + 100:,} points (1,500 drawn)", timeout=30_000)
    expect(energy.locator("canvas")).to_be_visible()
    cold = time.perf_counter() - started
    page.goto(served.url + "#/runs/edited?p=eos&e=scan")
    expect(page.get_by_test_id("task-cache")).to_have_count(2)
    started = time.perf_counter()
    page.goto(served.url + "#/runs/energy?p=md&e=nve")
    expect(energy).to_contain_text(f"{METRIC_POINTS + 100:,} points (1,500 drawn)")
    expect(energy.locator("canvas")).to_be_visible()
    elapsed = time.perf_counter() - started
    print(f"\n1,000,000-point series drawn {cold:.2f} s (cold), {elapsed:.2f} s (cached)")
    assert elapsed < METRIC_PAGE_BUDGET_SECONDS
    temperature = page.get_by_test_id("metric-temperature")
    expect(temperature).to_contain_text("last 201 · min 201 · max 300 · 100 points")
    page.get_by_test_id("run-metrics").screenshot(path=str(served.shots / "14-metrics.png"))
    page.goto(served.url + "#/runs/edited?p=eos&e=scan")  # no metrics: no section
    expect(page.get_by_test_id("task-cache")).to_have_count(2)
    page.wait_for_load_state("networkidle")
    expect(page.get_by_test_id("run-metrics")).to_have_count(0)


def test_the_run_page_says_how_the_cache_answered_each_task(page: Page, served: Served) -> None:
    page.goto(served.url + "#/runs/edited?p=eos&e=scan")
    cells = page.get_by_test_id("task-cache")
    expect(cells).to_have_count(2)
    expect(cells.nth(0)).to_have_text("hit")
    expect(cells.nth(1)).to_have_text("miss: code: helpers.emt_energy changed")
    page.screenshot(path=str(served.shots / "13-cache-notes.png"), full_page=True)


def test_the_project_page_plots_every_run_of_every_experiment(page: Page, served: Served) -> None:
    """One run per experiment (a grid point each): the project page gathers them all."""
    page.goto(served.url)
    page.get_by_test_id("project-link-grid").click()
    expect(page.get_by_test_id("project-page")).to_be_visible()
    expect(page.get_by_test_id("project-total")).to_have_text(
        f"{len(GRID)} runs in {len(GRID)} experiments"
    )
    expect(page.get_by_test_id("project-row")).to_have_count(len(GRID))
    for column in ("params.lr", "params.width", "config.steps", "results.loss", "metrics.energy"):
        expect(page.get_by_test_id(f"project-col-{column}")).to_be_visible()
    table = page.get_by_test_id("project-table")
    expect(table).to_contain_text("fast")
    expect(table).to_contain_text("accurate")
    # two profiles: coloured by profile by default, every run plotted
    expect(page.get_by_test_id("project-color")).to_have_value("profile")
    count = page.get_by_test_id("project-plot-count")
    expect(count).to_have_text(f"{len(GRID)} of {len(GRID)} runs plotted in 2 groups")
    expect(page.locator("[data-testid=project-chart] canvas")).to_be_visible()
    page.get_by_test_id("project-x").select_option("params.lr")
    page.get_by_test_id("project-y").select_option("metrics.energy")
    page.get_by_test_id("project-color").select_option("params.width")
    expect(count).to_have_text(f"{len(GRID)} of {len(GRID)} runs plotted in 3 groups")
    coords = page.get_by_test_id("parallel-coords")
    expect(coords).to_have_attribute("data-lines", str(len(GRID)))
    expect(coords.locator("polyline.pc-line")).to_have_count(len(GRID))
    for axis in ("params.lr", "params.depth", "params.width", "metrics.energy"):
        expect(page.get_by_test_id(f"pc-axis-{axis}")).to_be_visible()
    page.wait_for_timeout(200)
    page.screenshot(path=str(served.shots / "15-project.png"), full_page=True)
    for dim in ("params.depth", "params.width", "config.steps"):
        page.get_by_test_id(f"pc-dim-{dim}").uncheck()
    expect(page.get_by_test_id("pc-too-few")).to_be_visible()
    page.get_by_test_id("pc-dim-params.width").check()
    expect(page.get_by_test_id("parallel-coords")).to_be_visible()
    page.get_by_test_id("project-select-g0").check()
    page.get_by_test_id("project-select-g5").check()
    page.get_by_test_id("project-compare").click()
    table = page.get_by_test_id("compare-table")
    expect(page.get_by_test_id("compare-run-experiment")).to_have_text(
        ["grid/lr0.1-d2", "grid/lr0.4-d4"]
    )
    for row in ("param-lr", "param-depth", "param-width", "profile-profile", "result-loss"):
        expect(page.get_by_test_id(f"compare-row-{row}")).to_have_class("differs")
    expect(table).to_contain_text("accurate")
    expect(page.get_by_test_id("compare-metric-energy")).to_have_attribute("data-runs", "2")
    page.wait_for_timeout(200)
    page.screenshot(path=str(served.shots / "18-compare-across-experiments.png"), full_page=True)
    page.locator("a", has_text="g5").first.click()
    expect(page.get_by_test_id("run-page")).to_contain_text("run g5")


def test_the_project_page_of_a_thousand_runs(page: Page, served: Served) -> None:
    started = time.perf_counter()
    page.goto(served.url + "#/p/qm9")
    expect(page.get_by_test_id("project-total")).to_have_text(
        f"{RUN_COUNT + 1} runs in 1 experiment"
    )
    expect(page.get_by_test_id("project-plot-count")).to_contain_text(
        f"{RUN_COUNT} of {RUN_COUNT + 1} runs plotted"
    )
    expect(page.get_by_test_id("parallel-coords")).to_have_attribute("data-lines", str(RUN_COUNT))
    elapsed = time.perf_counter() - started
    expect(page.get_by_test_id("project-row")).to_have_count(500)  # the plots show every run
    print(f"\nproject page with {RUN_COUNT} runs: {elapsed * 1000:.0f} ms")
    page.screenshot(path=str(served.shots / "19-project-1000-runs.png"))
    assert elapsed < FIRST_LOAD_BUDGET_SECONDS * 2


def test_compare_overlays_metrics_and_shows_code_and_environment(
    page: Page, served: Served
) -> None:
    page.goto(served.url + "#/p/md/e/code/compare?runs=c1,c2")
    expect(page.get_by_test_id("compare-table")).to_contain_text("c2")
    code = page.get_by_test_id("compare-row-code-fit")
    expect(code).to_have_class("differs")
    numpy = page.get_by_test_id("compare-row-distributions-numpy")
    expect(numpy).to_contain_text("2.0.0")
    expect(numpy).to_contain_text("2.1.0")
    expect(numpy).to_have_class("differs")
    expect(page.get_by_test_id("compare-row-distributions-ase")).not_to_have_class("differs")
    expect(page.get_by_test_id("compare-row-environment-platform")).to_be_visible()
    expect(page.get_by_test_id("compare-row-python-python_version")).to_be_visible()
    diff = page.get_by_test_id("code-diff-fit-c2")
    expect(diff).to_contain_text("-    return murnaghan(volumes, energies)")
    expect(diff).to_contain_text("+    return birch(volumes, energies)")
    overlay = page.get_by_test_id("compare-metric-energy")
    expect(overlay).to_have_attribute("data-runs", "2")
    expect(overlay.locator("canvas")).to_be_visible()
    # no forced zero on the bar axis: 140.1 and 138.7 stay apart
    bars = page.get_by_test_id("compare-chart")
    expect(bars.locator("canvas")).to_be_visible()
    assert float(bars.get_attribute("data-y-min") or "0") > 100
    page.wait_for_timeout(200)
    page.screenshot(path=str(served.shots / "16-compare-code-metrics.png"), full_page=True)
    page.get_by_test_id("only-differing").check()
    expect(page.get_by_test_id("compare-row-distributions-ase")).to_have_count(0)
    expect(numpy).to_be_visible()


def test_the_run_page_shows_each_attempts_environment(page: Page, served: Served) -> None:
    page.goto(served.url + "#/runs/c2?p=md&e=code")
    environment = page.get_by_test_id("attempt-environment")
    expect(environment).to_be_visible()
    machine = page.get_by_test_id("env-machine")
    expect(machine).to_contain_text(platform.platform())
    expect(machine).to_contain_text(f"{sys.version_info.major}.{sys.version_info.minor}")
    expect(machine).to_contain_text("cpus")
    distributions = page.get_by_test_id("env-distributions")
    expect(distributions).to_contain_text("numpy")
    expect(distributions).to_contain_text("2.1.0")
    environment.screenshot(path=str(served.shots / "17-environment.png"))


def test_a_pending_first_check_of_the_records_is_said(page: Page, served: Served) -> None:
    # The server's first check of every record ends within moments on this small workspace:
    # its answers are rewritten as a large workspace's are while that check runs.
    def still_checking(route: Route) -> None:
        answer = route.fetch()
        body = answer.json()
        assert body["broken_pending"] is False  # the real answer, once the check has ended
        route.fulfill(response=answer, json={**body, "broken_pending": True})

    page.goto(served.url + "#/p/qm9/e/sweep")
    expect(page.get_by_test_id("runs-table")).to_be_visible()
    expect(page.get_by_test_id("broken-pending")).to_have_count(0)

    page.route("**/api/v1/workspace", still_checking)
    page.route("**/api/v1/projects/qm9/experiments/sweep/runs?*", still_checking)
    page.goto(served.url)
    expect(page.get_by_test_id("broken-pending")).to_be_visible()
    page.goto(served.url + "#/p/qm9/e/sweep")
    page.reload()
    expect(page.get_by_test_id("runs-table")).to_be_visible()
    expect(page.get_by_test_id("broken-pending")).to_contain_text("first check")
    page.screenshot(path=str(served.shots / "9-broken-check-pending.png"))
