"""Deterministic, process- and machine-independent hashing of task inputs and configs.

Owns the canonical encoding used for cache keys and config hashes. A value is first turned into
a *canonical tree*: plain JSON (``null``, booleans, ints, finite floats, strings, lists and objects
with string keys) in which every other type is a single-key object whose key starts with ``$``
(``{"$tuple": [...]}``, ``{"$path": "a/b"}``, ...). A plain dict that has a non-string key or a key
starting with ``$`` is itself wrapped as ``{"$dict": [[key, value], ...]}``, so the encoding is
injective: two values have the same tree only if they are the same value of the same kind.
The canonical JSON text is that tree in MolExp's canonical JSON (docs/architecture.md: sorted
keys, no whitespace, UTF-8 text rather than ``\\u`` escapes), byte for byte what the workspace
layer writes for plain JSON values; the hash is its sha256. Neither ``pickle`` nor the built-in
``hash()`` is involved.

Kinds that stay distinct: ``1`` / ``1.0`` / ``True`` / ``"1"`` / ``Path("1")``; ``str`` / ``bytes``;
``list`` / ``tuple`` / named tuples; ``-0.0`` / ``0.0``; every NaN is one value. Equal by design:
dicts in any key order (any mapping type), sets and frozensets in any order, ``bytes`` and
``bytearray``. Also supported: dataclasses, Enum members, date/time/datetime/timedelta, Decimal,
UUID, complex, pydantic models (class ``module.qualname`` + ``model_dump(mode="python")``) and
numpy arrays (dtype + shape + C-order bytes) and numpy scalars. Neither pydantic nor numpy is
imported here: an object of theirs can only exist once its library has been imported. Anything else
raises :class:`UnhashableInputError` naming the type and where it sits inside the value.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import hashlib
import json
import math
import sys
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any, TypeAlias

from molexp.workflow.errors import UnhashableInputError

__all__ = [
    "CanonicalTree",
    "UnhashableInputError",
    "canonical_json",
    "dumps_canonical",
    "hash_value",
    "sha256_hex",
    "to_canonical",
]

CanonicalTree: TypeAlias = Any
"""A JSON-compatible value produced by :func:`to_canonical`."""

_BinaryEncoder: TypeAlias = Callable[[bytes], CanonicalTree]
_MAX_SHOWN_PATH_PARTS = 20


def sha256_hex(data: bytes | str) -> str:
    """The sha256 hex digest of ``data`` (strings are UTF-8 encoded; a lone surrogate, which
    UTF-8 cannot hold, is encoded as its code unit so every string still has a hash)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()


def _base64(data: bytes) -> CanonicalTree:
    return base64.b64encode(data).decode("ascii")


def _digest(data: bytes) -> CanonicalTree:
    return {"sha256": hashlib.sha256(data).hexdigest()}


def _dumps(tree: CanonicalTree) -> str:
    # MolExp's canonical JSON (docs/architecture.md), the same text molexp.workspace writes.
    return json.dumps(
        tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _type_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _float(value: float) -> CanonicalTree:
    if math.isfinite(value):
        return value
    return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}


class _Failure(Exception):
    """Raised inside a walk; each container on the way out adds its part of the path."""

    def __init__(self, type_name: str, detail: str | None) -> None:
        super().__init__(type_name)
        self.type_name = type_name
        self.detail = detail
        self.parts: list[str] = []

    def error(self, root: str) -> UnhashableInputError:
        parts = self.parts[::-1]
        if len(parts) > _MAX_SHOWN_PATH_PARTS:
            parts = [*parts[:8], "...", *parts[-8:]]
        return UnhashableInputError(root + "".join(parts), self.type_name, self.detail)


def _is_plain_atom(item: object) -> bool:
    kind = type(item)
    if kind is str or kind is int or kind is bool or item is None:
        return True
    # finite floats only: inf - inf and nan - nan are nan
    return kind is float and item - item == 0.0  # type: ignore[operator]


