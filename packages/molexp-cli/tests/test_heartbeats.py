"""Owner heartbeats of executing runs: ``--heartbeat-interval`` and the profile key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.cli import run_cli

SCRIPT = """
import json
import time
from pathlib import Path

from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="beat")


@wf.task
def wait(ctx: TaskContext) -> None:
    if (HERE / "fail-once").exists():
        (HERE / "fail-once").unlink()
        raise RuntimeError("first attempt fails")
    record = ctx.run_context.run_dir / "run.json"
    first = json.loads(record.read_text())["owner"]["heartbeat_at"]
    deadline = time.monotonic() + 1.0
    later = first
    while later == first and time.monotonic() < deadline:
        time.sleep(0.05)
        later = json.loads(record.read_text())["owner"]["heartbeat_at"]
    ctx.set_result("beat", later != first)


spec = wf.build()
ws = Workspace(HERE / "lab")
exp = ws.Project("p").Experiment("e")
spec.bind_to(exp)
entry(ws)
"""


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "beat.py"
    path.write_text(SCRIPT)
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert run_cli([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert isinstance(report, dict)
    return report


def _beat(report: dict[str, object]) -> object:
    runs = report["runs"]
    assert isinstance(runs, list) and len(runs) == 1
    record = Path(runs[0]["run_dir"]) / "run.json"
    return json.loads(record.read_text())["results"].get("beat")


def test_run_sends_heartbeats_at_the_requested_interval(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _beat(_run(capsys, "run", str(script), "--heartbeat-interval", "0.1")) is True


def test_the_default_interval_sends_none_within_a_second(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _beat(_run(capsys, "run", str(script))) is False


def test_profile_key_sets_the_interval_and_the_option_beats_it(
    script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "molexp.toml").write_text("[defaults]\nheartbeat_interval = 0.1\n")
    fast = _run(capsys, "run", str(script))
    assert _beat(fast) is True
    slow = _run(capsys, "run", str(script), "--set", "tag=b", "--heartbeat-interval", "30")
    assert _beat(slow) is False


def test_execute_uses_the_profile_key_of_the_run(
    script: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "molexp.toml").write_text("[defaults]\nheartbeat_interval = 0.1\n")
    (tmp_path / "fail-once").touch()
    assert run_cli(["run", str(script), "--heartbeat-interval", "30", "--json"]) == 1
    failed = json.loads(capsys.readouterr().out)
    assert _beat(failed) is None
    run_dir = failed["runs"][0]["run_dir"]
    done = _run(capsys, "execute", run_dir, "--policy", "rerun-failed")
    assert done["action"] == "executed"
    assert _beat(failed) is True


def test_invalid_interval_is_a_usage_error(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["run", str(script), "--heartbeat-interval", "0"]) == 2
    assert "--heartbeat-interval must be a positive number" in capsys.readouterr().err
