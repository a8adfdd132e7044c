"""The walk from a task's code over everything it reaches, folded into one code hash.

Starting from the task body, every global or dotted name (``helper``, ``utils.normalize``,
``Scaler.apply``) and every ``self.<attr>`` of a method is resolved through the code's globals,
closure and owning class, across modules and packages. What a resolved object is decides what
happens (see :mod:`molexp.workflow._origins` for first-party vs third-party):

- first-party function: its normalized code (see :mod:`molexp.workflow._code_analysis`), then,
  transitively, what it references; ``functools.wraps``/``lru_cache`` wrappers, partials,
  properties and static/class methods are unwrapped;
- first-party class: its bases, decorators and class-level statements, then all its methods;
- module-level constant of an immutable type (numbers, strings, bytes, enum members, paths,
  tuples/frozensets of those...) in first-party code: its value;
- any other module-level object in first-party code (a dict of settings, a model instance): the
  statement(s) that assign or mutate it (``MODEL = Model(cutoff=5)``, ``PARAMS["a"] = 1``),
  following ``from x import NAME`` to the module that builds it, and what those statements
  reference; its value when that source is unavailable;
- third-party code (a function, class, module or object from an installed distribution): not
  walked, but the name and version of its distribution are recorded;
- the standard library and MolExp itself: nothing.

The walk is bounded: beyond ``MAX_DEPENDENCY_DEPTH`` references from the task, or once
``MAX_FOLDED_OBJECTS`` functions, classes and statements are folded, it stops, and the code hash
covers instead every first-party module loaded in the process, whole (its normalized source and
the code of each of its functions): an edit anywhere in the user's code then invalidates, so
the bound never causes a false hit, only misses.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib.util
import inspect
import sys
import threading
import uuid
import weakref
from collections import deque
from collections.abc import Mapping
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from types import BuiltinFunctionType, FunctionType, MethodType, ModuleType
from typing import Any

from molexp.workflow._code_analysis import (
    CodeAnalysis,
    analyse,
    binding_statements,
    class_body_analysis,
    module_tree,
    source_compiles_to,
    statements_analysis,
)
from molexp.workflow._hashing import UnhashableInputError, dumps_canonical, hash_value, sha256_hex
from molexp.workflow._origins import Distribution, module_origin

__all__ = [
    "MAX_DEPENDENCY_DEPTH",
    "MAX_FOLDED_OBJECTS",
    "CodeFolder",
    "is_immutable_constant",
    "plain_function",
]

MAX_DEPENDENCY_DEPTH = 20
"""References further than this from the task body make the walk fall back to whole modules."""

MAX_FOLDED_OBJECTS = 500
"""Folding more functions, classes and statements than this falls back to whole modules."""

_MAX_IMPORT_HOPS = 5

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


def is_immutable_constant(value: object) -> bool:
    """Numbers, strings, bytes, enum members, paths... and tuples/frozensets of those."""
    if isinstance(value, _IMMUTABLE_SCALARS):
        return True
    if isinstance(value, tuple | frozenset):
        return all(is_immutable_constant(item) for item in value)
    return False


def plain_function(value: object) -> FunctionType | None:
    """The underlying Python function of a (wrapped, bound, static, cached...) callable."""
    current = value
    for _ in range(100):
        if isinstance(current, staticmethod | classmethod | MethodType):
            current = current.__func__
        elif isinstance(current, functools.cached_property):
            current = current.func
        elif isinstance(current, FunctionType):
            wrapped = current.__dict__.get("__wrapped__")
            if wrapped is None:
                return current
            current = wrapped
        elif not isinstance(current, type | BuiltinFunctionType) and callable(current):
            wrapped = inspect.getattr_static(current, "__wrapped__", None)  # lru_cache & co
            if wrapped is None:
                return None
            current = wrapped
        else:
            return None
    return None


def _package_of(module: object) -> str:
    return str(module).partition(".")[0] if isinstance(module, str) else ""


_MISSING = object()


@dataclasses.dataclass(frozen=True, slots=True)
class _Scope:
    """Where the names of one piece of code resolve."""

    namespace: Mapping[str, Any]
    module: str
    function: FunctionType | None
    cls: type | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Found:
    """A resolved name: the object, its qualified name, how the code spelled it, and where it
    was found (``binding``: the module-level name it is bound to in ``home``, if it is one)."""

    value: object
    qualified: str
    label: str
    home: str
    binding: str | None


_currency_lock = threading.Lock()
_currency: dict[str, tuple[str, weakref.ref[ModuleType], bool]] = {}


def _module_functions(module: ModuleType) -> list[FunctionType]:
    """Functions defined in ``module``: at module level and as methods of its classes."""
    name = module.__name__
    found: list[FunctionType] = []
    for value in list(vars(module).values()):
        members = vars(value).values() if isinstance(value, type) else (value,)
        if isinstance(value, type) and value.__module__ != name:
            continue
        for member in members:
            fn = plain_function(member)
            if fn is not None and fn.__module__ == name:
                found.append(fn)
    return found


def _source_is_current(module: ModuleType, parsed: tuple[str, ast.Module]) -> bool:
    """Whether the module's file still holds what its functions were compiled from (memoized
    per module object and text)."""
    key = module.__name__
    with _currency_lock:
        cached = _currency.get(key)
    if cached is not None and cached[0] is parsed[0] and cached[1]() is module:
        return cached[2]
    current = all(source_compiles_to(fn.__code__, parsed) for fn in _module_functions(module))
    with _currency_lock:
        _currency[key] = (parsed[0], weakref.ref(module), current)
    return current


@dataclasses.dataclass(frozen=True, slots=True)
class _Source:
    """A module's text and tree as read now; ``current``: its functions were compiled from it."""

    text: str
    tree: ast.Module
    current: bool

    def digest(self, analysis: CodeAnalysis) -> str:
        """The digest of statements read from this source.

        Text edited since the module was imported is not the code that ran: such digests are
        marked, so that they never equal the digest of the same text imported afresh.
        """
        if self.current:
            return analysis.digest
        return sha256_hex(dumps_canonical(["edited since import", analysis.digest]))


