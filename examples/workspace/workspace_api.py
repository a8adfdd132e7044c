"""The workspace API: the four-level hierarchy as a state model on disk.

Walks ``Workspace -> Project -> Experiment -> Run``:

1. ``me.Workspace(root)`` is lazy: nothing is written until the first ``ws.Project(...)``;
2. the factories are idempotent: ``ws.Project(name)`` and ``project.Experiment(name)`` return the
   same object (same id) on every call; runs are idempotent only by explicit id;
3. ``with run.start(profile_config=...) as ctx`` records one execution attempt;
4. a ``GridSpace`` yields one parameter dict per combination: one experiment each, bound to one
   workflow and executed under a run;
5. ``me.Workspace.load(root)`` reopens the workspace (and fails loudly where there is none);
6. ``ws.runs(where=...)`` queries the run index.

The workspace is created under ``$MOLEXP_EXAMPLE_DIR/lab`` (or a fresh temporary directory,
printed). Run it with::

    uv run python examples/workspace/workspace_api.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import molexp as me
from molexp.workflow import TaskContext, Workflow, workflow

wf = workflow(name="fit")


@wf.task
async def fit(ctx: TaskContext) -> float:
    """A stand-in for training: the loss depends on the run's parameters."""
    lr, batch = ctx.params["lr"], ctx.params["batch"]
    loss: float = abs(lr - 5e-4) * 1000 + 32 / batch
    ctx.set_result("loss", loss)
    return loss


spec = wf.build()


def example_dir() -> Path:
    """``$MOLEXP_EXAMPLE_DIR`` if set, else a fresh temporary directory; printed either way."""
    configured = os.environ.get("MOLEXP_EXAMPLE_DIR")
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="molexp-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"example directory: {directory}")
    return directory


async def main() -> None:
    root = example_dir() / "lab"

    # 1. A Workspace object is lightweight: no workspace.json until the first child is created.
    ws = me.Workspace(root, name="Lab")
    print(f"workspace {ws.name!r}: materialized={ws.materialized}, on disk={root.exists()}")
    project = ws.Project("QM9", description="small-molecule property models")
    print(f"after ws.Project('QM9'): materialized={ws.materialized}, project id={project.id!r}")

    # 2. Factories are get-or-create: same object, same id.
    print(f"ws.Project('QM9') is project: {ws.Project('QM9') is project}")
    print(f"ws.project('qm9') is project: {ws.project('qm9') is project}")
    baseline = project.Experiment(
        "baseline", params={"lr": 1e-3, "batch": 32}, n_replicas=3, seeds=[42, 123, 456]
    )
    again = project.Experiment("baseline")
    print(f"project.Experiment('baseline') is baseline: {again is baseline} (id {again.id!r})")
    print(f"params is parameter_space: {baseline.params is baseline.parameter_space}")
    print(f"replica seeds: {baseline.get_seeds()}")

    # 3. Runs: idempotent by explicit id only; each `with run.start()` is one recorded attempt.
    stable = baseline.Run(parameters={"seed": 42}, id="baseline-seed-42", seed=42)
    print(f"same run id again gives the same run: {baseline.Run(id='baseline-seed-42') is stable}")
    fresh_a, fresh_b = baseline.run(), baseline.run()
    print(f"two runs without an id: {fresh_a.id} != {fresh_b.id}")
    fresh_b.cancel()
    profile = me.ProfileConfig(name="local", config={"device": "cpu"})
    with stable.start(profile_config=profile) as ctx:
        ctx.set_result("loss", 0.25)
        ctx.log("train").append("loss=0.25")
    attempts = [record.status.value for record in stable.metadata.execution_history]
    print(f"run {stable.id}: status={stable.status}, attempts={attempts}")
    print(f"  profile={stable.metadata.profile.name if stable.metadata.profile else None}")
    print(f"  run_dir={stable.run_dir.relative_to(root)}")

    # 4. A GridSpace yields plain dicts; one experiment per combination, one workflow each.
    grid = me.GridSpace({"lr": [1e-3, 1e-4], "batch": [32, 64]})
    for params in grid:
        exp = project.Experiment(f"lr-{params['lr']}-batch-{params['batch']}", params=params)
        spec.bind_to(exp)
        assert Workflow.for_experiment(exp) is spec
        run = exp.Run(id="r0")
        if run.status != me.RunStatus.succeeded:
            await spec.execute(run=run, profile_config=profile)
    print(f"grid of {len(grid)} points -> experiments {[e.id for e in project.list_experiments()]}")

    # 5. Reopen from disk (a new object with the same ids); load() refuses a missing workspace.
    reopened = me.Workspace.load(root)
    print(f"reopened: id {reopened.id} == {ws.id}: {reopened.id == ws.id}")
    for proj in reopened.list_projects():
        for exp in proj.list_experiments():
            statuses = [str(run.status) for run in exp.list_runs()]
            print(f"  {proj.id}/{exp.id}: {statuses}")
    try:
        me.Workspace.load(root.parent / "nowhere")
    except FileNotFoundError as error:
        print(f"Workspace.load of a missing workspace: {error}")

    # 6. Query the run index.
    best = reopened.runs(where="lr < 1e-3 and status == 'succeeded'", order_by="results.loss")
    print("runs with lr < 1e-3, best first:")
    for row in best:
        loss = row.results["loss"]
        print(f"  {row.experiment}/{row.id}: batch={row.params['batch']} loss={loss}")
    print(f"runs with batch == 64: {len(reopened.runs(where={'batch': 64}))}")
    cancelled = reopened.runs(where={"status": "cancelled"})
    print(f"cancelled runs: {cancelled.ids}")


if __name__ == "__main__":
    asyncio.run(main())
