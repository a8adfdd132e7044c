"""Exclusive transitions without shared locks: the O_EXCL claim of each epoch of a run."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from molexp.workspace import (
    Experiment,
    RunStateError,
    RunStatus,
    Workspace,
    _claims,
    _experiment,
    _project,
    _run,
    _workspace,
    reap_stale_runs,
)
from molexp.workspace._claims import claim_path, read_claim, try_claim
from molexp.workspace._records import OwnerInfo, utc_now
from workspace_helpers import on_disk

_fork = multiprocessing.get_context("fork")
CONTENDERS = 4


@contextlib.contextmanager
def _no_lock(path: Path, timeout: float = 0.0) -> Iterator[None]:
    yield


def _as_on_a_network_filesystem() -> None:
    """As on hosts that share no locks and see one network filesystem: only claims decide."""
    _run.locked = _no_lock  # type: ignore[assignment]
    _run.on_local_filesystem = lambda path: False  # type: ignore[attr-defined]
    _claims.on_local_filesystem = lambda path: False  # type: ignore[attr-defined]


def _start_at(root: Path, run_id: str, go: float, results: multiprocessing.Queue[str]) -> None:
    _as_on_a_network_filesystem()
    run = Workspace(root).project("qm9").experiment("baseline").get_run(run_id)
    time.sleep(max(0.0, go - time.time()))
    try:
        context = run.start()
        context.__enter__()
    except RunStateError as exc:
        results.put(f"lost:{exc}")
        return
    results.put(f"won:{os.getpid()}")
    time.sleep(0.3)
    context.__exit__(None, None, None)


@pytest.mark.parametrize("trial", range(3))
def test_exactly_one_of_many_starters_wins_without_locks(exp: Experiment, trial: int) -> None:
    run = exp.Run(id=f"race-{trial}")
    results: multiprocessing.Queue[str] = _fork.Queue()
    go = time.time() + 0.3
    children = [
        _fork.Process(target=_start_at, args=(exp.workspace.root, run.id, go, results))
        for _ in range(CONTENDERS)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    outcomes = [results.get(timeout=5) for _ in children]
    winners = [o for o in outcomes if o.startswith("won:")]
    assert len(winners) == 1, outcomes
    winner_pid = winners[0].split(":")[1]
    for lost in (o for o in outcomes if o.startswith("lost:")):
        assert f"process {winner_pid} on host" in lost
    stored = on_disk(run)
    assert stored.status is RunStatus.succeeded
    assert [a.pid for a in stored.execution_history] == [int(winner_pid)]


def test_a_claim_whose_winner_died_before_writing_is_rolled_forward(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run, "on_local_filesystem", lambda path: False)
    run = exp.Run(id="orphan-claim")
    claimed = run.metadata.model_copy(deep=True)
    claimed.epoch += 1
    claimed.tags = ["written-by-the-dead-winner"]
    assert try_claim(run.run_dir, "save", claimed)
    assert not try_claim(run.run_dir, "save", claimed)  # the epoch is taken
    run.cancel()  # adopts the claimed record first, then moves on
    stored = on_disk(run)
    assert stored.tags == ["written-by-the-dead-winner"]
    assert stored.status is RunStatus.cancelled
    assert stored.epoch == claimed.epoch + 1


def test_a_claim_left_unreadable_voids_its_epoch(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_claims, "CLAIM_WAIT_SECONDS", 0.05)
    monkeypatch.setattr(_run, "on_local_filesystem", lambda path: False)
    run = exp.Run(id="torn-claim")
    path = claim_path(run.run_dir, run.metadata.epoch + 1)
    path.write_bytes(b'{"epoch": ')  # its writer died mid-write
    run.cancel()
    stored = on_disk(run)
    assert stored.status is RunStatus.cancelled
    assert stored.epoch == 2


def test_a_stale_reader_cannot_reuse_a_pruned_epoch(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run, "on_local_filesystem", lambda path: False)
    monkeypatch.setattr(_claims, "on_local_filesystem", lambda path: False)
    run = exp.Run(id="behind")
    stale = run.metadata.model_copy(deep=True)
    run.set_workflow({"workflow_id": "w1"})
    run.set_workflow({"workflow_id": "w2"})
    assert not claim_path(run.run_dir, 1).exists()  # pruned
    stale.epoch = 1
    assert not run._claim(stale, "save")  # the record is at epoch 2 already
    assert not claim_path(run.run_dir, 1).exists()
    assert on_disk(run).workflow_id == "w2"


def test_every_transition_keeps_only_the_newest_claims(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_run, "on_local_filesystem", lambda path: False)
    run = exp.Run(id="pruned")
    with run.start() as ctx:
        ctx.set_result("x", 1)
    claims = sorted(p.name for p in run.run_dir.glob(f"{_claims.CLAIM_PREFIX}*"))
    assert claims == [f"{_claims.CLAIM_PREFIX}{on_disk(run).epoch}.json"]
    newest = read_claim(run.run_dir, on_disk(run).epoch)
    assert newest is not None
    assert (newest.action, newest.pid) == ("finish", os.getpid())


def _create(root: Path, run_id: str, go: float, results: multiprocessing.Queue[str]) -> None:
    _as_on_a_network_filesystem()
    experiment = Workspace(root).project("qm9").experiment("baseline")
    time.sleep(max(0.0, go - time.time()))
    run = experiment.Run(id=run_id)
    results.put(run.metadata.created_at.isoformat())


def test_creators_of_one_run_id_agree_on_one_record(exp: Experiment) -> None:
    results: multiprocessing.Queue[str] = _fork.Queue()
    go = time.time() + 0.3
    children = [
        _fork.Process(target=_create, args=(exp.workspace.root, "same", go, results))
        for _ in range(CONTENDERS)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    created = {results.get(timeout=5) for _ in children}
    assert len(created) == 1
    assert exp.get_run("same").metadata.created_at.isoformat() in created


def test_a_reaped_attempt_ends_at_its_last_heartbeat(exp: Experiment) -> None:
    run = exp.Run(id="silent")
    last = utc_now() - timedelta(hours=2)
    run.metadata.status = RunStatus.running
    run.metadata.owner = OwnerInfo(
        host="another-host.example", pid=1, started_at=last, heartbeat_at=last
    )
    run.save()
    assert [r.id for r in reap_stale_runs(exp.workspace, heartbeat_timeout=60)] == ["silent"]
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.finished_at == last


def test_a_reaped_owner_writing_late_never_makes_its_run_running_again(exp: Experiment) -> None:
    run = exp.Run(id="zombie")
    context = run.start()
    context.__enter__()
    # As seen from another host: the owner is remote and its heartbeat hours old.
    stored = on_disk(run)
    assert stored.owner is not None
    stored.owner.host = "elsewhere"
    run.record_path.write_text(stored.model_dump_json())
    reaper = Workspace(exp.workspace.root).project("qm9").experiment("baseline").get_run("zombie")
    assert reaper.reap(heartbeat_timeout=1, now=utc_now() + timedelta(hours=1)) is True
    context.set_result("late", 1)
    context.flush_results()
    stored = on_disk(run)
    assert stored.status is RunStatus.failed
    assert stored.results == {"late": 1}
    context.__exit__(None, None, None)
    # It was alive after all: its attempt's real outcome is recorded, and nothing is running.
    assert on_disk(run).status is RunStatus.succeeded
    assert on_disk(run).owner is None


def _create_hierarchy(root: Path, go: float, results: multiprocessing.Queue[str]) -> None:
    for module in (_project, _experiment, _workspace):
        module.locked = _no_lock  # type: ignore[attr-defined]
    time.sleep(max(0.0, go - time.time()))
    experiment = Workspace(root).materialize().Project("Shared").Experiment("grid")
    results.put(
        " ".join(
            record.created_at.isoformat()
            for record in (
                experiment.project.workspace.metadata,
                experiment.project.metadata,
                experiment.metadata,
            )
        )
    )


def test_creators_of_one_project_and_experiment_agree_without_locks(tmp_path: Path) -> None:
    root = tmp_path / "lab"
    results: multiprocessing.Queue[str] = _fork.Queue()
    go = time.time() + 0.3
    children = [
        _fork.Process(target=_create_hierarchy, args=(root, go, results)) for _ in range(CONTENDERS)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    seen = {results.get(timeout=5) for _ in children}
    assert len(seen) == 1
    experiment = Workspace(root).project("shared").experiment("grid")
    assert experiment.metadata.created_at.isoformat() == seen.pop().split()[2]


def test_on_a_local_filesystem_the_directory_lock_stands_in_for_claims(exp: Experiment) -> None:
    run = exp.Run(id="local")
    with run.start() as ctx:
        ctx.set_result("x", 1)
    assert on_disk(run).epoch == 2  # start and finish
    assert list(run.run_dir.glob(f"{_claims.CLAIM_PREFIX}*")) == []
