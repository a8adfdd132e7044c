"""Why a cache lookup missed: the differences between a task's inputs, code and run reads and the
nearest stored entry of the task (``Caching.explain`` and the runtime's one-line notes)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from molexp.workflow._cache_stores import CacheEntryMetadata, CacheLookup
from molexp.workflow._hashing import hash_value, sha256_hex
from molexp.workflow.reads import RunValues
from molexp.workflow.snapshot import TaskSnapshot

__all__ = [
    "EXPLAIN_SCAN",
    "CacheExplanation",
    "explain_miss",
]

_SHOWN_VALUE_CHARS = 60


@dataclasses.dataclass(frozen=True, slots=True)
class CacheExplanation:
    """Why a lookup hit or missed; ``differences`` names the parts that differ from the nearest
    stored entry of the same task (``"code"``, ``"config"``, ``"inputs"``, ``"run"``) and
    ``details`` says how (which function or distribution version, which config key, which
    input, which value read from the run)."""

    task_id: str
    hit: bool
    key: str | None
    reason: str
    differences: tuple[str, ...] = ()
    details: tuple[str, ...] = ()
    nearest_key: str | None = None

    def __str__(self) -> str:
        head = f"cache {'hit' if self.hit else 'miss'} for task {self.task_id!r}: {self.reason}"
        return "\n".join([head, *(f"  - {line}" for line in self.details)])

    @property
    def summary(self) -> str:
        """One line: ``"hit"``, or ``"miss: "`` and what differs (else why it missed)."""
        if self.hit:
            return "hit"
        return f"miss: {'; '.join(self.details) or self.reason}"


def _input_fingerprint(inputs: object) -> tuple[str, dict[str, str]]:
    """The input hash, plus per-input hashes when ``inputs`` is a mapping with str keys."""
    if isinstance(inputs, Mapping) and all(type(key) is str for key in inputs):
        per_input = {
            key: hash_value(value, label=f"inputs[{key!r}]") for key, value in inputs.items()
        }
        return hash_value({"mapping": per_input}), per_input
    # hash_value({"value": digest}) without a second walk: the canonical JSON of a one-key
    # object holding a hex string is this text (test_cache_file_format pins the hashes).
    return sha256_hex(f'{{"value":"{hash_value(inputs, label="inputs")}"}}'), {}


def _shorten(value: object) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    if len(text) > _SHOWN_VALUE_CHARS:
        return text[: _SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _tree_differences(old: Any, new: Any, path: str, out: list[str]) -> None:
    both_plain = isinstance(old, dict) and isinstance(new, dict)
    if both_plain and not any(key.startswith("$") for key in [*old, *new]):
        for key in sorted(set(old) | set(new)):
            where = f"{path}[{key!r}]"
            if key not in old:
                out.append(f"{where} added: {_shorten(new[key])}")
            elif key not in new:
                out.append(f"{where} removed (was {_shorten(old[key])})")
            else:
                _tree_differences(old[key], new[key], where, out)
    elif old != new:
        out.append(f"{path} changed: {_shorten(old)} -> {_shorten(new)}")


def _code_differences(old: CacheEntryMetadata, new: TaskSnapshot) -> list[str]:
    details: list[str] = []
    if old.body_hash != new.body_hash:
        details.append("code: the task body changed")
    for name in sorted(set(old.dependency_hashes) | set(new.dependency_hashes)):
        before = old.dependency_hashes.get(name)
        after = new.dependency_hashes.get(name)
        if before is None:
            details.append(f"code: now also depends on {name}")
        elif after is None:
            details.append(f"code: no longer depends on {name}")
        elif before != after:
            details.append(f"code: {name} changed")
    if new.tracks_dependency_versions:
        for name in sorted(set(old.distributions) | set(new.distributions)):
            was, now = old.distributions.get(name), new.distributions.get(name)
            if was is None:
                details.append(f"code: now also uses distribution {name} {now}")
            elif now is None:
                details.append(f"code: no longer uses distribution {name} (was {was})")
            elif was != now:
                details.append(f"code: distribution {name} changed: {was} -> {now}")
            elif old.distribution_records.get(name) != new.distribution_records.get(name):
                details.append(f"code: distribution {name} {now} was reinstalled with other files")
    return details or ["code: the code hash differs"]


def _input_differences(old: CacheEntryMetadata, new_hashes: Mapping[str, str]) -> list[str]:
    if not (old.input_hashes and new_hashes):
        return ["inputs: the inputs differ"]
    details: list[str] = []
    for name in sorted(set(old.input_hashes) | set(new_hashes)):
        before, after = old.input_hashes.get(name), new_hashes.get(name)
        if before is None:
            details.append(f"inputs: inputs[{name!r}] added")
        elif after is None:
            details.append(f"inputs: inputs[{name!r}] removed")
        elif before != after:
            details.append(f"inputs: inputs[{name!r}] changed")
    return details


def _compare(
    stored: CacheEntryMetadata,
    snapshot: TaskSnapshot,
    input_hash: str,
    input_hashes: Mapping[str, str],
    run: RunValues,
) -> tuple[list[str], list[str]]:
    """Which parts (code, config, inputs, run) of a lookup differ from a stored entry, and how."""
    differences: list[str] = []
    details: list[str] = []
    if stored.code_hash != snapshot.code_hash:
        differences.append("code")
        details.extend(_code_differences(stored, snapshot))
    if stored.config_hash != snapshot.config_hash:
        differences.append("config")
        changes: list[str] = []
        _tree_differences(stored.config_data, snapshot.config_data, "config", changes)
        details.extend(f"config: {change}" for change in changes or ["the config differs"])
    if stored.input_hash != input_hash:
        differences.append("inputs")
        details.extend(_input_differences(stored, input_hashes))
    changed = run.differences(stored.reads)
    if changed:
        differences.append("run")
        details.extend(f"run: {change}" for change in changed)
    return differences, details


EXPLAIN_SCAN = 16
"""The runtime explains a miss against at most this many recent results of the task."""


def explain_miss(
    cache: Any, snapshot: TaskSnapshot, inputs: Any, run: RunValues, lookup: CacheLookup
) -> str:
    """What the runtime records for a ``cache=True`` task that missed: ``"miss: "`` and what
    differs from the nearest recent entry of the task (any cache without ``explain``, or one
    that fails, gives the lookup's reason: an explanation never fails a task)."""
    try:
        explanation: CacheExplanation = cache.explain(snapshot, inputs, run=run, scan=EXPLAIN_SCAN)
    except Exception:
        return f"miss: {lookup.reason}"
    return explanation.summary
