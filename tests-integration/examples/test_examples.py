"""Every example under ``examples/``, executed in a subprocess the way the docs tell users to.

Each example runs from the repository's copy with its working directory, ``$MOLEXP_EXAMPLE_DIR``,
``$MOLEXP_WORKSPACE`` or ``$TMPDIR`` pointed into ``tmp_path``; the tests check what the example
prints and the files it creates, and that nothing was written into the repository. The sweep and
the demo go through the real ``molexp`` executable; running them a second time executes nothing.
"""

from __future__ import annotations

import json
import os
import re
import runpy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
_EXECUTABLE = Path(sys.executable).with_name("molexp")
MOLEXP = [str(_EXECUTABLE)] if _EXECUTABLE.is_file() else [sys.executable, "-m", "molexp.cli"]


def environment(**extra: str | Path) -> dict[str, str]:
    """The current environment without MOLEXP_* variables, never writing bytecode."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOLEXP_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update({key: str(value) for key, value in extra.items()})
    return env


def run(
    command: list[str], *, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        command,
        cwd=cwd,
        env=env if env is not None else environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"{command} failed:\n{completed.stdout}\n{completed.stderr}"
    return completed


def run_example(relative: str, *, cwd: Path, **env: str | Path) -> str:
    """``python examples/<relative>``; returns its standard output."""
    return run([sys.executable, str(EXAMPLES / relative)], cwd=cwd, env=environment(**env)).stdout


def molexp_json(*args: str | Path, cwd: Path, **env: str | Path) -> Any:
    completed = run([*MOLEXP, *map(str, args), "--json"], cwd=cwd, env=environment(**env))
    return json.loads(completed.stdout)


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def repository_untouched() -> Iterator[None]:
    """No example may write into the repository's examples/ tree."""
    before = sorted(str(path) for path in EXAMPLES.rglob("*"))
    yield
    assert sorted(str(path) for path in EXAMPLES.rglob("*")) == before


# -- getting started -------------------------------------------------------------------------


def test_first_workflow_prints_result_and_the_deterministic_workflow_id(tmp_path: Path) -> None:
    output = run_example("getting_started/01_first_workflow.py", cwd=tmp_path)

    module = runpy.run_path(str(EXAMPLES / "getting_started/01_first_workflow.py"))
    expected_id = module["spec"].workflow_id  # computed in this process: ids are deterministic
    assert f"workflow_id: {expected_id}" in output
    assert re.fullmatch(r"[0-9a-f]{16}", expected_id)
    assert "status: succeeded" in output
    assert "fetch: succeeded" in output
    assert "summarize: succeeded" in output
    assert "result: 14.0" in output
    assert list(tmp_path.iterdir()) == []  # no workspace: nothing written


def test_builder_and_classes_second_execution_is_cached(tmp_path: Path) -> None:
    output = run_example(
        "getting_started/02_builder_and_classes.py", cwd=tmp_path, MOLEXP_EXAMPLE_DIR=tmp_path
    )

    lines = {line.split(":")[0]: line for line in output.splitlines() if ": " in line}
    assert "score=succeeded" in lines["execution 1"]
    assert "score=cached" in lines["execution 2"]
    assert "score=succeeded" in lines["execution 3 (cutoff changed)"]
    for label in ("execution 1", "execution 2", "execution 3 (cutoff changed)"):
        assert "monitor=succeeded" in lines[label]
        assert "stream=succeeded" in lines[label]
        assert "report=succeeded" in lines[label]
    assert "cache entries: 3" in output  # two results of score, and the index of what it read
    assert (tmp_path / "cache").is_dir()

    again = run_example(
        "getting_started/02_builder_and_classes.py", cwd=tmp_path, MOLEXP_EXAMPLE_DIR=tmp_path
    )
    first_line = next(line for line in again.splitlines() if line.startswith("execution 1"))
    assert "score=cached" in first_line  # the file-backed cache survives the process