def _module_source(module: ModuleType | None) -> _Source | None:
    filename = getattr(module, "__file__", None)
    if module is None or not isinstance(filename, str):
        return None
    parsed = module_tree(filename, vars(module))
    if parsed is None:
        return None
    return _Source(parsed[0], parsed[1], _source_is_current(module, parsed))


def _value_digest(value: object) -> str:
    """A module-level object known only by its value: its canonical hash, or its name/state."""
    try:
        return hash_value(value)
    except UnhashableInputError:
        pass
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str):
        return sha256_hex(f"{module}.{qualname}")
    kind = f"{type(value).__module__}.{type(value).__qualname__}"
    try:
        return hash_value({"type": kind, "state": vars(value)})
    except (TypeError, UnhashableInputError):
        return sha256_hex(f"an instance of {kind}")


class CodeFolder:
    """Breadth-first walk from a task's code over everything it reaches (module docstring)."""

    def __init__(self, task_module: str) -> None:
        self.task_package = _package_of(task_module)
        self.parts: list[list[str]] = []
        self.dependencies: dict[str, str] = {}
        self.distributions: dict[str, Distribution] = {}
        self.bounded = False
        self._seen: set[int] = set()
        self._folded = 0
        self._queue: deque[tuple[_Scope, CodeAnalysis, int]] = deque()

    def add_root(self, fn: FunctionType, cls: type | None) -> CodeAnalysis:
        self._seen.add(id(fn))
        analysis = analyse(fn)
        self._add_bytecode_defaults("<task>", fn, analysis)
        self._queue.append((_Scope(fn.__globals__, fn.__module__, fn, cls), analysis, 1))
        return analysis

    def fold_value(self, label: str, value: object, qualified: str, cls: type) -> None:
        """Fold ``value``, an attribute of the task class ``cls`` (a method or a callable)."""
        self.fold(_Found(value, qualified, label, cls.__module__, None), 1, cls)

    def add_part(self, label: str, qualified_name: str, digest: str) -> None:
        self.parts.append([label, digest])
        self.dependencies[qualified_name] = digest

    def code_hash(self, body_digest: str, *, with_versions: bool) -> str:
        tree: dict[str, Any] = {"body": body_digest, "parts": self.parts}
        if with_versions:
            tree["distributions"] = {
                name: [found.version, found.record] for name, found in self.distributions.items()
            }
        return sha256_hex(dumps_canonical(tree))

    def run(self) -> None:
        while self._queue:
            scope, analysis, depth = self._queue.popleft()
            for chain in analysis.references:
                found = self._resolve(scope, chain)
                if found is not None:
                    self.fold(found, depth, None)
            if scope.cls is not None:
                for attribute in analysis.self_attributes:
                    self._fold_class_attribute(scope.cls, attribute, depth)
        if self.bounded:
            self._fold_loaded_modules()

    # -- what is ours ------------------------------------------------------------------------

    def _ours(self, module: str | None, filename: str | None = None, *, note: bool = True) -> bool:
        """First-party (or the task's own package); third-party origins note their versions."""
        if module and self.task_package and _package_of(module) == self.task_package:
            return True
        origin = module_origin(module, filename)
        if note and origin.kind == "third_party":
            self.distributions.update((found.name, found) for found in origin.distributions)
        return origin.kind == "first_party"

    def _admit(self, depth: int) -> bool:
        """Whether one more function, class or statement may be folded (else: the bound)."""
        if depth > MAX_DEPENDENCY_DEPTH or self._folded >= MAX_FOLDED_OBJECTS:
            self.bounded = True
            return False
        self._folded += 1
        return True

    # -- resolution --------------------------------------------------------------------------

    def _resolve(self, scope: _Scope, chain: tuple[str, ...]) -> _Found | None:
        """Follow ``chain`` through the scope, then modules and classes."""
        root = chain[0]
        fn = scope.function
        value: object = _MISSING
        binding: str | None = None
        if fn is not None and root in fn.__code__.co_freevars and fn.__closure__ is not None:
            cell = fn.__closure__[fn.__code__.co_freevars.index(root)]
            try:
                value = cell.cell_contents
            except ValueError:
                return None
            qualified = f"{fn.__module__}.{fn.__qualname__}.{root}"
        else:
            value = scope.namespace.get(root, _MISSING)
            qualified = f"{scope.module}.{root}"
            binding = root
        if value is _MISSING:
            return None
        home = scope.module
        used = [root]
        where: tuple[str, str | None, str]
        for attribute in chain[1:]:
            if isinstance(value, ModuleType):
                following = value.__dict__.get(attribute, _MISSING)
                where = (value.__name__, attribute, f"{value.__name__}.{attribute}")
            elif isinstance(value, type):
                following = inspect.getattr_static(value, attribute, _MISSING)
                where = (
                    value.__module__,
                    None,
                    f"{value.__module__}.{value.__qualname__}.{attribute}",
                )
            else:
                break
            if following is _MISSING:
                break
            value = following
            home, binding, qualified = where
            used.append(attribute)
        return _Found(value, qualified, ".".join(used), home, binding)

    def _fold_class_attribute(self, cls: type, attribute: str, depth: int) -> None:
        for klass in cls.__mro__:
            if attribute in vars(klass):
                qualified = f"{klass.__module__}.{klass.__qualname__}.{attribute}"
                found = _Found(
                    vars(klass)[attribute], qualified, f"self.{attribute}", klass.__module__, None
                )
                self.fold(found, depth, cls)
                return

    # -- folding -----------------------------------------------------------------------------

    def fold(self, found: _Found, depth: int, cls: type | None) -> None:
        """Fold one resolved object (see the module docstring for what each kind gives)."""
        value = found.value
        if isinstance(value, property):
            for accessor in (value.fget, value.fset, value.fdel):
                if accessor is not None:
                    self.fold(dataclasses.replace(found, value=accessor), depth, cls)
            return
        if isinstance(value, functools.partial):
            self.fold(dataclasses.replace(found, value=value.func), depth, cls)
            arguments = (value.args, tuple(sorted(value.keywords.items())))
            if is_immutable_constant(arguments):
                label, qualified = f"{found.label}(...)", f"{found.qualified}(...)"
                self.add_part(label, qualified, hash_value(arguments))
            return
        fn = plain_function(value)
        if fn is not None:
            if isinstance(value, MethodType) and not isinstance(value.__self__, type):
                cls = type(value.__self__)
            if self._ours(fn.__module__, fn.__code__.co_filename):
                self._fold_function(found.label, fn, depth, cls)
            return
        if isinstance(value, type):
            if self._ours(value.__module__):
                self._fold_class(found.label, value, depth)
            return
        if isinstance(value, ModuleType):
            # Used whole (passed around, attributes looked up at run time): all of it counts.
            qualified = f"{value.__name__}.*"
            if self._ours(value.__name__) and qualified not in self.dependencies:
                self.add_part(found.label, qualified, _module_digest(value))
            return
        self._fold_data(found, depth)

    def _fold_data(self, found: _Found, depth: int) -> None:
        value = found.value
        if found.qualified in self.dependencies:
            return
        kind = type(value)
        if not self._ours(found.home):
            self._ours(kind.__module__)
            return
        if is_immutable_constant(value):
            self.add_part(found.label, found.qualified, hash_value(value))
            return
        if found.binding is None or not self._fold_binding(
            found.label, found.home, found.binding, depth
        ):
            self.add_part(found.label, found.qualified, _value_digest(value))
        qualified = f"{kind.__module__}.{kind.__qualname__}"
        self.fold(_Found(kind, qualified, f"{found.label}.__class__", "", None), depth, None)

    def _fold_function(self, label: str, fn: FunctionType, depth: int, cls: type | None) -> None:
        if id(fn) in self._seen or not self._admit(depth):
            return
        self._seen.add(id(fn))
        analysis = analyse(fn)
        self.add_part(label, f"{fn.__module__}.{fn.__qualname__}", analysis.digest)
        self._add_bytecode_defaults(label, fn, analysis)
        self._queue.append((_Scope(fn.__globals__, fn.__module__, fn, cls), analysis, depth + 1))

    def _add_bytecode_defaults(self, label: str, fn: FunctionType, analysis: CodeAnalysis) -> None:
        """Default values live outside the code object: fold them when hashing bytecode."""
        if analysis.origin != "bytecode" or (fn.__defaults__ is None and not fn.__kwdefaults__):
            return
        defaults = (fn.__defaults__ or (), tuple(sorted((fn.__kwdefaults__ or {}).items())))
        if is_immutable_constant(defaults):
            self.parts.append([f"{label} defaults", hash_value(defaults)])

    def _fold_class(self, label: str, cls: type, depth: int) -> None:
        if id(cls) in self._seen or not self._admit(depth):
            return
        self._seen.add(id(cls))
        module_name = cls.__module__
        qualified = f"{module_name}.{cls.__qualname__}"
        module = sys.modules.get(module_name)
        source = _module_source(module)
        body = class_body_analysis(source.tree, source.text, cls.__qualname__) if source else None
        if body is not None and source is not None and module is not None:
            self.add_part(label, qualified, source.digest(body))
            self._queue.append((_Scope(vars(module), module_name, None, cls), body, depth + 1))
        else:
            for base in cls.__bases__:
                base_name = f"{base.__module__}.{base.__qualname__}"
                self.fold(_Found(base, base_name, f"{label}.__base__", "", None), depth, None)
        for name, member in sorted(vars(cls).items()):
            if name.startswith("__") and plain_function(member) is None:
                continue
            found = _Found(member, f"{qualified}.{name}", f"{label}.{name}", module_name, None)
            if (
                body is None
                or is_immutable_constant(member)
                or isinstance(member, type | property | functools.partial)
                or plain_function(member) is not None
            ):
                self.fold(found, depth, cls)

    def _fold_binding(self, label: str, module_name: str, name: str, depth: int) -> bool:
        """Fold the statements building the module-level object ``module_name.name``.

        Follows ``from x import name`` to the module that builds it (when that is ours; a
        third-party origin only notes its version). False when no statement is found.
        """
        for _ in range(_MAX_IMPORT_HOPS):
            module = sys.modules.get(module_name)
            source = _module_source(module)
            if module is None or source is None or not self._admit(depth):
                return False
            statements, imports = binding_statements(source.tree, name)
            if statements:
                segments = [ast.get_source_segment(source.text, node) for node in statements]
                analysis = statements_analysis(statements, "\n".join(filter(None, segments)))
                self.add_part(label, f"{module_name}.{name}", source.digest(analysis))
                scope = _Scope(vars(module), module_name, None, None)
                self._queue.append((scope, analysis, depth + 1))
                return True
            if not imports:
                return False
            statement = imports[-1]
            alias = next(a for a in statement.names if (a.asname or a.name) == name)
            relative = "." * statement.level + (statement.module or "")
            try:
                package = getattr(module, "__package__", None)
                module_name = importlib.util.resolve_name(relative, package)
            except (ImportError, ValueError):
                return False
            name = alias.name
            if not self._ours(module_name):
                return True  # built by third-party or standard library code: noted above
        return False

    def _fold_loaded_modules(self) -> None:
        """At the bound: every first-party module loaded, whole."""
        for name in sorted(sys.modules):
            module = sys.modules.get(name)
            if isinstance(module, ModuleType) and self._ours(name, note=False):
                qualified = f"{name}.*"
                self.add_part(qualified, qualified, _module_digest(module))


_whole_modules: dict[str, tuple[str, str]] = {}


def _module_digest(module: ModuleType) -> str:
    """A module's normalized source (when available) and the code of each of its functions."""
    parts: list[str] = []
    filename = getattr(module, "__file__", None)
    parsed = module_tree(filename, vars(module)) if isinstance(filename, str) else None
    if parsed is not None and isinstance(filename, str):
        text, tree = parsed
        cached = _whole_modules.get(filename)
        if cached is None or cached[0] is not text:
            whole = statements_analysis(tree.body, "").digest
            cached = _whole_modules[filename] = (text, whole)
        parts.append(cached[1])
    parts.extend(sorted(analyse(fn).digest for fn in _module_functions(module)))
    return sha256_hex(dumps_canonical(parts))
