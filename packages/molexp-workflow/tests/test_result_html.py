"""``WorkflowResult._repr_html_``: one row per task (status, duration, short output, error), every
text escaped, outputs shortened with reprlib."""

from __future__ import annotations

from html.parser import HTMLParser

from molexp.workflow import TaskContext, workflow

SCRIPT = "<script>alert(1)</script>"


class Rows(HTMLParser):
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


def test_html_has_a_row_per_task_and_escapes_outputs_and_errors() -> None:
    wf = workflow(name=f"demo {SCRIPT}")

    @wf.task
    def make(ctx: TaskContext) -> str:
        return SCRIPT + "x" * 500

    @wf.task(depends_on=["make"])
    def explode(ctx: TaskContext) -> None:
        raise ValueError(SCRIPT)

    @wf.task(depends_on=["explode"])
    def after(ctx: TaskContext) -> None:
        return None

    result = wf.build().execute_sync(raise_on_failure=False)
    markup = result._repr_html_()
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    parsed = Rows(markup)
    assert "script" not in parsed.tags
    header, *rows = parsed.rows
    assert header == ["task", "status", "duration", "output", "error"]
    by_task = {row[0]: row for row in rows}
    assert set(by_task) == {"make", "explode", "after"}
    assert by_task["make"][1] == "succeeded" and by_task["make"][2].endswith(" s")
    assert by_task["make"][3].startswith(f"'{SCRIPT}") and len(by_task["make"][3]) <= 60
    assert by_task["explode"][1] == "failed"
    assert by_task["explode"][4] == f"ValueError: {SCRIPT}"
    assert by_task["after"][1] == "skipped" and by_task["after"][3] == ""
    assert "failed, 3 tasks" in markup
