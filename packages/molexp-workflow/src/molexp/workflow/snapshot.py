"""TaskSnapshot: the code + config identity of a task, used as the first half of a cache key.

``code_hash`` is the sha256 of the task's AST-normalized source: comments, formatting, docstrings
and decorators do not count; ``functools.wraps`` wrappers and ``functools.partial`` are unwrapped
(a partial's bound arguments are part of the code identity). The source is only used when it
compiles to the very code object being snapshotted: a file edited after its module was imported
no longer describes the code that runs. When no (matching) source is available (code built with
``exec``, a lambda typed into a REPL, a file edited since import) the hash falls back to the
bytecode (``co_code``, constants and names, recursively through nested code objects) and
``code_origin`` says ``"bytecode"``; bytecode hashes are only stable within one Python minor
version.

Folded dependencies. The code hash also covers what the task calls inside its own project, so
that editing a helper invalidates cached results. Starting from the task body, every global name
or dotted name (``helper``, ``utils.normalize``, ``Scaler.apply``) and every ``self.<attr>`` of a
method is resolved through the function's globals, closure and owning class. A resolved object is
folded in when it belongs to the same top-level package (or top-level module) as the task:

- a function: its normalized source, then, transitively, what it references;
- a class: all its methods (including static/class methods and properties) and its constants;
- a module-level or class-level constant of an immutable type (numbers, strings, bytes, enum
  members, tuples/frozensets of those...): its value.

Objects from other packages (the standard library, numpy, molexp itself for user tasks) are not
folded: their identity is their version. The walk stops ``MAX_DEPENDENCY_DEPTH`` calls away from
the task and after ``MAX_FOLDED_FUNCTIONS`` functions. Parsing and normalizing is memoized per code
object, so repeated snapshots of a task only re-resolve names and re-hash the config.

``config_hash`` is the sha256 of the canonical JSON of ``config_data`` (see
:mod:`molexp.workflow._hashing`), so key order is irrelevant and non-JSON values are handled.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import enum
import functools
import inspect
import linecache
import textwrap
import threading
import tokenize
import uuid
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path, PurePath
from types import BuiltinFunctionType, CodeType, FunctionType, MethodType, ModuleType
from typing import Any, Literal

from molexp.workflow._hashing import (
    UnhashableInputError,
    dumps_canonical,
    hash_value,
    sha256_hex,
    to_canonical,
)
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_DEPENDENCY_DEPTH", "MAX_FOLDED_FUNCTIONS", "TaskSnapshot"]

MAX_DEPENDENCY_DEPTH = 5
"""Helpers further than this many calls away from the task body are not folded."""

MAX_FOLDED_FUNCTIONS = 50
"""At most this many helper functions are folded into one code hash."""

CodeOrigin = Literal["source", "bytecode"]


@dataclasses.dataclass(frozen=True, slots=True)
class _CodeAnalysis:
    """What one code object contributes: its digest and the names it may call."""

    origin: CodeOrigin
    digest: str
    source: str
    references: tuple[tuple[str, ...], ...]
    self_attributes: tuple[str, ...]


# Keyed by code object *identity*: equal code objects (``code.__eq__`` ignores the file name and
# default values) may come from different sources, so equality must not share an analysis.
_analysis_memo: dict[int, tuple[weakref.ref[CodeType], _CodeAnalysis]] = {}
_memo_lock = threading.Lock()
_MODULE_TREE_MEMO_SIZE = 64
_module_trees: dict[str, tuple[str, ast.Module]] = {}


def _module_tree(filename: str, module_globals: dict[str, Any]) -> tuple[str, ast.Module] | None:
    """The text and parsed tree of the file a function comes from, or None if unavailable.

    Files are read afresh (``linecache`` can serve stale text when a file is rewritten within
    one timestamp tick); other sources (notebook cells, zip imports) come from ``linecache``.
    """
    text = ""
    if Path(filename).is_file():
        try:
            with tokenize.open(filename) as handle:
                text = handle.read()
        except (OSError, SyntaxError, UnicodeDecodeError):
            return None
    else:
        text = "".join(linecache.getlines(filename, module_globals))
    if not text:
        return None
    cached = _module_trees.get(filename)
    if cached is not None and cached[0] == text:
        return cached
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    if len(_module_trees) >= _MODULE_TREE_MEMO_SIZE:
        _module_trees.pop(next(iter(_module_trees)))
    _module_trees[filename] = (text, tree)
    return text, tree


_compiled_modules: dict[str, tuple[str, dict[tuple[str, int], list[CodeType]] | None]] = {}


def _source_compiles_to(code: CodeType, parsed: tuple[str, ast.Module]) -> bool:
    """Whether the source text read now is what ``code`` was compiled from.

    A file edited after its module was imported holds other text than the code that runs:
    hashing that text would file the old code's results under the new code's key (a false
    cache hit once the new code runs). The text is compiled once (memoized per file and text)
    and the function's code object must equal one compiled from it at the same place
    (``code.__eq__`` compares the bytecode, constants, names and line table).
    """
    text, tree = parsed
    cached = _compiled_modules.get(code.co_filename)
    if cached is None or cached[0] != text:
        codes: dict[tuple[str, int], list[CodeType]] | None = None
        try:
            module = compile(
                tree,
                code.co_filename,
                "exec",
                flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
                dont_inherit=True,
            )
        except (SyntaxError, ValueError):
            pass
        else:
            codes = {}
            for nested in _nested_codes(module):
                codes.setdefault((nested.co_name, nested.co_firstlineno), []).append(nested)
        if len(_compiled_modules) >= _MODULE_TREE_MEMO_SIZE:
            _compiled_modules.pop(next(iter(_compiled_modules)), None)
        cached = _compiled_modules[code.co_filename] = (text, codes)
    compiled = cached[1]
    if compiled is None:
        return False
    return code in compiled.get((code.co_name, code.co_firstlineno), [])


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return node.decorator_list[0].lineno if node.decorator_list else node.lineno


def _find_lambda(tree: ast.Module, code: CodeType) -> ast.Lambda | None:
    starts = [
        (line, col)
        for line, _, col, end_col in code.co_positions()
        if line is not None and col is not None and (col, end_col) != (0, 0)
    ]
    if not starts:
        return None
    position = starts[0]
    candidates = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Lambda)
        and node.lineno == code.co_firstlineno
        and (node.body.lineno, node.body.col_offset)
        <= position
        <= (node.body.end_lineno or 0, node.body.end_col_offset or 0)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _find_node(
    tree: ast.Module, code: CodeType
) -> ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None:
    """The AST node ``code`` was compiled from; None when ambiguous or the file has moved on."""
    node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | None
    if code.co_name == "<lambda>":
        node = _find_lambda(tree, code)
    else:
        matches = [
            candidate
            for candidate in ast.walk(tree)
            if isinstance(candidate, ast.FunctionDef | ast.AsyncFunctionDef)
            and candidate.name == code.co_name
            and _first_line(candidate) == code.co_firstlineno
        ]
        node = matches[0] if len(matches) == 1 else None
    if node is None:
        return None
    last_line = max((line for _, line, _, _ in code.co_positions() if line is not None), default=0)
    return node if last_line <= (node.end_lineno or 0) else None


def _strip_docstrings(node: ast.AST) -> None:
    for child in ast.walk(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = child.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                child.body = body[1:] or [ast.Pass()]


def _normalized_dump(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> str:
    """``ast.dump`` without positions, decorators or docstrings."""
    clean = copy.deepcopy(node)
    if isinstance(clean, ast.FunctionDef | ast.AsyncFunctionDef):
        clean.decorator_list = []
    _strip_docstrings(clean)
    for child in ast.walk(clean):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            child.decorator_list = []
    return ast.dump(clean, annotate_fields=True, include_attributes=False)


def _attribute_chain(node: ast.Attribute) -> tuple[str, ...] | None:
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return tuple(reversed(parts))


def _nested_codes(code: CodeType) -> Iterator[CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, CodeType):
            yield from _nested_codes(const)


def _references(
    node: ast.AST, global_names: set[str], self_name: str | None
) -> tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]:
    chains: set[tuple[str, ...]] = set()
    self_attributes: set[str] = set()

    def visit(current: ast.AST) -> None:
        if isinstance(current, ast.Attribute):
            chain = _attribute_chain(current)
            if chain is not None:
                if chain[0] == self_name:
                    self_attributes.add(chain[1])
                elif chain[0] in global_names:
                    chains.add(chain)
                return
        elif (
            isinstance(current, ast.Name)
            and isinstance(current.ctx, ast.Load)
            and current.id in global_names
        ):
            chains.add((current.id,))
        for child in ast.iter_child_nodes(current):
            visit(child)

    visit(node)
    return tuple(sorted(chains)), tuple(sorted(self_attributes))


def _first_parameter(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def _source_analysis(fn: FunctionType) -> _CodeAnalysis | None:
    code = fn.__code__
    parsed = _module_tree(code.co_filename, fn.__globals__)
    if parsed is None:
        return None
    text, tree = parsed
    node = _find_node(tree, code)
    if node is None or not _source_compiles_to(code, parsed):
        return None
    if isinstance(node, ast.Lambda):
        source = ast.get_source_segment(text, node) or ""
    else:
        lines = text.splitlines(keepends=True)[_first_line(node) - 1 : node.end_lineno]
        source = textwrap.dedent("".join(lines))
    global_names = {name for nested in _nested_codes(code) for name in nested.co_names}
    global_names.update(code.co_freevars)
    references, self_attributes = _references(node, global_names, _first_parameter(node))
    return _CodeAnalysis(
        origin="source",
        digest=sha256_hex(_normalized_dump(node)),
        source=source,
        references=references,
        self_attributes=self_attributes,
    )


def _bytecode_tree(code: CodeType, docstring: str | None) -> dict[str, Any]:
    consts = list(code.co_consts)
    if docstring is not None and consts and consts[0] == docstring:
        consts = consts[1:]
    return {
        "code": code.co_code.hex(),
        "consts": [_const_tree(const) for const in consts],
        "names": list(code.co_names),
        "varnames": list(code.co_varnames),
        "freevars": list(code.co_freevars),
    }


def _const_tree(const: object) -> Any:
    if isinstance(const, CodeType):
        return {"$code": _bytecode_tree(const, None)}
    if const is Ellipsis:
        return {"$ellipsis": True}
    if isinstance(const, tuple):
        return {"$tuple": [_const_tree(item) for item in const]}
    if isinstance(const, frozenset):
        return {"$set": sorted(dumps_canonical(_const_tree(item)) for item in const)}
    return to_canonical(const, label="constant")


def _bytecode_analysis(fn: FunctionType) -> _CodeAnalysis:
    code = fn.__code__
    names = sorted({name for nested in _nested_codes(code) for name in nested.co_names})
    references = sorted({(name,) for name in names} | {(name,) for name in code.co_freevars})
    qualname = f"{fn.__module__}.{fn.__qualname__}"
    return _CodeAnalysis(
        origin="bytecode",
        digest=sha256_hex(dumps_canonical(_bytecode_tree(code, fn.__doc__))),
        source=f"# source unavailable: code_hash of {qualname} computed from bytecode\n",
        references=tuple(references),
        self_attributes=tuple(names),
    )


def _analyse(fn: FunctionType) -> _CodeAnalysis:
    """Memoized per code object: the digest and references of one function."""
    code = fn.__code__
    marker = id(code)
    with _memo_lock:
        cached = _analysis_memo.get(marker)
    if cached is not None and cached[0]() is code:
        return cached[1]
    analysis = _source_analysis(fn) or _bytecode_analysis(fn)

    def forget(_: weakref.ref[CodeType]) -> None:
        with _memo_lock:
            current = _analysis_memo.get(marker)
            if current is not None and current[0]() is None:
                del _analysis_memo[marker]

    with _memo_lock:
        _analysis_memo[marker] = (weakref.ref(code, forget), analysis)
    return analysis


def _package_of(module: object) -> str:
    return str(module).partition(".")[0] if isinstance(module, str) else ""


_IMMUTABLE_SCALARS = (
    type(None),
    bool,
    int,
    float,
    complex,
    str,
    bytes,
    Decimal,
    enum.Enum,
    PurePath,
    date,
    time,
    timedelta,
    uuid.UUID,
)


def _is_immutable_constant(value: object) -> bool:
    if isinstance(value, _IMMUTABLE_SCALARS):
        return True
    if isinstance(value, tuple | frozenset):
        return all(_is_immutable_constant(item) for item in value)
    return False


def _plain_function(value: object) -> FunctionType | None:
    """The underlying Python function of a (wrapped, bound, static...) callable, if any."""
    current = value
    for _ in range(100):
        if isinstance(current, staticmethod | classmethod | MethodType):
            current = current.__func__
        elif isinstance(current, FunctionType):
            wrapped = current.__dict__.get("__wrapped__")
            if wrapped is None:
                return current
            current = wrapped
        else:
            return None
    return None


_MISSING = object()


@dataclasses.dataclass(frozen=True, slots=True)
class _Owner:
    """Where a function's names resolve: its globals/closure and the class of ``self``."""

    function: FunctionType
    cls: type | None


