"""Getting started 3: one tracked run, and what it leaves on disk.

The same kind of workflow as in the first two examples, executed under a ``Run`` of the persistent
hierarchy ``Workspace -> Project -> Experiment -> Run``. Under a run the task context gains the
workspace-backed helpers: ``ctx.run_context.params``, ``ctx.set_result``, ``ctx.artifact.save``,
``ctx.log(name)``, ``ctx.checkpoint`` and ``ctx.find_asset`` (here: a data asset imported once at
workspace scope and found from the run by name).

The workspace is created under ``$MOLEXP_EXAMPLE_DIR/lab`` (or a fresh temporary directory,
printed). The script prints the resulting on-disk tree and the fields of the saved ``run.json``.
Running it again on the same directory adds a second attempt to the same run (explicit run id).
Run it with::

    uv run python examples/getting_started/03_tracked_run.py
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import molexp as me
from molexp.workflow import TaskContext, WorkflowBuilder

wf = WorkflowBuilder(name="train")


@wf.task
async def load(ctx: TaskContext) -> list[float]:
    """Read the shared training data, found by name from the run up to the workspace."""
    dataset = ctx.find_asset("training-data")
    if dataset is None:
        raise LookupError("import the 'training-data' asset into the workspace first")
    run_context = ctx.run_context
    assert run_context is not None  # find_asset already required a run
    text = (run_context.workspace.root / dataset.path).read_text()
    return [float(line.split(",")[1]) for line in text.splitlines()[1:]]


@wf.task(depends_on=["load"])
async def train(ctx: TaskContext) -> dict[str, Any]:
    """A toy fit: parameters from the run, settings from the profile config, records on the run."""
    dataset = ctx.find_asset("training-data")
    run_context = ctx.run_context
    assert run_context is not None
    lr = run_context.params["lr"]
    epochs = int(ctx.config.get("epochs", 3))
    targets: list[float] = ctx.inputs
    weight, loss = 0.0, 0.0
    for epoch in range(epochs):
        gradient = sum(2 * (weight - target) for target in targets) / len(targets)
        weight -= lr * 100 * gradient
        loss = sum((weight - target) ** 2 for target in targets) / len(targets)
        ctx.log("train").append(f"epoch={epoch} loss={loss:.6f}")
        ctx.checkpoint("epoch", {"epoch": epoch, "weight": weight})
    ctx.set_result("final_loss", loss)
    ctx.artifact.save("metrics.json", {"loss": loss, "weight": weight, "epochs": epochs})
    return {"loss": loss, "dataset": dataset.path if dataset else None}


spec = wf.build()


def example_dir() -> Path:
    """``$MOLEXP_EXAMPLE_DIR`` if set, else a fresh temporary directory; printed either way."""
    configured = os.environ.get("MOLEXP_EXAMPLE_DIR")
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="molexp-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"example directory: {directory}")
    return directory


def print_tree(root: Path) -> None:
    """The directory tree under ``root``, without the ``.<record>.lock`` files of the locks."""

    def walk(directory: Path, prefix: str) -> None:
        children = sorted(
            child for child in directory.iterdir() if not child.name.endswith(".lock")
        )
        for position, child in enumerate(children):
            last = position == len(children) - 1
            suffix = "/" if child.is_dir() else ""
            print(f"{prefix}{'└── ' if last else '├── '}{child.name}{suffix}")
            if child.is_dir():
                walk(child, prefix + ("    " if last else "│   "))

    print(f"{root.name}/")
    walk(root, "")


def write_training_data(directory: Path) -> Path:
    source = directory / "training-data.csv"
    rows = ["id,target", *(f"{index},{0.5 + 0.1 * index:.2f}" for index in range(5))]
    source.write_text("\n".join(rows) + "\n")
    return source


async def main() -> me.Run:
    base = example_dir()
    ws = me.Workspace(base / "lab", name="Lab")
    if ws.data_assets.get("training-data") is None:
        ws.data_assets.import_asset("training-data", write_training_data(base))

    project = ws.Project("demo")
    exp = project.Experiment("baseline", params={"lr": 1e-3}, workflow_source=__file__)
    spec.bind_to(exp)

    run = exp.Run(parameters={"lr": 1e-3}, id="baseline-defaults")
    profile = me.ProfileConfig(name="local", config={"epochs": 3})
    result = await spec.execute(run=run, profile_config=profile)

    print(f"run status: {run.status}")
    print(f"last attempt: {run.metadata.execution_history[-1].status}")
    print(f"outputs: {result.outputs}")
    print()
    print_tree(ws.root)
    print()
    saved = json.loads((run.run_dir / "run.json").read_text())
    print(f"run.json of {run.run_dir}:")
    for field in ("status", "results", "profile", "workflow_id"):
        print(f"  {field}: {json.dumps(saved[field])}")
    print("  execution_history:")
    for attempt in saved["execution_history"]:
        print(
            f"    - attempt {attempt['attempt']}: {attempt['status']} "
            f"(execution {attempt['execution_id']}, profile {attempt['profile_name']}, "
            f"{attempt['started_at']} -> {attempt['finished_at']})"
        )
    return run


if __name__ == "__main__":
    asyncio.run(main())
