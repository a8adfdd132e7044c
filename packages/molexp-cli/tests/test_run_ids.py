"""``molexp run`` ids are unique within a workspace; runs under legacy ids are found again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import write_script
from molexp.cli import run_cli
from molexp.workspace import ProfileConfig, RunStatus, Workspace, derive_run_id

TWINS = """
from pathlib import Path

from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

HERE = Path(__file__).parent
wf = workflow(name="twins")


@wf.task
def value(ctx: TaskContext) -> float:
    ctx.set_result("value", ctx.params["lr"] * 10)
    return ctx.params["lr"] * 10


spec = wf.build()
ws = Workspace(HERE / "lab")
for project, experiment in (("qm9", "baseline"), ("qm9", "wide"), ("other", "baseline")):
    set_workflow(ws.Project(project).Experiment(experiment, params={"lr": 0.5}), spec)
entry(ws)
"""


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_identical_parameters_in_other_experiments_get_other_ids(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "twins.py"
    script.write_text(TWINS)
    code, out, err = invoke(capsys, "run", str(script), "--json")
    assert code == 0, err
    executed = json.loads(out)["runs"]
    assert len(executed) == 3
    ids = {run["run_id"] for run in executed}
    assert len(ids) == 3
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    for run in executed:
        code, out, err = invoke(capsys, "show", run["run_id"], "--json")
        assert code == 0, err  # never "ambiguous"
        shown = json.loads(out)
        assert (shown["project_id"], shown["experiment_id"]) == (run["project"], run["experiment"])
        assert shown["id"] == derive_run_id(
            {"lr": 0.5},
            0,
            "default",
            ProfileConfig().config_hash,
            project_id=run["project"],
            experiment_id=run["experiment"],
        )
    # the same command finds the same runs again
    code, out, _ = invoke(capsys, "run", str(script), "--json")
    again = json.loads(out)["runs"]
    assert {run["run_id"] for run in again} == ids
    assert {run["action"] for run in again} == {"skipped"}


def test_a_run_written_under_the_legacy_id_is_found_and_not_executed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path, replicas=2)
    # What an older MolExp left: replica 0 succeeded under the id derived without the experiment.
    ws = Workspace(tmp_path / "lab")
    exp = ws.Project("demo").Experiment("baseline", params={"lr": 0.01}, n_replicas=2)
    parameters = {"lr": 0.01, "seed": 0}
    profile = ProfileConfig()
    legacy = derive_run_id(parameters, 0, "default", profile.config_hash)
    old = exp.Run(parameters=parameters, id=legacy, replica_index=0, seed=0)
    with old.start(profile_config=profile) as ctx:
        ctx.set_result("total", -1.0)  # a value the workflow would never compute
    code, out, err = invoke(capsys, "run", str(script), "--json")
    assert code == 0, err
    runs = {run["replica_index"]: run for run in json.loads(out)["runs"]}
    assert runs[0]["run_id"] == legacy
    assert (runs[0]["action"], runs[0]["reason"]) == ("skipped", "already succeeded")
    assert runs[1]["action"] == "executed"
    assert runs[1]["run_id"] == derive_run_id(
        {"lr": 0.01, "seed": 1},
        1,
        "default",
        profile.config_hash,
        project_id="demo",
        experiment_id="baseline",
    )
    assert len(exp.list_runs()) == 2  # no duplicate of the legacy run
    assert exp.get_run(legacy).status is RunStatus.succeeded
    assert exp.get_run(legacy).results == {"total": -1.0}
    assert len(exp.get_run(legacy).metadata.execution_history) == 1
