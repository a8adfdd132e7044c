"""Canonical JSON, config hashes, profiles and deterministic run ids.

Owns the one canonical JSON encoding every hash in this package is computed over,
``plain_json`` (the check that a user value can live in a JSON record, with an error
naming the offending key), ``ProfileConfig`` / ``config_hash`` and ``derive_run_id``.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from molexp.assets._io import is_valid_unicode
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ProfileConfig",
    "canonical_json",
    "config_hash",
    "derive_run_id",
    "new_run_id",
    "plain_json",
]


def plain_json(value: Any, what: str) -> Any:
    """Return a deep plain copy of ``value`` (dicts, lists, scalars) or raise naming the path.

    Accepted: ``None``, ``bool``, ``int``, finite ``float``, ``str`` (valid Unicode: no
    lone surrogates, which UTF-8 cannot hold), lists/tuples and mappings with string keys
    of those. NaN and infinities are rejected because JSON
    (and SQLite's JSON functions) cannot represent them. ``what`` names the value in the
    error, e.g. ``"parameters"`` gives ``parameters['model'][2] is a set, ...``.
    """
    if isinstance(value, str):
        if not is_valid_unicode(value):
            raise ValueError(f"{what} is {value!r}: not valid Unicode (a lone surrogate)")
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} is {value!r}; JSON records cannot hold NaN or infinity")
        return value
    if isinstance(value, list | tuple):
        return [plain_json(item, f"{what}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        plain: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{what} has a non-string key {key!r}; JSON keys must be strings")
            if not is_valid_unicode(key):
                raise ValueError(f"{what} has a key {key!r} that is not valid Unicode")
            plain[key] = plain_json(item, f"{what}[{key!r}]")
        return plain
    raise TypeError(f"{what} is a {type(value).__name__}, which is not JSON-serializable")


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
    """A named execution profile and its (already merged) configuration mapping."""

    model_config = ConfigDict(frozen=True)

    name: str = "default"
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def config_hash(self) -> str:
        """Hash of ``config`` alone: independent of key order and of the profile name."""
        return config_hash(self.config)


def derive_run_id(
    parameters: Mapping[str, Any],
    replica_index: int = 0,
    profile_name: str | None = None,
    config_hash: str | None = None,
) -> str:
    """Deterministic 16-hex run id for the CLI: same inputs, same id, whatever the key order."""
    payload = {
        "parameters": plain_json(parameters, "parameters"),
        "replica_index": replica_index,
        "profile_name": profile_name,
        "config_hash": config_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:16]


def new_run_id() -> str:
    """A fresh random run id (12 hex characters of a uuid4)."""
    return uuid.uuid4().hex[:12]
