"""Every attempt of a run keeps its own results, artifacts, logs and checkpoints; the run's
current view shows the latest; the files of the layout before attempts kept their own, and
those of a killed attempt, are carried over without losing anything."""

from __future__ import annotations

import os
import platform
import sys
import uuid

import pytest
from molexp.assets import ArtifactAsset, ArtifactStore, AssetKind, LogHandle, Producer
from molexp.assets._hashing import digest_payload
from molexp.workspace import (
    Experiment,
    Run,
    RunStatus,
    Workspace,
    reap_stale_runs,
)


def _two_attempts(exp: Experiment) -> Run:
    run = exp.Run(id="eos")
    with run.start() as ctx:
        ctx.set_result("eos", "murnaghan")
        ctx.set_result("v0", 11.8)
        ctx.artifact.save("fit.json", {"eos": "murnaghan", "b0": 140.1})
        ctx.artifact.save("points.csv", "v,e\n10,-3.1\n")
        ctx.log("fit").append("fitting murnaghan")
        ctx.log("setup").append("strains ready")
        ctx.checkpoint("fit", {"iteration": 1})
    with run.start() as ctx:  # after a code change: the same run executed again
        ctx.set_result("eos", "birch")
        ctx.artifact.save("fit.json", {"eos": "birch", "b0": 138.7})
        ctx.artifact.save("plot.txt", "a plot")
        ctx.log("fit").append("fitting birch")
        ctx.checkpoint("fit", {"iteration": 2})
    return run


def test_a_second_attempt_keeps_the_first_attempts_results_artifacts_and_logs(
    exp: Experiment,
) -> None:
    run = _two_attempts(exp)
    first, second = run.attempts
    assert (first.number, second.number) == (1, 2)
    assert first.status is second.status is RunStatus.succeeded

    # Results: each attempt's own, the view as it stood, the run's current view.
    assert first.own_results == {"eos": "murnaghan", "v0": 11.8}
    assert second.own_results == {"eos": "birch"}
    assert first.results == {"eos": "murnaghan", "v0": 11.8}
    assert second.results == run.results == {"eos": "birch", "v0": 11.8}

    # Artifacts: the first attempt's bytes are still there, the view is the latest.
    assert first.artifact_path("fit.json").read_text().count("murnaghan") == 1
    assert second.artifact_path("fit.json").read_text().count("birch") == 1
    assert (run.run_dir / "artifacts" / "fit.json").samefile(second.artifact_path("fit.json"))
    assert sorted(first.artifacts) == ["fit.json", "points.csv"]
    assert sorted(second.artifacts) == ["fit.json", "plot.txt", "points.csv"]
    assert second.artifacts["points.csv"].id == first.artifacts["points.csv"].id  # carried over
    assert [a.name for a in second.own_artifacts] == ["fit.json", "plot.txt"]

    # Logs: one file per attempt; the view holds the latest attempt's logs only.
    assert first.read_log("fit") == "fitting murnaghan\n"
    assert second.read_log("fit") == "fitting birch\n"
    assert sorted(first.logs) == ["fit", "setup"]
    assert sorted(second.logs) == ["fit"]
    assert (run.run_dir / "logs" / "fit.log").read_text() == "fitting birch\n"
    assert not (run.run_dir / "logs" / "setup.log").exists()
    with pytest.raises(KeyError, match="has no log 'setup'; its logs: fit"):
        second.read_log("setup")

    # Checkpoints stay in one chain, each attributed to its attempt.
    assert [c.sequence for c in first.checkpoints] == [1]
    assert [c.sequence for c in second.checkpoints] == [2]

    # The catalog keeps both attempts' records, each attributed to its attempt.
    fits = [
        asset
        for asset in run.workspace.catalog.query_assets(kind=AssetKind.ARTIFACT, name="fit.json")
        if isinstance(asset, ArtifactAsset)
    ]
    producers = sorted(a.producer.execution_id for a in fits if a.producer)  # type: ignore[misc]
    assert producers == sorted([first.execution_id, second.execution_id])
    for asset in fits:
        digest = digest_payload(run.workspace.root / asset.path)
        assert (digest.content_hash, digest.size) == (asset.content_hash, asset.size)


def test_diff_names_changed_added_and_removed_results_and_artifacts(exp: Experiment) -> None:
    run = _two_attempts(exp)
    diff = run.attempt(2).diff()
    assert (diff.before, diff.after) == (1, 2)
    assert [(c.key, c.change, c.before, c.after) for c in diff.results] == [
        ("eos", "changed", "murnaghan", "birch")
    ]
    assert [(c.name, c.change) for c in diff.artifacts] == [
        ("fit.json", "changed"),
        ("plot.txt", "added"),
    ]
    changed = diff.artifacts[0]
    assert changed.before_hash != changed.after_hash and changed.before_hash
    backwards = run.attempt(1).diff(run.attempt(2))
    assert [(c.name, c.change) for c in backwards.artifacts] == [
        ("fit.json", "changed"),
        ("plot.txt", "removed"),
    ]
    first = run.attempt(1).diff()
    assert first.before is None and {c.change for c in first.results} == {"added"}
    assert not run.attempt(2).diff(run.attempt(2)).results
    assert run.attempt(2).diff(run.attempt(2)).empty


