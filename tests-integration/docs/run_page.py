"""Run one documentation page as written, in the current (empty) directory: ``python
run_page.py PAGE``. Blocks run in order (see doc_pages for the conventions); the first failure
prints where it happened and exits 1."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import subprocess
import sys
import traceback
from pathlib import Path
from types import CodeType
from typing import Any, TextIO

from doc_pages import Block, blocks, mismatch


class _Tee(io.StringIO):
    """Captures what a Python block prints and still shows it."""

    def __init__(self, shown: TextIO) -> None:
        super().__init__()
        self._shown = shown

    def write(self, text: str) -> int:
        self._shown.write(text)
        return super().write(text)


def _fail(block: Block, reason: str) -> None:
    print(f"\nFAILED {block.where} ({block.language} block): {reason}", file=sys.stderr)
    sys.exit(1)


def _compile(block: Block) -> CodeType:
    # Pad so tracebacks name the page's own line numbers.
    source = "\n" * block.line + block.text
    return compile(source, str(block.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def _run_python(block: Block, namespace: dict[str, Any]) -> str:
    captured = _Tee(sys.stdout)
    try:
        code = _compile(block)
        with contextlib.redirect_stdout(captured):
            result = eval(code, namespace)  # noqa: S307 - the page is the test's input
            if asyncio.iscoroutine(result):
                asyncio.run(result)
    except BaseException:  # noqa: BLE001 - SystemExit from a block is a failure too
        _fail(block, "raised\n" + traceback.format_exc())
    return captured.getvalue()


def _run_shell(block: Block, script: str, *, must_fail: bool = False) -> str:
    print(f"$ {script.strip()}", flush=True)
    completed = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = completed.stdout + completed.stderr
    print(output, flush=True)
    if must_fail and completed.returncode == 0:
        _fail(block, f"succeeded, but the page shows it failing:\n{output}")
    if completed.returncode != 0 and not must_fail:
        _fail(block, f"exited {completed.returncode}:\n{output}")
    return output


def _run_console(block: Block) -> None:
    """Each ``$ command`` runs; the lines after it are what it must print (output that starts
    with ``error:`` shows a command that fails: it must exit non-zero)."""
    command: str | None = None
    expected: list[str] = []

    def finish() -> None:
        if command is None:
            return
        must_fail = bool(expected) and expected[0].startswith("error:")
        output = _run_shell(block, command, must_fail=must_fail)
        if expected:
            problem = mismatch("\n".join(expected), output)
            if problem is not None:
                _fail(block, f"`{command}` printed something else: {problem}\n{output}")

    for line in block.text.splitlines():
        if line.startswith("$ "):
            finish()
            command, expected = line[2:], []
        elif command is not None:
            expected.append(line)
    finish()


def main(page: Path) -> None:
    sys.path.insert(0, "")  # like an interactive interpreter: modules beside the page's files
    namespace: dict[str, Any] = {"__name__": "__main__"}
    last_output: str | None = None
    for block in blocks(page):
        if block.is_output:
            if last_output is None:
                _fail(block, "an output block follows no block that ran")
            problem = mismatch(block.text, last_output or "")
            if problem is not None:
                _fail(block, f"the block above printed something else: {problem}")
            continue
        if block.file_name is not None:
            target = Path(block.file_name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
            continue
        if not block.runs:
            continue
        if block.language == "python":
            last_output = _run_python(block, namespace)
        elif block.language == "bash":
            last_output = _run_shell(block, block.text)
        else:
            _run_console(block)
            last_output = None
    print(f"\nOK {page}")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve())