class _Canonicalizer:
    """One walk over a value; tracks the containers being visited to reject cycles.

    Paths for error messages are only built when something fails, so the common case pays
    nothing for them.
    """

    __slots__ = ("_active", "_binary")

    def __init__(self, binary: _BinaryEncoder) -> None:
        self._binary = binary
        self._active: set[int] = set()

    def child(self, part: str, value: object) -> CanonicalTree:
        try:
            return self.encode(value)
        except _Failure as failure:
            failure.parts.append(part)
            raise

    def encode(self, value: object) -> CanonicalTree:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return _float(value)  # type: ignore[arg-type]
        numpy = sys.modules.get("numpy")
        if numpy is not None and isinstance(value, numpy.ndarray | numpy.generic):
            return self._numpy(value, numpy)
        if isinstance(value, enum.Enum):
            return {"$enum": [_type_name(kind), value.name]}
        if isinstance(value, bool):
            return bool(value)
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return _float(float(value))
        if isinstance(value, str):
            return str(value)
        return self._container(value)

    def _container(self, value: object) -> CanonicalTree:
        marker = id(value)
        if marker in self._active:
            detail = f"cyclic reference to a {type(value).__name__} inside itself"
            raise _Failure(type(value).__name__, detail)
        self._active.add(marker)
        try:
            return self._compound(value)
        except RecursionError:
            raise _Failure(type(value).__name__, "value is nested too deeply to hash") from None
        finally:
            self._active.discard(marker)

    def _items(self, items: list[Any] | tuple[Any, ...]) -> list[CanonicalTree]:
        encoded: list[CanonicalTree] = []
        append = encoded.append
        for index, item in enumerate(items):
            kind = type(item)
            # inlined _is_plain_atom: this loop is the hot path for numeric lists
            if kind is float:
                if item - item == 0.0:
                    append(item)
                    continue
            elif kind is str or kind is int or kind is bool or item is None:
                append(item)
                continue
            try:
                append(self.encode(item))
            except _Failure as failure:
                failure.parts.append(f"[{index}]")
                raise
        return encoded

    def _compound(self, value: object) -> CanonicalTree:
        if isinstance(value, list):
            return self._items(value)
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, tuple):
            fields = getattr(value, "_fields", None)
            if isinstance(fields, tuple):
                named = {name: self.child(f".{name}", getattr(value, name)) for name in fields}
                return {"$namedtuple": [_type_name(type(value)), named]}
            return {"$tuple": self._items(value)}
        if isinstance(value, set | frozenset):
            return {"$set": self._unordered(value)}
        if isinstance(value, bytes | bytearray | memoryview):
            return {"$bytes": self._binary(bytes(value))}
        if isinstance(value, PurePath):
            return {"$path": value.as_posix()}
        pydantic = sys.modules.get("pydantic")
        if pydantic is not None and isinstance(value, pydantic.BaseModel):
            dumped = value.model_dump(mode="python")
            return {"$model": [_type_name(type(value)), self._mapping(dumped, ".{}")]}
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {
                field.name: self.child(f".{field.name}", getattr(value, field.name))
                for field in dataclasses.fields(value)
            }
            return {"$dataclass": [_type_name(type(value)), fields]}
        return self._scalar(value)

    def _scalar(self, value: object) -> CanonicalTree:
        if isinstance(value, dt.datetime):
            return {"$datetime": value.isoformat()}
        if isinstance(value, dt.date):
            return {"$date": value.isoformat()}
        if isinstance(value, dt.time):
            return {"$time": value.isoformat()}
        if isinstance(value, dt.timedelta):
            return {"$timedelta": [value.days, value.seconds, value.microseconds]}
        if isinstance(value, Decimal):
            return {"$decimal": str(value)}
        if isinstance(value, uuid.UUID):
            return {"$uuid": str(value)}
        if isinstance(value, complex):
            return {"$complex": [_float(value.real), _float(value.imag)]}
        raise _Failure(type(value).__name__, None)

    def _mapping(self, value: Mapping[Any, Any], part: str = "[{!r}]") -> CanonicalTree:
        if all(type(key) is str and not key.startswith("$") for key in value):
            encoded: dict[str, CanonicalTree] = {}
            for key, item in value.items():
                if _is_plain_atom(item):
                    encoded[key] = item
                    continue
                try:
                    encoded[key] = self.encode(item)
                except _Failure as failure:
                    failure.parts.append(part.format(key))
                    raise
            return encoded
        pairs = []
        for key, item in value.items():
            encoded_key = self.child(f"<key {key!r}>", key)
            pairs.append((_dumps(encoded_key), [encoded_key, self.child(part.format(key), item)]))
        pairs.sort(key=lambda pair: pair[0])
        return {"$dict": [pair for _, pair in pairs]}

    def _unordered(self, value: set[Any] | frozenset[Any]) -> list[CanonicalTree]:
        encoded = [self.child("{...}", item) for item in value]
        return [tree for _, tree in sorted((_dumps(tree), tree) for tree in encoded)]

    def _numpy(self, value: Any, numpy: Any) -> CanonicalTree:
        dtype = value.dtype
        dtype_name = dtype.str if dtype.fields is None else repr(dtype.descr)
        if isinstance(value, numpy.generic):
            if dtype.hasobject:
                return {"$npscalar": [dtype_name, self.child(".item()", value.item())]}
            return {"$npscalar": [dtype_name, self._binary(value.tobytes())]}
        shape = list(value.shape)
        if dtype.hasobject:
            return {"$ndarray": [dtype_name, shape, self.child(".tolist()", value.tolist())]}
        data = numpy.ascontiguousarray(value).tobytes()
        return {"$ndarray": [dtype_name, shape, self._binary(data)]}


def _walk(value: object, label: str, binary: _BinaryEncoder) -> CanonicalTree:
    try:
        return _Canonicalizer(binary).encode(value)
    except _Failure as failure:
        raise failure.error(label) from None


def to_canonical(value: object, *, label: str = "value") -> CanonicalTree:
    """The canonical, JSON-compatible tree of ``value`` (binary data as base64).

    Raises :class:`UnhashableInputError` whose message starts with ``label`` plus the path to the
    offending object.
    """
    return _walk(value, label, _base64)


def dumps_canonical(tree: CanonicalTree) -> str:
    """Compact JSON text of an already canonical tree (MolExp's canonical JSON)."""
    return _dumps(tree)


def canonical_json(value: object, *, label: str = "value") -> str:
    """Compact canonical JSON of ``value``: equal values give byte-identical text."""
    return _dumps(to_canonical(value, label=label))


def hash_value(value: object, *, label: str = "value") -> str:
    """sha256 hex digest of the canonical encoding of ``value``.

    Stable across processes, machines and Python runs. Binary payloads (bytes, array buffers) are
    folded in by their own sha256, so large arrays are hashed in one pass without base64 copies.
    """
    return sha256_hex(_dumps(_walk(value, label, _digest)))
