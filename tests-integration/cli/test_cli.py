"""The real ``molexp`` executable, driven in subprocesses on temporary workspaces.

Every test writes a small script into ``tmp_path`` that builds a workflow, binds it to an
experiment and registers its workspace with ``me.entry(ws)``, then runs ``molexp`` commands the
way a user would and checks the on-disk record and the printed (JSON) output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]


def molexp(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    environment.update(env or {})
    return subprocess.run(
        [*MOLEXP, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok_json(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> Any:
    completed = molexp(*args, "--json", cwd=cwd, env=env)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def assert_one_line_error(completed: subprocess.CompletedProcess[str], code: int) -> str:
    assert completed.returncode == code, (completed.returncode, completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in completed.stderr
    return lines[0]


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


SCRIPT = """
import time
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="demo")


def note(line: str) -> None:
    with (HERE / "calls.txt").open("a") as handle:
        handle.write(line + "\\n")


@wf.task
def prepare(ctx: TaskContext) -> list[float]:
    note(f"prepare {{ctx.run_context.run.id}}")
    return [1.0, 2.0, 3.0]


@wf.task(depends_on=["prepare"])
def train(ctx: TaskContext) -> float:
    note(f"train {{ctx.run_context.run.id}}")
    time.sleep(ctx.config.get("sleep", 0))
    if (HERE / "fail").exists():
        raise RuntimeError("training diverged")
    value = sum(ctx.inputs) * ctx.config.get("scale", 1.0) * ctx.params["lr"]
    ctx.set_result("value", value)
    ctx.log("train").append(f"value={{value}}")
    ctx.artifact.save("metrics.json", {{"value": value}})
    return value


spec = wf.build()
ws = me.Workspace(HERE / "lab")
project = ws.Project("demo")
exp = project.Experiment(
    "baseline", params={{"lr": 0.5}}, n_replicas={replicas}, workflow_source=str(Path(__file__))
)
spec.bind_to(exp)
me.entry(ws)
print("script imported")

if __name__ == "__main__":
    note("main block")
"""

PROFILES = """
[defaults]
scale = 1.0

[profiles.fast]
scale = 2.0

