"""The documentation runner itself: blocks are read back as written, output comparison masks only
what varies, and a page that does not do what it shows fails, naming the block."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from doc_pages import Block, blocks, mismatch, requirements
from hypothesis import example, given
from hypothesis import strategies as st

HERE = Path(__file__).resolve().parent

_line = st.text(
    alphabet=st.sampled_from("abc xyz=()#.,:'\"$-_01{}\\"), min_size=0, max_size=30
).filter(lambda line: not line.lstrip().startswith("`"))
_block = st.tuples(
    st.sampled_from(["python", "bash", "console", "text", "toml", ""]),
    st.sets(st.sampled_from(["excerpt", "clone", "install", "output"]), max_size=2),
    st.lists(_line, max_size=6),
    st.integers(min_value=0, max_value=3),  # list-item indentation of the fence
)


def _fence(language: str, flags: set[str], body: list[str], indent: int) -> str:
    classes = " ".join(f".{flag}" for flag in sorted(flags))
    if not language:  # ```{.excerpt} would name the language excerpt: write {.text .excerpt}
        language, flags = ("text", flags) if flags else ("", flags)
    info = language + (" {" + classes + "}" if flags else "")
    pad = " " * indent
    return "\n".join([f"{pad}```{info}", *(pad + line for line in body), f"{pad}```"])


@given(st.lists(_block, max_size=5))
@example([("python", {"excerpt"}, ["print(1)"], 0), ("text", {"output"}, ["1"], 2)])
@example([("", {"excerpt"}, [], 0)])
def test_blocks_read_back_as_written(
    tmp_path_factory: pytest.TempPathFactory,
    spec: list[tuple[str, set[str], list[str], int]],
) -> None:
    page = tmp_path_factory.mktemp("page") / "page.md"
    parts = [f"Prose {index}.\n\n" + _fence(*block) for index, block in enumerate(spec)]
    page.write_text("# Title\n\n" + "\n\n".join(parts) + "\n", encoding="utf-8")
    found = blocks(page)
    assert [(b.language, set(b.flags)) for b in found] == [
        (language or ("text" if flags else ""), flags) for language, flags, _, _ in spec
    ]
    assert [b.text for b in found] == ["\n".join(s[2]) + "\n" for s in spec]


def test_a_first_line_naming_a_file_makes_a_file_block(tmp_path: Path) -> None:
    def block(language: str, text: str) -> Block:
        return Block(tmp_path / "p.md", 1, language, frozenset(), text)

    assert block("python", "# train.py\nx = 1\n").file_name == "train.py"
    assert block("toml", "# molexp.toml, beside train.py\n").file_name == "molexp.toml"
    assert block("python", "# prepare.py: creates runs\n").file_name is None
    assert block("bash", "# run.sh\nls\n").file_name is None  # shell blocks always run
    assert not block("python", "# train.py\n").runs


def test_the_attribute_list_form_names_the_language_first(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```{.python .excerpt}\nx\n```\n\n```{.excerpt}\n```\n", encoding="utf-8")
    assert [(b.language, set(b.flags)) for b in blocks(page)] == [
        ("python", {"excerpt"}),
        ("excerpt", set()),  # as superfences reads it
    ]


def test_requirements_are_read_from_comments(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text("x\n<!-- doc-test: requires slurm, browser -->\n", encoding="utf-8")
    assert requirements(page) == {"slurm", "browser"}


def test_output_comparison_masks_ids_times_and_durations() -> None:
    shown = "run 3f2a9c1b7d4e8f60 succeeded in 0.15s at 2026-12-05 14:59:11"
    printed = "run 0c037a229ef0ad68 succeeded in 2.30s at 2027-01-01T00:00:00+00:00"
    assert mismatch(shown, printed) is None
    assert mismatch(shown, printed.replace("succeeded", "failed")) is not None
    assert mismatch("┃ a ┃ b ┃", "| a   | b |".replace("|", "┃")) is None  # table borders
    assert mismatch("loss 0.5", "loss 0.25") is not None  # numbers are compared


def test_ellipsis_matches_lines_and_text() -> None:
    assert mismatch("start\n...\nend", "start\none\ntwo\nend") is None
    assert mismatch("path data/.../x.bz2", "path data/797e/payload/x.bz2") is None
    assert mismatch("start\nend", "start\nmiddle\nend") is not None
    assert mismatch("start", "start\nmore") is not None
    assert mismatch("start\n...", "start\nmore") is None


def _run(tmp_path: Path, page_text: str) -> subprocess.CompletedProcess[str]:
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent(page_text), encoding="utf-8")
    workdir = tmp_path / "work"
    workdir.mkdir()
    return subprocess.run(
        [sys.executable, str(HERE / "run_page.py"), str(page)],
        cwd=workdir,
        env={"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_page_that_does_what_it_shows_passes(tmp_path: Path) -> None:
    completed = _run(
        tmp_path,
        """\
        ```python
        # helper.py
        VALUE = 21
        ```

        ```python
        from helper import VALUE
        print(VALUE * 2)
        ```

        ```text {.output}
        42
        ```

        ```python {.excerpt}
        raise SystemExit("an excerpt never runs")
        ```

        ```console
        $ cat helper.py
        # helper.py
        VALUE = 21
        $ sh -c 'echo "error: no such run" >&2; exit 2'
        error: no such ...
        ```
        """,
    )
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "work" / "helper.py").read_text() == "# helper.py\nVALUE = 21\n"


@pytest.mark.parametrize(
    ("page_text", "where"),
    [
        ("```python\nprint(1)\n```\n\n```text {.output}\n2\n```\n", "page.md:5 (text block)"),
        ("intro\n\n```python\nundefined_name\n```\n", "page.md:3 (python block)"),
        ("```bash\nfalse\n```\n", "page.md:1 (bash block)"),
        ("```console\n$ true\nerror: it was meant to fail\n```\n", "page.md:1 (console block)"),
        ("```console\n$ ls missing\nerror: not what ls says\n```\n", "page.md:1 (console block)"),
    ],
)
def test_a_page_that_does_not_do_what_it_shows_fails_naming_the_block(
    tmp_path: Path, page_text: str, where: str
) -> None:
    completed = _run(tmp_path, page_text)
    assert completed.returncode == 1
    assert where in completed.stderr, completed.stderr
