"""R5: the task cache never returns a wrong result and never misses an unchanged task.

A mutation test through the real runtime. A small project - a script with two cached tasks (a
function task and a ``Task`` object with a ``config`` attribute), a sibling ``r5_helpers``
module, and a local package ``r5_pkg`` whose ``units`` module calls into the third-party
distribution ``r5-tiny`` and reads a constant from its ``constants`` module - is rewritten
between executions, the way a user edits a project between runs, and re-imported; ``r5-tiny``
is "installed" (a package plus a ``*.dist-info``) into its own ``sys.path`` directory at
version 1.0 or 2.0. Every execution runs under a fresh run whose parameters the function task
partly reads, and every execution shares one on-disk cache. Each step applies one mutation to
the previous variant:

- must miss: the task body, the helper in the sibling module, the helper it calls in another
  module of the local package, a constant in a third module, a module constant, an upgrade of
  the third-party distribution, the task object's config, a run config value the task reads, a
  run parameter the task reads, an input value, an input's type (``str`` vs ``Path``, ``list``
  vs ``tuple``);
- must hit: a run parameter and a run config key that no task reads, the order of a dict
  input's keys, the order of the run config's keys, formatting only (indentation, blank lines,
  comments, spacing, quotes, redundant parentheses, trailing commas, docstrings, in every
  module), no change at all;
- the script edited after import, before the (unchanged) code runs: the text on disk no
  longer describes the running code, so the function task may miss (its code is then
  identified by its bytecode) but must never be served another variant's result, and
  nothing it stores may be served to the edited code later.

The oracle is the semantic state, not a hash: a task must be served from the cache exactly
when an equal state ran before (the code it reaches and the values it reads), and a cached
output must equal what the current code computes. False hits and spurious misses are counted
per mutation and must both be 0.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import random
import shutil
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workflow import Caching, FileCacheStore, TaskStatus

MODULE = "r5_tasks_under_edit"
PROJECT_MODULES = (MODULE, "r5_helpers", "r5_pkg", "r5_tiny")
"""Prefixes of the modules forgotten before every import (``r5_tiny``: the distribution)."""
MUST_MISS = (
    "task body",
    "called helper",
    "helper in another module",
    "constant in a third module",
    "module constant",
    "third-party upgrade",
    "task object config",
    "run config value",
    "run parameter read",
    "input value",
    "input type str/Path",
    "input type list/tuple",
)
MUST_HIT = (
    "run parameter not read",
    "run config key not read",
    "dict input order",
    "run config order",
    "formatting only",
    "no change",
)
STALE_SOURCE = "file edited after import"
"""The script is rewritten (another task body) after it was imported, before it runs."""
FIGURES: Counter[str] = Counter()


@dataclasses.dataclass(frozen=True)
class Variant:
    """One version of the project, of the installed distribution and of what a run holds."""

    body: int = 0
    helper: int = 2
    units: int = 1
    pkg_constant: int = 1
    constant: int = 1
    version: int = 1
    offset: int = 0
    factor: int = 1
    label: str = "run"
    p: int = 0
    q: int = 0
    x: int = 1
    path_type: str = "str"
    tags_type: str = "list"
    input_order: tuple[str, ...] = ("x", "path", "tags")
    config_order: tuple[str, ...] = ("factor", "label")
    style: int = 0

    def compute_key(self) -> tuple[Any, ...]:
        """What the function task's result depends on: the code it reaches, what it reads."""
        return (
            self.body,
            self.helper,
            self.units,
            self.pkg_constant,
            self.constant,
            self.version,
            self.factor,
            self.p,
            self.x,
            self.path_type,
            self.tags_type,
        )

    def expected(self) -> tuple[list[Any], int]:
        converted = self.x * self.units * self.pkg_constant + self.version  # r5_tiny.bump
        base = converted * self.helper * self.factor * self.constant + self.body + 10 * self.p
        computed = [base, "PosixPath" if self.path_type == "Path" else "str", self.tags_type]
        return computed, base + self.offset

    def normalize_key(self) -> tuple[Any, ...]:
        """What the task object's result depends on: its config and its input (it reads
        nothing from the run)."""
        return (self.offset, tuple(self.expected()[0]))


def mutate(variant: Variant, kind: str, rng: random.Random) -> Variant:
    flip = dataclasses.replace
    if kind == "task body":
        return flip(variant, body=(variant.body + rng.choice([1, 2])) % 3)
    if kind == "called helper":
        return flip(variant, helper=5 - variant.helper)  # 2 <-> 3
    if kind == "helper in another module":
        return flip(variant, units=3 - variant.units)  # 1 <-> 2
    if kind == "constant in a third module":
        return flip(variant, pkg_constant=5 - variant.pkg_constant)  # 1 <-> 4
    if kind == "module constant":
        return flip(variant, constant=3 - variant.constant)  # 1 <-> 2
    if kind == "third-party upgrade":
        return flip(variant, version=3 - variant.version)  # 1.0 <-> 2.0
    if kind == "task object config":
        return flip(variant, offset=1 - variant.offset)
    if kind == "run config value":
        return flip(variant, factor=3 - variant.factor)
    if kind == "run parameter read":
        return flip(variant, p=1 - variant.p)
    if kind == "run parameter not read":
        return flip(variant, q=variant.q + 1)
    if kind == "run config key not read":
        return flip(variant, label=f"run {rng.randrange(1000)}")
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


