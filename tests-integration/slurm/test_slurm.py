"""The Slurm bridge against the real local Slurm (``bash ../shared/slurm/start-local-slurm``).

Skipped, with the reason, when ``sbatch`` is not on PATH. Every wait polls with a deadline; the
walltime scenario needs Slurm's smallest time limit (1 minute) plus its timeout sweep, so its job
is submitted when the module starts and checked by the last test (about 90 s in all).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        shutil.which("sbatch") is None,
        reason="sbatch is not on PATH: start the local cluster with "
        "`bash ../shared/slurm/start-local-slurm` (from the repository root)",
    ),
]

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]
T = TypeVar("T")


def molexp(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    environment["MOLEXP_WORKSPACE"] = str(cwd / "lab")
    return subprocess.run(
        [*MOLEXP, *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok_json(*args: str | Path, cwd: Path) -> Any:
    completed = molexp(*args, "--json", cwd=cwd)
    assert completed.returncode == 0, (completed.stdout, completed.stderr)
    return json.loads(completed.stdout)


def slurm(*args: str) -> str:
    completed = subprocess.run(args, capture_output=True, text=True, check=True, timeout=60)
    return completed.stdout


def wait_until(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """Poll ``probe`` every half second until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


def write_script(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "flow.py"
    header = """
        import os
        import time
        from pathlib import Path

        import molexp as me
        from molexp.workflow import TaskContext, workflow

        HERE = Path(__file__).parent
        ws = me.Workspace(HERE / "lab")
        project = ws.Project("cluster")
    """
    script.write_text(textwrap.dedent(header) + textwrap.dedent(body) + "\nme.entry(ws)\n")
    return script


def job_of(report: dict[str, Any]) -> str:
    """The array job id all submitted runs of a ``molexp run --json`` report belong to."""
    jobs = {str(r["reason"]).removeprefix("Slurm job ").split("_")[0] for r in report["runs"]}
    assert len(jobs) == 1, jobs
    return jobs.pop()


def squeue_keys(job_id: str) -> list[str]:
    return slurm("squeue", "-h", "-r", "-j", job_id, "-o", "%i").split()


def sacct(job_id: str) -> list[list[str]]:
    text = slurm("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "JobID,State,Elapsed")
    return [line.split("|") for line in text.splitlines() if line]


@pytest.fixture
def held_jobs() -> Iterator[list[str]]:
    """Job ids to scancel when the test ends (held arrays would wait forever)."""
    jobs: list[str] = []
    yield jobs
    if jobs:
        subprocess.run(["scancel", *jobs], check=False, timeout=60)


# -- the walltime scenario starts with the module --------------------------------------------

WALLTIME_BODY = """
    wf = workflow(name="sleepy")


    @wf.task
    def nap(ctx: TaskContext) -> None:
        time.sleep(600)


    spec = wf.build()
    spec.bind_to(project.Experiment("walltime"))
"""


@pytest.fixture(scope="module")
def walltime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str, str]]:
    """A run submitted with --time 1 whose task sleeps far longer: (dir, run id, job id)."""
    directory = tmp_path_factory.mktemp("walltime")
    script = write_script(directory, WALLTIME_BODY)
    report = ok_json("run", script, "--executor", "slurm", "--time", "1", cwd=directory)
    [run] = report["runs"]
    job_id = job_of(report)
    yield directory, run["run_id"], job_id
    subprocess.run(["scancel", job_id], check=False, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _start_walltime_first(walltime: tuple[Path, str, str]) -> None:
    """Submit the walltime job before the other tests so its minute runs meanwhile."""


# -- scenarios -------------------------------------------------------------------------------


def test_a_sweep_of_20_runs_is_one_array_and_every_run_succeeds(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        wf = workflow(name="sweep")


        @wf.task
        def square(ctx: TaskContext) -> float:
            value = ctx.params["x"] ** 2 + ctx.params["seed"]
            ctx.set_result("value", value)
            ctx.log("square").append(f"pid={os.getpid()} value={value}")
            return value


        spec = wf.build()
        spec.bind_to(project.Experiment("sweep", params={"x": 3}, n_replicas=20))
        """,
    )
    report = ok_json("run", script, "--executor", "slurm", "--time", "5", cwd=tmp_path)
    assert report["submitted"] == 20
    job_id = job_of(report)
    assert sorted(int(r["reason"].split("_")[1]) for r in report["runs"]) == list(range(20))

    def all_finished() -> list[dict[str, Any]] | None:
        runs: list[dict[str, Any]] = ok_json("ls", "runs", cwd=tmp_path)
        if all(r["status"] in {"succeeded", "failed", "cancelled"} for r in runs):
            return runs
        rows = sacct(job_id)
        if len(rows) == 20 and all(row[1] not in {"PENDING", "RUNNING"} for row in rows):
            ok_json("sync", cwd=tmp_path)  # every job ended: settle runs a job left behind
        return None

    runs = wait_until("the 20 runs to finish", all_finished, timeout=150)
    failures = [(r["id"], r["status"]) for r in runs if r["status"] != "succeeded"]
    assert not failures, [ok_json("show", run_id, cwd=tmp_path)["error"] for run_id, _ in failures]
    assert sorted(r["results"]["value"] for r in runs) == [9 + seed for seed in range(20)]

    # One job id in accounting, with one array task per run.
    def all_recorded() -> list[list[str]] | None:
        rows = sacct(job_id)
        return rows if len(rows) == 20 else None

    rows = wait_until("sacct to record all 20 tasks", all_recorded, 30)
    assert {row[0].split("_")[0] for row in rows} == {job_id}
    assert {row[1] for row in rows} == {"COMPLETED"}
    # Each attempt records its job and has Slurm's output in its execution directory.
    shown = ok_json("show", runs[0]["id"], cwd=tmp_path)
    [attempt] = shown["execution_history"]
    assert attempt["scheduler"]["job_id"] == job_id and attempt["status"] == "succeeded"
    execution_dir = Path(shown["run_dir"]) / "execution" / attempt["execution_id"]
    assert (execution_dir / "slurm.out").is_file() and (execution_dir / "slurm.err").is_file()
    assert ok_json("sync", cwd=tmp_path)["changes"] == []


def test_rerunning_while_runs_are_queued_submits_nothing_new(
    tmp_path: Path, held_jobs: list[str]
) -> None:
    script = write_script(
        tmp_path,
        """
        wf = workflow(name="held")


        @wf.task
        def noop(ctx: TaskContext) -> None:
            return None


        wf.build().bind_to(project.Experiment("held", n_replicas=3))
        """,
    )
    first = ok_json("run", script, "--executor", "slurm", "--hold", cwd=tmp_path)
    job_id = job_of(first)
    held_jobs.append(job_id)
    assert first["submitted"] == 3
    again = ok_json("run", script, "--executor", "slurm", "--hold", cwd=tmp_path)
    assert (again["submitted"], again["skipped"]) == (0, 3)
    assert {r["reason"].split(":", 1)[1].strip() for r in again["runs"]} == {
        "PENDING (JobHeldUser)"
    }
    # A local run does not touch them either.
    local = ok_json("run", script, cwd=tmp_path)
    assert (local["executed"], local["skipped"]) == (0, 3)
    assert sorted(squeue_keys(job_id)) == [f"{job_id}_{i}" for i in range(3)]
    names = slurm("squeue", "-h", "-r", "-o", "%j").split()
    assert names.count("molexp-held") == 3  # one array of three tasks: no second submission
    status = ok_json("status", cwd=tmp_path)
    assert {(s["status"], s["state"]) for s in status} == {("queued", "PENDING")}


def test_cancel_scancels_a_queued_run(tmp_path: Path, held_jobs: list[str]) -> None:
    script = write_script(
        tmp_path,
        """
        wf = workflow(name="tocancel")


        @wf.task
        def noop(ctx: TaskContext) -> None:
            return None


        wf.build().bind_to(project.Experiment("tocancel", n_replicas=2))
        """,
    )
    report = ok_json("run", script, "--executor", "slurm", "--hold", cwd=tmp_path)
    job_id = job_of(report)
    held_jobs.append(job_id)
    target = report["runs"][0]["run_id"]
    completed = molexp("cancel", target, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert f"Slurm job {job_id}_0 cancelled" in completed.stdout
    wait_until(f"{job_id}_0 to leave squeue", lambda: f"{job_id}_0" not in squeue_keys(job_id), 30)
    assert squeue_keys(job_id) == [f"{job_id}_1"]
    [shown] = ok_json("status", target, cwd=tmp_path)
    assert shown["status"] == "cancelled"
    # Nothing for sync to do: the run is already cancelled, the other one still queued.
    assert ok_json("sync", cwd=tmp_path)["changes"] == []


def test_following_the_log_of_a_run_whose_job_ended_unstarted_stops(
    tmp_path: Path, held_jobs: list[str]
) -> None:
    # `molexp logs --follow` waits for a queued run to write its log; a job cancelled behind
    # molexp's back never will, and the run stays queued until `molexp sync`: the wait asks
    # Slurm and stops with the job's end instead of waiting for ever.
    script = write_script(
        tmp_path,
        """
        wf = workflow(name="orphan")


        @wf.task
        def noop(ctx: TaskContext) -> None:
            return None


        wf.build().bind_to(project.Experiment("orphan"))
        """,
    )
    report = ok_json("run", script, "--executor", "slurm", "--hold", cwd=tmp_path)
    job_id = job_of(report)
    held_jobs.append(job_id)
    target = report["runs"][0]["run_id"]
    slurm("scancel", job_id)
    wait_until(f"{job_id} to leave squeue", lambda: squeue_keys(job_id) == [], 30)
    completed = molexp("logs", target, "train", "--follow", cwd=tmp_path)
    assert completed.returncode == 1, (completed.stdout, completed.stderr)
    assert f"waiting for run {target} (queued)" in completed.stderr
    assert f"Slurm job {job_id}_0" in completed.stderr
    assert "molexp sync" in completed.stderr
    [shown] = ok_json("status", target, cwd=tmp_path)
    assert shown["status"] == "queued"  # read only: settling it is sync's job


def test_a_remote_task_runs_as_its_own_job_between_local_tasks(tmp_path: Path) -> None:
    script = write_script(
        tmp_path,
        """
        wf = workflow(name="mixed")


        @wf.task
        def prepare(ctx: TaskContext) -> dict:
            return {"pid": os.getpid(), "values": [1, 2, 3]}


        @wf.task(depends_on=["prepare"], remote={"executor": "slurm", "time": 5})
        def heavy(ctx: TaskContext) -> dict:
            ctx.log("heavy").append(f"job {os.environ.get('SLURM_JOB_ID')}")
            ctx.set_result("remote_pid", os.getpid())
            return {"local_pid": ctx.inputs["pid"], "pid": os.getpid(),
                    "job": os.environ.get("SLURM_JOB_ID"), "total": sum(ctx.inputs["values"])}


        @wf.task(depends_on=["heavy"])
        def report(ctx: TaskContext) -> None:
            ctx.set_result("total", ctx.inputs["total"] * ctx.config["scale"])
            ctx.set_result("report_pid", os.getpid())
            ctx.set_result("job", ctx.inputs["job"])


        wf.build().bind_to(project.Experiment("mixed"))
        """,
    )
    report = ok_json("run", script, "--set", "scale=10", cwd=tmp_path)
    assert report["executed"] == 1, report
    [run] = ok_json("ls", "runs", cwd=tmp_path)
    results = run["results"]
    assert results["total"] == 60
    assert results["remote_pid"] != results["report_pid"]  # the middle task ran elsewhere
    job_id = results["job"]
    assert [row[:2] for row in sacct(job_id)] == [[job_id, "COMPLETED"]]
    run_dir = Path(ok_json("show", run["id"], cwd=tmp_path)["run_dir"])
    assert (run_dir / "logs" / "heavy.log").read_text() == f"job {job_id}\n"
    assert (run_dir / "remote" / "heavy" / f"slurm-{job_id}.err").is_file()


def test_a_job_killed_at_its_walltime_ends_failed_after_sync(
    walltime: tuple[Path, str, str],
) -> None:
    directory, run_id, job_id = walltime

    def timed_out() -> list[list[str]] | None:
        rows = sacct(job_id)
        return rows if rows and rows[0][1] == "TIMEOUT" else None

    [row] = wait_until(f"Slurm to end job {job_id} with TIMEOUT", timed_out, timeout=170)
    changes = ok_json("sync", cwd=directory)["changes"]
    assert [(c["run_id"], c["action"], c["status"]) for c in changes] == [
        (run_id, "failed", "failed")
    ]
    shown = ok_json("show", run_id, cwd=directory)
    error = shown["error"]
    assert error["type"] == "SlurmTimeout"
    assert f"Slurm job {job_id}_0 ended TIMEOUT" in error["message"]
    assert "(time limit 00:01:00)" in error["message"]
    assert shown["execution_history"][-1]["status"] == "failed"
    assert ok_json("sync", cwd=directory)["changes"] == []
