"""The broken-record list follows the change feed: after one full scan a check re-reads only the
records the feed names; what the feed cannot tell (hand damage or repair) is caught by the
periodic full scans in the background; the first full scan of a large workspace never holds up
a check. See ``molexp.server._broken``.

None of these tests is timed: each checks what was read and who waits for what.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from molexp.assets.storage import changing
from molexp.server import _broken, create_app
from molexp.server._broken import BrokenFile, BrokenRecordScanner
from molexp.workspace import Workspace
from molexp.workspace.layout import RUN_CHANGE
from server_helpers import Lab, make_client

pytestmark = pytest.mark.filterwarnings("ignore::molexp.workspace.BrokenRecordWarning")

GENEROUS = 30.0  # seconds: a deadlock shows as a timeout, a loaded machine never gets near it
HOUR = 3600.0


def _large(lab: Lab, **options: Any) -> BrokenRecordScanner:
    """A scanner that treats the lab as a large workspace (it follows the feed between full
    scans), with no periodic full scan during the test unless ``rescan_seconds`` says so."""
    options.setdefault("rescan_seconds", HOUR)
    options.setdefault("first_wait", GENEROUS)
    scanner = BrokenRecordScanner(lab.root, lab.ws.id, small_records=0, **options)
    scanner.start()
    return scanner


def _relative(lab: Lab, path: Path) -> str:
    return path.relative_to(lab.root).as_posix()


def _paths(lab: Lab, found: list[BrokenFile]) -> list[str]:
    return [_relative(lab, item.path) for item in found]


def _run_file(lab: Lab, index: int = 0) -> Path:
    return lab.succeeded[index].run_dir / "run.json"


def _experiment_file(lab: Lab, experiment: str = "baseline") -> Path:
    return lab.ws.project("qm9").experiment(experiment).experiment_dir / "experiment.json"


def _replace(path: Path, data: bytes) -> None:
    """Replace ``path`` the way MolExp writes records: a new file renamed over it."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _newer_version(path: Path) -> bytes:
    record = json.loads(path.read_text())
    record["version"] = 99
    return json.dumps(record).encode()


def _write_announced(lab: Lab, path: Path, data: bytes) -> None:
    """A record write another process (a newer MolExp, another host) reports on the feed."""
    with changing(lab.root, RUN_CHANGE, _relative(lab, path)):
        _replace(path, data)


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_check_after_a_change_reads_only_the_records_the_feed_names(lab: Lab) -> None:
    many = lab.ws.project("qm9").Experiment("many")
    for index in range(40):
        many.Run(parameters={"index": index}, id=f"m{index}")
    scanner = _large(lab)
    assert scanner.check().records == []
    assert scanner.stats >= 50  # the first full scan: every record
    stats, parses = scanner.stats, scanner.parses
    lab.first.set_workflow({"workflow_id": "changed"})  # a write the feed reports
    assert scanner.check().records == []
    assert scanner.full_scans == 1
    assert scanner.stats - stats <= 3  # the run, its experiment's and its project's records
    assert scanner.parses - parses == 1  # the run itself
    stats = scanner.stats
    assert scanner.check().records == []  # nothing new on the feed: nothing read
    assert scanner.stats == stats


def test_a_record_broken_by_a_reported_write_is_listed_at_the_next_check(lab: Lab) -> None:
    scanner = _large(lab)
    assert scanner.check().records == []
    path = _run_file(lab)
    _write_announced(lab, path, _newer_version(path))
    [found] = scanner.check().records
    assert _relative(lab, found.path) == "projects/qm9/experiments/baseline/runs/run-ok0/run.json"
    assert "newer" in found.error
    assert scanner.check("qm9", "baseline").records == [found]
    assert scanner.check("qm9", "sweep").records == []
    assert scanner.check("qm9").records == [found]
    assert scanner.full_scans == 1  # found by following the feed, not by a full scan


def test_a_record_fixed_by_a_reported_write_leaves_the_list(lab: Lab) -> None:
    path = _run_file(lab)
    good = path.read_bytes()
    path.write_text("{ torn")
    scanner = _large(lab)
    assert _paths(lab, scanner.check().records) == [_relative(lab, path)]
    _write_announced(lab, path, good)
    assert scanner.check().records == []
    assert scanner.full_scans == 1


def test_a_deleted_project_leaves_the_list(lab: Lab) -> None:
    _run_file(lab).write_text("[]")
    scanner = _large(lab)
    assert len(scanner.check().records) == 1
    lab.ws.delete_project("qm9")  # reported on the feed
    assert scanner.check().records == []
    assert scanner.full_scans == 1


def test_runs_under_an_experiment_found_broken_leave_the_list(lab: Lab) -> None:
    """As in a full scan, the records below a broken experiment record are not listed."""
    _run_file(lab).write_text("[]")
    scanner = _large(lab)
    assert len(scanner.check().records) == 1
    _experiment_file(lab).write_text("{")  # by hand: no feed line
    lab.succeeded[1].set_workflow({"workflow_id": "changed"})  # a reported write beside it
    assert _paths(lab, scanner.check().records) == [
        "projects/qm9/experiments/baseline/experiment.json"
    ]