def test_tracked_run_records_the_run_on_disk(tmp_path: Path) -> None:
    output = run_example(
        "getting_started/03_tracked_run.py", cwd=tmp_path, MOLEXP_EXAMPLE_DIR=tmp_path
    )

    run_dir = tmp_path / "lab/projects/demo/experiments/baseline/runs/run-baseline-defaults"
    record = load_json(run_dir / "run.json")
    assert record["status"] == "succeeded"
    assert record["parameters"] == {"lr": 1e-3}
    assert record["profile"]["name"] == "local"
    assert record["profile"]["config"] == {"epochs": 3}
    assert re.fullmatch(r"[0-9a-f]{64}", record["profile"]["config_hash"])
    assert re.fullmatch(r"[0-9a-f]{16}", record["workflow_id"])
    assert [attempt["status"] for attempt in record["execution_history"]] == ["succeeded"]

    metrics = load_json(run_dir / "artifacts/metrics.json")
    assert metrics["loss"] == record["results"]["final_loss"]
    assert metrics["epochs"] == 3
    assert (run_dir / "logs/train.log").read_text().splitlines()[0].startswith("epoch=0 loss=")
    assert len((run_dir / "logs/train.log").read_text().splitlines()) == 3
    checkpoints = sorted(p.name for p in (run_dir / ".ckpt").iterdir() if p.name[0] != ".")
    assert checkpoints == ["000001-epoch", "000002-epoch", "000003-epoch"]
    execution_id = record["execution_history"][0]["execution_id"]
    assert (run_dir / "execution" / execution_id / "state.json").is_file()

    for shown in ("workspace.json", "run.json", "metrics.json", "train.log", "training-data.csv"):
        assert shown in output
    assert f"workflow_id: {json.dumps(record['workflow_id'])}" in output
    assert 'status: "succeeded"' in output
    assert record["profile"]["config_hash"] in output
    assert "- attempt 1: succeeded" in output

    from molexp.workspace import Workspace

    workspace = Workspace.load(tmp_path / "lab")
    dataset = workspace.data_assets.get("training-data")
    assert dataset is not None
    uses = workspace.catalog.lineage(dataset.id).consumed_by
    assert "baseline-defaults" in {use.run_id for use in uses}

    run_example("getting_started/03_tracked_run.py", cwd=tmp_path, MOLEXP_EXAMPLE_DIR=tmp_path)
    history = load_json(run_dir / "run.json")["execution_history"]
    assert [attempt["attempt"] for attempt in history] == [1, 2]  # same run id, a new attempt


def test_examples_default_to_a_printed_temporary_directory(tmp_path: Path) -> None:
    output = run_example("getting_started/03_tracked_run.py", cwd=tmp_path, TMPDIR=tmp_path)

    printed = re.search(r"^example directory: (.+)$", output, re.MULTILINE)
    assert printed is not None
    directory = Path(printed.group(1))
    assert directory.parent == tmp_path
    assert (directory / "lab/workspace.json").is_file()


# -- workspace API -----------------------------------------------------------------------------


def test_workspace_api_walk_through(tmp_path: Path) -> None:
    output = run_example("workspace/workspace_api.py", cwd=tmp_path, MOLEXP_EXAMPLE_DIR=tmp_path)

    for expected in (
        "workspace 'Lab': materialized=False, on disk=False",
        "after ws.Project('QM9'): materialized=True, project id='qm9'",
        "ws.Project('QM9') is project: True",
        "ws.project('qm9') is project: True",
        "project.Experiment('baseline') is baseline: True",
        "params is parameter_space: True",
        "replica seeds: [42, 123, 456]",
        "same run id again gives the same run: True",
        "Workspace.load of a missing workspace: no MolExp workspace at",
        "runs with batch == 64: 2",
    ):
        assert expected in output

    from molexp.workspace import Workspace

    workspace = Workspace.load(tmp_path / "lab")
    project = workspace.project("qm9")
    experiments = [experiment.id for experiment in project.list_experiments()]
    assert len(experiments) == 5 and "baseline" in experiments
    grid = workspace.runs(where="lr < 1e-3", order_by="results.loss")
    assert [row.params["batch"] for row in grid] == [64, 32]
    assert all(row.status == "succeeded" for row in grid)
    best = grid[0]
    assert f"{best.experiment}/{best.id}: batch=64 loss={best.results['loss']}" in output
    cancelled = workspace.runs(where={"status": "cancelled"})
    assert len(cancelled) == 1 and f"cancelled runs: ['{cancelled[0].id}']" in output


# -- sweep and demo through the CLI ----------------------------------------------------------