class _CodeFolder:
    """Breadth-first walk from the task body over same-package helpers and constants."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.parts: list[list[str]] = []
        self.dependencies: dict[str, str] = {}
        self._seen: set[int] = set()
        self._functions = 0
        self._queue: deque[tuple[_Owner, _CodeAnalysis, int]] = deque()

    def add_root(self, fn: FunctionType, cls: type | None) -> _CodeAnalysis:
        self._seen.add(id(fn))
        analysis = _analyse(fn)
        self._add_bytecode_defaults("<task>", fn, analysis)
        self._queue.append((_Owner(fn, cls), analysis, 1))
        return analysis

    def _add_bytecode_defaults(self, label: str, fn: FunctionType, analysis: _CodeAnalysis) -> None:
        """Default values live outside the code object: fold them when hashing bytecode."""
        if analysis.origin != "bytecode" or (fn.__defaults__ is None and not fn.__kwdefaults__):
            return
        defaults = (fn.__defaults__ or (), tuple(sorted((fn.__kwdefaults__ or {}).items())))
        if _is_immutable_constant(defaults):
            self.parts.append([f"{label} defaults", hash_value(defaults)])

    def add_part(self, label: str, qualified_name: str, digest: str) -> None:
        self.parts.append([label, digest])
        self.dependencies[qualified_name] = digest

    def run(self) -> None:
        while self._queue:
            owner, analysis, depth = self._queue.popleft()
            for chain in analysis.references:
                resolved = self._resolve(owner.function, chain)
                if resolved is not None:
                    value, qualified, label = resolved
                    self.fold(label, value, qualified, depth, None)
            if owner.cls is not None:
                for attribute in analysis.self_attributes:
                    self._fold_class_attribute(owner.cls, attribute, f"self.{attribute}", depth)

    def _resolve(self, fn: FunctionType, chain: tuple[str, ...]) -> tuple[object, str, str] | None:
        """Follow ``chain`` through modules and classes: (object, qualified name, label)."""
        root = chain[0]
        value: object = _MISSING
        if root in fn.__code__.co_freevars and fn.__closure__ is not None:
            cell = fn.__closure__[fn.__code__.co_freevars.index(root)]
            try:
                value = cell.cell_contents
            except ValueError:
                return None
        else:
            value = fn.__globals__.get(root, _MISSING)
        if value is _MISSING:
            return None
        qualified = (
            f"{fn.__module__}.{fn.__qualname__}.{root}"
            if root in fn.__code__.co_freevars
            else f"{fn.__module__}.{root}"
        )
        used = [root]
        for attribute in chain[1:]:
            if isinstance(value, ModuleType):
                following = value.__dict__.get(attribute, _MISSING)
                qualified = f"{value.__name__}.{attribute}"
            elif isinstance(value, type):
                following = inspect.getattr_static(value, attribute, _MISSING)
                qualified = f"{value.__module__}.{value.__qualname__}.{attribute}"
            else:
                break
            if following is _MISSING:
                break
            value = following
            used.append(attribute)
        return value, qualified, ".".join(used)

    def _fold_class_attribute(self, cls: type, attribute: str, label: str, depth: int) -> None:
        for klass in cls.__mro__:
            if attribute in vars(klass):
                qualified = f"{klass.__module__}.{klass.__qualname__}.{attribute}"
                self.fold(label, vars(klass)[attribute], qualified, depth, cls)
                return

    def fold(self, label: str, value: object, qualified: str, depth: int, cls: type | None) -> None:
        """Fold ``value``, reached as ``label`` and named ``qualified``, if it is ours.

        Functions and classes are judged by their own module; constants by ``qualified``.
        """
        if isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self.fold(label, accessor, qualified, depth, cls)
            return
        if isinstance(value, functools.partial):
            self.fold(label, value.func, qualified, depth, cls)
            arguments = (value.args, tuple(sorted(value.keywords.items())))
            if _is_immutable_constant(arguments):
                self.add_part(f"{label}(...)", f"{qualified}(...)", hash_value(arguments))
            return
        fn = _plain_function(value)
        if fn is not None:
            if isinstance(value, MethodType) and not isinstance(value.__self__, type):
                cls = type(value.__self__)
            self._fold_function(label, fn, depth, cls)
        elif isinstance(value, type):
            self._fold_class(label, value, depth)
        elif (
            _is_immutable_constant(value)
            and _package_of(qualified) == self.package
            and qualified not in self.dependencies
        ):
            self.add_part(label, qualified, hash_value(value))

    def _fold_function(self, label: str, fn: FunctionType, depth: int, cls: type | None) -> None:
        if (
            _package_of(fn.__module__) != self.package
            or id(fn) in self._seen
            or depth > MAX_DEPENDENCY_DEPTH
            or self._functions >= MAX_FOLDED_FUNCTIONS
        ):
            return
        self._seen.add(id(fn))
        self._functions += 1
        analysis = _analyse(fn)
        self.add_part(label, f"{fn.__module__}.{fn.__qualname__}", analysis.digest)
        self._add_bytecode_defaults(label, fn, analysis)
        self._queue.append((_Owner(fn, cls), analysis, depth + 1))

    def _fold_class(self, label: str, cls: type, depth: int) -> None:
        if _package_of(cls.__module__) != self.package or id(cls) in self._seen:
            return
        self._seen.add(id(cls))
        for name, member in sorted(vars(cls).items()):
            if name.startswith("__") and _plain_function(member) is None:
                continue
            qualified = f"{cls.__module__}.{cls.__qualname__}.{name}"
            self.fold(f"{label}.{name}", member, qualified, depth, cls)

    def code_hash(self, body_digest: str) -> str:
        return sha256_hex(dumps_canonical({"body": body_digest, "parts": self.parts}))


def _callable_root(fn: object, task_id: str) -> tuple[FunctionType, type | None, list[object]]:
    """Unwrap partials, bound methods, wrappers and callable objects down to one function."""
    partial_arguments: list[object] = []
    owner: type | None = None
    current = fn
    for _ in range(100):
        if isinstance(current, functools.partial):
            partial_arguments.append([list(current.args), dict(current.keywords)])
            current = current.func
        elif isinstance(current, MethodType):
            bound = current.__self__
            owner = bound if isinstance(bound, type) else type(bound)
            current = current.__func__
        elif isinstance(current, staticmethod | classmethod):
            current = current.__func__
        elif isinstance(current, FunctionType):
            wrapped = current.__dict__.get("__wrapped__")
            if wrapped is None:
                return current, owner, partial_arguments
            current = wrapped
        elif not isinstance(current, type) and isinstance(
            inspect.getattr_static(type(current), "__call__", None), FunctionType
        ):
            owner = type(current)
            current = inspect.getattr_static(owner, "__call__")
        else:
            break
    raise TypeError(
        f"cannot snapshot task {task_id!r}: {fn!r} is not a Python function, method, "
        f"functools.partial or callable object with a Python __call__"
    )


def _config_tree(config: Mapping[str, Any] | None, task_id: str, label: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise TypeError(
            f"cannot snapshot task {task_id!r}: {label} must be a mapping, "
            f"got {type(config).__name__}"
        )
    for key in config:
        if not isinstance(key, str):
            raise TypeError(
                f"cannot snapshot task {task_id!r}: {label} keys must be strings, got {key!r}"
            )
    try:
        tree = to_canonical(dict(config), label=label)
    except UnhashableInputError as exc:
        raise exc.with_prefix(f"cannot snapshot task {task_id!r}: ") from None
    assert isinstance(tree, dict)
    return tree


def _state_tree(state: Mapping[str, Any], task_id: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in state.items():
        try:
            tree[name] = to_canonical(value, label=f"self.{name}")
        except UnhashableInputError as exc:
            hint = " (prefix the attribute with an underscore to leave it out of the snapshot)"
            raise UnhashableInputError(
                f"cannot snapshot task {task_id!r}: {exc.path}", exc.type_name, exc.detail + hint
            ) from None
    return tree


def _public_state(task_obj: object) -> dict[str, Any]:
    """The task object's own configuration: pydantic/dataclass fields or public attributes."""
    names: list[str]
    if isinstance(task_obj, BaseModel):
        names = [*type(task_obj).model_fields, *(task_obj.model_extra or {})]
    elif dataclasses.is_dataclass(task_obj):
        names = [field.name for field in dataclasses.fields(task_obj)]
    else:
        names = list(getattr(task_obj, "__dict__", {}))
        for klass in type(task_obj).__mro__:
            slots = vars(klass).get("__slots__", ())
            names.extend([slots] if isinstance(slots, str) else slots)
    state: dict[str, Any] = {}
    for name in names:
        if name.startswith("_") or name in state:
            continue
        value = getattr(task_obj, name, _MISSING)
        if value is not _MISSING:
            state[name] = value
    if "config" not in state:
        declared = inspect.getattr_static(type(task_obj), "config", _MISSING)
        if declared is not _MISSING and not callable(declared):
            state["config"] = getattr(task_obj, "config", None)
    return state


