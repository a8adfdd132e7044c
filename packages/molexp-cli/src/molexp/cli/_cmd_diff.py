"""``molexp diff RUN_A RUN_B``: what differs between two runs of any experiments or projects —
parameters, profile and its overrides, config, workflow and the git state of its script, the code
of each task (with a unified diff of the recorded task sources), results, status, and where and
with what the latest attempt of each ran (interpreter, platform, CPUs, GPUs, variables, the
versions of the distributions the tasks reached).

The facts and the code diffs come from ``molexp.workspace`` (``run_facts``, ``compare_facts``,
``code_diffs``), which the server's compare view uses too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from molexp.workspace import (
    attempt_state,
    code_diffs,
    compare_facts,
    latest_state,
    run_facts,
    task_code_hashes,
)

from ._output import format_value, make_table, print_json, stdout_console
from ._resolve import Selection, resolve_run

__all__ = [
    "attempt_state",
    "code_diffs",
    "diff_command",
    "latest_state",
    "run_facts",
    "task_code_hashes",
]


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
    rows: list[dict[str, Any]] = [
        {"field": row.key, "a": row.values[0], "b": row.values[1], "change": row.change}
        for row in compare_facts([run_facts(run_a), run_facts(run_b)])
        if row.differs or show_all
    ]
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
