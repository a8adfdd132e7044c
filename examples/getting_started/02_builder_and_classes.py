"""Getting started 2: reusable Task and Actor classes, WorkflowBuilder, parallel_map/join, caching.

The workflow scores random "conformers" of a small molecule:

- ``GenerateConformers`` (a ``Task``) draws seeded random 3D coordinates;
- ``ScoreConformers`` (a ``Task`` registered with ``cache=True``) computes a Lennard-Jones-like
  energy per conformer, fanned out with ``parallel_map``;
- ``EnergyStream`` and ``Monitor`` are two ``Actor`` objects with no dependency between them: they
  run concurrently and talk over the ``energies`` channel;
- ``report`` (a plain function task) combines two summaries with ``join``.

The workflow is executed three times with one file-backed ``Caching``: the second execution finds
``score`` in the cache (status ``cached``, its body does not run); the third changes the run config
value ``cutoff``, which ``score`` reads, so ``score`` runs again. The cache lives under
``$MOLEXP_EXAMPLE_DIR/cache`` (or a fresh temporary directory, printed). Run it with::

    uv run python examples/getting_started/02_builder_and_classes.py
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from molexp.workflow import (
    Actor,
    ActorContext,
    Caching,
    Task,
    TaskContext,
    WorkflowBuilder,
    WorkflowResult,
    join,
    parallel_map,
)

Coordinates = list[tuple[float, float, float]]


def example_dir() -> Path:
    """``$MOLEXP_EXAMPLE_DIR`` if set, else a fresh temporary directory; printed either way."""
    configured = os.environ.get("MOLEXP_EXAMPLE_DIR")
    directory = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="molexp-"))
    directory.mkdir(parents=True, exist_ok=True)
    print(f"example directory: {directory}")
    return directory


def pair_energy(distance: float) -> float:
    """Lennard-Jones 12-6 energy (epsilon = sigma = 1), softened below 0.9 for random overlaps."""
    inverse6 = (1.0 / max(distance, 0.9)) ** 6
    return 4.0 * (inverse6 * inverse6 - inverse6)


def conformer_energy(conformer: Coordinates, cutoff: float) -> float:
    """Sum of pair energies of atoms closer than ``cutoff`` (a plain, synchronous function)."""
    total = 0.0
    for i, a in enumerate(conformer):
        for b in conformer[i + 1 :]:
            distance = math.dist(a, b)
            if distance < cutoff:
                total += pair_energy(distance)
    return total


class GenerateConformers(Task):
    """Seeded random coordinates; the ``config`` mapping is part of the task's cache identity."""

    def __init__(self, n_conformers: int, n_atoms: int, seed: int) -> None:
        super().__init__(config={"n_conformers": n_conformers, "n_atoms": n_atoms, "seed": seed})

    async def execute(self, ctx: TaskContext) -> list[Coordinates]:
        rng = random.Random(self.config["seed"])
        box = 2.0 * self.config["n_atoms"] ** (1 / 3)
        return [
            [
                (rng.uniform(0, box), rng.uniform(0, box), rng.uniform(0, box))
                for _ in range(self.config["n_atoms"])
            ]
            for _ in range(self.config["n_conformers"])
        ]


class ScoreConformers(Task):
    """Energy of every conformer, computed concurrently (sync function -> worker threads)."""

    async def execute(self, ctx: TaskContext) -> list[float]:
        conformers: list[Coordinates] = ctx.inputs
        cutoff = float(ctx.config.get("cutoff", 2.5))
        return await parallel_map(
            lambda conformer: conformer_energy(conformer, cutoff), conformers, max_concurrency=4
        )


class EnergyStream(Actor):
    """Emits ``(index, energy)`` for each conformer on the ``energies`` channel, then closes it."""

    async def execute(self, ctx: ActorContext) -> int:
        energies: list[float] = ctx.inputs
        for index, energy in enumerate(energies):
            ctx.emit("energies", (index, energy))
        ctx.close("energies")
        return len(energies)


class Monitor(Actor):
    """Consumes the ``energies`` channel while the stream produces it; keeps the lowest one."""

    async def execute(self, ctx: ActorContext) -> dict[str, Any]:
        seen = 0
        lowest: tuple[int, float] | None = None
        async for index, energy in ctx.channel("energies"):
            seen += 1
            if lowest is None or energy < lowest[1]:
                lowest = (index, energy)
        ctx.log("monitor").append(f"received {seen} energies, lowest {lowest}")
        return {"received": seen, "lowest": lowest}


async def mean_of(values: list[float]) -> float:
    return sum(values) / len(values)


async def spread_of(values: list[float]) -> float:
    return max(values) - min(values)


builder = WorkflowBuilder(name="conformer-scan")
builder.add(GenerateConformers(n_conformers=8, n_atoms=12, seed=7), name="generate")
builder.add(ScoreConformers(), depends_on=["generate"], name="score", cache=True)
builder.add(EnergyStream(), depends_on=["score"], name="stream")
builder.add(Monitor(), name="monitor")


@builder.task(depends_on=["score", "monitor"])
async def report(ctx: TaskContext) -> dict[str, Any]:
    inputs: Mapping[str, Any] = ctx.inputs  # several dependencies: a mapping name -> output
    energies: list[float] = inputs["score"]
    mean, spread = await join(mean_of(energies), spread_of(energies))
    return {"mean": mean, "spread": spread, "lowest": inputs["monitor"]["lowest"]}


spec = builder.build()


def show(label: str, result: WorkflowResult) -> None:
    statuses = ", ".join(f"{task}={status}" for task, status in result.statuses.items())
    print(f"{label}: {result.status} [{statuses}]")


async def main() -> list[WorkflowResult]:
    logging.basicConfig(level=logging.INFO, format="  log %(name)s: %(message)s")
    cache = Caching(store_dir=example_dir() / "cache", max_entries=100)
    print(spec.describe())
    first = await spec.execute(cache=cache, config={"cutoff": 2.5})
    show("execution 1", first)
    second = await spec.execute(cache=cache, config={"cutoff": 2.5})
    show("execution 2", second)
    third = await spec.execute(cache=cache, config={"cutoff": 3.0})
    show("execution 3 (cutoff changed)", third)
    assert second["score"] == first["score"], "a cache hit returns the stored value"
    print(f"report: {third['report']}")
    print(f"cache entries: {len(cache)}")
    return [first, second, third]


if __name__ == "__main__":
    asyncio.run(main())
