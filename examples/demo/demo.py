"""The MolExp demo: a small conformer search, tracked run by run in a workspace.

For two alkane chains (hexane, decane) the workflow

1. ``embed``: grows seeded random conformers of the carbon backbone (a self-avoiding chain with
   C-C bonds of ``bond_length``);
2. ``score``: computes every conformer's pairwise distances and a Lennard-Jones energy proxy over
   the non-bonded pairs, fanned out over the conformers with ``parallel_map``;
3. ``select`` and ``statistics`` (independent, so they run concurrently): the lowest-energy
   conformer saved as an XYZ artifact; energy statistics saved as JSON;
4. ``summarize``: the results recorded on the run.

Each molecule is one experiment with ``n_replicas=3`` (one run per seed). Sampling settings come
from the profile (``molexp.toml`` beside this file, read by tasks as ``ctx.config``).

Two ways to run it, both into ``$MOLEXP_WORKSPACE`` or else ``./lab`` under the current directory:

    uv run molexp run examples/demo/demo.py      # the CLI imports this module and plans the runs
    uv run python examples/demo/demo.py          # the __main__ block below, same runs via Python

Both derive the same run ids (parameters, replica index, profile), so whichever runs second finds
every run succeeded and executes nothing.
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import statistics as stats
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import molexp as me
from molexp.workflow import TaskContext, parallel_map, workflow

Position = tuple[float, float, float]
Conformer = list[Position]

wf = workflow(name="conformer-search")


def random_direction(rng: random.Random) -> Position:
    z = rng.uniform(-1.0, 1.0)
    phi = rng.uniform(0.0, 2.0 * math.pi)
    r = math.sqrt(1.0 - z * z)
    return (r * math.cos(phi), r * math.sin(phi), z)


def grow_chain(n_atoms: int, bond_length: float, rng: random.Random) -> Conformer:
    """A self-avoiding random chain: each atom one bond from the previous, >= 1.3 bonds from
    every earlier atom (up to 100 tries per atom, then the last try is kept)."""
    chain: Conformer = [(0.0, 0.0, 0.0)]
    while len(chain) < n_atoms:
        last = chain[-1]
        for _ in range(100):
            d = random_direction(rng)
            candidate = (
                last[0] + bond_length * d[0],
                last[1] + bond_length * d[1],
                last[2] + bond_length * d[2],
            )
            if all(math.dist(candidate, atom) >= 1.3 * bond_length for atom in chain[:-1]):
                break
        chain.append(candidate)
    return chain


def score_conformer(conformer: Conformer, config: Mapping[str, Any]) -> dict[str, float]:
    """Pairwise distances -> LJ energy proxy over pairs more than two bonds apart (softened below
    0.8 sigma, cut at ``cutoff``), radius of gyration and closest non-bonded contact."""
    sigma, epsilon, cutoff = config["sigma"], config["epsilon"], config["cutoff"]
    energy, closest = 0.0, math.inf
    for i, a in enumerate(conformer):
        for j in range(i + 3, len(conformer)):
            distance = math.dist(a, conformer[j])
            closest = min(closest, distance)
            if distance < cutoff:
                inverse6 = (sigma / max(distance, 0.8 * sigma)) ** 6
                energy += 4.0 * epsilon * (inverse6 * inverse6 - inverse6)
    center = [sum(atom[k] for atom in conformer) / len(conformer) for k in range(3)]
    rg = math.sqrt(sum(math.dist(atom, center) ** 2 for atom in conformer) / len(conformer))
    return {"energy": energy, "radius_of_gyration": rg, "closest_contact": closest}


def to_xyz(conformer: Conformer, comment: str) -> str:
    lines = [str(len(conformer)), comment]
    lines += [f"C {x:12.6f} {y:12.6f} {z:12.6f}" for x, y, z in conformer]
    return "\n".join(lines) + "\n"


@wf.task
async def embed(ctx: TaskContext) -> list[Conformer]:
    rng = random.Random(ctx.params["seed"])
    n_atoms, n_conformers = int(ctx.params["n_atoms"]), int(ctx.config["n_conformers"])
    conformers = [grow_chain(n_atoms, ctx.config["bond_length"], rng) for _ in range(n_conformers)]
    molecule, seed = ctx.params["molecule"], ctx.params["seed"]
    ctx.log("search").append(f"embedded {n_conformers} conformers of {molecule} (seed {seed})")
    return conformers


@wf.task(depends_on=["embed"])
async def score(ctx: TaskContext) -> list[dict[str, float]]:
    conformers: list[Conformer] = ctx.inputs
    config = dict(ctx.config)
    return await parallel_map(
        lambda conformer: score_conformer(conformer, config),
        conformers,
        max_concurrency=int(config.get("workers", 4)),
    )


@wf.task(depends_on=["embed", "score"])
async def select(ctx: TaskContext) -> dict[str, Any]:
    conformers: list[Conformer] = ctx.inputs["embed"]
    scores: list[dict[str, float]] = ctx.inputs["score"]
    best = min(range(len(scores)), key=lambda index: scores[index]["energy"])
    comment = f"{ctx.params['molecule']} conformer {best} E={scores[best]['energy']:.4f}"
    ctx.artifact.save("best_conformer.xyz", to_xyz(conformers[best], comment))
    ctx.log("search").append(f"lowest energy: conformer {best}, {scores[best]['energy']:.4f}")
    return {"index": best, **scores[best]}


@wf.task(depends_on=["score"])
async def statistics(ctx: TaskContext) -> dict[str, float]:
    scores: list[dict[str, float]] = ctx.inputs
    energies = [item["energy"] for item in scores]
    summary = {
        "mean_energy": stats.fmean(energies),
        "stdev_energy": stats.stdev(energies) if len(energies) > 1 else 0.0,
        "mean_radius_of_gyration": stats.fmean(item["radius_of_gyration"] for item in scores),
    }
    ctx.artifact.save("energies.json", {"energies": energies, **summary})
    return summary


@wf.task(depends_on=["select", "statistics"])
async def summarize(ctx: TaskContext) -> dict[str, Any]:
    best, summary = ctx.inputs["select"], ctx.inputs["statistics"]
    results = {
        "min_energy": best["energy"],
        "best_conformer": best["index"],
        "best_radius_of_gyration": best["radius_of_gyration"],
        **summary,
    }
    for key, value in results.items():
        ctx.set_result(key, value)
    ctx.log("search").append(f"results: {results}")
    return results


spec = wf.build()

ws = me.Workspace(Path(os.environ.get("MOLEXP_WORKSPACE", "lab")), name="demo-lab")
project = ws.Project("conformers", description="Random conformer search for alkane chains")
experiments = [
    project.Experiment(
        molecule,
        params={"molecule": molecule, "n_atoms": n_atoms},
        n_replicas=3,
        workflow_source=__file__,
    )
    for molecule, n_atoms in (("hexane", 6), ("decane", 10))
]
for experiment in experiments:
    spec.bind_to(experiment)

me.entry(ws)


async def main() -> list[me.Run]:
    """The runs ``molexp run`` would execute, executed through the Python API."""
    from molexp.cli.profiles import resolve_profile

    profile = resolve_profile(search_dirs=[Path(__file__).parent])  # default profile, as the CLI
    runs = []
    for experiment in experiments:
        for replica, seed in enumerate(experiment.get_seeds()):
            parameters = {**experiment.params, "seed": seed}
            run_id = experiment.deterministic_run_id(
                parameters,
                replica_index=replica,
                profile_name=profile.name,
                config_hash=profile.config_hash,
            )
            run = experiment.Run(parameters=parameters, id=run_id, replica_index=replica, seed=seed)
            action = "skipped (already succeeded)"
            if run.status != me.RunStatus.succeeded:
                await spec.execute(run=run, profile_config=profile, raise_on_failure=False)
                action = "executed"
            energy = run.metadata.results.get("min_energy")
            print(f"{experiment.id} replica {replica}: {run.status}, {action}, min_energy={energy}")
            print(f"  {run.run_dir}")
            runs.append(run)
    print(f"workspace: {ws.root}")
    return runs


if __name__ == "__main__":
    asyncio.run(main())