def test_hand_damage_and_repair_are_caught_by_the_periodic_full_scan(lab: Lab) -> None:
    scanner = _large(lab, rescan_seconds=0.05)
    assert scanner.check().records == []
    path = _run_file(lab)
    good = path.read_bytes()
    path.write_text("{ torn")  # by hand: no feed line
    after = scanner.full_scans + 1  # a scan running now may have passed the file already
    _wait_until(lambda: scanner.full_scans > after, "no periodic full scan")
    assert _paths(lab, scanner.check().records) == [_relative(lab, path)]
    _replace(path, good)  # repaired by hand: no feed line either
    after = scanner.full_scans + 1
    _wait_until(lambda: scanner.full_scans > after, "no periodic full scan")
    assert scanner.check().records == []
    scanner.close()


def test_without_a_feed_line_hand_damage_waits_for_the_full_scan(lab: Lab) -> None:
    """The feed is only a hint: between full scans a check reads what it names, nothing else."""
    scanner = _large(lab)
    assert scanner.check().records == []
    _run_file(lab).write_text("{ torn")
    assert scanner.check().records == []
    scanner.full_scan()  # what the background thread does every period
    assert len(scanner.check().records) == 1


def test_a_write_during_a_full_scan_is_not_lost(lab: Lab) -> None:
    """Checks go on during a full scan, and its list is followed by the feed from where the
    journals stood when it started: a write it did not see still shows."""
    scanner = _large(lab)
    assert scanner.check().records == []
    inside, release = threading.Event(), threading.Event()
    scan_tree = scanner._scan_tree

    def slow_scan_tree() -> Any:
        found = scan_tree()  # the tree as it was before the write below
        inside.set()
        assert release.wait(GENEROUS)
        return found

    scanner._scan_tree = slow_scan_tree  # type: ignore[method-assign]
    rescan = threading.Thread(target=scanner.full_scan)
    rescan.start()
    assert inside.wait(GENEROUS)
    path = _run_file(lab)
    _write_announced(lab, path, _newer_version(path))
    assert len(scanner.check().records) == 1  # answered while the full scan still runs
    release.set()
    rescan.join(GENEROUS)
    assert scanner.full_scans == 2
    assert _paths(lab, scanner.check().records) == [_relative(lab, path)]


def test_the_first_scan_of_a_large_workspace_does_not_hold_up_a_check(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_file(lab).write_text("{ torn")
    release = threading.Event()
    load_record = _broken.load_record

    def slow_load(path: Path, model: Any) -> Any:
        assert release.wait(GENEROUS)
        return load_record(path, model)

    monkeypatch.setattr(_broken, "load_record", slow_load)
    scanner = _large(lab, first_wait=0.01)
    report = scanner.check()
    assert report.pending
    assert report.records == []
    release.set()
    _wait_until(lambda: scanner.full_scans == 1, "the first scan never ended")
    report = scanner.check()
    assert not report.pending
    assert len(report.records) == 1


def test_a_small_workspace_waits_for_its_first_scan_however_slow(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_file(lab).write_text("{ torn")
    load_record = _broken.load_record

    def slow_load(path: Path, model: Any) -> Any:
        time.sleep(0.02)  # ten records: longer than the wait below
        return load_record(path, model)

    monkeypatch.setattr(_broken, "load_record", slow_load)
    scanner = BrokenRecordScanner(lab.root, lab.ws.id, first_wait=0.01)
    report = scanner.check()
    assert not report.pending
    assert len(report.records) == 1


def test_a_small_workspace_is_scanned_in_full_at_every_check(lab: Lab) -> None:
    scanner = BrokenRecordScanner(lab.root, lab.ws.id)
    assert scanner.check().records == []
    path = _run_file(lab)
    path.write_text("{ torn")  # by hand: no feed line
    assert _paths(lab, scanner.check().records) == [_relative(lab, path)]


async def test_answers_say_whether_the_first_scan_is_pending(lab: Lab) -> None:
    async with make_client(create_app(lab.root)) as http:
        page = (await http.get("/api/v1/projects/qm9/experiments/baseline/runs")).json()
        overview = (await http.get("/api/v1/workspace")).json()
    assert page["broken_pending"] is False
    assert overview["broken_pending"] is False


def test_the_broken_list_matches_the_workspace_own_report_after_changes(lab: Lab) -> None:
    scanner = _large(lab)
    assert scanner.check().records == []
    path = _run_file(lab, 1)
    record = json.loads(path.read_text())
    record["experiment_id"] = "sweep"  # a record that does not belong where it lies
    _write_announced(lab, path, json.dumps(record).encode())
    _write_announced(lab, _run_file(lab, 2), b"[]")
    expected = sorted(
        (_relative(lab, item.path), item.error)
        for item in Workspace.load(lab.root).broken_records()
    )
    found = sorted((_relative(lab, item.path), item.error) for item in scanner.check().records)
    assert found == expected
    assert len(found) == 2


def test_a_full_scan_gives_way_to_a_busy_request(lab: Lab) -> None:
    """Scans and requests share one interpreter: a scan pauses while a request is served."""
    busy = {"now": False}
    scanner = BrokenRecordScanner(lab.root, lab.ws.id, busy=lambda: busy["now"], yield_after=0.0)
    scanner.full_scan()
    assert scanner.pauses == 0  # nobody to give way to
    busy["now"] = True
    scanner.full_scan()
    assert scanner.pauses >= 10  # one pause before each record
