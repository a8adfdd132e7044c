"""What a ``cache=True`` task read from its run, and whether a run now would read the same.

While a ``cache=True`` task runs, its ``ctx`` records every run-derived value the task reads
(:class:`ReadRecorder`): a key of ``ctx.params``/``ctx.config``/``ctx.run_context.params``/
``ctx.run_context.config`` (a missing key counts, as does the set of keys when the task iterates),
an attribute of the run context (``run_dir``, ``execution_id``, ...), ``get_result(key)``,
``find_asset(name)`` (identified by the asset's id, path and content hash), and ``ctx.task_name``,
``ctx.workflow_name``, ``ctx.workflow_id`` and whether there is a run at all. Each read is a
:class:`RunRead`: what was read and the sha256 of its value. Writes (``set_result``, artifacts,
logs, checkpoints) are not reads.

A cache entry stores the reads of the execution that produced it; a lookup is a hit only when
:class:`RunValues` (what the task would read now) gives the same digest for every one of them.
A task that reads nothing from its run hits across runs and experiments; one that reads
``params["x"]`` hits only where ``x`` is the same. A value that cannot be hashed, or a read the
cache cannot repeat (``ctx.run_context.workspace``, a method of the run context it does not know,
a channel message), makes the result uncacheable: the task runs, and its result is not stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from molexp.workflow._hashing import UnhashableInputError, hash_value, sha256_hex, to_canonical
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from molexp.workflow.context import TaskContext
    from molexp.workflow.protocols import RunContextProtocol

__all__ = [
    "ABSENT",
    "ReadRecorder",
    "ReadSource",
    "RunRead",
    "RunValues",
    "asset_identity",
    "whole_run_reads",
]

ReadSource = Literal[
    "ctx", "params", "config", "run_context.config", "run_context", "get_result", "find_asset"
]
"""Where a read value comes from (see :attr:`RunRead.name` for how each is spelled)."""

_SHOWN_CHARS = 60
_ABSENT_DIGEST = sha256_hex("molexp: absent")
_NO_RUN_DIGEST = sha256_hex("molexp: no run")


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""Stands for a key the run does not have (``params["x"]`` raising ``KeyError``)."""

_NO_RUN: Any = object()


def _shown(value: object) -> str:
    if value is ABSENT:
        return "(absent)"
    if value is _NO_RUN:
        return "(no run)"
    try:
        text = repr(to_canonical(value))
    except UnhashableInputError:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _digest(value: object, label: str) -> str:
    """sha256 of ``value`` (raises :class:`UnhashableInputError`)."""
    if value is ABSENT:
        return _ABSENT_DIGEST
    if value is _NO_RUN:
        return _NO_RUN_DIGEST
    return hash_value(value, label=label)


def asset_identity(asset: object) -> object:
    """What identifies an asset's content: id, kind, path and content hash (None: no asset).

    An asset without a content hash has no identity the cache can check: ``ABSENT`` stands for
    it and the caller treats the read as one the cache cannot repeat.
    """
    if asset is None:
        return None
    content_hash = getattr(asset, "content_hash", None)
    if not isinstance(content_hash, str):
        return ABSENT
    kind = getattr(asset, "kind", None)
    return {
        "id": str(getattr(asset, "id", "")),
        "kind": str(getattr(kind, "value", kind)),
        "path": str(getattr(asset, "path", "")),
        "content_hash": content_hash,
    }


class RunRead(BaseModel):
    """One run-derived value a task read: where from, which key, and the sha256 of its value.

    ``key`` is None for the set of keys of a mapping (the task iterated it or took its length).
    ``shown`` is a short rendering of the value, for explanations.
    """

    model_config = ConfigDict(frozen=True)

    source: ReadSource
    key: str | None = None
    digest: str
    shown: str = ""

    @property
    def name(self) -> str:
        """How the task spelled the read: ``params['x']``, ``run_context.run_dir``, ..."""
        if self.source in ("ctx", "run_context"):
            return f"{self.source}.{self.key}"
        if self.source in ("get_result", "find_asset"):
            return f"{self.source}({self.key!r})"
        if self.key is None:
            return f"{self.source}.keys()"
        return f"{self.source}[{self.key!r}]"


class ReadRecorder:
    """Collects the run-derived values one execution of a task reads (thread-safe).

    Each (source, key) is recorded once, at its first read: the run's values do not change
    while the task runs. ``uncacheable`` lists reads the cache cannot repeat; when it is not
    empty the result must not be stored.
    """

    def __init__(self) -> None:
        self._reads: dict[tuple[str, str | None], RunRead] = {}
        self.uncacheable: list[str] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ReadRecorder({len(self._reads)} reads, {len(self.uncacheable)} uncacheable)"

    def record(self, source: ReadSource, key: object, value: object) -> None:
        """Record that the task read ``value`` as ``source``/``key`` (``ABSENT``: missing)."""
        if key is not None and not isinstance(key, str):
            self.mark_uncacheable(f"{source}[{key!r}] (not a string key)")
            return
        marker = (source, key)
        if marker in self._reads:
            return
        probe = RunRead(source=source, key=key, digest="")
        try:
            digest = _digest(value, label=probe.name)
        except UnhashableInputError as exc:
            self.mark_uncacheable(f"{probe.name} (a value the cache cannot hash: {exc.detail})")
            return
        read = RunRead(source=source, key=key, digest=digest, shown=_shown(value))
        with self._lock:
            self._reads.setdefault(marker, read)

    def record_missing(self, source: ReadSource, key: object) -> None:
        """Record that the task looked ``key`` up and found nothing."""
        self.record(source, key, ABSENT)

    def record_asset(self, name: str, asset: object) -> None:
        """Record ``find_asset(name)`` by the identity of the asset found (or None)."""
        identity = asset_identity(asset)
        if identity is ABSENT:
            self.mark_uncacheable(f"find_asset({name!r}) (an asset without a content hash)")
        else:
            self.record("find_asset", name, identity)

    def record_keys(self, source: ReadSource, mapping: Mapping[str, Any]) -> None:
        """Record that the task saw which keys ``mapping`` has."""
        if (source, None) not in self._reads:
            self.record(source, None, sorted(mapping, key=str))

    def mark_uncacheable(self, what: str) -> None:
        """Record a read the cache cannot repeat (the result is then not stored)."""
        with self._lock:
            if what not in self.uncacheable:
                self.uncacheable.append(what)

    def reads(self) -> tuple[RunRead, ...]:
        """Every read, in a canonical order."""
        with self._lock:
            return tuple(self._reads[marker] for marker in sorted(self._reads, key=_order))