[profiles.slow]
extends = "fast"
sleep = {sleep}
"""


def write_project(tmp_path: Path, *, replicas: int = 2, sleep: float = 1.0) -> Path:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT.format(replicas=replicas))
    (tmp_path / "molexp.toml").write_text(PROFILES.format(sleep=sleep))
    return script


def calls(tmp_path: Path) -> list[str]:
    path = tmp_path / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def run_record(run_dir: str | Path) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((Path(run_dir) / "run.json").read_text())
    return record


def test_run_twice_second_run_executes_nothing(tmp_path: Path) -> None:
    script = write_project(tmp_path)
    first = ok_json("run", script, cwd=tmp_path)
    assert (first["executed"], first["failed"], first["skipped"]) == (2, 0, 0)
    assert all(r["status"] == "succeeded" for r in first["runs"])
    assert "main block" not in calls(tmp_path)
    executed_calls = len(calls(tmp_path))

    second = ok_json("run", script, cwd=tmp_path)
    assert (second["executed"], second["skipped"]) == (0, 2)
    assert [r["run_id"] for r in second["runs"]] == [r["run_id"] for r in first["runs"]]
    assert len(calls(tmp_path)) == executed_calls

    record = run_record(first["runs"][0]["run_dir"])
    assert record["workflow_snapshot"]["script"] == str(script)
    assert record["parameters"] == {"lr": 0.5, "seed": 0}


def test_profile_and_overrides_give_new_run_ids_and_reach_ctx_config(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=1)
    default = ok_json("run", script, cwd=tmp_path)["runs"][0]
    fast = ok_json("run", script, "--profile", "fast", cwd=tmp_path)["runs"][0]
    overridden = ok_json("run", script, "--profile", "fast", "--set", "scale=4", cwd=tmp_path)[
        "runs"
    ][0]
    assert len({default["run_id"], fast["run_id"], overridden["run_id"]}) == 3
    values = [run_record(r["run_dir"])["results"]["value"] for r in (default, fast, overridden)]
    assert values == [3.0, 6.0, 12.0]
    profile = run_record(overridden["run_dir"])["profile"]
    assert profile["name"] == "fast" and profile["config"] == {"scale": 4}
    assert len(profile["config_hash"]) == 64


def test_failed_task_fails_the_run_and_rerun_failed_runs_it_again(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=1)
    (tmp_path / "fail").write_text("")
    failed = molexp("run", script, "--json", cwd=tmp_path)
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    [run] = report["runs"]
    assert (run["action"], run["status"]) == ("failed", "failed")
    assert "train" in run["reason"] and "training diverged" in run["reason"]
    record = run_record(run["run_dir"])
    assert record["status"] == "failed" and record["error"]["task_name"] == "train"

    skipped = ok_json("run", script, cwd=tmp_path)
    assert skipped["runs"][0]["action"] == "skipped"

    (tmp_path / "fail").unlink()
    rerun = ok_json("run", script, "--rerun-failed", cwd=tmp_path)
    assert rerun["runs"][0]["run_id"] == run["run_id"]
    assert (rerun["runs"][0]["action"], rerun["runs"][0]["status"]) == ("executed", "succeeded")
    record = run_record(run["run_dir"])
    assert [a["status"] for a in record["execution_history"]] == ["failed", "succeeded"]
    # The workflow layer has no per-task resume yet: the rerun is a full new attempt.
    assert calls(tmp_path).count(f"train {run['run_id']}") == 2


def test_execute_completes_a_pending_run_in_a_fresh_process(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=1)
    creator = textwrap.dedent(
        f"""
        import molexp as me
        ws = me.Workspace.load({str(tmp_path / "lab")!r})
        run = ws.project("demo").experiment("baseline").Run(parameters={{"lr": 0.25}}, id="manual")
        print(run.run_dir)
        """
    )
    ok_json("run", script, cwd=tmp_path)
    created = subprocess.run(
        [sys.executable, "-c", creator], capture_output=True, text=True, check=True
    )
    run_dir = Path(created.stdout.strip())
    assert run_record(run_dir)["status"] == "pending"

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    report = ok_json("execute", run_dir, cwd=elsewhere)
    assert (report["action"], report["status"]) == ("executed", "succeeded")
    record = run_record(run_dir)
    assert record["status"] == "succeeded"
    assert record["results"]["value"] == pytest.approx(1.5)
    assert record["profile"]["name"] == "default"

    again = molexp("execute", run_dir, "--profile", "fast", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    record = run_record(run_dir)
    assert record["results"]["value"] == pytest.approx(3.0)
    assert [a["profile_name"] for a in record["execution_history"]] == ["default", "fast"]


def test_every_json_output_parses(tmp_path: Path) -> None:
    script = write_project(tmp_path)
    assert ok_json("run", script, "--dry-run", cwd=tmp_path)["dry_run"] is True
    runs = ok_json("run", script, cwd=tmp_path)["runs"]
    env = {"MOLEXP_WORKSPACE": str(tmp_path / "lab")}
    run_id = runs[0]["run_id"]
    assert ok_json("ls", cwd=tmp_path, env=env)["projects"][0]["id"] == "demo"
    assert ok_json("ls", "projects", cwd=tmp_path, env=env)[0]["total_runs"] == 2
    assert ok_json("ls", "experiments", cwd=tmp_path, env=env)[0]["runs"] == {"succeeded": 2}
    assert len(ok_json("ls", "runs", cwd=tmp_path, env=env)) == 2
    assert ok_json("show", run_id, cwd=tmp_path, env=env)["id"] == run_id
    [artifact] = ok_json("artifacts", run_id, cwd=tmp_path, env=env)
    assert artifact["name"] == "metrics.json"
    assert json.loads(Path(artifact["absolute_path"]).read_text()) == {"value": 3.0}
    kinds = {a["kind"] for a in ok_json("assets", cwd=tmp_path, env=env)}
    assert {"artifact", "log", "execution_state"} <= kinds
    assert len(ok_json("query", "seed == 1", cwd=tmp_path, env=env)) == 1
    assert ok_json("reap", cwd=tmp_path, env=env) == []
    assert ok_json("profiles", script, cwd=tmp_path)["file"] == str(tmp_path / "molexp.toml")
    assert ok_json("init", cwd=tmp_path / "lab")["created"] is False
    assert ok_json("execute", runs[1]["run_dir"], cwd=tmp_path)["status"] == "succeeded"


def test_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=1)
    assert "script not found" in assert_one_line_error(
        molexp("run", tmp_path / "missing.py", cwd=tmp_path), 2
    )
    raising = tmp_path / "raising.py"
    raising.write_text("import os\n\nvalue = int('not a number')\n")
    line = assert_one_line_error(molexp("run", raising, cwd=tmp_path), 1)
    assert "line 3" in line and "ValueError" in line
    silent = tmp_path / "silent.py"
    silent.write_text("x = 1\n")
    assert "registered no workspace" in assert_one_line_error(
        molexp("run", silent, cwd=tmp_path), 1
    )
    line = assert_one_line_error(molexp("run", script, "--profile", "gpu", cwd=tmp_path), 2)
    assert "unknown profile 'gpu'" in line and "default, fast, slow" in line
    bad_profiles = tmp_path / "bad.toml"
    bad_profiles.write_text("[profiles.x]\nscale = \n")
    line = assert_one_line_error(molexp("run", script, "--config", bad_profiles, cwd=tmp_path), 1)
    assert "malformed profile file" in line and "line 2" in line
    ok_json("run", script, cwd=tmp_path)
    env = {"MOLEXP_WORKSPACE": str(tmp_path / "lab")}
    assert "unknown run 'nope'" in assert_one_line_error(
        molexp("show", "nope", cwd=tmp_path, env=env), 1
    )
    assert "query syntax error" in assert_one_line_error(
        molexp("query", "lr <", cwd=tmp_path, env=env), 2
    )
    assert_one_line_error(molexp("run", cwd=tmp_path), 2)
    assert "no workspace found" in assert_one_line_error(molexp("ls", cwd=tmp_path), 1)
    debug = molexp("ls", cwd=tmp_path, env={"MOLEXP_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr


@pytest.mark.slow
def test_jobs_two_executes_runs_in_parallel_processes(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=2, sleep=1.0)
    report = ok_json("run", script, "--profile", "slow", "--jobs", "2", cwd=tmp_path)
    assert [r["status"] for r in report["runs"]] == ["succeeded", "succeeded"]
    records = [run_record(r["run_dir"]) for r in report["runs"]]
    pids = {record["execution_history"][0]["pid"] for record in records}
    assert len(pids) == 2
    spans = [
        (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for r in records
    ]
    assert spans[0][0] < spans[1][1] and spans[1][0] < spans[0][1], spans


@pytest.mark.slow
def test_concurrent_invocations_never_execute_a_run_twice(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=1, sleep=1.0)
    ok_json("run", script, "--dry-run", cwd=tmp_path)
    command = [*MOLEXP, "run", str(script), "--profile", "slow", "--json"]
    processes = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in processes]
    reports = [json.loads(out) for out, _ in outputs]
    actions = sorted(report["runs"][0]["action"] for report in reports)
    assert actions == ["executed", "skipped"]
    run_id = reports[0]["runs"][0]["run_id"]
    assert calls(tmp_path).count(f"train {run_id}") == 1
    record = run_record(reports[0]["runs"][0]["run_dir"])
    assert len(record["execution_history"]) == 1


def test_dry_run_touches_nothing(tmp_path: Path) -> None:
    script = write_project(tmp_path)
    before = tree_digest(tmp_path)
    plan = ok_json("run", script, "--dry-run", cwd=tmp_path)
    assert [r["action"] for r in plan["runs"]] == ["execute", "execute"]
    assert tree_digest(tmp_path) == before
    assert not (tmp_path / "lab").exists()

    ok_json("run", script, cwd=tmp_path)
    after_run = tree_digest(tmp_path)
    human = molexp("run", script, "--dry-run", "--profile", "fast", "--force", cwd=tmp_path)
    assert human.returncode == 0 and "would be executed" in human.stdout
    assert tree_digest(tmp_path) == after_run


def test_inspection_and_management_commands(tmp_path: Path) -> None:
    script = write_project(tmp_path, replicas=2)
    runs = ok_json("run", script, cwd=tmp_path)["runs"]
    lab = tmp_path / "lab"
    run_id = runs[1]["run_id"]

    listing = molexp("ls", "-w", lab, cwd=tmp_path)
    assert listing.returncode == 0 and "experiment baseline: 2 succeeded" in listing.stdout
    queried = molexp("query", "seed == 1", "-w", lab, cwd=tmp_path)
    assert queried.returncode == 0 and run_id in queried.stdout
    shown = molexp("show", run_id, "-w", lab, cwd=tmp_path)
    assert shown.returncode == 0 and "config_hash" in shown.stdout and "Attempts" in shown.stdout
    logs = molexp("logs", run_id, "train", "--tail", "1", "-w", lab, cwd=tmp_path)
    assert logs.returncode == 0 and logs.stdout == "value=3.0\n"
    profiles = molexp("profiles", tmp_path, cwd=tmp_path)
    assert profiles.returncode == 0 and "slow" in profiles.stdout

    helper = textwrap.dedent(
        f"""
        import os, molexp as me
        ws = me.Workspace.load({str(lab)!r})
        exp = ws.project("demo").experiment("baseline")
        exp.Run(id="waiting")
        crashed = exp.Run(id="crashed")
        crashed.start().__enter__()
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", helper], check=True)
    cancelled = molexp("cancel", "waiting", "-w", lab, cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    assert (
        run_record(lab / "projects/demo/experiments/baseline/runs/run-waiting")["status"]
        == "cancelled"
    )
    reaped = ok_json("reap", "-w", lab, cwd=tmp_path)
    assert [r["id"] for r in reaped] == ["crashed"] and reaped[0]["status"] == "failed"
    statuses = {r["id"]: r["status"] for r in ok_json("ls", "runs", "-w", lab, cwd=tmp_path)}
    assert statuses["crashed"] == "failed" and statuses["waiting"] == "cancelled"


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "molexp.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0 and "execute" in completed.stdout
