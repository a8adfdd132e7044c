"""R5: the task cache never returns a wrong result and never misses an unchanged task.

A mutation test through the real runtime. A module with two cached tasks - a function task
calling a helper and reading a module constant, and a ``Task`` object with a ``config``
attribute - is rewritten between executions, the way a user edits ``tasks.py`` between
runs, and re-imported; every execution shares one on-disk cache. Each step applies one
mutation to the previous variant:

- must miss: the task body, the called helper, the module constant, the task object's
  config, the run config, an input value, an input's type (``str`` vs ``Path``, ``list`` vs
  ``tuple``);
- must hit: the order of a dict input's keys, the order of the run config's keys,
  formatting only (indentation, blank lines, comments, spacing, quotes, redundant
  parentheses, trailing commas, docstrings), no change at all;
- the file edited after import, before the (unchanged) code runs: the text on disk no
  longer describes the running code, so the function task may miss (its code is then
  identified by its bytecode) but must never be served another variant's result, and
  nothing it stores may be served to the edited code later.

The oracle is the semantic state, not a hash: a task must be served from the cache exactly
when an equal state ran before, and a cached output must equal what the current code
computes. False hits and spurious misses are counted per mutation and must both be 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import random
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workflow import Caching, FileCacheStore, TaskStatus

MODULE = "r5_tasks_under_edit"
MUST_MISS = (
    "task body",
    "called helper",
    "module constant",
    "task object config",
    "run config value",
    "input value",
    "input type str/Path",
    "input type list/tuple",
)
MUST_HIT = ("dict input order", "run config order", "formatting only", "no change")
STALE_SOURCE = "file edited after import"
"""The file is rewritten (another task body) after the module was imported, before it runs."""
FIGURES: Counter[str] = Counter()


@dataclasses.dataclass(frozen=True)
class Variant:
    """One version of the task module and of the inputs/config it runs with."""

    body: int = 0
    helper: int = 2
    constant: int = 1
    offset: int = 0
    factor: int = 1
    x: int = 1
    path_type: str = "str"
    tags_type: str = "list"
    input_order: tuple[str, ...] = ("x", "path", "tags")
    config_order: tuple[str, ...] = ("factor", "label")
    style: int = 0

    def compute_key(self) -> tuple[Any, ...]:
        """What the function task's result depends on."""
        return (
            self.body,
            self.helper,
            self.constant,
            self.factor,
            self.x,
            self.path_type,
            self.tags_type,
        )

    def expected(self) -> tuple[list[Any], int]:
        base = self.x * self.helper * self.factor * self.constant + self.body
        computed = [base, "PosixPath" if self.path_type == "Path" else "str", self.tags_type]
        return computed, base + self.offset

    def normalize_key(self) -> tuple[Any, ...]:
        """What the task object's result depends on: its config, the run config, its input."""
        return (self.offset, self.factor, tuple(self.expected()[0]))


def mutate(variant: Variant, kind: str, rng: random.Random) -> Variant:
    flip = dataclasses.replace
    if kind == "task body":
        return flip(variant, body=(variant.body + rng.choice([1, 2])) % 3)
    if kind == "called helper":
        return flip(variant, helper=5 - variant.helper)  # 2 <-> 3
    if kind == "module constant":
        return flip(variant, constant=3 - variant.constant)  # 1 <-> 2
    if kind == "task object config":
        return flip(variant, offset=1 - variant.offset)
    if kind == "run config value":
        return flip(variant, factor=3 - variant.factor)
    if kind == "input value":
        return flip(variant, x=3 - variant.x)
    if kind == "input type str/Path":
        return flip(variant, path_type="Path" if variant.path_type == "str" else "str")
    if kind == "input type list/tuple":
        return flip(variant, tags_type="tuple" if variant.tags_type == "list" else "list")
    if kind == "dict input order":
        order = list(variant.input_order)
        while len(order) > 1 and tuple(order) == variant.input_order:
            rng.shuffle(order)
        return flip(variant, input_order=tuple(order))
    if kind == "run config order":
        return flip(variant, config_order=variant.config_order[::-1])
    if kind == "formatting only":
        return flip(variant, style=variant.style + 1 + rng.randrange(1000))
    return variant