def _order(marker: tuple[str, str | None]) -> tuple[str, bool, str]:
    return marker[0], marker[1] is not None, marker[1] or ""


class RunValues:
    """The run-derived values a task would read if it ran now, to check stored reads against.

    ``config`` is the task's ``ctx.config``; ``run_context`` its run context (None: no run).
    Build it from a task context with :meth:`of`. Each value is computed once per instance.
    """

    def __init__(
        self,
        *,
        task_name: str,
        workflow_name: str = "",
        workflow_id: str = "",
        config: Mapping[str, Any] | None = None,
        run_context: RunContextProtocol | None = None,
    ) -> None:
        self.task_name = task_name
        self.workflow_name = workflow_name
        self.workflow_id = workflow_id
        self.config: Mapping[str, Any] = config if config is not None else {}
        self.run_context = run_context
        self._memo: dict[tuple[str, str | None], tuple[str, str]] = {}

    def __repr__(self) -> str:
        run = "a run" if self.run_context is not None else "no run"
        return f"RunValues(task={self.task_name!r}, {run})"

    @classmethod
    def of(cls, ctx: TaskContext) -> RunValues:
        """The values ``ctx`` gives its task (read without recording anything)."""
        scope = ctx._scope
        return cls(
            task_name=ctx._task_name,
            workflow_name=scope.workflow_name,
            workflow_id=scope.workflow_id,
            config=scope.config,
            run_context=scope.run_context,
        )

    def current(self, source: ReadSource, key: str | None) -> tuple[str, str]:
        """``(digest, shown)`` of what reading ``source``/``key`` gives now.

        A value that cannot be read or hashed gives a digest no stored read has.
        """
        marker = (source, key)
        found = self._memo.get(marker)
        if found is None:
            try:
                value = self._value(source, key)
                found = (_digest(value, label=source), _shown(value))
            except Exception as exc:
                found = (f"unreadable: {type(exc).__name__}", f"<{type(exc).__name__}>")
            self._memo[marker] = found
        return found

    def matches(self, reads: Iterable[RunRead]) -> bool:
        """Whether every read gives the same value now."""
        return all(self.current(read.source, read.key)[0] == read.digest for read in reads)

    def differences(self, reads: Iterable[RunRead]) -> list[str]:
        """``"params['x'] changed: 1 -> 2"`` for every read that gives another value now."""
        changes: list[str] = []
        for read in reads:
            digest, shown = self.current(read.source, read.key)
            if digest != read.digest:
                changes.append(f"{read.name} changed: {read.shown} -> {shown}")
        return changes

    def _value(self, source: ReadSource, key: str | None) -> object:
        run_context = self.run_context
        if source == "ctx":
            if key == "run_context":
                return run_context is not None
            return {
                "task_name": self.task_name,
                "workflow_name": self.workflow_name,
                "workflow_id": self.workflow_id,
            }.get(key or "", ABSENT)
        if source == "config":
            return _mapping_value(self.config, key)
        if run_context is None:
            return _NO_RUN
        if source == "params":
            return _mapping_value(run_context.params, key)
        if source == "run_context.config":
            return _mapping_value(run_context.config, key)
        if source == "get_result":
            return run_context.get_result(key or "", ABSENT)
        if source == "find_asset":
            return asset_identity(run_context.find_asset(key or ""))
        return getattr(run_context, key or "", ABSENT)


def _mapping_value(mapping: Mapping[str, Any], key: str | None) -> object:
    if key is None:
        return sorted(mapping, key=str)
    return mapping.get(key, ABSENT)


def whole_run_reads(values: RunValues) -> tuple[RunRead, ...]:
    """Reads covering everything a task could take from its run: every parameter and config
    key, the run directory and the task name (for tasks whose reads cannot be observed)."""
    recorder = ReadRecorder()
    recorder.record("ctx", "task_name", values.task_name)
    recorder.record("ctx", "run_context", values.run_context is not None)
    recorder.record_keys("config", values.config)
    for key, value in values.config.items():
        recorder.record("config", key, value)
    run_context = values.run_context
    if run_context is not None:
        recorder.record_keys("params", run_context.params)
        for key, value in run_context.params.items():
            recorder.record("params", key, value)
        recorder.record("run_context", "run_dir", run_context.run_dir)
    return recorder.reads()