def _is_code(value: object) -> bool:
    return (
        isinstance(value, functools.partial | type | BuiltinFunctionType)
        or _plain_function(value) is not None
    )


def _qualified_name(value: object) -> str:
    target = value.func if isinstance(value, functools.partial) else value
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", type(target).__qualname__)
    return f"{module}.{qualname}"


def _now() -> datetime:
    return datetime.now(UTC)


class TaskSnapshot(BaseModel):
    """Identity of a task's code and configuration at one moment.

    Build one with :meth:`from_callable` (function tasks) or :meth:`from_task` (task objects);
    ``key`` (``"<code_hash>:<config_hash>"``) is what caches are keyed on.
    """

    model_config = ConfigDict(frozen=True)

    version: int = 1
    task_id: str
    task_type: str = Field(description="module.qualname of the task function or class")
    code_hash: str = Field(description="sha256 of the normalized task code and folded helpers")
    config_hash: str = Field(description="sha256 of the canonical JSON of config_data")
    code_source: str
    created_at: datetime = Field(default_factory=_now)
    config_data: dict[str, Any]
    code_origin: CodeOrigin = "source"
    body_hash: str = Field(description="sha256 of the task body alone, without helpers")
    dependency_hashes: dict[str, str] = Field(
        default_factory=dict,
        description="qualified name -> sha256 of every folded helper and constant",
    )

    @property
    def key(self) -> str:
        """``"<code_hash>:<config_hash>"``."""
        return f"{self.code_hash}:{self.config_hash}"

    @classmethod
    def from_callable(
        cls,
        fn: Callable[..., Any],
        *,
        task_id: str,
        config: Mapping[str, Any] | None = None,
    ) -> TaskSnapshot:
        """Snapshot a function task (plain, async, wrapped, partial, bound or callable object)."""
        root, owner, partial_arguments = _callable_root(fn, task_id)
        folder = _CodeFolder(_package_of(root.__module__))
        analysis = folder.add_root(root, owner)
        for arguments in partial_arguments:
            try:
                digest = hash_value(arguments, label="functools.partial arguments")
            except UnhashableInputError as exc:
                raise exc.with_prefix(f"cannot snapshot task {task_id!r}: ") from None
            folder.parts.append(["functools.partial arguments", digest])
        folder.run()
        config_data = _config_tree(config, task_id, "config")
        return cls._build(
            task_id, f"{root.__module__}.{root.__qualname__}", folder, analysis, config_data
        )

    @classmethod
    def from_task(
        cls,
        task_obj: object,
        *,
        task_id: str,
        config: Mapping[str, Any] | None = None,
    ) -> TaskSnapshot:
        """Snapshot a task object: its class's ``stream`` (if any) or ``execute`` method.

        The object's own configuration (pydantic fields, dataclass fields or public instance
        attributes, plus a ``config`` attribute) goes into ``config_data["task"]`` and the
        ``config`` argument into ``config_data["config"]``. Attributes holding functions or
        classes are folded into the code hash instead (by source when they belong to the task's
        package, by qualified name otherwise). Private attributes (``_name``) are left out.
        """
        task_type = type(task_obj)
        methods = [
            (name, inspect.getattr_static(task_type, name, None)) for name in ("stream", "execute")
        ]
        present = [(name, method) for name, method in methods if _plain_function(method)]
        if not present:
            raise TypeError(
                f"cannot snapshot task {task_id!r}: {task_type.__qualname__} has neither an "
                f"execute() nor a stream() method"
            )
        folder = _CodeFolder(_package_of(task_type.__module__))
        primary = _plain_function(present[0][1])
        assert primary is not None
        analysis = folder.add_root(primary, task_type)
        for name, method in present[1:]:
            qualified = f"{task_type.__module__}.{task_type.__qualname__}.{name}"
            folder.fold(f"self.{name}", method, qualified, 1, task_type)
        state: dict[str, Any] = {}
        for name, value in _public_state(task_obj).items():
            if _is_code(value):
                _fold_attribute_code(folder, f"self.{name}", value, task_type)
            else:
                state[name] = value
        folder.run()
        config_data = {
            "task": _state_tree(state, task_id),
            "config": _config_tree(config, task_id, "config"),
        }
        return cls._build(
            task_id,
            f"{task_type.__module__}.{task_type.__qualname__}",
            folder,
            analysis,
            config_data,
        )

    @classmethod
    def _build(
        cls,
        task_id: str,
        task_type: str,
        folder: _CodeFolder,
        analysis: _CodeAnalysis,
        config_data: dict[str, Any],
    ) -> TaskSnapshot:
        return cls(
            task_id=task_id,
            task_type=task_type,
            code_hash=folder.code_hash(analysis.digest),
            config_hash=sha256_hex(dumps_canonical(config_data)),
            code_source=analysis.source,
            config_data=config_data,
            code_origin=analysis.origin,
            body_hash=analysis.digest,
            dependency_hashes=folder.dependencies,
        )


def _fold_attribute_code(folder: _CodeFolder, label: str, value: object, owner: type) -> None:
    """Fold a callable held by a task attribute: by source if ours, else by qualified name."""
    target = value.func if isinstance(value, functools.partial) else value
    target_module = getattr(target, "__module__", None)
    if _package_of(target_module) == folder.package:
        folder.fold(label, value, f"{owner.__module__}.{owner.__qualname__}.{label}", 1, owner)
    else:
        name = _qualified_name(value)
        folder.add_part(label, name, sha256_hex(name))