def render(variant: Variant) -> str:
    """The task module's source: same AST for every ``style``, different text."""
    rng = random.Random(variant.style)
    indent = rng.choice(["    ", "  "])
    quote = rng.choice(['"', "'"])
    times = rng.choice([" * ", "*"])
    blank = "\n" * rng.choice([1, 2, 3])

    def q(text: str) -> str:
        return f"{quote}{text}{quote}"

    def maybe(text: str) -> str:
        return text if rng.random() < 0.5 else ""

    def body(*lines: str) -> str:
        return "".join(f"{indent}{line}\n" for line in lines)

    helper_return = rng.choice(
        [f"return value{times}{variant.helper}", f"return (value{times}{variant.helper})"]
    )
    base_expr = rng.choice(
        [
            f"helper(inputs[{q('x')}]){times}ctx.config[{q('factor')}]{times}SCALE"
            f" + {variant.body}",
            f"(helper(\n{indent}{indent}inputs[{q('x')}],\n{indent})"
            f"{times}ctx.config[{q('factor')}]{times}SCALE) + {variant.body}",
        ]
    )
    compute_return = rng.choice(
        [
            f"return [base, type(inputs[{q('path')}]).__name__,"
            f" type(inputs[{q('tags')}]).__name__]",
            f"return [\n{indent}{indent}base,\n{indent}{indent}type(inputs[{q('path')}]).__name__,"
            f"\n{indent}{indent}type(inputs[{q('tags')}]).__name__,\n{indent}]",
        ]
    )
    return (
        maybe(f'"""Tasks under edit (style {variant.style})."""\n')
        + "from molexp.workflow import Task, TaskContext, WorkflowBuilder\n"
        + blank
        + f"SCALE = {variant.constant}{maybe('  # a module constant')}\n"
        + blank
        + "def helper(value):\n"
        + body(maybe(f'"""Scale {variant.style}."""') or "# helper", helper_return)
        + blank
        + f"wf = WorkflowBuilder(name={q('mutations')})\n"
        + blank
        + "@wf.task(cache=True)\n"
        + f"def compute(ctx: TaskContext) -> list:{maybe('  # the function task')}\n"
        + body(
            maybe('"""Documented."""') or "# the inputs, scaled",
            "inputs = ctx.inputs",
            f"base = {base_expr}",
            compute_return,
        )
        + blank
        + "class Normalize(Task):\n"
        + body(
            f"config = {{{q('offset')}: {variant.offset}}}",
            "",
            "def execute(self, ctx: TaskContext) -> int:",
            f"{indent}return ctx.inputs[0] + self.config[{q('offset')}]",
        )
        + blank
        + f"wf.add(Normalize(), depends_on=[{q('compute')}], cache=True)\n"
        + "spec = wf.build()\n"
    )


def inputs_of(variant: Variant) -> dict[str, Any]:
    values = {
        "x": variant.x,
        "path": Path("data/a.csv") if variant.path_type == "Path" else "data/a.csv",
        "tags": ["a", "b"] if variant.tags_type == "list" else ("a", "b"),
    }
    return {key: values[key] for key in variant.input_order}


def config_of(variant: Variant) -> dict[str, Any]:
    values = {"factor": variant.factor, "label": "run"}
    return {key: values[key] for key in variant.config_order}


@pytest.fixture(scope="module", autouse=True)
def _module_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("r5")
    sys.path.insert(0, str(directory))
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a stale .pyc of a rewritten file would run old code
    yield directory
    sys.dont_write_bytecode = writes_bytecode
    sys.path.remove(str(directory))
    sys.modules.pop(MODULE, None)
    total = sum(FIGURES[k] for k in FIGURES if k.startswith("executions"))
    print(f"\nR5: {total} task executions; {dict(FIGURES)}")


def execute(
    variant: Variant, directory: Path, cache: Caching, *, edited_to: Variant | None = None
) -> Any:
    """Import the module of ``variant`` and run it (after rewriting the file to ``edited_to``)."""
    source = directory / f"{MODULE}.py"
    source.write_text(render(variant))
    sys.modules.pop(MODULE, None)
    importlib.invalidate_caches()
    module = importlib.import_module(MODULE)
    if edited_to is not None:
        source.write_text(render(edited_to))
    return asyncio.run(
        module.spec.execute(inputs=inputs_of(variant), config=config_of(variant), cache=cache)
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from((*MUST_MISS, *MUST_HIT, STALE_SOURCE)), st.integers(0, 2**32)),
        min_size=25,
        max_size=40,
    )
)
def test_mutated_tasks_never_hit_wrongly_and_never_miss_needlessly(
    steps: list[tuple[str, int]], _module_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = Caching(store=FileCacheStore(tmp_path_factory.mktemp("cache")))
    variant = Variant()
    seen: dict[str, set[tuple[Any, ...]]] = {"compute": set(), "normalize": set()}
    for kind, seed in [("no change", 0), *steps]:
        rng = random.Random(seed)
        edited_to = mutate(variant, "task body", rng) if kind == STALE_SOURCE else None
        variant = mutate(variant, kind, rng)
        result = execute(variant, _module_dir, cache, edited_to=edited_to)
        expected_outputs = dict(zip(("compute", "normalize"), variant.expected(), strict=True))
        keys = {"compute": variant.compute_key(), "normalize": variant.normalize_key()}
        for task in ("compute", "normalize"):
            status = result.statuses[task]
            assert status in (TaskStatus.CACHED, TaskStatus.SUCCEEDED), (task, status)
            hit = status is TaskStatus.CACHED
            should_hit = keys[task] in seen[task]
            wrong_value = result.outputs[task] != expected_outputs[task]
            FIGURES[f"executions ({kind})"] += 1
            FIGURES["hits" if hit else "misses"] += 1
            FIGURES["false hits"] += int((hit and not should_hit) or wrong_value)
            assert not wrong_value, (task, kind, result.outputs[task], expected_outputs[task])
            if kind == STALE_SOURCE and task == "compute":
                FIGURES["safe misses on stale source"] += int(should_hit and not hit)
                continue  # filed under its bytecode: nothing the oracle tracks
            FIGURES["spurious misses"] += int(should_hit and not hit)
            assert hit == should_hit, (task, kind, "hit" if hit else "miss", variant)
            seen[task].add(keys[task])
    assert FIGURES["false hits"] == FIGURES["spurious misses"] == 0
