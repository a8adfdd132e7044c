"""Tests for TaskSnapshot: AST-normalized code hashing, folded helpers and config hashing."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
import random
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workflow import _code_analysis
from molexp.workflow._hashing import UnhashableInputError, dumps_canonical, sha256_hex
from molexp.workflow.snapshot import MAX_DEPENDENCY_DEPTH, MAX_FOLDED_OBJECTS, TaskSnapshot
from pydantic import BaseModel

_counter = itertools.count()

Loader = Callable[..., ModuleType]


@pytest.fixture
def load(tmp_path: Path) -> Iterator[Loader]:
    """Write modules (or a package) under tmp_path and import them under unique names."""
    created: list[str] = []

    def _load(source: str, *, package: dict[str, str] | None = None) -> ModuleType:
        name = f"w2_snapmod_{next(_counter)}"
        if package is None:
            path = tmp_path / f"{name}.py"
            path.write_text(textwrap.dedent(source))
            spec = importlib.util.spec_from_file_location(name, path)
        else:
            root = tmp_path / name
            root.mkdir()
            for filename, text in package.items():
                (root / filename).write_text(textwrap.dedent(text))
            (root / "__init__.py").write_text(textwrap.dedent(source))
            spec = importlib.util.spec_from_file_location(
                name, root / "__init__.py", submodule_search_locations=[str(root)]
            )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        created.append(name)
        spec.loader.exec_module(module)
        return module

    yield _load
    for name in created:
        for loaded in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
            del sys.modules[loaded]


def code_hash(module: ModuleType, name: str = "task") -> str:
    return TaskSnapshot.from_callable(getattr(module, name), task_id="t").code_hash


BASE = """
def task(ctx):
    total = 0
    for value in ctx:
        total += value * 2
    return total
"""


def test_formatting_comments_docstrings_and_decorators_do_not_change_code_hash(
    load: Loader,
) -> None:
    reformatted = '''
    import functools

    def passthrough(fn):
        return fn

    def wrapping(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            return fn(*args, **kwargs)
        return inner


    @passthrough
    @wrapping
    def task(ctx):   # a comment
        """A docstring that was added."""

        total = (
            0
        )
        for value in ctx:  # loop
            total += value*2

        return total
    '''
    base = code_hash(load(BASE))
    assert code_hash(load(reformatted)) == base


def test_semantic_change_alters_code_hash(load: Loader) -> None:
    changed = BASE.replace("value * 2", "value * 3")
    assert code_hash(load(changed)) != code_hash(load(BASE))
    renamed_variable = BASE.replace("total", "acc")
    assert code_hash(load(renamed_variable)) != code_hash(load(BASE))


HELPERS = """
import json
import math

SCALE = 2

def square(x):
    return x * x

def helper(x):
    return square(x) * SCALE + math.sqrt(4)

def task(ctx):
    return json.dumps(helper(ctx))
