"""Every attempt keeps its own results, artifacts and logs, through the real ``molexp``.

A script is run, edited (a code change) and run again with ``--force``; a failing run is
fixed and re-run with ``--rerun-failed`` (resuming the task that had succeeded). The first
attempt's results and artifact bytes stay reachable, each attempt's log lines stay in their
own file, and ``molexp show RUN --attempt N`` / ``logs --attempt N`` / ``artifacts --attempt N``
print any attempt and what changed between attempts.
"""

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

EOS_SCRIPT = """
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="eos")


@wf.task
def fit(ctx: TaskContext) -> str:
    ctx.set_result("eos", "{eos}")
    ctx.set_result("b0", {b0})
    ctx.artifact.save("fit.json", {{"eos": "{eos}", "b0": {b0}}})
    ctx.artifact.save("raw.bin", b"{eos} bytes")
    ctx.log("fit").append("fitted {eos}")
    return "{eos}"


spec = wf.build()
ws = me.Workspace(HERE / "lab")
spec.bind_to(ws.Project("eos").Experiment("cu"))
me.entry(ws)
"""

RESUME_SCRIPT = """
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, workflow

HERE = Path(__file__).parent
wf = workflow(name="scan")


@wf.task
def prepare(ctx: TaskContext) -> int:
    ctx.log("prepare").append("prepared 5 strains")
    ctx.set_result("strains", 5)
    ctx.artifact.save("strains.json", [0.98, 0.99, 1.0, 1.01, 1.02])
    return 5


@wf.task(depends_on=["prepare"])
def scan(ctx: TaskContext) -> int:
    ctx.log("scan").append("scanning")
    if (HERE / "fail").exists():
        raise RuntimeError("EMT diverged")
    ctx.set_result("energies", ctx.inputs)
    return ctx.inputs


spec = wf.build()
ws = me.Workspace(HERE / "lab")
spec.bind_to(ws.Project("eos").Experiment("scan"))
me.entry(ws)
"""


def molexp(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    return subprocess.run(
        [*MOLEXP, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(*args: str | Path, cwd: Path) -> str:
    completed = molexp(*args, cwd=cwd)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def ok_json(*args: str | Path, cwd: Path) -> Any:
    return json.loads(ok(*args, "--json", cwd=cwd))


def test_force_after_a_code_change_keeps_the_old_attempts_results_and_artifact_bytes(
    tmp_path: Path,
) -> None:
    script = tmp_path / "eos.py"
    script.write_text(EOS_SCRIPT.format(eos="murnaghan", b0=140.1))
    [first] = ok_json("run", script, cwd=tmp_path)["runs"]
    run_id, run_dir = first["run_id"], Path(first["run_dir"])

    script.write_text(EOS_SCRIPT.format(eos="birch", b0=138.7))  # the researcher's edit
    [second] = ok_json("run", script, "--force", cwd=tmp_path)["runs"]
    assert (second["run_id"], second["action"]) == (run_id, "executed")

    # The current view is the latest attempt.
    shown = ok_json("show", run_id, cwd=tmp_path / "lab")
    assert shown["results"] == {"eos": "birch", "b0": 138.7}
    assert (run_dir / "artifacts" / "raw.bin").read_bytes() == b"birch bytes"
    assert [a["status"] for a in shown["execution_history"]] == ["succeeded", "succeeded"]

    # The first attempt is still all there.
    old = ok_json("show", run_id, "--attempt", "1", cwd=tmp_path / "lab")
    assert (old["attempt"], old["attempts"]) == (1, 2)
    assert old["results"] == old["own_results"] == {"eos": "murnaghan", "b0": 140.1}
    paths = {a["name"]: Path(a["absolute_path"]) for a in old["artifacts"]}
    assert paths["raw.bin"].read_bytes() == b"murnaghan bytes"
    assert json.loads(paths["fit.json"].read_text()) == {"eos": "murnaghan", "b0": 140.1}
    assert [a["attempt"] for a in old["artifacts"]] == [1, 1]

    # What changed between the attempts.
    new = ok_json("show", run_id, "--attempt", "2", cwd=tmp_path / "lab")
    changes = new["changes"]
    assert (changes["before"], changes["after"]) == (1, 2)
    assert {(c["key"], c["before"], c["after"]) for c in changes["results"]} == {
        ("eos", "murnaghan", "birch"),
        ("b0", 140.1, 138.7),
    }
    assert [(c["name"], c["change"]) for c in changes["artifacts"]] == [
        ("fit.json", "changed"),
        ("raw.bin", "changed"),
    ]
    text = ok("show", run_id, "--attempt", "2", cwd=tmp_path / "lab")
    assert "murnaghan" in text and "birch" in text and "2 results changed" in text
    assert "2 artifacts changed" in ok("show", run_id, cwd=tmp_path / "lab")

    # Artifacts and logs, per attempt.
    listed = ok_json("artifacts", run_id, "--attempt", "1", cwd=tmp_path / "lab")
    assert {Path(a["absolute_path"]).read_bytes() for a in listed if a["name"] == "raw.bin"} == {
        b"murnaghan bytes"
    }
    current = ok_json("artifacts", run_id, cwd=tmp_path / "lab")
    assert sorted(a["name"] for a in current) == ["fit.json", "raw.bin"]
    assert ok("logs", run_id, cwd=tmp_path / "lab") == "fitted birch\n"
    assert ok("logs", run_id, "--attempt", "1", cwd=tmp_path / "lab") == "fitted murnaghan\n"

    missing = molexp("show", run_id, "--attempt", "3", cwd=tmp_path / "lab")
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: run '{run_id}' has no attempt 3; it has attempts 1 to 2"
    )


def test_rerun_failed_keeps_each_attempts_logs_apart_and_resumed_results_visible(
    tmp_path: Path,
) -> None:
    script = tmp_path / "scan.py"
    script.write_text(RESUME_SCRIPT)
    (tmp_path / "fail").touch()
    failed = molexp("run", script, "--json", cwd=tmp_path)
    assert failed.returncode == 1, failed.stderr
    [run] = json.loads(failed.stdout)["runs"]
    run_id = run["run_id"]
    (tmp_path / "fail").unlink()
    ok_json("run", script, "--rerun-failed", cwd=tmp_path)

    # The rerun resumed `prepare` (not run again): its log stays with attempt 1.
    assert ok("logs", run_id, "scan", "--attempt", "1", cwd=tmp_path / "lab") == "scanning\n"
    assert ok("logs", run_id, "scan", cwd=tmp_path / "lab") == "scanning\n"  # not twice
    assert ok("logs", run_id, "--attempt", "1", cwd=tmp_path / "lab") == (
        "==> prepare <==\nprepared 5 strains\n==> scan <==\nscanning\n"
    )
    missing = molexp("logs", run_id, "prepare", cwd=tmp_path / "lab")
    assert missing.returncode == 1
    assert f"run {run_id} attempt 2 has no log 'prepare'; available: scan" in missing.stderr

    # Its results and artifacts stay in the current view and in attempt 2's view.
    latest = ok_json("show", run_id, "--attempt", "2", cwd=tmp_path / "lab")
    assert latest["results"] == {"strains": 5, "energies": 5}
    assert latest["own_results"] == {"energies": 5}
    assert [(a["name"], a["attempt"]) for a in latest["artifacts"]] == [("strains.json", 1)]
    assert [c["key"] for c in latest["changes"]["results"]] == ["energies"]
    first = ok_json("show", run_id, "--attempt", "1", cwd=tmp_path / "lab")
    assert first["status"] == "failed" and first["error"]["task_name"] == "scan"
