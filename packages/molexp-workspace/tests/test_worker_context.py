"""``RunContext.worker_opener()`` and the worker-side run context, used in-process."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path

import pytest
from molexp.workspace import RunContext, Workspace
from molexp.workspace._worker_context import WorkerRunOpener, WorkspaceUnreachableError


def test_a_worker_writes_files_and_reports_results_and_logs_to_the_owner(tmp_path: Path) -> None:
    run = Workspace(tmp_path / "lab").Project("p").Experiment("e").Run(parameters={"n": 2})
    with run.start() as ctx:
        opener = pickle.loads(pickle.dumps(ctx.worker_opener()))
        worker = opener.open("train")
        assert worker.params == {"n": 2} and worker.execution_id == ctx.execution_id
        asset = worker.artifact.save("weights.json", {"w": 1})
        assert asset.producer.task_name == "train" and asset.producer.host == socket.gethostname()
        worker.set_result("loss", 0.25)
        worker.log("train").append("epoch 1")
        assert worker.get_result("loss") == 0.25
        ctx.set_result("owner", 1)
        ctx.flush_results()
        assert opener.open("later").get_result("owner") == 1  # re-read, not a stale record
        assert worker.find_asset("weights.json") is not None
        with pytest.raises(RuntimeError, match="run owner's"):
            worker.record_execution_state({})
        report = worker.close()
        assert report is not None and report["results"] == {"loss": 0.25}
        assert "loss" not in RunContext.open(run.run_dir).results  # workers never write run.json
        ctx.apply_worker_report(report, "train")
        assert opener.open("idle").close() is None
    run.reload()
    assert run.results == {"owner": 1, "loss": 0.25}
    assert (run.run_dir / "logs" / "train.log").read_text() == "epoch 1\n"
    assert (run.run_dir / "artifacts" / "weights.json").is_file()


def test_a_worker_without_the_workspace_says_it_needs_a_shared_filesystem(tmp_path: Path) -> None:
    opener = WorkerRunOpener(
        run_dir=str(tmp_path / "elsewhere" / "run-x"),
        run_id="x",
        execution_id="e1",
        params={},
        config={"k": 1},
        owner_host="login1",
    )
    worker = opener.open("train")
    assert worker.config == {"k": 1}  # what travels with the opener needs no workspace
    worker.set_result("ok", True)
    with pytest.raises(WorkspaceUnreachableError, match="shared with every worker.*'login1'"):
        worker.artifact.save("a.txt", "x")