"""


def unqualified(snapshot: TaskSnapshot) -> dict[str, str]:
    """dependency_hashes without the (test-unique) module name prefix."""
    return {name.split(".", 1)[1]: digest for name, digest in snapshot.dependency_hashes.items()}


def test_helper_edit_changes_code_hash_and_is_named(load: Loader) -> None:
    base = TaskSnapshot.from_callable(load(HELPERS).task, task_id="t")
    edited = TaskSnapshot.from_callable(
        load(HELPERS.replace("return x * x", "return x * x + 1")).task, task_id="t"
    )
    assert edited.code_hash != base.code_hash
    assert edited.body_hash == base.body_hash
    before, after = unqualified(base), unqualified(edited)
    assert before.keys() == after.keys()
    assert {name for name in before if before[name] != after[name]} == {"square"}


def test_helper_reformatting_keeps_code_hash(load: Loader) -> None:
    reformatted = HELPERS.replace(
        "def square(x):\n    return x * x",
        'def square(x):\n    """Square."""\n    # comment\n    return (x *\n            x)',
    )
    assert reformatted != HELPERS
    assert code_hash(load(reformatted)) == code_hash(load(HELPERS))


def test_constant_edit_changes_code_hash(load: Loader) -> None:
    assert code_hash(load(HELPERS.replace("SCALE = 2", "SCALE = 3"))) != code_hash(load(HELPERS))


def test_other_packages_are_not_folded(load: Loader) -> None:
    snapshot = TaskSnapshot.from_callable(load(HELPERS).task, task_id="t")
    assert set(unqualified(snapshot)) == {"helper", "square", "SCALE"}


def test_helpers_in_sibling_modules_of_the_same_package_are_folded(load: Loader) -> None:
    utils = "def normalize(x):\n    return x / 10\n"
    package_init = "from . import utils\n\ndef task(ctx):\n    return utils.normalize(ctx)\n"
    base = load(package_init, package={"utils.py": utils})
    edited = load(package_init, package={"utils.py": utils.replace("10", "100")})
    assert code_hash(edited) != code_hash(base)
    assert any(name.endswith("utils.normalize") for name in base_snapshot(base).dependency_hashes)


def base_snapshot(module: ModuleType) -> TaskSnapshot:
    return TaskSnapshot.from_callable(module.task, task_id="t")


CLASSES = """
class Scaler:
    FACTOR = 2

    def __init__(self, offset):
        self.offset = offset

    def apply(self, x):
        return self.shift(x) * self.FACTOR

    def shift(self, x):
        return x + self.offset

    @staticmethod
    def limit(x):
        return min(x, 100)

def by_instance(ctx):
    return Scaler(1).apply(ctx)

def by_static(ctx):
    return Scaler.limit(ctx)
"""


@pytest.mark.parametrize(
    ("edit", "task", "changes"),
    [
        (("return x + self.offset", "return x - self.offset"), "by_instance", True),
        (("FACTOR = 2", "FACTOR = 3"), "by_instance", True),
        (("min(x, 100)", "min(x, 99)"), "by_static", True),
        (("min(x, 100)", "min(x, 99)"), "by_instance", True),
    ],
)
def test_classes_called_through_module_names_are_folded(
    load: Loader, edit: tuple[str, str], task: str, changes: bool
) -> None:
    base = code_hash(load(CLASSES), task)
    edited = code_hash(load(CLASSES.replace(*edit)), task)
    assert (edited != base) is changes


def test_static_method_chain_folds_only_that_method(load: Loader) -> None:
    base = code_hash(load(CLASSES), "by_static")
    edited = code_hash(load(CLASSES.replace("x + self.offset", "x - self.offset")), "by_static")
    assert edited == base


TASK_CLASS = """
THRESHOLD = 0.5

def clip(x):
    return max(x, THRESHOLD)

class Train:
    EPOCHS = 3

    def __init__(self, lr):
        self.lr = lr
        self._cache = object()

    async def execute(self, ctx):
        return [self.step(x) for x in range(self.EPOCHS)]

    def step(self, x):
        return clip(x * self.lr)
