"""Canonical JSON, config hashes, profiles and deterministic run ids.

Owns the one canonical JSON encoding every hash in this package is computed over,
``plain_json`` (the conversion of a user value into data a JSON record can hold, with
an error naming the offending key), ``ProfileConfig`` / ``config_hash`` and
``derive_run_id``.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from molexp.assets.storage import is_valid_unicode
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_ARRAY_ELEMENTS",
    "ProfileConfig",
    "canonical_json",
    "config_hash",
    "derive_run_id",
    "new_run_id",
    "plain_json",
]

MAX_ARRAY_ELEMENTS = 10_000
"""The largest numpy array ``plain_json`` turns into a (nested) list; bigger: an artifact."""

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_ARTIFACT_HINT = "or save it as an artifact (ctx.artifact.save(name, data))"


def plain_json(value: Any, what: str) -> Any:
    """Return a deep plain copy of ``value`` (dicts, lists, scalars) or raise naming the path.

    Plain JSON values pass as they are: ``None``, ``bool``, ``int``, finite ``float``,
    ``str`` (valid Unicode: no lone surrogates, which UTF-8 cannot hold), lists/tuples
    and mappings with string keys of those. NaN and infinities are rejected because JSON
    (and SQLite's JSON functions) cannot represent them.

    Scientific values are converted, losslessly: subclasses of the plain types (enums,
    ``numpy.float64``, ``numpy.str_``) to the plain type; numpy integers, floats and bools
    to ``int``/``float``/``bool`` (a ``longdouble`` only when ``float`` holds it exactly);
    numpy arrays of up to ``MAX_ARRAY_ELEMENTS`` numbers, bools or strings to nested lists;
    ``datetime`` to ISO 8601 text with its UTC offset (a naive one is local time, as in
    Python, and gets the local offset); ``date`` to ``YYYY-MM-DD``; pandas ``Timestamp``
    like ``datetime`` (nanoseconds kept); ``Path`` to POSIX text; ``Decimal`` to ``int``
    when integral and in the 64-bit range, else to ``float`` when the float's JSON text
    is the same number, else to its exact decimal text. Missing markers (``pandas.NA``,
    ``NaT``, masked numpy values) are refused like NaN. Anything else is a ``TypeError``
    naming ``what``, the type and what to do; ``what`` names the value in errors, e.g.
    ``"parameters"`` gives ``parameters['model'][2] is a set, ...``.
    """
    kind = type(value)
    if kind is str:
        if not is_valid_unicode(value):
            raise ValueError(f"{what} is {value!r}: not valid Unicode (a lone surrogate)")
        return value
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValueError(f"{what} is {value!r}; JSON records cannot hold NaN or infinity")
        return value
    if kind is list or kind is tuple:
        return [plain_json(item, f"{what}[{index}]") for index, item in enumerate(value)]
    if kind is dict:
        return _plain_mapping(value, what)
    return _plain_other(value, what)


def _plain_mapping(value: Mapping[Any, Any], what: str) -> dict[str, Any]:
    plain: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(f"{what} has a non-string key {key!r}; JSON keys must be strings")
        if not is_valid_unicode(key):
            raise ValueError(f"{what} has a key {key!r} that is not valid Unicode")
        plain[str.__str__(key)] = plain_json(item, f"{what}[{key!r}]")
    return plain


def _plain_other(value: Any, what: str) -> Any:
    """``plain_json`` of everything but the exact plain types."""
    if isinstance(value, str):
        return plain_json(str.__str__(value), what)
    if isinstance(value, int):  # IntEnum, IntFlag (bool cannot be subclassed)
        return int(value)
    if isinstance(value, list | tuple):
        return plain_json(list(value), what)
    if isinstance(value, Mapping):
        return _plain_mapping(value, what)
    package = type(value).__module__.partition(".")[0]
    if package == "numpy":  # before float: numpy.float64 is a float subclass
        return _from_numpy(value, what)
    if package == "pandas":  # before datetime: Timestamp and NaT are datetime subclasses
        return _from_pandas(value, what)
    if isinstance(value, float):
        return plain_json(float(value), what)
    if isinstance(value, datetime):
        return _local_if_naive(value, what).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, PurePath):
        return plain_json(value.as_posix(), what)
    if isinstance(value, Decimal):
        return _from_decimal(value, what)
    raise TypeError(
        f"{what} is a {_type_name(value)}, which a JSON record cannot hold; convert it to "
        f"a number, string, bool, None, list or dict{_hint(value)}, {_ARTIFACT_HINT}"
    )


def _type_name(value: Any) -> str:
    kind = type(value)
    return (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )


def _hint(value: Any) -> str:
    if isinstance(value, set | frozenset):
        return " (e.g. sorted(value))"
    if isinstance(value, bytes | bytearray):
        return " (e.g. value.decode() for text)"
    if isinstance(value, complex):
        return " (e.g. [value.real, value.imag])"
    if hasattr(value, "total_seconds"):
        return " (e.g. value.total_seconds())"
    return ""


def _local_offset(value: datetime, what: str) -> timezone:
    """The local UTC offset at the naive wall-clock time ``value`` (as Python assumes)."""
    try:
        offset = value.astimezone().utcoffset()
    except (OverflowError, OSError, ValueError):
        offset = None
    if offset is None:
        raise ValueError(
            f"{what} is the naive datetime {value!r}, whose local UTC offset is unknown; "
            "give it a timezone (value.replace(tzinfo=...))"
        )
    return timezone(offset)


def _local_if_naive(value: datetime, what: str) -> datetime:
    """``value`` if it has an offset; a naive one keeps its digits and gets the local offset."""
    if value.utcoffset() is not None:
        return value
    return value.replace(tzinfo=_local_offset(value, what))


def _from_numpy(value: Any, what: str) -> Any:
    numpy = sys.modules["numpy"]  # a numpy value exists, so numpy is imported
    if isinstance(value, numpy.ndarray):
        if isinstance(value, numpy.ma.MaskedArray):
            if numpy.ma.is_masked(value):
                raise ValueError(
                    f"{what} is a masked numpy array with missing values; fill them "
                    "(array.filled(...)) or leave them out"
                )
            value = value.data
        if value.size > MAX_ARRAY_ELEMENTS:
            raise ValueError(
                f"{what} is a numpy array of {value.size:,} elements, more than the "
                f"{MAX_ARRAY_ELEMENTS:,} a JSON record holds; save it as an artifact instead "
                "(numpy.save(ctx.artifact.path('x.npy'), array), then "
                "ctx.artifact.save('x.npy', ctx.artifact.path('x.npy')))"
            )
        if value.dtype.kind not in "biufUO":
            raise TypeError(
                f"{what} is a numpy array of dtype {value.dtype}, which a JSON record cannot "
                f"hold; convert it (e.g. array.astype(str) or .astype(float)), {_ARTIFACT_HINT}"
            )
        return plain_json(value.tolist(), what)
    if isinstance(value, numpy.bool_):
        return bool(value)
    if isinstance(value, numpy.integer):
        return int(value)
    if isinstance(value, numpy.floating):
        if not numpy.isfinite(value):
            raise ValueError(f"{what} is {value!r}; JSON records cannot hold NaN or infinity")
        number = float(value)
        if not math.isfinite(number) or numpy.longdouble(number) != value:
            raise ValueError(
                f"{what} is {value!r}, which a float (JSON number) cannot hold exactly; "
                "convert it yourself (float(value) or str(value))"
            )
        return number
    if isinstance(value, numpy.str_):
        return plain_json(str.__str__(value), what)
    raise TypeError(
        f"{what} is a {_type_name(value)}, which a JSON record cannot hold; convert it to "
        f"a number, string, bool or list (e.g. value.item() or str(value)), {_ARTIFACT_HINT}"
    )


def _from_pandas(value: Any, what: str) -> Any:
    pandas = sys.modules["pandas"]  # a pandas value exists, so pandas is imported
    if value is pandas.NA or value is pandas.NaT:
        raise ValueError(
            f"{what} is pandas {value!r}, a missing value; JSON records do not hold missing "
            "markers: leave the key out, or store None if you mean 'no value'"
        )
    if isinstance(value, pandas.Timestamp):
        if value.tz is None:
            wall = datetime(value.year, value.month, value.day, value.hour, value.minute)
            value = value.tz_localize(_local_offset(wall, what))
        return str(value.isoformat())
    hint = _hint(value)
    if isinstance(value, pandas.Series | pandas.Index):
        hint = " (e.g. series.tolist())"
    elif isinstance(value, pandas.DataFrame):
        hint = " (e.g. frame.to_dict('list'))"
    raise TypeError(
        f"{what} is a {_type_name(value)}, which a JSON record cannot hold; convert it to "
        f"a number, string, bool, None, list or dict{hint}, {_ARTIFACT_HINT}"
    )


def _from_decimal(value: Decimal, what: str) -> int | float | str:
    if not value.is_finite():
        raise ValueError(f"{what} is {value!r}; JSON records cannot hold NaN or infinity")
    if value == value.to_integral_value() and _INT64_MIN <= value <= _INT64_MAX:
        return int(value)
    number = float(value)
    if math.isfinite(number) and Decimal(repr(number)) == value:
        return number  # the float's JSON text is exactly this number
    return str(value)


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: equal data always gives the same text."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of ``config`` (key order never matters)."""
    plain = plain_json(config, "config")
    return hashlib.sha256(canonical_json(plain).encode("utf-8")).hexdigest()


class ProfileConfig(BaseModel):
    """A named execution profile and its (already merged) configuration mapping.

    ``overrides`` are the ``--set`` values (dotted key -> value) merged on top of the
    named profile; they are already part of ``config`` and are recorded beside it.
    """

    model_config = ConfigDict(frozen=True)

    name: str = "default"
    config: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        """Hash of ``config`` alone: independent of key order and of the profile name."""
        return config_hash(self.config)


def derive_run_id(
    parameters: Mapping[str, Any],
    replica_index: int = 0,
    profile_name: str | None = None,
    config_hash: str | None = None,
    *,
    project_id: str | None = None,
    experiment_id: str | None = None,
) -> str:
    """Deterministic 16-hex run id for the CLI: same inputs, same id, whatever the key order.

    With ``project_id`` and ``experiment_id`` the id is unique within the workspace: two
    experiments with identical parameters get different ids. Without them it is the
    legacy id (the scheme before experiment identity was folded in), which workspaces
    written then still use (``Experiment.deterministic_run_id`` finds either).
    """
    payload: dict[str, Any] = {
        "parameters": plain_json(parameters, "parameters"),
        "replica_index": replica_index,
        "profile_name": profile_name,
        "config_hash": config_hash,
    }
    if project_id is not None or experiment_id is not None:
        payload["project_id"] = project_id
        payload["experiment_id"] = experiment_id
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:16]


def new_run_id() -> str:
    """A fresh random run id (12 hex characters of a uuid4)."""
    return uuid.uuid4().hex[:12]