def test_attempt_numbers(exp: Experiment) -> None:
    run = _two_attempts(exp)
    assert run.attempt(-1).number == 2 and run.attempt(-1).is_latest
    assert run.attempt(1).execution_id == run.metadata.execution_history[0].execution_id
    with pytest.raises(KeyError, match="run 'eos' has no attempt 3; it has attempts 1 to 2"):
        run.attempt(3)
    with pytest.raises(KeyError, match="no attempts yet"):
        exp.Run(id="fresh").attempt(1)


def test_each_attempt_records_the_python_that_ran_it(ws: Workspace, exp: Experiment) -> None:
    run = _two_attempts(exp)
    reread = Workspace(ws.root).Project(exp.project.name).Experiment(exp.name).Run(id=run.id)
    for record in reread.metadata.execution_history:
        assert record.python == sys.executable
        assert record.python_version == platform.python_version()
    queued = exp.Run(id="queued")
    queued.mark_queued({"backend": "slurm"})
    assert queued.metadata.execution_history[-1].python is None  # known once it starts
    with queued.start():
        pass
    assert queued.metadata.execution_history[-1].python == sys.executable


def test_a_resumed_attempt_keeps_what_it_did_not_redo_in_the_view(exp: Experiment) -> None:
    run = exp.Run(id="resumed")
    with pytest.raises(RuntimeError), run.start() as ctx:
        ctx.set_result("prepared", 4)
        ctx.artifact.save("inputs.json", [1, 2, 3])
        ctx.log("run").append("attempt one")
        raise RuntimeError("task failed")
    with run.start() as ctx:  # the prepare task is resumed: it sets and saves nothing
        ctx.set_result("energy", -3.5)
        ctx.log("run").append("attempt two")
    first, second = run.attempts
    assert first.status is RunStatus.failed
    assert run.results == second.results == {"prepared": 4, "energy": -3.5}
    assert second.own_results == {"energy": -3.5}
    assert sorted(second.artifacts) == ["inputs.json"]
    assert (run.run_dir / "artifacts" / "inputs.json").read_text().startswith("[")
    assert [c.key for c in second.diff().results] == ["energy"]
    assert not second.diff().artifacts
    assert first.read_log("run") == "attempt one\n"
    assert second.read_log("run") == "attempt two\n"


def test_a_queued_attempt_keeps_its_results_too(exp: Experiment) -> None:
    run = exp.Run(id="queued")
    record = run.mark_queued({"job_id": "42"})
    with run.start() as ctx:
        ctx.set_result("x", 1)
    [attempt] = run.attempts
    assert attempt.execution_id == record.execution_id
    assert attempt.own_results == {"x": 1}


