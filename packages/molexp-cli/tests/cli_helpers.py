"""Helpers shared by the CLI unit tests: tree digests and a small bound-workflow script."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_digest(root: Path) -> str:
    """A digest of every path (files and directories) and file content under ``root``."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


SCRIPT_TEMPLATE = """
from pathlib import Path

from molexp.workspace import Workspace, entry
from molexp.workflow import TaskContext, workflow
from molexp.workflow.bindings import set_workflow

HERE = Path(__file__).parent
wf = workflow(name="demo")


@wf.task
def fetch(ctx: TaskContext) -> list[float]:
    return [1.0, 2.0]


@wf.task(depends_on=["fetch"])
def total(ctx: TaskContext) -> float:
    value = sum(ctx.inputs) * ctx.config.get("scale", 1.0)
    ctx.set_result("total", value)
    return value


spec = wf.build()
ws = Workspace(HERE / "lab")
project = ws.Project("demo")
exp = project.Experiment("baseline", params={{"lr": 0.01}}, n_replicas={replicas})
set_workflow(exp, spec)
project.Experiment("unbound", params={{"lr": 0.1}})
entry(ws)

if __name__ == "__main__":
    (HERE / "main-block-ran").write_text("yes")
"""


def write_script(directory: Path, *, replicas: int = 2, name: str = "train.py") -> Path:
    script = directory / name
    script.write_text(SCRIPT_TEMPLATE.format(replicas=replicas))
    return script
