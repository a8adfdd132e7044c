"""One lab member's session on a shared workspace; run by test_shared_lab.py as a real Unix user.

Usage: ``python lab_member.py LAB STEP``. Prints one JSON object: what the member saw and did,
plus the process's identity, umask and capabilities (the test checks that writes are done
without CAP_DAC_OVERRIDE). With ``LAB_LOCK_FILES=1`` every filesystem counts as a network one,
so records are locked through lock files beside them (as on NFS) instead of directory locks.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

if os.environ.get("LAB_LOCK_FILES") == "1":
    from molexp.assets import _locks

    _locks._filesystem_type = lambda st_dev, directory: "nfs4"

from molexp.workflow import TaskContext, workflow
from molexp.workspace import Experiment, Run, Workspace

CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3

wf = workflow(name="shared-cache")


@wf.task(cache=True)
async def expensive(ctx: TaskContext) -> int:
    return 42


@wf.task(depends_on=["expensive"])
async def report(ctx: TaskContext) -> int:
    return int(ctx.inputs) + 1


SPEC = wf.build()


def _identity() -> dict[str, Any]:
    status = Path("/proc/self/status").read_text().splitlines()
    fields = dict(line.split(":\t", 1) for line in status if ":\t" in line)
    effective = int(fields["CapEff"], 16)
    return {
        "uid": os.geteuid(),
        "umask": fields["Umask"].strip(),
        "dac_override": bool(effective >> CAP_DAC_OVERRIDE & 1),
        "dac_read_search": bool(effective >> CAP_DAC_READ_SEARCH & 1),
        "fowner": bool(effective >> CAP_FOWNER & 1),
    }


def _train(experiment: Experiment, run_id: str, who: str, loss: float) -> Run:
    """A run to success with a result, a log and an artifact."""
    run = experiment.Run(parameters={"who": who}, id=run_id)
    with run.start() as ctx:
        ctx.set_result("loss", loss)
        ctx.log("train").append(f"{who}: epoch 1 loss={loss}")
        ctx.artifact.save("metrics.json", {"loss": loss, "who": who})
        ctx.checkpoint("epoch-1", {"weights": [1, 2]})
    return run


def _source(name: str, text: str) -> Path:
    """A private source directory (mode 0700/0600): copies must not inherit that."""
    directory = Path(os.environ["HOME"]) / name
    directory.mkdir(mode=0o700, exist_ok=True)
    (directory / "rows.csv").write_text(text)
    (directory / "rows.csv").chmod(0o600)
    return directory


def _seen(workspace: Workspace) -> dict[str, Any]:
    return {
        "runs": sorted(workspace.runs().ids),
        "low_loss": sorted(workspace.runs("results.loss < 0.45").ids),
    }


def alice_starts(lab: Path) -> dict[str, Any]:
    workspace = Workspace(lab, name="Lab")
    experiment = workspace.Project("QM9").Experiment("baseline", params={"lr": 0.1})
    experiment.data_assets.import_asset("inputs", _source("inputs", "a,b\n1,2\n"))
    run = _train(experiment, "alice-1", "alice", 0.5)
    result = SPEC.execute_sync(run=experiment.Run(parameters={"who": "alice-wf"}, id="alice-wf"))
    return {
        "status": str(run.reload().status),
        "workflow": {name: status.value for name, status in result.statuses.items()},
        **_seen(workspace),
    }


def bob_joins(lab: Path) -> dict[str, Any]:
    workspace = Workspace.load(lab)
    experiment = workspace.project("qm9").experiment("baseline")
    mine = _train(experiment, "bob-1", "bob", 0.4)
    other = _train(workspace.project("qm9").Experiment("bob-study"), "bob-2", "bob", 0.3)
    # Replace records alice wrote: her experiment's record, her run's record, her data asset.
    experiment.metadata.description = "reviewed by bob"
    experiment.save()
    alices = experiment.get_run("alice-1")
    alices.metadata.tags = [*alices.metadata.tags, "reviewed"]
    alices.save()
    experiment.data_assets.import_asset(
        "inputs", _source("inputs-v2", "a,b\n3,4\n"), overwrite=True
    )
    result = SPEC.execute_sync(run=experiment.Run(parameters={"who": "bob-wf"}, id="bob-wf"))
    return {
        "status": [str(mine.reload().status), str(other.reload().status)],
        "workflow": {name: status.value for name, status in result.statuses.items()},
        "alice_log": (alices.run_dir / "logs" / "train.log").read_text(),
        "alice_artifact": (alices.run_dir / "artifacts" / "metrics.json").read_text(),
        **_seen(workspace),
    }


def alice_sees(lab: Path) -> dict[str, Any]:
    workspace = Workspace.load(lab)
    experiment = workspace.project("qm9").experiment("baseline")
    bobs = experiment.get_run("bob-1")
    bobs.metadata.tags = [*bobs.metadata.tags, "seen by alice"]
    bobs.save()
    payload = Path(experiment.data_assets.path("inputs")) / "rows.csv"
    return {
        "description": experiment.description,
        "alice_tags": experiment.get_run("alice-1").metadata.tags,
        "bob_log": (bobs.run_dir / "logs" / "train.log").read_text(),
        "inputs": payload.read_text(),
        **_seen(workspace),
    }


def private_experiment(lab: Path) -> dict[str, Any]:
    """Run with umask 0022 by the test: what this creates, the others cannot write into."""
    workspace = Workspace.load(lab)
    experiment = workspace.project("qm9").Experiment("private")
    run = _train(experiment, "private-1", "alice", 0.9)
    experiment.Run(parameters={"who": "alice", "later": True}, id="private-2")
    return {"status": str(run.reload().status)}


def bob_refused(lab: Path) -> dict[str, Any]:
    """Bob's runs in alice's umask-0022 experiment: with an explicit id, and with a fresh one."""
    experiment = Workspace.load(lab).project("qm9").experiment("private")
    refusals: list[dict[str, str | None]] = []
    for run_id in ("bob-3", None):
        try:
            experiment.Run(parameters={"who": "bob", "fresh": run_id is None}, id=run_id)
        except PermissionError as exc:
            refusals.append({"error_type": type(exc).__name__, "message": str(exc)})
        else:
            refusals.append({"error_type": None, "message": ""})
    return {"refusals": refusals}


STEPS = {
    "alice-starts": alice_starts,
    "bob-joins": bob_joins,
    "alice-sees": alice_sees,
    "private": private_experiment,
    "bob-refused": bob_refused,
}

if __name__ == "__main__":
    lab, step = Path(sys.argv[1]), sys.argv[2]
    print(json.dumps({"identity": _identity(), **STEPS[step](lab)}))
