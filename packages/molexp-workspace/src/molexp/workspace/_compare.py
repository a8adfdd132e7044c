"""What can be compared between runs: a run's facts as flat dotted keys, and the unified diff of
the recorded source of every task whose code differs between two runs.

One implementation for every front end: ``molexp diff`` prints these facts as a table, the
server's compare view shows them as rows. The facts are parameters, profile and overrides,
config, workflow id and the git state of its script, each task's code hash (from the latest
attempt's execution state, ``state.json``), results, and where and with what the latest attempt
that started ran (interpreter, platform, CPUs, GPUs, Slurm ids, variables, the versions of the
distributions the tasks reached).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from ._attempts import Attempt
    from ._run import Run

__all__ = [
    "FACT_SECTIONS",
    "FactRow",
    "attempt_state",
    "code_diffs",
    "compare_facts",
    "fact_section",
    "latest_state",
    "run_facts",
    "task_code_hashes",
]

MAX_STATE_BYTES = 64 * 1024 * 1024
"""A ``state.json`` larger than this is not read (the comparison then has no code facts)."""

FACT_SECTIONS = (
    "experiment",
    "status",
    "params",
    "profile",
    "overrides",
    "config",
    "workflow_id",
    "git",
    "code",
    "results",
    "python",
    "environment",
    "distributions",
)
"""The sections of a run's facts, in the order they are shown."""

_MISSING: Any = object()


def run_facts(run: Run) -> dict[str, Any]:
    """The comparable facts of ``run`` as flat dotted keys (``params.lr``, ``config.model.depth``,
    ``code.fit``, ``environment.platform``); the environment is that of its latest attempt that
    started, the code hashes and distributions those of its latest attempt that recorded them."""
    meta = run.metadata
    facts: dict[str, Any] = {
        "experiment": f"{meta.project_id}/{meta.experiment_id}",
        "status": str(meta.status),
        "workflow_id": meta.workflow_id,
    }
    _flatten("params", dict(meta.parameters), facts)
    profile = meta.profile
    if profile is not None:
        facts["profile"] = profile.name
        facts["config_hash"] = profile.config_hash
        _flatten("config", dict(profile.config), facts)
        _flatten("overrides", dict(profile.overrides), facts)
    _flatten("results", dict(meta.results), facts)
    git = (meta.workflow_snapshot or {}).get("git")
    if isinstance(git, Mapping):
        _flatten("git", dict(git), facts)
    started = [record for record in meta.execution_history if record.started_at is not None]
    if started:
        latest = started[-1]
        facts["python"] = latest.python
        facts["python_version"] = latest.python_version
        if latest.environment is not None:
            _flatten("environment", latest.environment.model_dump(), facts)
    state = latest_state(run)
    for task, code_hash in task_code_hashes(state).items():
        facts[f"code.{task}"] = code_hash[:12]
    distributions = state.get("distributions")
    if isinstance(distributions, Mapping):
        _flatten("distributions", dict(distributions), facts)
    return facts


def latest_state(run: Run) -> dict[str, Any]:
    """The execution state (``state.json``) of ``run``'s latest attempt that recorded one; empty
    when none did or it cannot be read."""
    for attempt in reversed(run.attempts):
        state = attempt_state(attempt)
        if state:
            return state
    return {}


def attempt_state(attempt: Attempt) -> dict[str, Any]:
    """The execution state ``attempt`` recorded (``state.json``); empty if absent, unreadable or
    larger than ``MAX_STATE_BYTES``."""
    path = Path(attempt.execution_dir) / "state.json"
    try:
        if path.stat().st_size > MAX_STATE_BYTES:
            return {}
        state = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def task_code_hashes(state: Mapping[str, Any]) -> dict[str, str]:
    """``task -> code_hash`` of an execution state (states before version 4 have none)."""
    tasks = state.get("tasks")
    if not isinstance(tasks, Mapping):
        return {}
    return {
        name: info["code_hash"]
        for name, info in tasks.items()
        if isinstance(info, Mapping) and isinstance(info.get("code_hash"), str)
    }


def code_diffs(run_a: Run, run_b: Run) -> dict[str, str]:
    """A unified diff of the recorded source of every task whose code differs between the two
    runs' latest attempts (a change only in code a task reaches shows as a code hash alone)."""
    state_a, state_b = latest_state(run_a), latest_state(run_b)
    hashes_a, hashes_b = task_code_hashes(state_a), task_code_hashes(state_b)
    sources_a, sources_b = state_a.get("sources") or {}, state_b.get("sources") or {}
    if not isinstance(sources_a, Mapping) or not isinstance(sources_b, Mapping):
        return {}
    diffs: dict[str, str] = {}
    for task in sorted(set(hashes_a) & set(hashes_b)):
        before, after = sources_a.get(hashes_a[task]), sources_b.get(hashes_b[task])
        if hashes_a[task] == hashes_b[task] or not isinstance(before, str):
            continue
        if not isinstance(after, str) or before == after:
            continue
        lines = difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            f"a/{task} ({run_a.id})",
            f"b/{task} ({run_b.id})",
        )
        diffs[task] = "".join(lines)
    return diffs


Change = Literal["same", "added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class FactRow:
    """One fact across the compared runs: its key, section, one value per run (``None`` where a
    run lacks it, see ``present``) and whether the runs differ in it."""

    key: str
    section: str
    values: list[Any]
    present: list[bool]
    differs: bool

    @property
    def change(self) -> Change:
        """For two runs, as ``molexp diff`` names it: ``same``, ``added`` (only the second has
        it), ``removed`` (only the first) or ``changed``."""
        if not self.differs:
            return "same"
        if len(self.present) == 2 and not self.present[0]:
            return "added"
        if len(self.present) == 2 and not self.present[1]:
            return "removed"
        return "changed"


def fact_section(key: str) -> str:
    """The section (one of ``FACT_SECTIONS``) a fact key belongs to."""
    head = key.split(".", 1)[0]
    if head == "config_hash":
        return "config"
    if head == "python_version":
        return "python"
    return head


def _order(key: str) -> tuple[int, str]:
    section = fact_section(key)
    index = FACT_SECTIONS.index(section) if section in FACT_SECTIONS else len(FACT_SECTIONS)
    return (index, key)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def compare_facts(facts: Sequence[Mapping[str, Any]]) -> list[FactRow]:
    """A row per fact any of the runs' ``facts`` (from :func:`run_facts`) has, in section order;
    a fact differs when a run lacks it or the runs' values are not all equal."""
    keys: set[str] = set()
    for one in facts:
        keys.update(one)
    rows = []
    for key in sorted(keys, key=_order):
        found = [one.get(key, _MISSING) for one in facts]
        present = [value is not _MISSING for value in found]
        values = [None if value is _MISSING else value for value in found]
        differs = not all(present) or len({_canonical(value) for value in values}) > 1
        rows.append(FactRow(key, fact_section(key), values, present, differs))
    return rows


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    """Nested mappings become dotted keys; an empty mapping contributes nothing."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value