def test_sweep_runs_one_experiment_per_grid_point_with_profiles(tmp_path: Path) -> None:
    script = EXAMPLES / "sweep/sweep.py"

    first = molexp_json("run", script, "--profile", "fast", cwd=tmp_path)
    assert (first["executed"], first["failed"], first["skipped"]) == (4, 0, 0)
    experiments = sorted(outcome["experiment"] for outcome in first["runs"])
    assert experiments == ["n4-t0.2", "n4-t0.5", "n8-t0.2", "n8-t0.5"]
    for outcome in first["runs"]:
        run_dir = Path(outcome["run_dir"])
        assert run_dir.is_relative_to(tmp_path / "lab")  # ./lab relative to the working directory
        record = load_json(run_dir / "run.json")
        assert record["status"] == "succeeded"
        assert record["profile"]["name"] == "fast"
        assert record["profile"]["config"] == {"step_size": 0.1, "record_every": 10, "n_steps": 400}
        assert set(record["results"]) == {"mean_energy", "min_energy", "acceptance"}
        energies = load_json(run_dir / "artifacts/energies.json")["energies"]
        assert len(energies) == 400 // 10
        assert (run_dir / "logs/mc.log").is_file()
        series = molexp_json(
            "metrics", outcome["run_id"], "energy", cwd=tmp_path, MOLEXP_WORKSPACE="lab"
        )
        assert series == series | {"name": "energy"}
        assert [point["value"] for point in series["points"]] == energies
        assert [point["step"] for point in series["points"]] == list(range(0, 400, 10))

    second = molexp_json("run", script, "--profile", "fast", cwd=tmp_path)
    assert (second["executed"], second["skipped"]) == (0, 4)
    assert {o["run_id"] for o in second["runs"]} == {o["run_id"] for o in first["runs"]}

    accurate = molexp_json("run", script, "--profile", "accurate", cwd=tmp_path)
    assert accurate["executed"] == 4
    assert not {o["run_id"] for o in accurate["runs"]} & {o["run_id"] for o in first["runs"]}
    record = load_json(Path(accurate["runs"][0]["run_dir"]) / "run.json")
    assert record["profile"]["name"] == "accurate"
    assert record["profile"]["config"] == {"step_size": 0.1, "record_every": 20, "n_steps": 4000}

    queried = molexp_json(
        "query", 'profile == "accurate" and n_atoms == 8', cwd=tmp_path, MOLEXP_WORKSPACE="lab"
    )
    assert sorted(row["experiment"] for row in queried) == ["n8-t0.2", "n8-t0.5"]
    # the project-wide view: every run of the sweep, across its experiments, and the metric
    rows = molexp_json("ls", "runs", "-p", "lj-clusters", cwd=tmp_path, MOLEXP_WORKSPACE="lab")
    assert len(rows) == 8 and len({row["experiment"] for row in rows}) == 4
    assert all(row["metrics"]["energy"]["count"] in (40, 200) for row in rows)


def test_sweep_workspace_follows_molexp_workspace(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"

    report = molexp_json(
        "run",
        EXAMPLES / "sweep/sweep.py",
        "--profile",
        "fast",
        "--dry-run",
        cwd=tmp_path,
        MOLEXP_WORKSPACE=elsewhere,
    )
    assert report["to_execute"] == 4
    assert {Path(item["workspace"]) for item in report["runs"]} == {elsewhere}
    assert list(tmp_path.iterdir()) == []  # a dry run writes nothing


def test_demo_via_cli_then_python_api(tmp_path: Path) -> None:
    script = EXAMPLES / "demo/demo.py"

    first = molexp_json("run", script, cwd=tmp_path)
    assert (first["executed"], first["failed"], first["skipped"]) == (6, 0, 0)
    assert sorted({o["experiment"] for o in first["runs"]}) == ["decane", "hexane"]
    assert sorted(o["replica_index"] for o in first["runs"]) == [0, 0, 1, 1, 2, 2]
    for outcome in first["runs"]:
        run_dir = Path(outcome["run_dir"])
        assert run_dir.is_relative_to(tmp_path / "lab")
        record = load_json(run_dir / "run.json")
        assert record["status"] == "succeeded"
        assert record["profile"]["name"] == "default"
        assert record["profile"]["config"]["n_conformers"] == 24
        results = record["results"]
        assert results["min_energy"] <= results["mean_energy"]
        xyz = (run_dir / "artifacts/best_conformer.xyz").read_text().splitlines()
        assert int(xyz[0]) == record["parameters"]["n_atoms"] == len(xyz) - 2
        assert f"conformer {results['best_conformer']} " in xyz[1]
        energies = load_json(run_dir / "artifacts/energies.json")
        assert len(energies["energies"]) == 24
        assert min(energies["energies"]) == results["min_energy"]
        log = (run_dir / "logs/search.log").read_text()
        assert "embedded 24 conformers" in log and "results:" in log

    second = molexp_json("run", script, cwd=tmp_path)
    assert (second["executed"], second["skipped"]) == (0, 6)

    output = run_example("demo/demo.py", cwd=tmp_path)
    assert output.count("skipped (already succeeded)") == 6
    for outcome in first["runs"]:
        assert outcome["run_dir"] in output  # the Python API derives the CLI's run ids
    assert f"workspace: {tmp_path / 'lab'}" in output


def test_demo_via_python_api_then_cli_executes_nothing(tmp_path: Path) -> None:
    output = run_example("demo/demo.py", cwd=tmp_path)
    assert output.count(": succeeded, executed") == 6
    run_dirs = re.findall(r"^  (/.+)$", output, re.MULTILINE)
    assert len(run_dirs) == 6
    assert all((Path(run_dir) / "artifacts/best_conformer.xyz").is_file() for run_dir in run_dirs)

    report = molexp_json("run", EXAMPLES / "demo/demo.py", cwd=tmp_path)
    assert (report["executed"], report["skipped"]) == (0, 6)
    assert sorted(o["run_dir"] for o in report["runs"]) == sorted(run_dirs)
