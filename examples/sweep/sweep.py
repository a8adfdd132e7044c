"""A parameter sweep driven by the CLI: one experiment per GridSpace point, one workflow each.

The workflow samples a small Lennard-Jones cluster with Metropolis Monte Carlo: ``initialize``
places the atoms on a lattice, ``sample`` runs the Markov chain (length and step size come from
the profile, ``ctx.config``) and logs the energy as a metric series, ``analyze`` records the mean
energy and acceptance on the run.

Nothing executes when this module is imported: it defines the workspace, one experiment per
combination of ``temperature`` x ``n_atoms``, binds the workflow to each and registers the
workspace with ``me.entry(ws)``. ``molexp run`` imports it, plans one run per experiment (ids
derived from parameters and profile) and executes them::

    uv run molexp run examples/sweep/sweep.py --profile fast

The workspace is ``$MOLEXP_WORKSPACE`` if set, else ``./lab`` relative to the current directory.
Profiles are in ``molexp.toml`` beside this script (see README.md).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Any

import molexp as me
from molexp.workflow import TaskContext, workflow

Position = tuple[float, float, float]

wf = workflow(name="lj-cluster-mc")


def pair_energy(a: Position, b: Position) -> float:
    """Lennard-Jones 12-6 energy in reduced units (epsilon = sigma = 1)."""
    inverse6 = 1.0 / math.dist(a, b) ** 6
    return 4.0 * (inverse6 * inverse6 - inverse6)


def energy_of(atom: int, position: Position, positions: list[Position]) -> float:
    """Interaction energy of ``atom`` placed at ``position`` with every other atom."""
    return sum(pair_energy(position, other) for j, other in enumerate(positions) if j != atom)


def total_energy(positions: list[Position]) -> float:
    return sum(pair_energy(a, b) for i, a in enumerate(positions) for b in positions[i + 1 :])


@wf.task
async def initialize(ctx: TaskContext) -> list[Position]:
    """Atoms on a cubic lattice at the pair-potential minimum distance."""
    n_atoms = int(ctx.params["n_atoms"])
    side = math.ceil(n_atoms ** (1 / 3))
    spacing = 2 ** (1 / 6)
    lattice = [
        (x * spacing, y * spacing, z * spacing)
        for x in range(side)
        for y in range(side)
        for z in range(side)
    ]
    return lattice[:n_atoms]


@wf.task(depends_on=["initialize"])
def sample(ctx: TaskContext) -> dict[str, Any]:
    """Metropolis Monte Carlo (a sync task: it runs in a worker thread, off the event loop)."""
    temperature = float(ctx.params["temperature"])
    n_steps = int(ctx.config["n_steps"])
    step_size = float(ctx.config["step_size"])
    record_every = int(ctx.config.get("record_every", 10))
    rng = random.Random(ctx.params.get("seed", 0))
    positions: list[Position] = list(ctx.inputs)
    energy = total_energy(positions)
    energies, accepted = [], 0
    log = ctx.log("mc")
    for step in range(n_steps):
        atom = rng.randrange(len(positions))
        old = positions[atom]
        new = (
            old[0] + rng.uniform(-step_size, step_size),
            old[1] + rng.uniform(-step_size, step_size),
            old[2] + rng.uniform(-step_size, step_size),
        )
        delta = energy_of(atom, new, positions) - energy_of(atom, old, positions)
        if delta <= 0 or rng.random() < math.exp(-delta / temperature):
            positions[atom] = new
            energy += delta
            accepted += 1
        if step % record_every == 0:
            energies.append(energy)
            ctx.log_metric("energy", energy, step=step)  # a series: `molexp metrics RUN energy`
            log.append(f"step={step} energy={energy:.4f}")
    return {"energies": energies, "acceptance": accepted / n_steps, "final": positions}


@wf.task(depends_on=["sample"])
async def analyze(ctx: TaskContext) -> dict[str, float]:
    """Mean energy over the second half of the chain; results and an artifact on the run."""
    trace: dict[str, Any] = ctx.inputs
    energies: list[float] = trace["energies"]
    production = energies[len(energies) // 2 :]
    summary = {
        "mean_energy": sum(production) / len(production),
        "min_energy": min(energies),
        "acceptance": trace["acceptance"],
    }
    for key, value in summary.items():
        ctx.set_result(key, value)
    ctx.artifact.save("energies.json", {"energies": energies, **summary})
    return summary


spec = wf.build()

ws = me.Workspace(Path(os.environ.get("MOLEXP_WORKSPACE", "lab")), name="sweep-lab")
project = ws.Project("lj-clusters", description="Monte Carlo of small Lennard-Jones clusters")
for params in me.GridSpace({"temperature": [0.2, 0.5], "n_atoms": [4, 8]}):
    exp = project.Experiment(
        f"n{params['n_atoms']}-t{params['temperature']}",
        params=params,
        workflow_source=__file__,
    )
    spec.bind_to(exp)

me.entry(ws)
