"""Selecting projects and experiments: repeated ``-p``/``-e`` accumulate, globs match ids and
names, and ``show``/``logs``/``artifacts`` narrow a run id with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from molexp.cli import run_cli
from molexp.cli._resolve import Selection
from molexp.workflow import TaskContext, workflow
from molexp.workspace import Workspace

SCRIPT = """
from pathlib import Path

from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

wf = workflow(name="eos")


@wf.task
def energy(ctx: TaskContext) -> float:
    ctx.set_result("a", ctx.params["a"])
    ctx.log("eos").append(f"a={ctx.params['a']}")
    ctx.artifact.save("eos.txt", str(ctx.params["a"]))
    return float(ctx.params["a"])


spec = wf.build()
ws = Workspace(Path(__file__).parent / "lab")
metals = ws.Project("metals")
for name, a in (("cu-a3.6", 3.6), ("cu-a3.8", 3.8), ("al-a4.0", 4.0)):
    set_workflow(metals.Experiment(name, params={"a": a}), spec)
oxides = ws.Project("oxides")
set_workflow(oxides.Experiment("cu-o", params={"a": 4.2}), spec)
entry(ws)
"""


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def script(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOLEXP_WORKSPACE", raising=False)
    path = tmp_path / "eos.py"
    path.write_text(SCRIPT)
    return path


def planned(capsys: pytest.CaptureFixture[str], script: Path, *selection: str) -> set[str]:
    code, out, err = invoke(capsys, "run", str(script), "--dry-run", "--json", *selection)
    assert code == 0, err
    return {f"{run['project']}/{run['experiment']}" for run in json.loads(out)["runs"]}


def test_selection_matches_ids_names_and_globs() -> None:
    selection = Selection.of(["cu-*"], ["x", "y?"])
    assert selection.project("cu-a3.6") and not selection.project("al-a4.0")
    assert selection.project("p1", "cu-named")
    assert (
        selection.experiment("y1") and selection.experiment("x") and not selection.experiment("z")
    )
    assert Selection.of("demo").projects == ("demo",)
    assert not Selection() and Selection.of(None, ["e"])
    assert Selection.of(["a*", "b"]).projects_matching("abc") == ["a*"]


@pytest.fixture
def bracketed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Projects named ``proj[1]`` (id ``proj-1``) and ``proj1``; experiments ``e[1]`` and
    ``e1`` in each; one succeeded run per experiment, its parameter naming where it is."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOLEXP_WORKSPACE", raising=False)
    ws = Workspace(tmp_path / "lab")
    for project in ("proj[1]", "proj1"):
        for experiment in ("e[1]", "e1"):
            run = (
                ws.Project(project)
                .Experiment(experiment)
                .Run(parameters={"at": f"{project}/{experiment}"})
            )
            with run.start() as ctx:
                ctx.set_result("done", 1)
    return ws


def test_a_value_naming_a_project_or_experiment_exactly_is_never_a_glob(
    bracketed: Workspace,
) -> None:
    selection = Selection.of(["proj[1]"], ["e[1]"]).in_workspace(bracketed)
    assert selection.project("proj-1", "proj[1]") and not selection.project("proj1", "proj1")
    assert selection.experiment("e-1", "e[1]") and not selection.experiment("e1", "e1")
    globbing = Selection.of(["proj?"], ["e[1]x"]).in_workspace(bracketed)  # names nothing
    assert globbing.project("proj1", "proj1") and not globbing.project("proj-1", "proj[1]")
    assert globbing.literal_experiments == frozenset()


def test_ls_and_show_take_an_exact_bracketed_name_as_that_name(
    bracketed: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(
        capsys, "ls", "runs", "-w", "lab", "-p", "proj[1]", "-e", "e[1]", "--json"
    )
    assert code == 0, err
    [row] = json.loads(out)
    assert row["params"] == {"at": "proj[1]/e[1]"}
    code, out, _ = invoke(capsys, "ls", "runs", "-w", "lab", "-p", "proj?", "--json")
    assert sorted(row["params"]["at"] for row in json.loads(out)) == ["proj1/e1", "proj1/e[1]"]
    code, out, err = invoke(
        capsys, "show", row["id"], "-w", "lab", "-p", "proj[1]", "-e", "e[1]", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["parameters"] == {"at": "proj[1]/e[1]"}


def test_run_plans_the_experiment_a_bracketed_value_names(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script.write_text(SCRIPT.replace('("cu-a3.8", 3.8)', '("cu[1]", 3.8), ("cu1", 3.9)'))
    assert planned(capsys, script, "-e", "cu[1]") == {"metals/cu-1"}  # not metals/cu1
    assert planned(capsys, script, "-e", "cu?") == {"metals/cu1"}


def test_repeated_experiment_options_accumulate(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert planned(capsys, script, "-e", "cu-a3.6", "-e", "al-a4.0") == {
        "metals/cu-a3.6",
        "metals/al-a4.0",
    }


def test_globs_select_experiments_and_projects(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert planned(capsys, script, "-e", "cu-*") == {
        "metals/cu-a3.6",
        "metals/cu-a3.8",
        "oxides/cu-o",
    }
    assert planned(capsys, script, "-p", "metals", "-e", "cu-*") == {
        "metals/cu-a3.6",
        "metals/cu-a3.8",
    }
    assert planned(capsys, script, "-p", "ox*", "-p", "metals", "-e", "*-o", "-e", "al-*") == {
        "metals/al-a4.0",
        "oxides/cu-o",
    }


def test_a_value_matching_nothing_is_a_usage_error(
    script: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, "run", str(script), "--dry-run", "-e", "cu-*", "-e", "zn-*")
    assert code == 2
    assert "no experiment 'zn-*'" in err and "metals/cu-a3.6" in err


def test_ls_runs_accumulates_and_globs(script: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(capsys, "run", str(script), "--json")[0] == 0
    code, out, _ = invoke(
        capsys, "ls", "runs", "-w", "lab", "-e", "cu-*", "-e", "al-a4.0", "--json"
    )
    assert code == 0
    assert sorted(row["experiment"] for row in json.loads(out)) == [
        "al-a4.0",
        "cu-a3.6",
        "cu-a3.8",
        "cu-o",
    ]
    code, out, _ = invoke(capsys, "ls", "experiments", "-w", "lab", "-p", "met*", "--json")
    assert code == 0
    assert sorted(e["id"] for e in json.loads(out)) == ["al-a4.0", "cu-a3.6", "cu-a3.8"]
    code, out, _ = invoke(capsys, "ls", "-w", "lab", "-e", "cu-*", "--json")
    tree = {p["id"]: [e["id"] for e in p["experiments"]] for p in json.loads(out)["projects"]}
    assert tree == {"metals": ["cu-a3.6", "cu-a3.8"], "oxides": ["cu-o"]}


@pytest.fixture
def ambiguous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace where run id ``same`` exists in two experiments of two projects."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MOLEXP_WORKSPACE", raising=False)
    wf = workflow(name="where")

    @wf.task
    def where(ctx: TaskContext) -> None:
        ctx.log("eos").append(f"from {ctx.params['where']}")
        ctx.artifact.save("where.txt", ctx.params["where"])

    spec = wf.build()
    ws = Workspace(tmp_path / "lab")
    for project, experiment in (("metals", "cu-a3.6"), ("oxides", "cu-o")):
        exp = ws.Project(project).Experiment(experiment)
        run = exp.Run(parameters={"where": f"{project}/{experiment}"}, id="same")
        spec.execute_sync(run=run)
    return ws


def test_show_logs_artifacts_narrow_an_ambiguous_id(
    ambiguous: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, "show", "same", "-w", "lab", "--json")
    assert code == 1
    assert "ambiguous" in err and "-p PROJECT / -e EXPERIMENT" in err

    code, out, err = invoke(capsys, "show", "same", "-w", "lab", "-e", "cu-o", "--json")
    assert code == 0, err
    assert json.loads(out)["experiment_id"] == "cu-o"
    code, out, _ = invoke(capsys, "show", "same", "-w", "lab", "-p", "met*", "--json")
    assert json.loads(out)["project_id"] == "metals"

    code, out, err = invoke(capsys, "logs", "same", "eos", "-w", "lab", "-p", "oxides")
    assert code == 0, err
    assert out.strip() == "from oxides/cu-o"

    code, out, err = invoke(capsys, "artifacts", "same", "-w", "lab", "-e", "cu-a*", "--json")
    assert code == 0, err
    [artifact] = json.loads(out)
    assert Path(artifact["absolute_path"]).read_text() == "metals/cu-a3.6"


def test_narrowing_to_where_the_run_is_not_says_where_it_is(
    ambiguous: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, "show", "same", "-w", "lab", "-e", "al-*")
    assert code == 1
    assert "metals/cu-a3.6" in err and "-e 'al-*' does not select" in err
    run_dir = next(Path("lab").rglob("run-same"))
    code, _, err = invoke(capsys, "show", str(run_dir), "-p", "nowhere")
    assert code == 1 and "does not select" in err
