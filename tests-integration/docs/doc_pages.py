"""Reading documentation pages as a new user would paste them: the fenced blocks of a Markdown
page, what each one is (code to run, a file to write, output to expect, an excerpt to skip), and
output comparison with ids, times and durations masked.

The conventions a page follows (docs/contributing-docs.md describes them for writers):

- a ```` ```python ```` block runs in the page's one Python namespace, in order, like a notebook;
- a ```` ```bash ```` block runs as a ``bash -e`` script in the page's directory;
- a ```` ```console ```` block holds ``$ command`` lines, each followed by the output it prints
  (output starting with ``error:`` shows a command that must fail);
- a block whose first line is a comment naming a file (``# train.py``, ``# molexp.toml, beside
  train.py``) is that file's content: it is written, not run;
- a ```` ```text {.output} ```` block right after a code block is that block's expected output;
- the class ``excerpt`` after the language (```` ```python {.excerpt} ````) marks a signature or a
  fragment shown for reading; ``clone`` marks commands run from a clone of the repository and
  ``install`` package installations (both covered by their own tests: tests-integration/examples
  and tests-integration/install); none of them is run here;
- ``<!-- doc-test: requires slurm -->`` (or ``ssh``, ``browser``) names what the page needs.

In expected output, a line ``...`` matches any number of lines and ``...`` inside a line matches
any text; runs of spaces and table borders are not compared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = frozenset({"python", "bash", "console"})
NOT_RUN = frozenset({"excerpt", "clone", "install"})
FILE_COMMENT = re.compile(r"^(?:#|//)\s*([\w.\-/]+\.\w+)\s*(?:,.*)?$")
REQUIRES = re.compile(r"<!--\s*doc-test:\s*requires\s+([\w\s,]+?)\s*-->")
FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: Path
    line: int  # 1-based line of the opening fence
    language: str
    flags: frozenset[str]
    text: str

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def file_name(self) -> str | None:
        """The file this block is the content of, from a first-line comment naming it."""
        first = self.text.split("\n", 1)[0].strip()
        match = FILE_COMMENT.match(first)
        if match is None or self.language in {"bash", "console"}:
            return None
        return match.group(1)

    @property
    def is_output(self) -> bool:
        return "output" in self.flags

    @property
    def runs(self) -> bool:
        return (
            self.language in RUN_LANGUAGES
            and not (self.flags & NOT_RUN)
            and not self.is_output
            and self.file_name is None
        )


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of ``page`` in order (indented fences inside lists included)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index].rstrip())
        if match is None:
            index += 1
            continue
        fence, indent = match.group("fence"), len(match.group("indent"))
        language, flags = _info(match.group("info"))
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1
        found.append(
            Block(
                page=page,
                line=start + 1,
                language=language,
                flags=flags,
                text="\n".join(body) + "\n",
            )
        )
    return found


def _info(info: str) -> tuple[str, frozenset[str]]:
    """The language and the classes of a fence's info string, read as MkDocs' superfences reads
    them: ``python {.excerpt}`` (which GitHub renders as Python too) or ``{.python .excerpt}``."""
    info = info.strip()
    if info.startswith("{"):  # ```{.python .excerpt}: the first class is the language
        classes = re.findall(r"(?<![\w-])\.([\w-]+)", info)
        return (classes[0], frozenset(classes[1:])) if classes else ("", frozenset())
    language, _, attributes = info.partition(" ")
    return language, frozenset(re.findall(r"(?<![\w-])\.([\w-]+)", attributes))


def requirements(page: Path) -> set[str]:
    """What the page says it needs (``<!-- doc-test: requires slurm, ssh -->``)."""
    needs: set[str] = set()
    for match in REQUIRES.finditer(page.read_text(encoding="utf-8")):
        needs.update(word for word in re.split(r"[\s,]+", match.group(1)) if word)
    return needs


_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")
_CLOCK = re.compile(r"\b\d{2}:\d{2}:\d{2}\b")
_DURATION = re.compile(r"\b\d+(?:\.\d+)?\s?(?:ms|µs|us|s|min|h)\b")
_ID = re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b")
_BORDERS = re.compile(r"[\u2500-\u257f]+")


def normalise(text: str) -> list[str]:
    """Lines to compare: times, durations and hex ids masked, borders and extra spaces dropped."""
    lines = []
    for line in text.splitlines():
        line = _TIME.sub("<TIME>", line)
        line = _CLOCK.sub("<TIME>", line)
        line = _DURATION.sub("<DURATION>", line)
        line = _ID.sub("<ID>", line)
        line = _BORDERS.sub(" ", line)
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return lines


def _line_pattern(expected: str) -> re.Pattern[str]:
    parts = [re.escape(part) for part in expected.split("...")]
    return re.compile(".*".join(parts))


def mismatch(expected: str, actual: str) -> str | None:
    """None when ``actual`` shows what ``expected`` says, else what is missing."""
    want, got = normalise(expected), normalise(actual)
    position = 0
    skipping = False
    for line in want:
        if line == "...":
            skipping = True
            continue
        pattern = _line_pattern(line)
        if skipping:
            while position < len(got) and not pattern.fullmatch(got[position]):
                position += 1
        if position >= len(got) or not pattern.fullmatch(got[position]):
            shown = got[position] if position < len(got) else "<end of output>"
            return f"expected {line!r}, got {shown!r}"
        position += 1
        skipping = False
    if position < len(got) and not skipping:
        return f"unexpected output from {got[position]!r} on"
    return None