"""


def test_from_task_folds_methods_called_on_self(load: Loader) -> None:
    def snap(source: str) -> TaskSnapshot:
        module = load(source)
        return TaskSnapshot.from_task(module.Train(0.1), task_id="train")

    base = snap(TASK_CLASS)
    assert base.task_type.endswith(".Train")
    assert base.config_data == {"task": {"lr": 0.1}, "config": {}}
    assert "async def execute" in base.code_source
    for edit in [
        ("return clip(x * self.lr)", "return clip(x / self.lr)"),
        ("THRESHOLD = 0.5", "THRESHOLD = 0.25"),
        ("EPOCHS = 3", "EPOCHS = 4"),
    ]:
        assert snap(TASK_CLASS.replace(*edit)).code_hash != base.code_hash, edit


def test_from_task_config_comes_from_public_state_and_argument(load: Loader) -> None:
    module = load(TASK_CLASS)
    first = TaskSnapshot.from_task(module.Train(0.1), task_id="train", config={"seed": 1})
    second = TaskSnapshot.from_task(module.Train(0.2), task_id="train", config={"seed": 1})
    third = TaskSnapshot.from_task(module.Train(0.1), task_id="train", config={"seed": 2})
    assert first.code_hash == second.code_hash == third.code_hash
    assert len({first.config_hash, second.config_hash, third.config_hash}) == 3
    assert first.config_data == {"task": {"lr": 0.1}, "config": {"seed": 1}}


class PydanticTask(BaseModel):
    lr: float = 0.1
    layers: tuple[int, ...] = (1, 2)

    def execute(self, ctx: float) -> float:
        return self.lr * ctx


@dataclasses.dataclass
class DataclassTask:
    depth: int
    _scratch: list[int] = dataclasses.field(default_factory=list)

    def execute(self, ctx: int) -> int:
        return self.depth + ctx


class ConfigAttributeTask:
    config: Any = {"alpha": 1}

    def execute(self, ctx: Any) -> Any:
        return ctx


def test_from_task_reads_pydantic_dataclass_and_config_attribute() -> None:
    pyd = TaskSnapshot.from_task(PydanticTask(), task_id="p")
    assert pyd.config_data["task"] == {"lr": 0.1, "layers": {"$tuple": [1, 2]}}
    assert TaskSnapshot.from_task(PydanticTask(lr=0.2), task_id="p").config_hash != pyd.config_hash
    dc = TaskSnapshot.from_task(DataclassTask(3), task_id="d")
    assert dc.config_data["task"] == {"depth": 3}
    cfg = TaskSnapshot.from_task(ConfigAttributeTask(), task_id="c")
    assert cfg.config_data["task"] == {"config": {"alpha": 1}}


class Streamer:
    async def stream(self, ctx: Any) -> Any:
        yield ctx

    def execute(self, ctx: Any) -> Any:
        return ctx


def test_from_task_hashes_stream_when_present() -> None:
    snapshot = TaskSnapshot.from_task(Streamer(), task_id="s")
    assert "async def stream" in snapshot.code_source
    assert any(name.endswith("Streamer.execute") for name in snapshot.dependency_hashes)


class Opaque:
    pass


class HoldsClient:
    def __init__(self) -> None:
        self.client = Opaque()

    def execute(self, ctx: Any) -> Any:
        return ctx


def test_from_task_unhashable_attribute_is_a_clear_error() -> None:
    with pytest.raises(
        UnhashableInputError, match=r"task 'fetch': self\.client: .*Opaque.*underscore"
    ):
        TaskSnapshot.from_task(HoldsClient(), task_id="fetch")


def double(x: int) -> int:
    return 2 * x


def triple(x: int) -> int:
    return 3 * x


class Strategy:
    def __init__(self, fn: Callable[[int], int]) -> None:
        self.fn = fn

    def execute(self, ctx: Any) -> Any:
        return self.fn(ctx)


def test_attributes_holding_functions_are_code() -> None:
    first = TaskSnapshot.from_task(Strategy(double), task_id="s")
    assert TaskSnapshot.from_task(Strategy(double), task_id="s").code_hash == first.code_hash
    assert TaskSnapshot.from_task(Strategy(triple), task_id="s").code_hash != first.code_hash
    external = TaskSnapshot.from_task(Strategy(abs), task_id="s")
    assert external.code_hash != first.code_hash
    assert "fn" not in first.config_data["task"]


def test_from_task_needs_execute_or_stream() -> None:
    with pytest.raises(TypeError, match=r"task 'x': Opaque has neither an execute\(\)"):
        TaskSnapshot.from_task(Opaque(), task_id="x")


def make_scaler(factor: int) -> Callable[[int], int]:
    def scaled(x: int) -> int:
        return x * factor

    return scaled


def test_closure_constants_are_folded() -> None:
    two = TaskSnapshot.from_callable(make_scaler(2), task_id="t")
    assert TaskSnapshot.from_callable(make_scaler(2), task_id="t").code_hash == two.code_hash
    assert TaskSnapshot.from_callable(make_scaler(3), task_id="t").code_hash != two.code_hash


def test_bytecode_fallback_for_exec_code() -> None:
    def compiled(source: str) -> Callable[..., Any]:
        namespace: dict[str, Any] = {"__name__": "w2_exec_mod"}
        exec(compile(textwrap.dedent(source), "<w2-generated>", "exec"), namespace)
        fn: Callable[..., Any] = namespace["task"]
        return fn

    source = "def task(ctx):\n    '''doc'''\n    return ctx + 1\n"
    first = TaskSnapshot.from_callable(compiled(source), task_id="t")
    assert first.code_origin == "bytecode"
    assert "source unavailable" in first.code_source
    assert TaskSnapshot.from_callable(compiled(source), task_id="t").code_hash == first.code_hash
    redoc = source.replace("doc", "other doc")
    assert TaskSnapshot.from_callable(compiled(redoc), task_id="t").code_hash == first.code_hash
    changed = source.replace("+ 1", "+ 2")
    assert TaskSnapshot.from_callable(compiled(changed), task_id="t").code_hash != first.code_hash
    nested = "def task(ctx):\n    return [lambda: x * 2 for x in ctx]\n"
    other = nested.replace("* 2", "* 3")
    assert (
        TaskSnapshot.from_callable(compiled(nested), task_id="t").code_hash
        != TaskSnapshot.from_callable(compiled(other), task_id="t").code_hash
    )


def test_source_hashing_is_used_when_source_exists(load: Loader) -> None:
    assert TaskSnapshot.from_callable(load(BASE).task, task_id="t").code_origin == "source"


def test_two_lambdas_on_one_line_are_told_apart(load: Loader) -> None:
    module = load("PAIR = [lambda x: x + 1, lambda x: x + 2]\n")
    first, second = (TaskSnapshot.from_callable(fn, task_id="t") for fn in module.PAIR)
    assert first.code_origin == second.code_origin == "source"
    assert first.code_source == "lambda x: x + 1"
    assert second.code_source == "lambda x: x + 2"
    assert first.code_hash != second.code_hash


def test_method_with_unindented_multiline_string_uses_source(load: Loader) -> None:
    module = load('class K:\n    def execute(self, ctx):\n        return """\nraw\n"""\n')
    assert TaskSnapshot.from_task(module.K(), task_id="k").code_origin == "source"


def test_partial_is_unwrapped_and_its_arguments_count() -> None:
    def power(x: Any, exponent: int) -> Any:
        return x**exponent

    plain = TaskSnapshot.from_callable(power, task_id="t")
    squared = TaskSnapshot.from_callable(functools.partial(power, exponent=2), task_id="t")
    cubed = TaskSnapshot.from_callable(functools.partial(power, exponent=3), task_id="t")
    assert squared.body_hash == cubed.body_hash == plain.body_hash
    assert len({plain.code_hash, squared.code_hash, cubed.code_hash}) == 3
    with pytest.raises(UnhashableInputError, match=r"task 'p': functools.partial arguments"):
        TaskSnapshot.from_callable(functools.partial(power, Opaque()), task_id="p")


def test_wraps_decorator_is_unwrapped() -> None:
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def wrapper(*args: Any) -> Any:
            return fn(*args)

        return wrapper

    def body(x: int) -> int:
        return x + 41

    wrapped = TaskSnapshot.from_callable(decorate(body), task_id="t")
    assert wrapped.body_hash == TaskSnapshot.from_callable(body, task_id="t").body_hash
    assert "x + 41" in wrapped.code_source


def test_bound_methods_and_callable_objects(load: Loader) -> None:
    module = load(
        "class Runner:\n"
        "    def __call__(self, ctx):\n"
        "        return self.inner(ctx)\n"
        "    def inner(self, ctx):\n"
        "        return ctx * 7\n"
    )
    from_object = TaskSnapshot.from_callable(module.Runner(), task_id="t")
    from_method = TaskSnapshot.from_callable(module.Runner().__call__, task_id="t")
    assert from_object.code_hash == from_method.code_hash
    assert any(name.endswith("Runner.inner") for name in from_object.dependency_hashes)


def test_non_callables_are_rejected() -> None:
    with pytest.raises(TypeError, match="cannot snapshot task 'bad'"):
        TaskSnapshot.from_callable(42, task_id="bad")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot snapshot task 'bad'"):
        TaskSnapshot.from_callable(len, task_id="bad")


def test_beyond_the_depth_bound_whole_modules_are_folded(load: Loader) -> None:
    levels = MAX_DEPENDENCY_DEPTH + 2
    lines = [f"def f{i}(x):\n    return f{i + 1}(x) + {i}\n" for i in range(levels)]
    lines.append(f"def f{levels}(x):\n    return x\n")
    source = "".join(lines) + "def task(ctx):\n    return f0(ctx)\n"
    base = TaskSnapshot.from_callable(load(source).task, task_id="t")
    assert base.whole_modules
    beyond = source.replace(f"+ {MAX_DEPENDENCY_DEPTH + 1}\n", "+ 1000\n")
    assert code_hash(load(beyond)) != base.code_hash
    shallow = TaskSnapshot.from_callable(load(BASE).task, task_id="t")
    assert not shallow.whole_modules


def test_beyond_the_object_bound_whole_modules_are_folded(load: Loader) -> None:
    count = MAX_FOLDED_OBJECTS + 5
    helpers = "".join(f"def h{i}(x):\n    return x + {i}\n" for i in range(count))
    calls = ", ".join(f"h{i}(ctx)" for i in range(count))
    source = f"{helpers}def task(ctx):\n    return sum([{calls}])\n"
    base = TaskSnapshot.from_callable(load(source).task, task_id="t")
    assert base.whole_modules
    last = f"return x + {count - 1}\n"
    assert code_hash(load(source.replace(last, "return x - 1\n"))) != base.code_hash


def test_recursive_helpers_terminate(load: Loader) -> None:
    source = (
        "def even(n):\n    return n == 0 or odd(n - 1)\n"
        "def odd(n):\n    return n != 0 and even(n - 1)\n"
        "def task(ctx):\n    return even(ctx)\n"
    )
    assert code_hash(load(source)) == code_hash(load(source))


def test_rebinding_a_global_is_seen_despite_memoization(load: Loader) -> None:
    module = load(HELPERS)
    before = code_hash(module)
    setattr(module, "SCALE", 5)  # noqa: B010 - the module is loaded at run time
    assert code_hash(module) != before
    setattr(module, "SCALE", 2)  # noqa: B010
    assert code_hash(module) == before


def test_analysis_is_memoized_per_code_object(
    load: Loader, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load(HELPERS)
    calls: list[str] = []
    original = _code_analysis._source_analysis

    def counting(fn: Any) -> Any:
        calls.append(fn.__name__)
        return original(fn)

    monkeypatch.setattr(_code_analysis, "_source_analysis", counting)
    for _ in range(3):
        TaskSnapshot.from_callable(module.task, task_id="t")
    assert sorted(calls) == ["helper", "square", "task"]


def test_key_and_record_fields(load: Loader) -> None:
    snapshot = TaskSnapshot.from_callable(load(BASE).task, task_id="t", config={"a": 1})
    assert snapshot.key == f"{snapshot.code_hash}:{snapshot.config_hash}"
    assert snapshot.task_type.endswith(".task")
    assert snapshot.created_at.tzinfo is not None
    assert snapshot.version == 2
    assert len(snapshot.code_hash) == len(snapshot.config_hash) == 64
    assert "total += value * 2" in snapshot.code_source
    restored = TaskSnapshot.model_validate_json(snapshot.model_dump_json())
    assert restored == snapshot
    with pytest.raises(ValueError, match="frozen"):
        snapshot.task_id = "other"


config_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=8,
)


@given(st.dictionaries(st.text(max_size=6), config_values, max_size=6), st.randoms())
def test_config_key_order_is_irrelevant(config: dict[str, Any], rnd: random.Random) -> None:
    items = list(config.items())
    rnd.shuffle(items)
    first = TaskSnapshot.from_callable(double, task_id="t", config=config)
    second = TaskSnapshot.from_callable(double, task_id="t", config=dict(items))
    assert first.config_hash == second.config_hash
    assert first.config_hash == sha256_hex(dumps_canonical(first.config_data))


def test_config_values_change_config_hash_not_code_hash() -> None:
    base = TaskSnapshot.from_callable(double, task_id="t", config={"lr": 0.1, "p": Path("a")})
    other = TaskSnapshot.from_callable(double, task_id="t", config={"lr": 0.2, "p": Path("a")})
    as_str = TaskSnapshot.from_callable(double, task_id="t", config={"lr": 0.1, "p": "a"})
    assert base.code_hash == other.code_hash
    assert len({base.config_hash, other.config_hash, as_str.config_hash}) == 3
    assert base.config_data == {"lr": 0.1, "p": {"$path": "a"}}
    assert TaskSnapshot.from_callable(double, task_id="t").config_data == {}


def test_unhashable_or_malformed_config_is_a_clear_error() -> None:
    with pytest.raises(UnhashableInputError, match=r"task 'train': config\['model'\]: .*Opaque"):
        TaskSnapshot.from_callable(double, task_id="train", config={"model": Opaque()})
    with pytest.raises(TypeError, match=r"task 'train': config keys must be strings, got 1"):
        TaskSnapshot.from_callable(double, task_id="train", config={1: "a"})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"task 'train': config must be a mapping"):
        TaskSnapshot.from_callable(double, task_id="train", config=[1])  # type: ignore[arg-type]


def _exec_function(source: str, filename: str) -> Callable[..., Any]:
    namespace: dict[str, Any] = {"__name__": "w2_exec_mod"}
    exec(compile(source, filename, "exec"), namespace)
    fn: Callable[..., Any] = namespace["task"]
    return fn


def test_equal_code_objects_from_different_sources_do_not_share_analysis(load: Loader) -> None:
    # Code objects compare equal when only default values differ; the memo must not mix them.
    one = load("def task(ctx, offset=1):\n    return ctx + offset\n")
    two = load("def task(ctx, offset=2):\n    return ctx + offset\n")
    assert one.task.__code__ == two.task.__code__
    assert code_hash(one) != code_hash(two)


def test_bytecode_fallback_folds_default_values() -> None:
    one = _exec_function("def task(ctx, offset=1):\n    return ctx + offset\n", "<w2-a>")
    two = _exec_function("def task(ctx, offset=2):\n    return ctx + offset\n", "<w2-b>")
    first, second = (TaskSnapshot.from_callable(fn, task_id="t") for fn in (one, two))
    assert first.code_origin == second.code_origin == "bytecode"
    assert first.code_hash != second.code_hash


def test_file_edited_after_import_is_not_mistaken_for_the_loaded_code(load: Loader) -> None:
    module = load(BASE)
    path = Path(module.__file__ or "")
    path.write_text("# a new first line shifts every function\n" + textwrap.dedent(BASE))
    snapshot = TaskSnapshot.from_callable(module.task, task_id="t")
    assert snapshot.code_origin == "bytecode"


def test_file_rewritten_and_reimported_is_read_afresh(load: Loader) -> None:
    first = load(BASE)
    name, path = first.__name__, Path(first.__file__ or "")
    before = code_hash(first)
    path.write_text(textwrap.dedent(BASE.replace("* 2", "* 3")))  # same size, same tick
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    assert code_hash(second) != before


def test_a_file_edited_after_import_is_not_taken_for_the_running_code(load: Loader) -> None:
    """Hashing the edited text would file the old code's results under the new code's key."""
    module = load("def task(x):\n    return x + 1\n")
    running = module.task
    Path(running.__code__.co_filename).write_text("def task(x):\n    return x + 100\n")
    stale = TaskSnapshot.from_callable(running, task_id="t")
    assert stale.code_origin == "bytecode"
    edited = load("def task(x):\n    return x + 100\n").task
    fresh = TaskSnapshot.from_callable(edited, task_id="t")
    assert fresh.code_origin == "source"
    assert fresh.code_hash != stale.code_hash
