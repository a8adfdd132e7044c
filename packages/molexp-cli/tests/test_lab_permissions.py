"""A workspace a lab shares: CLI files follow the umask; a refused write is one line + fix."""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from molexp.assets import SHARED_WORKSPACE_HELP, SharedPermissionError, _permissions
from molexp.cli.__main__ import describe_error
from molexp.cli._execute import EXECUTE_LOCK_NAME, ExecutionPolicy, claim_run
from molexp.cli._plan import plan_runs
from molexp.cli._scheduler import SUBMIT_LOCK, submit_runs
from molexp.cli._slurm import SlurmClient
from molexp.cli._slurm_job import current_job
from molexp.cli._slurm_script import SlurmOptions
from molexp.cli.profiles import ExecutionSettings
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow
from molexp.workspace import ProfileConfig, Workspace
from slurm_fakes import FakeSlurm

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


@pytest.fixture
def lab_umask() -> Iterator[None]:
    previous = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_refused_write_is_one_line_naming_the_directory_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir(mode=0o755)
    runs.chmod(0o755)
    monkeypatch.setattr(_permissions, "_writable", lambda path: path != runs)
    raw = PermissionError(errno.EACCES, "Permission denied", str(runs / "run-1" / "run.json"))
    message, code = describe_error(raw)
    assert code == 1
    assert "\n" not in message
    assert message.startswith(f"cannot write in directory {runs}: owned by ")
    assert "umask 0002" in message and SHARED_WORKSPACE_HELP in message


def test_an_explained_error_is_shown_as_is(tmp_path: Path) -> None:
    error = SharedPermissionError(tmp_path, f"cannot write {tmp_path}: the fix")
    assert describe_error(error) == (f"cannot write {tmp_path}: the fix", 1)


def test_the_execute_lock_follows_the_umask(lab_umask: None, tmp_path: Path) -> None:
    run_dir = tmp_path / "run-1"
    with claim_run(run_dir) as claimed:
        assert claimed
    assert _mode(run_dir / EXECUTE_LOCK_NAME) == 0o664


def test_slurm_submission_files_follow_the_umask(lab_umask: None, tmp_path: Path) -> None:
    wf = workflow(name="w")

    @wf.task
    def only(ctx: TaskContext) -> int:
        return 1

    workspace = Workspace(tmp_path / "lab")
    experiment = workspace.Project("p").Experiment("grid", n_replicas=1)
    set_workflow(experiment, wf.build())
    plan = plan_runs([workspace], lambda ws: ProfileConfig(name="cluster"))
    [outcome] = submit_runs(
        plan.runs,
        settings=ExecutionSettings(executor="slurm", slurm=SlurmOptions()),
        script=tmp_path / "train.py",
        policy=ExecutionPolicy(),
        client=SlurmClient(FakeSlurm()),
        python="/opt/env/bin/python",
    )
    assert outcome.action == "submitted"
    job = current_job(experiment.get_run(plan.runs[0].run_id))
    assert job is not None
    submission = Path(job.submission_dir)
    assert _mode(submission / "job.sh") == 0o775  # executable, group-writable: not 0o755
    assert _mode(submission / "runs.txt") == 0o664
    assert _mode(submission) == 0o775
    assert _mode(submission.parent) == 0o775
    assert _mode(submission.parent / SUBMIT_LOCK) == 0o664
