"""``molexp run --outdated`` executes again exactly the succeeded runs whose tasks changed since
their last attempt — a task's code, a first-party helper it calls, its task config — naming the
changed tasks, and resumes the tasks that did not change; ``--dry-run`` lists them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]

SCRIPT = """
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

from helpers import scale

HERE = Path(__file__).parent
wf = workflow(name="scan")


@wf.task
def prepare(ctx: TaskContext) -> int:
    return {strains}


@wf.task(depends_on=["prepare"])
def fit(ctx: TaskContext) -> float:
    value = scale(ctx.inputs)
    ctx.set_result("value", value)
    return value


spec = wf.build()
ws = me.Workspace(HERE / "lab")
spec.bind_to(ws.Project("eos").Experiment("cu", n_replicas=2))
me.entry(ws)
"""


def molexp(*args: str, cwd: Path) -> Any:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    completed = subprocess.run(
        [*MOLEXP, *args, "--json"],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    return json.loads(completed.stdout)


def write(directory: Path, *, strains: int = 5, factor: float = 2.0) -> None:
    (directory / "s.py").write_text(SCRIPT.format(strains=strains))
    (directory / "helpers.py").write_text(f"def scale(n):\n    return n * {factor}\n")


def reasons(plan: Any) -> list[tuple[str, str]]:
    return [(run["action"], run["reason"]) for run in plan["runs"]]


def task_statuses(run_dir: str) -> dict[str, str]:
    record = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    execution_id = record["execution_history"][-1]["execution_id"]
    state = Path(run_dir) / "execution" / execution_id / "state.json"
    tasks = json.loads(state.read_text(encoding="utf-8"))["tasks"]
    return {name: task["status"] for name, task in tasks.items()}


def test_only_runs_whose_tasks_changed_execute_again(tmp_path: Path) -> None:
    write(tmp_path)
    first = molexp("run", "s.py", cwd=tmp_path)
    assert first["executed"] == 2

    unchanged = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert reasons(unchanged) == [("skip", "already succeeded, up to date")] * 2

    # A first-party helper that `fit` calls changed: `fit` is outdated, `prepare` is not.
    write(tmp_path, factor=3.0)
    listed = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert reasons(listed) == [("execute", "outdated: fit (code or task config changed)")] * 2
    assert molexp("run", "s.py", cwd=tmp_path)["executed"] == 0  # without --outdated: skipped

    again = molexp("run", "s.py", "--outdated", cwd=tmp_path)
    assert again["executed"] == 2
    for run in again["runs"]:
        assert task_statuses(run["run_dir"]) == {"prepare": "resumed", "fit": "succeeded"}
        record = json.loads((Path(run["run_dir"]) / "run.json").read_text(encoding="utf-8"))
        assert record["results"] == {"value": 15.0}
        assert len(record["execution_history"]) == 2
    settled = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert reasons(settled) == [("skip", "already succeeded, up to date")] * 2

    # The root task changed: it is named (its dependent runs again without being listed).
    write(tmp_path, strains=7, factor=3.0)
    listed = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert reasons(listed) == [("execute", "outdated: prepare (code or task config changed)")] * 2
    through_workers = molexp("run", "s.py", "--outdated", "--jobs", "2", cwd=tmp_path)
    assert through_workers["executed"] == 2
    for run in through_workers["runs"]:
        assert task_statuses(run["run_dir"]) == {"prepare": "succeeded", "fit": "succeeded"}
    settled = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert reasons(settled) == [("skip", "already succeeded, up to date")] * 2


def test_a_run_without_a_task_journal_counts_as_outdated(tmp_path: Path) -> None:
    write(tmp_path)
    first = molexp("run", "s.py", cwd=tmp_path)
    for run in first["runs"]:
        for journal in Path(run["run_dir"]).glob("execution/*/task-outputs"):
            shutil.rmtree(journal)
    listed = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    assert {reason for _, reason in reasons(listed)} == {
        "outdated: prepare (no task journal to compare), fit (no task journal to compare)"
    }


def tree_state(root: Path) -> dict[str, int]:
    return {
        str(path.relative_to(root)): path.stat().st_mtime_ns
        for path in sorted(root.rglob("*"))
        if "__pycache__" not in path.parts
    }


def test_ls_outdated_names_the_changed_tasks_and_writes_nothing(tmp_path: Path) -> None:
    write(tmp_path)
    molexp("run", "s.py", cwd=tmp_path)
    lab = str(tmp_path / "lab")
    elsewhere = tmp_path / "elsewhere"  # the script is found from the runs, not from here
    elsewhere.mkdir()
    assert molexp("ls", "--outdated", "-w", lab, cwd=elsewhere) == []

    write(tmp_path, factor=3.0)  # `fit`'s helper changed
    before = tree_state(tmp_path / "lab")
    listed = molexp("ls", "--outdated", "-w", lab, cwd=elsewhere)
    assert [run["changed"] for run in listed] == [{"fit": "code or task config changed"}] * 2
    assert all(run["status"] == "succeeded" for run in listed)
    assert tree_state(tmp_path / "lab") == before  # importing the script changed nothing

    # What `ls --outdated` lists is what `run --outdated` executes.
    planned = molexp("run", "s.py", "--outdated", "--dry-run", cwd=tmp_path)
    executed = {run["run_id"] for run in planned["runs"] if run["action"] == "execute"}
    assert {run["id"] for run in listed} == executed
    molexp("run", "s.py", "--outdated", cwd=tmp_path)
    assert molexp("ls", "--outdated", "-w", lab, cwd=elsewhere) == []


def test_ls_outdated_notes_runs_it_cannot_compare(tmp_path: Path) -> None:
    write(tmp_path)
    molexp("run", "s.py", cwd=tmp_path)
    (tmp_path / "s.py").write_text("raise RuntimeError('broken on purpose')\n")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    completed = subprocess.run(
        [*MOLEXP, "ls", "--outdated", "-w", str(tmp_path / "lab"), "--json"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == []
    assert "2 run(s) of" in completed.stderr and "not compared" in completed.stderr
    assert "broken on purpose" in completed.stderr
