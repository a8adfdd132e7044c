"""TaskSnapshot: the code + config identity of a task, used as the first half of a cache key.

``code_hash`` covers the task's own code and everything it reaches (see
:mod:`molexp.workflow._folding`): the user's functions, classes, methods and module-level
constants and objects, transitively, across modules and packages, each by its AST-normalized
source (comments, formatting, docstrings and decorators do not count) or, when no matching
source is available, its bytecode (``code_origin`` then says ``"bytecode"``). Third-party code
is identified by the versions of the installed distributions the task reaches
(``distributions``, and the digests of their ``RECORD`` files); a version change, or other
files installed under the same version, changes ``code_hash`` unless the snapshot is taken with
``track_dependency_versions=False``.

``config_hash`` is the sha256 of the canonical JSON of ``config_data`` (see
:mod:`molexp.workflow._hashing`), so key order is irrelevant and non-JSON values are handled.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from types import BuiltinFunctionType, FunctionType, MethodType
from typing import Any

from molexp.workflow._code_analysis import CodeAnalysis, CodeOrigin
from molexp.workflow._folding import (
    MAX_DEPENDENCY_DEPTH,
    MAX_FOLDED_OBJECTS,
    CodeFolder,
    plain_function,
)
from molexp.workflow._hashing import (
    UnhashableInputError,
    dumps_canonical,
    hash_value,
    sha256_hex,
    to_canonical,
)
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MAX_DEPENDENCY_DEPTH", "MAX_FOLDED_OBJECTS", "TaskSnapshot"]

_MISSING = object()


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
        or plain_function(value) is not None
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

    version: int = 2
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
        description="qualified name -> sha256 of every folded function, class, constant and "
        "module-level statement (``module.*``: a whole module)",
    )
    distributions: dict[str, str] = Field(
        default_factory=dict,
        description="name -> version of every installed distribution the task's code reaches",
    )
    distribution_records: dict[str, str] = Field(
        default_factory=dict,
        description="name -> digest of the distribution's RECORD (its files and their hashes)",
    )
    tracks_dependency_versions: bool = Field(
        default=True,
        description="whether ``distributions`` and their records are part of ``code_hash``",
    )
    whole_modules: bool = Field(
        default=False,
        description="the walk reached its bound: code_hash covers every first-party module loaded",
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
        track_dependency_versions: bool = True,
    ) -> TaskSnapshot:
        """Snapshot a function task (plain, async, wrapped, partial, bound or callable object).

        ``track_dependency_versions=False`` leaves the versions of third-party distributions out
        of ``code_hash`` (they are still listed in ``distributions``).
        """
        root, owner, partial_arguments = _callable_root(fn, task_id)
        folder = CodeFolder(root.__module__)
        analysis = folder.add_root(root, owner)
        for arguments in partial_arguments:
            try:
                digest = hash_value(arguments, label="functools.partial arguments")
            except UnhashableInputError as exc:
                raise exc.with_prefix(f"cannot snapshot task {task_id!r}: ") from None
            folder.parts.append(["functools.partial arguments", digest])
        folder.run()
        config_data = _config_tree(config, task_id, "config")
        task_type = f"{root.__module__}.{root.__qualname__}"
        return cls._build(
            task_id, task_type, folder, analysis, config_data, track_dependency_versions
        )

    @classmethod
    def from_task(
        cls,
        task_obj: object,
        *,
        task_id: str,
        config: Mapping[str, Any] | None = None,
        track_dependency_versions: bool = True,
    ) -> TaskSnapshot:
        """Snapshot a task object: its class's ``stream`` (if any) or ``execute`` method.

        The object's own configuration (pydantic fields, dataclass fields or public instance
        attributes, plus a ``config`` attribute) goes into ``config_data["task"]`` and the
        ``config`` argument into ``config_data["config"]``. Attributes holding functions or
        classes are folded into the code hash instead (by qualified name, and by source when
        they are first-party). Private attributes (``_name``) are left out.
        ``track_dependency_versions`` as for :meth:`from_callable`.
        """
        task_type = type(task_obj)
        methods = [
            (name, inspect.getattr_static(task_type, name, None)) for name in ("stream", "execute")
        ]
        present = [(name, method) for name, method in methods if plain_function(method)]
        if not present:
            raise TypeError(
                f"cannot snapshot task {task_id!r}: {task_type.__qualname__} has neither an "
                f"execute() nor a stream() method"
            )
        folder = CodeFolder(task_type.__module__)
        primary = plain_function(present[0][1])
        assert primary is not None
        analysis = folder.add_root(primary, task_type)
        for name, method in present[1:]:
            qualified = f"{task_type.__module__}.{task_type.__qualname__}.{name}"
            folder.fold_value(f"self.{name}", method, qualified, task_type)
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
            track_dependency_versions,
        )

    @classmethod
    def _build(
        cls,
        task_id: str,
        task_type: str,
        folder: CodeFolder,
        analysis: CodeAnalysis,
        config_data: dict[str, Any],
        track_dependency_versions: bool,
    ) -> TaskSnapshot:
        return cls(
            task_id=task_id,
            task_type=task_type,
            code_hash=folder.code_hash(analysis.digest, with_versions=track_dependency_versions),
            config_hash=sha256_hex(dumps_canonical(config_data)),
            code_source=analysis.source,
            config_data=config_data,
            code_origin=analysis.origin,
            body_hash=analysis.digest,
            dependency_hashes=folder.dependencies,
            distributions={
                name: found.version for name, found in sorted(folder.distributions.items())
            },
            distribution_records={
                name: found.record for name, found in sorted(folder.distributions.items())
            },
            tracks_dependency_versions=track_dependency_versions,
            whole_modules=folder.bounded,
        )


def _fold_attribute_code(folder: CodeFolder, label: str, value: object, owner: type) -> None:
    """Fold a callable held by a task attribute: its qualified name, and its code if ours."""
    name = _qualified_name(value)
    folder.add_part(label, f"{owner.__module__}.{owner.__qualname__}.{label}", sha256_hex(name))
    folder.fold_value(label, value, name, owner)