def test_a_failure_while_preparing_the_attempt_ends_it_failed(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _two_attempts(exp)

    def broken(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("molexp.workspace._context.prepare_attempt", broken)
    with pytest.raises(OSError, match="No space left"), run.start():
        pass
    run.reload()
    assert run.status is RunStatus.failed and run.metadata.owner is None
    assert run.metadata.error is not None and "No space left" in run.metadata.error.message


def _old_layout_run(ws: Workspace, exp: Experiment) -> Run:
    """A run as MolExp wrote it before attempts kept their own files: artifacts and logs
    written in place under the run directory, no per-attempt results."""
    run = exp.Run(id="old")
    with run.start() as ctx:
        execution = ctx.execution_id
    producer = Producer(run_id=run.id, execution_id=execution)
    ArtifactStore(ws.catalog, run.scope, run.run_dir, producer).save("fit.json", {"eos": "old"})
    with LogHandle(ws.catalog, run.scope, run.run_dir, "fit", producer) as log:
        log.append("old line")
    (run.run_dir / "artifacts" / "notes.txt").write_text("written in place")
    (run.run_dir / "logs" / "stray.log").write_text("stray line\n")
    run.metadata.results = {"eos": "old"}
    run.metadata.execution_history[0].results = None
    run.save()
    for directory in run.run_dir.glob("execution/*"):
        for child in directory.iterdir():
            child.unlink()
        directory.rmdir()
    return run


def test_files_of_the_old_layout_move_into_the_attempt_that_wrote_them(
    ws: Workspace, exp: Experiment
) -> None:
    run = _old_layout_run(ws, exp)
    old_execution = run.metadata.execution_history[0].execution_id
    with run.start() as ctx:
        ctx.artifact.save("fit.json", {"eos": "new"})
        ctx.artifact.save("notes.txt", "new notes")
        ctx.log("fit").append("new line")
        ctx.set_result("eos", "new")
    first, second = run.attempts
    kept = run.run_dir / "execution" / old_execution
    assert (kept / "artifacts" / "fit.json").read_text().count('"old"') == 1
    assert (kept / "artifacts" / "notes.txt").read_text() == "written in place"
    assert first.artifacts["fit.json"].path.endswith(
        f"execution/{old_execution}/artifacts/fit.json"
    )
    assert first.read_log("fit") == "old line\n"
    assert first.read_log("stray") == "stray line\n"
    assert second.read_log("fit") == "new line\n"
    assert first.results == {"eos": "old"} and second.results == {"eos": "new"}
    assert [c.key for c in second.diff().results] == ["eos"]
    # notes.txt was never registered by the old attempt: its file is kept, not its record.
    assert [(c.name, c.change) for c in second.diff().artifacts] == [
        ("fit.json", "changed"),
        ("notes.txt", "added"),
    ]
    assert (run.run_dir / "artifacts" / "fit.json").read_text().count('"new"') == 1
    assert sorted(p.name for p in (run.run_dir / "logs").iterdir()) == ["fit.log"]


def test_logs_of_an_old_run_never_executed_again_are_its_latest_attempts(
    ws: Workspace, exp: Experiment
) -> None:
    run = _old_layout_run(ws, exp)
    [attempt] = run.attempts
    assert sorted(attempt.logs) == ["fit", "stray"]
    assert attempt.own_results is None
    assert attempt.results == {"eos": "old"}


def _killed_mid_save(exp: Experiment, run: Run) -> str:
    """Execute an attempt in a child process that dies (os._exit) in the middle of
    replacing an artifact, after its record was written for the previous payload."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            ctx = run.start().__enter__()
            ctx.artifact.save("m.json", {"step": 1})
            ctx.artifact.save("left.json", {"only": "attempt one"})
            ctx.log("train").append("step 1")
            dest = ctx.artifact.path("m.json")
            os.link(dest, dest.with_name(f".m.json.{uuid.uuid4().hex}.old"))
            dest.unlink()
            dest.write_text('{"step": 2}')  # replaced, but the record was never updated
            os.write(write, ctx.execution_id.encode())
        finally:
            os._exit(0)
    os.close(write)
    execution = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    return execution


def test_the_next_attempt_settles_the_files_of_a_killed_one(ws: Workspace, exp: Experiment) -> None:
    run = exp.Run(id="killed")
    execution = _killed_mid_save(exp, run)
    assert [r.id for r in reap_stale_runs(ws)] == ["killed"]
    # What a writer killed inside a view update leaves: a second name under a temp name.
    view_temp = run.run_dir / "artifacts" / ".m.json.0123456789ab.tmp"
    os.link(run.run_dir / "execution" / execution / "artifacts" / "m.json", view_temp)
    log_temp = run.run_dir / "logs" / ".train.log.0123456789ab.tmp"
    os.link(run.run_dir / "execution" / execution / "logs" / "train.log", log_temp)
    with run.start() as ctx:
        ctx.artifact.save("new.json", {"attempt": 2})
    assert not view_temp.exists() and not log_temp.exists()
    first = run.attempt(1)
    assert first.execution_id == execution
    record = first.artifacts["m.json"]
    digest = digest_payload(ws.root / record.path)
    assert (digest.content_hash, digest.size) == (record.content_hash, record.size)
    attempt_dir = run.run_dir / "execution" / execution
    assert sorted(p.name for p in (attempt_dir / "artifacts").iterdir()) == ["left.json", "m.json"]
    assert (attempt_dir / ".sealed").exists()
    assert (run.run_dir / "artifacts" / "m.json").samefile(attempt_dir / "artifacts" / "m.json")
    assert first.read_log("train") == "step 1\n"
    assert run.attempt(2).artifacts.keys() == {"left.json", "m.json", "new.json"}


def test_results_of_a_superseded_attempt_stay_its_own() -> None:
    """An attempt reaped while still alive, then superseded, keeps setting its own results
    only: the run's current view is the latest attempt's."""
    from molexp.workspace._context import _store_results
    from molexp.workspace._records import ExecutionRecord, RunMetadata

    metadata = RunMetadata(id="r", experiment_id="e", project_id="p", workspace_id="w")
    metadata.execution_history = [
        ExecutionRecord(execution_id="old", attempt=1, status=RunStatus.failed, results={}),
        ExecutionRecord(execution_id="new", attempt=2, status=RunStatus.running, results={}),
    ]
    _store_results(metadata, "new", {"e0": -3.5})
    _store_results(metadata, "old", {"e0": -9.9, "late": 1})
    assert metadata.results == {"e0": -3.5}
    assert metadata.execution_history[0].results == {"e0": -9.9, "late": 1}
    assert metadata.execution_history[1].results == {"e0": -3.5}


def test_a_queued_attempt_that_never_ran_sets_no_results(exp: Experiment) -> None:
    run = exp.Run(id="cancelled-in-queue")
    with run.start() as ctx:
        ctx.set_result("x", 1)
    run.mark_queued({"job_id": "7"})
    run.cancel()
    with run.start() as ctx:
        ctx.set_result("y", 2)
    first, queued, third = run.attempts
    assert (first.own_results, queued.own_results, third.own_results) == ({"x": 1}, {}, {"y": 2})
    assert queued.results == {"x": 1} and third.results == {"x": 1, "y": 2}