def render(variant: Variant) -> dict[str, str]:
    """The project's modules: the same AST for every ``style``, different text."""
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
        [
            f"return convert(value){times}{variant.helper}",
            f"return (convert(value){times}{variant.helper})",
        ]
    )
    base_expr = rng.choice(
        [
            f"helper(inputs[{q('x')}]){times}ctx.config[{q('factor')}]{times}SCALE"
            f" + {variant.body} + 10{times}ctx.params[{q('p')}]",
            f"(helper(\n{indent}{indent}inputs[{q('x')}],\n{indent})"
            f"{times}ctx.config[{q('factor')}]{times}SCALE) + {variant.body}"
            f" + (10{times}ctx.params[{q('p')}])",
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
    script = (
        maybe(f'"""Tasks under edit (style {variant.style})."""\n')
        + "from molexp.workflow import Task, TaskContext, WorkflowBuilder\n"
        + "from r5_helpers import helper\n"
        + blank
        + f"SCALE = {variant.constant}{maybe('  # a module constant')}\n"
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
    helpers = (
        maybe(f'"""Helpers beside the script ({variant.style})."""\n')
        + "from r5_pkg.units import convert\n"
        + blank
        + "def helper(value):\n"
        + body(maybe(f'"""Scale {variant.style}."""') or "# helper", helper_return)
    )
    convert_return = rng.choice(
        [
            f"return r5_tiny.bump(value{times}{variant.units}{times}constants.PKG_SCALE)",
            f"return r5_tiny.bump(\n{indent}{indent}value{times}{variant.units}"
            f"{times}constants.PKG_SCALE,\n{indent})",
        ]
    )
    units = (
        "import r5_tiny\n"
        + "from r5_pkg import constants\n"
        + blank
        + "def convert(value):\n"
        + body(maybe("# through the third-party distribution") or "# scaled", convert_return)
    )
    return {
        f"{MODULE}.py": script,
        "r5_helpers.py": helpers,
        "r5_pkg/__init__.py": maybe('"""A local package."""\n'),
        "r5_pkg/units.py": units,
        "r5_pkg/constants.py": f"PKG_SCALE = {variant.pkg_constant}{maybe('  # a constant')}\n",
    }


def install_tiny(site: Path, version: int) -> None:
    """Install version ``version``.0 of the distribution ``r5-tiny`` (module ``r5_tiny``)."""
    for stale in site.glob("r5_tiny*"):
        shutil.rmtree(stale)
    package = site / "r5_tiny"
    package.mkdir()
    (package / "__init__.py").write_text(f"def bump(value):\n    return value + {version}\n")
    info = site / f"r5_tiny-{version}.0.dist-info"
    info.mkdir()
    metadata = f"Metadata-Version: 2.1\nName: r5-tiny\nVersion: {version}.0\n"
    (info / "METADATA").write_text(metadata)
    (info / "RECORD").write_text("r5_tiny/__init__.py,,\n")


class RunContext:
    """The workflow layer's view of a run (``RunContextProtocol``): parameters, a directory."""

    def __init__(self, run_dir: Path, params: Mapping[str, Any]) -> None:
        self.params: Mapping[str, Any] = dict(params)
        self.config: Mapping[str, Any] = {}
        self.run_dir = run_dir
        self.execution_id = "attempt1"
        self.execution_dir = run_dir / "execution" / self.execution_id
        self.artifact = None
        self.workspace = None

    def set_result(self, key: str, value: Any) -> None: ...
    def get_result(self, key: str, default: Any = None) -> Any: ...
    def log(self, name: str) -> Any: ...
    def find_asset(self, name: str) -> Any: ...
    def checkpoint(self, name: str, data: Any = None) -> Any: ...
    def record_execution_state(self, state: Mapping[str, Any]) -> Any: ...
    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None: ...


def inputs_of(variant: Variant) -> dict[str, Any]:
    values = {
        "x": variant.x,
        "path": Path("data/a.csv") if variant.path_type == "Path" else "data/a.csv",
        "tags": ["a", "b"] if variant.tags_type == "list" else ("a", "b"),
    }
    return {key: values[key] for key in variant.input_order}


def config_of(variant: Variant) -> dict[str, Any]:
    values = {"factor": variant.factor, "label": variant.label}
    return {key: values[key] for key in variant.config_order}


def forget_project() -> None:
    for name in [name for name in sys.modules if name.startswith(PROJECT_MODULES)]:
        del sys.modules[name]


@pytest.fixture(scope="module", autouse=True)
def _module_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("r5")
    for part in ("project", "site", "runs"):
        (directory / part).mkdir()
    sys.path[:0] = [str(directory / "project"), str(directory / "site")]
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # a stale .pyc of a rewritten file would run old code
    yield directory
    sys.dont_write_bytecode = writes_bytecode
    sys.path.remove(str(directory / "project"))
    sys.path.remove(str(directory / "site"))
    forget_project()
    total = sum(FIGURES[k] for k in FIGURES if k.startswith("executions"))
    print(f"\nR5: {total} task executions; {dict(FIGURES)}")


def execute(
    variant: Variant, directory: Path, cache: Caching, *, edited_to: Variant | None = None
) -> Any:
    """Import the project of ``variant`` and run it under a fresh run (after rewriting the
    script to ``edited_to``)."""
    project = directory / "project"
    for relative, text in render(variant).items():
        (project / relative).parent.mkdir(exist_ok=True)
        (project / relative).write_text(text)
    install_tiny(directory / "site", variant.version)
    forget_project()
    importlib.invalidate_caches()
    module = importlib.import_module(MODULE)
    if edited_to is not None:
        (project / f"{MODULE}.py").write_text(render(edited_to)[f"{MODULE}.py"])
    runs = directory / "runs"
    run = RunContext(runs / str(len(list(runs.iterdir()))), {"p": variant.p, "q": variant.q})
    run.run_dir.mkdir()
    return asyncio.run(
        module.spec.execute(
            inputs=inputs_of(variant), config=config_of(variant), cache=cache, run_context=run
        )
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
