"""Notebook reprs: ``Run``, ``Experiment``, ``Project`` and ``RunQueryResult`` render compact
HTML tables (``_repr_html_``) with every user string escaped, and readable text reprs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from molexp.workspace import Experiment, Project, Workspace
from molexp.workspace._html import MAX_ROWS, short_text

SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"


class Tables(HTMLParser):
    """The tags opened, and each table's rows of cell texts."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in {"td", "th"}:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in {"td", "th"} and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def facts(self) -> dict[str, str]:
        return {row[0]: row[1] for row in self.rows if len(row) == 2}


@pytest.fixture
def hostile(project: Project) -> Experiment:
    exp = project.Experiment("hostile", params={"label": SCRIPT, "lr": 0.001})
    run = exp.Run(id="r1", tags=[SCRIPT], replica_index=0, seed=7)
    run.metadata.results["energy"] = -1.25
    run.metadata.results["note"] = SCRIPT
    run.save()
    return exp


def test_run_html_is_a_facts_table_with_user_strings_escaped(hostile: Experiment) -> None:
    run = hostile.get_run("r1")
    markup = run._repr_html_()
    assert "<script>" not in markup
    assert ESCAPED in markup
    parsed = Tables(markup)
    assert "script" not in parsed.tags
    facts = parsed.facts()
    assert facts["experiment"] == "qm9/hostile"
    assert facts["status"] == "pending"
    assert facts["seed"] == "7"
    assert facts["params"] == f"label={SCRIPT}, lr=0.001"  # the text the reader sees
    assert facts["results"] == f"energy=-1.25, note={SCRIPT}"
    assert facts["tags"] == SCRIPT
    assert facts["run_dir"] == str(run.run_dir)
    assert "started" not in facts  # empty values are left out
    assert repr(run) == "Run('r1', status='pending', experiment='hostile')"


def test_experiment_html_lists_its_runs(hostile: Experiment) -> None:
    hostile.Run(id="r2")
    markup = hostile._repr_html_()
    assert "<script>" not in markup and ESCAPED in markup
    parsed = Tables(markup)
    assert parsed.facts()["runs"] == "pending=2"
    header = next(row for row in parsed.rows if row and row[0] == "run")
    assert header == ["run", "status", "replica", "seed", "results", "finished"]
    runs = parsed.rows[parsed.rows.index(header) + 1 :]
    assert sorted(row[0] for row in runs) == ["r1", "r2"]
    assert {row[1] for row in runs} == {"pending"}
    assert "Experiment('hostile', project='qm9'" in repr(hostile)
    assert "n_replicas=1" in repr(hostile)


def test_project_html_lists_its_experiments(project: Project, hostile: Experiment) -> None:
    project.Experiment("empty")
    project.metadata.description = SCRIPT
    project.save()
    markup = project._repr_html_()
    assert "<script>" not in markup and ESCAPED in markup
    parsed = Tables(markup)
    header = next(row for row in parsed.rows if row and row[0] == "experiment")
    assert header == ["experiment", "name", "params", "replicas", "runs"]
    hostile_row = next(row for row in parsed.rows if row and row[0] == "hostile")
    assert hostile_row[4] == "pending=1"
    assert next(row for row in parsed.rows if row and row[0] == "empty")[4] == ""
    assert parsed.facts()["description"] == SCRIPT


def test_runs_table_has_a_column_per_param_and_result(ws: Workspace, hostile: Experiment) -> None:
    result = ws.runs()
    markup = result._repr_html_()
    assert "<script>" not in markup and ESCAPED in markup
    parsed = Tables(markup)
    header, row = parsed.rows[0], parsed.rows[1]
    assert header == [
        "id",
        "experiment",
        "status",
        "profile",
        "params.label",
        "params.lr",
        "results.energy",
        "results.note",
        "finished",
    ]
    assert row[:3] == ["r1", "qm9/hostile", "pending"]
    assert row[header.index("params.label")] == SCRIPT
    assert row[header.index("results.energy")] == "-1.25"
    text = repr(result)
    assert text.splitlines()[0] == "<RunQueryResult: 1 runs>"
    assert text.splitlines()[1].split() == ["id", "experiment", "status", "params", "results"]
    assert "qm9/hostile" in text and "energy=-1.25" in text
    assert repr(ws.runs(where={"id": "nope"})) == "<RunQueryResult: 0 runs>"


def test_long_tables_and_values_are_cut(exp: Experiment, ws: Workspace) -> None:
    for index in range(MAX_ROWS + 3):
        exp.Run(id=f"run{index:03d}")
    parsed = Tables(ws.runs()._repr_html_())
    assert len(parsed.rows) == 1 + MAX_ROWS + 1
    assert parsed.rows[-1] == ["… 3 more"]
    assert short_text("x" * 500).endswith("…") and len(short_text("x" * 500)) == 80
    assert "… 43 more" in repr(ws.runs())
