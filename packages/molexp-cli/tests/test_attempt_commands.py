"""``show --attempt``, ``logs --attempt`` and ``artifacts --attempt`` on a run executed twice."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.workspace import Run, Workspace


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    root = tmp_path / "lab"
    run = Workspace(root, name="Lab").Project("eos").Experiment("cu").Run(id="cu1")
    for eos in ("murnaghan", "birch"):
        with run.start() as ctx:
            ctx.set_result("eos", eos)
            ctx.artifact.save("fit.json", {"eos": eos})
            ctx.log("fit").append(f"fitted {eos}")
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(root))
    return run


def test_logs_default_to_the_latest_started_attempt(
    twice: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    twice.mark_queued({"job_id": "1"})  # attempt 3: queued, nothing logged yet
    assert invoke(capsys, "logs", "cu1") == (0, "fitted birch\n", "")
    assert invoke(capsys, "logs", "cu1", "--attempt", "1") == (0, "fitted murnaghan\n", "")
    code, _, err = invoke(capsys, "logs", "cu1", "--attempt", "3")
    assert (code, err) == (0, "run cu1 attempt 3 has no logs\n")


def test_show_and_artifacts_of_one_attempt(twice: Run, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "show", "cu1", "--attempt", "1", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["results"] == {"eos": "murnaghan"}
    assert json.loads(Path(shown["artifacts"][0]["absolute_path"]).read_text()) == {
        "eos": "murnaghan"
    }
    code, out, _ = invoke(capsys, "artifacts", "cu1", "--json")
    assert code == 0 and [a["name"] for a in json.loads(out)] == ["fit.json"]
    code, out, _ = invoke(capsys, "show", "cu1", "--attempt", "1")
    # where the attempt ran: interpreter and environment
    assert code == 0 and platform.python_version() in out
    assert f"{platform.python_implementation()} on" in out
    code, _, err = invoke(capsys, "show", "cu1", "--attempt", "0")
    assert code == 2 and err.strip() == "error: --attempt counts from 1, got 0"


def test_show_of_an_attempt_names_the_distributions_its_tasks_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import pydantic
    from molexp.workflow import TaskContext, workflow

    wf = workflow(name="typed")

    @wf.task
    def validate(ctx: TaskContext) -> int:
        return pydantic.TypeAdapter(int).validate_python("3")

    root = tmp_path / "lab"
    run = Workspace(root).Project("p").Experiment("e").Run(id="typed")
    wf.build().execute_sync(run=run)
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(root))
    code, out, _ = invoke(capsys, "show", "typed", "--attempt", "1", "--json")
    assert code == 0 and json.loads(out)["distributions"] == {"pydantic": pydantic.VERSION}
    code, out, _ = invoke(capsys, "show", "typed", "--attempt", "1")
    assert code == 0 and f"pydantic {pydantic.VERSION}" in out
