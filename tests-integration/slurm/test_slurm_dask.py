"""``molexp run --executor slurm`` with a ``runtime = "dask"`` profile: the Slurm job's
``molexp execute`` runs the tasks on a LocalCluster of worker processes, with the script's helper
module and the run context (result, log, artifact) there. Skipped when ``sbatch`` is missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        shutil.which("sbatch") is None,
        reason="sbatch is not on PATH: start the local cluster with "
        "`bash ../shared/slurm/start-local-slurm` (from the repository root)",
    ),
]
pytest.importorskip("distributed")

_EXECUTABLE = shutil.which("molexp")
MOLEXP = [_EXECUTABLE] if _EXECUTABLE else [sys.executable, "-m", "molexp.cli"]

SCRIPT = textwrap.dedent(
    """
    import os
    from pathlib import Path

    import helpers
    import molexp as me
    from molexp.workflow import TaskContext, workflow

    ws = me.Workspace(Path(__file__).parent / "lab")
    wf = workflow(name="slurm-dask")

    @wf.task
    def compute(ctx: TaskContext) -> int:
        from distributed import get_worker

        value = helpers.double(ctx.params["x"])
        ctx.set_result("value", value)
        ctx.log("work").append(f"on {get_worker().address}")
        ctx.artifact.save("value.json", {"value": value})
        return value

    wf.build().bind_to(ws.Project("c").Experiment("e", params={"x": 4}))
    me.entry(ws)
    """
)


def test_a_slurm_job_runs_its_tasks_on_dask_worker_processes(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(SCRIPT)
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    (tmp_path / "molexp.toml").write_text(
        '[profiles.cluster]\nruntime = "dask"\nn_workers = 1\nprocesses = true\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOLEXP_")}
    env["MOLEXP_WORKSPACE"] = str(tmp_path / "lab")
    submitted = subprocess.run(
        [*MOLEXP, "run", "flow.py", "--executor", "slurm", "--time", "5"]
        + ["--profile", "cluster", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, (submitted.stdout, submitted.stderr)
    [entry] = json.loads(submitted.stdout)["runs"]
    run_dir = Path(entry["run_dir"])
    deadline = time.monotonic() + 150
    record = json.loads((run_dir / "run.json").read_text())
    while record["status"] not in {"succeeded", "failed", "cancelled"}:
        assert time.monotonic() < deadline, f"the Slurm job did not finish: {record['status']}"
        time.sleep(0.5)
        record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "succeeded", record.get("error")
    assert record["results"] == {"value": 8}
    assert (run_dir / "logs" / "work.log").read_text().startswith("on tcp://")
    assert json.loads((run_dir / "artifacts" / "value.json").read_text()) == {"value": 8}
