"""``molexp diff RUN_A RUN_B``: what differs between two runs of any experiments or projects —
parameters, profile and its overrides, config, workflow and the git state of its script, the code
of each task (with a unified diff of the recorded task sources), results, status, and where and
with what the latest attempt of each ran (interpreter, platform, CPUs, GPUs, variables, the
versions of the distributions the tasks reached)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._output import format_value, make_table, print_json, stdout_console
from ._resolve import Selection, resolve_run

if TYPE_CHECKING:
    from molexp.workspace import Attempt, Run

__all__ = ["diff_command", "run_facts"]

_MISSING = object()


def run_facts(run: Run) -> dict[str, Any]:
    """The comparable facts of ``run`` as flat dotted keys (``params.lr``, ``config.model.depth``,
    ``environment.platform``); the environment is that of its latest attempt that started."""
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
    when none did or it cannot be read (the comparison then has no code facts)."""
    for attempt in reversed(run.attempts):
        state = attempt_state(attempt)
        if state:
            return state
    return {}


def attempt_state(attempt: Attempt) -> dict[str, Any]:
    """The execution state ``attempt`` recorded (``state.json``); empty if absent or unreadable."""
    try:
        state = json.loads((Path(attempt.execution_dir) / "state.json").read_bytes())
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


def _flatten(prefix: str, value: Any, into: dict[str, Any]) -> None:
    """Nested mappings become dotted keys; an empty mapping contributes nothing."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, into)
    else:
        into[prefix] = value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def diff_command(
    first: str,
    second: str,
    *,
    workspace: Path | None,
    as_json: bool,
    show_all: bool = False,
    selection: Selection | None = None,
) -> None:
    """``molexp diff RUN_A RUN_B [--all]``: a row per differing fact (``--all``: every fact)."""
    run_a = resolve_run(first, workspace, selection)
    run_b = resolve_run(second, workspace, selection)
    facts_a, facts_b = run_facts(run_a), run_facts(run_b)
    rows: list[dict[str, Any]] = []
    for key in sorted(set(facts_a) | set(facts_b), key=_order):
        a, b = facts_a.get(key, _MISSING), facts_b.get(key, _MISSING)
        same = a is not _MISSING and b is not _MISSING and _canonical(a) == _canonical(b)
        if same and not show_all:
            continue
        rows.append(
            {
                "field": key,
                "a": None if a is _MISSING else a,
                "b": None if b is _MISSING else b,
                "change": "same"
                if same
                else "added"
                if a is _MISSING
                else "removed"
                if b is _MISSING
                else "changed",
            }
        )
    diffs = code_diffs(run_a, run_b)
    if as_json:
        print_json({"a": run_a.id, "b": run_b.id, "differences": rows, "code_diffs": diffs})
        return
    console = stdout_console()
    if not rows:
        console.print(f"runs {run_a.id} and {run_b.id} do not differ")
        return
    absent = "(absent)"
    table_rows = [
        (
            row["field"],
            absent if row["change"] == "added" else format_value(row["a"]),
            absent if row["change"] == "removed" else format_value(row["b"]),
        )
        for row in rows
    ]
    console.print(f"a: {run_a.id}  b: {run_b.id}")
    console.print(make_table(None, ["field", "a", "b"], table_rows))
    for diff in diffs.values():
        console.print(diff, end="", markup=False, highlight=False)


_SECTIONS = (
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


def _order(key: str) -> tuple[int, str]:
    head = key.split(".", 1)[0]
    if head in {"config_hash"}:
        head = "config"
    if head == "python_version":
        head = "python"
    return (_SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS), key)
