"""P7 for the Slurm bridge: submission cost per run, one job array vs one sbatch per run.

Both sides submit N runs (default 200) to the real local Slurm, held (``--hold``) so nothing
executes, and everything is scancelled afterwards:

- reference: N separate ``sbatch --parsable --hold`` calls of a one-line batch script (what a
  submitter without arrays pays, before it records anything);
- arrays: ``molexp``'s whole submission path for N planned runs of one experiment: creating
  the runs, the script and manifest, ONE ``sbatch``, marking every run ``queued`` with its job
  and linking its log files.

Printed as milliseconds per run and as the ratio against the reference measured in the same
process run. Target: <= 20 ms per run with arrays.

Run: ``python benchmarks/bench_slurm.py [--runs N]`` (needs ``sbatch`` on PATH; start the local
cluster with ``bash ../shared/slurm/start-local-slurm`` from the repository root).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from molexp.cli._execute import ExecutionPolicy
from molexp.cli._plan import plan_runs
from molexp.cli._scheduler import submit_runs
from molexp.cli._slurm import SlurmClient
from molexp.cli._slurm_job import current_job
from molexp.cli._slurm_script import SlurmOptions
from molexp.cli.profiles import ExecutionSettings
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow
from molexp.workspace import ProfileConfig, Workspace

ARRAY_TARGET_MS = 20.0


def separate_sbatch_calls(directory: Path, count: int) -> tuple[float, list[str]]:
    """Seconds for ``count`` separate held submissions, and their job ids."""
    script = directory / "one.sh"
    script.write_text("#!/bin/bash\n#SBATCH --output=/dev/null\ntrue\n")
    jobs = []
    started = time.perf_counter()
    for _ in range(count):
        done = subprocess.run(
            ["sbatch", "--parsable", "--hold", str(script)],
            capture_output=True,
            text=True,
            check=True,
        )
        jobs.append(done.stdout.strip().split(";")[0])
    return time.perf_counter() - started, jobs


def one_array(directory: Path, count: int) -> tuple[float, list[str]]:
    """Seconds for molexp to submit ``count`` runs as one held array, and its job id."""
    wf = workflow(name="bench")

    @wf.task
    def noop(ctx: TaskContext) -> None:
        return None

    workspace = Workspace(directory / "lab")
    experiment = workspace.Project("bench").Experiment("array", n_replicas=count)
    set_workflow(experiment, wf.build())
    profile = ProfileConfig(name="bench")
    plan = plan_runs([workspace], lambda ws: profile)
    settings = ExecutionSettings(
        executor="slurm",
        slurm=SlurmOptions(hold=True, extra_sbatch=("#SBATCH --output=/dev/null",)),
    )
    started = time.perf_counter()
    outcomes = submit_runs(
        plan.runs,
        settings=settings,
        script=directory / "bench.py",
        policy=ExecutionPolicy(),
        client=SlurmClient(),
    )
    elapsed = time.perf_counter() - started
    if any(outcome.action != "submitted" for outcome in outcomes):
        raise SystemExit(f"submission failed: {outcomes[0].reason}")
    first = experiment.get_run(outcomes[0].run_id)
    job = current_job(first)
    assert job is not None
    return elapsed, [job.job_id]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs submitted per side")
    args = parser.parse_args()
    if shutil.which("sbatch") is None:
        raise SystemExit("sbatch is not on PATH: start the local Slurm first")

    with tempfile.TemporaryDirectory(prefix="bench-slurm-") as tmp:
        root = Path(tmp)
        jobs: list[str] = []
        try:
            reference, separate_jobs = separate_sbatch_calls(root, args.runs)
            jobs += separate_jobs
            arrays, array_jobs = one_array(root, args.runs)
            jobs += array_jobs
        finally:
            for start in range(0, len(jobs), 500):
                subprocess.run(["scancel", *jobs[start : start + 500]], check=False)

    per_run_reference = reference / args.runs * 1000
    per_run_array = arrays / args.runs * 1000
    verdict = "ok" if per_run_array <= ARRAY_TARGET_MS else "OVER TARGET"
    print(f"P7 Slurm submission, {args.runs} held runs per side (python {sys.version.split()[0]})")
    print(f"{'separate sbatch per run (reference)':<40} {per_run_reference:7.2f} ms/run  =  1.00x")
    print(
        f"{'molexp: one job array':<40} {per_run_array:7.2f} ms/run  = "
        f"{per_run_array / per_run_reference:5.2f}x  (target <= {ARRAY_TARGET_MS:.0f} ms/run: "
        f"{verdict})"
    )


if __name__ == "__main__":
    main()
