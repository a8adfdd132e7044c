"""One workspace on a network filesystem, written by several hosts at once (issue: the record
on a cluster's shared filesystem). Every host is a separate sshfs client sharing no lock."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from molexp.workspace import RunStatus, Workspace
from multihost_helpers import finish, node_work, require_harness, start_node_work

NODES = ("node-a", "node-b", "node-c")
PROCESSES = 2
RUNS = 25
TRIALS = 20


@pytest.fixture
def share(tmp_path: Path) -> Path:
    require_harness()
    root = tmp_path / "share" / "lab"
    Workspace(root).materialize()
    return root


def test_nodes_write_one_workspace_while_a_login_node_queries(share: Path) -> None:
    expected = len(NODES) * PROCESSES * RUNS
    login = start_node_work("login", share, 240, "query-until", share, expected, 200)
    workers = [
        start_node_work(node, share, 240, "work", share, f"sweep-{node}", PROCESSES, RUNS)
        for node in NODES
    ]
    done = [finish(worker, 260) for worker in workers]
    assert sorted(len(report["runs"]) for report in done) == [PROCESSES * RUNS] * len(NODES)
    assert sorted(report["host"] for report in done) == sorted(NODES)
    seen = finish(login, 260)
    # The login node's own queries saw every run of every host succeed.
    assert seen["succeeded"] == expected, seen

    ws = Workspace(share)
    assert ws.broken_records() == []
    rows = ws.runs()
    assert len(rows) == expected
    assert {row.status for row in rows} == {RunStatus.succeeded}
    assert {row.results["host"] for row in rows} == set(NODES)
    for row in rows:
        run = ws.find_run(row.id)
        assert len(run.metadata.execution_history) == 1
        log = run.run_dir / "logs" / "train.log"
        assert log.read_text().count("\n") == 10
        assert (run.run_dir / "artifacts" / "values.json").is_file()
    # Every host's index, caught up, equals a rebuild from the records.
    for node in (*NODES, "login"):
        report = node_work(node, share, 120, "check-index", share)
        assert report["equal"], report
        assert report["runs"] == expected
        assert report["assets"] == 2 * expected  # one log and one artifact per run
        assert report["broken"] == []


def test_concurrent_starts_on_three_nodes_let_exactly_one_in(share: Path) -> None:
    experiment = Workspace(share).Project("cluster").Experiment("races")
    run_ids = [experiment.Run(id=f"race-{trial}").id for trial in range(TRIALS)]
    go = time.time() + 8.0  # every node has mounted the share by then
    spacing = 3.0
    racers = [
        start_node_work(node, share, 150, "race-start", share, ",".join(run_ids), go, spacing)
        for node in NODES
    ]
    reports = [finish(racer, 180) for racer in racers]
    for trial, run_id in enumerate(run_ids):
        outcomes = {report["host"]: report["outcomes"][trial] for report in reports}
        began = [outcome["began"] for outcome in outcomes.values()]
        assert max(began) - min(began) < 0.25, outcomes  # they really raced
        winners = [host for host, outcome in outcomes.items() if outcome["won"]]
        assert len(winners) == 1, (run_id, outcomes)
        [winner] = winners
        pid = outcomes[winner]["pid"]
        for host, outcome in outcomes.items():
            if host != winner:
                assert f"process {pid} on host {winner}" in outcome["error"], outcome
        run = experiment.get_run(run_id).reload()
        assert run.status is RunStatus.succeeded
        assert [(a.host, a.pid) for a in run.metadata.execution_history] == [(winner, pid)]
