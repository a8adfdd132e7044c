"""``molexp metrics RUN [NAME]``: a run's metric series, summarised (last, min, max, points)
per metric as the run record holds them, or the points of the series ``NAME`` across attempts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ._errors import CliError
from ._output import make_table, print_json, stdout_console
from ._resolve import Selection, resolve_run

__all__ = ["metrics_command"]


def metrics_command(
    run_ref: str,
    name: str | None,
    *,
    workspace: Path | None,
    as_json: bool,
    selection: Selection | None = None,
) -> None:
    """Print the summaries of a run's metrics, or every point of the metric ``name``."""
    run = resolve_run(run_ref, workspace, selection)
    if name is None:
        summaries = run.refresh().metric_summaries
        if as_json:
            print_json({"run": run.id, "metrics": summaries})
            return
        console = stdout_console()
        if not summaries:
            console.print(f"run {run.id} has no metrics")
            return
        table = [(n, s.last, s.min, s.max, s.count) for n, s in sorted(summaries.items())]
        console.print(make_table(None, ["name", "last", "min", "max", "points"], table))
        return
    try:
        series = run.metric(name)
    except (KeyError, ValueError) as exc:
        raise CliError(str(exc.args[0]) if exc.args else str(exc)) from None
    if as_json:
        print_json({"run": run.id, "name": name, "points": series.to_records()})
        return
    rows = [
        (step, value, datetime.fromtimestamp(stamp, UTC), attempt)
        for step, value, stamp, attempt in zip(
            series.steps, series.values, series.timestamps, series.attempts, strict=True
        )
    ]
    stdout_console().print(make_table(None, ["step", "value", "time", "attempt"], rows))
