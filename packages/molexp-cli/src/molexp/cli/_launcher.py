"""Commands the user can paste: the way they launched ``molexp``, and paths from where they stand.

``molexp run`` ends with hints (``molexp ls runs -w lab``). They must work when pasted into the
same shell: under ``uv run`` the ``molexp`` executable is not on the shell's PATH, so the hint says
``uv run molexp``; a ``.venv/bin/molexp`` typed by path is repeated as typed; ``python -m
molexp.cli`` is repeated with that interpreter. A command re-run in the lab's chosen Python
inherits the launcher of the command the user typed (``$MOLEXP_LAUNCHER``). Paths inside the
current directory are shown relative to it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["LAUNCHER_ENV", "display_path", "launcher"]

_PROGRAM = "molexp"
LAUNCHER_ENV = "MOLEXP_LAUNCHER"
"""Set for a command re-run under another interpreter: how the user launched the first one."""


def launcher(
    *,
    environ: Mapping[str, str] | None = None,
    argv0: str | None = None,
    executable: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
    cwd: Path | None = None,
) -> str:
    """The command prefix that starts ``molexp`` again from the user's shell.

    ``$MOLEXP_LAUNCHER`` when the command was re-run in the lab's Python by another one;
    ``uv run molexp`` when uv launched this process (uv sets ``$UV`` for what it runs); ``molexp``
    when the executable that is running is the one on PATH; the interpreter and ``-m molexp.cli``
    when started that way; else the executable's path (relative when under ``cwd``). A process
    that is not the ``molexp`` executable (``run_cli`` called from Python) gets ``molexp``.
    """
    env = os.environ if environ is None else environ
    if env.get(LAUNCHER_ENV):
        return env[LAUNCHER_ENV]
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = sys.executable if executable is None else executable
    if env.get("UV"):
        return f"uv run {_PROGRAM}"
    program = Path(argv0)
    if program.name == "__main__.py" and program.parent.name == "cli":
        python = Path(executable)
        found = which(python.name)
        shown = (
            python.name
            if found and _same(Path(found), python)
            else display_path(python, cwd, command=True)
        )
        return f"{shown} -m molexp.cli"
    if program.name != _PROGRAM:
        return _PROGRAM
    found = which(_PROGRAM)
    if found is not None and _same(Path(found), program):
        return _PROGRAM
    return display_path(program, cwd, command=True)


def display_path(path: Path, cwd: Path | None = None, *, command: bool = False) -> str:
    """``path`` as the user should type it: relative when it lies inside ``cwd`` (default: the
    current directory), else absolute, symlinks kept as they are; shell-quoted. A ``command``
    gets ``./`` when it would otherwise be a bare name (looked up on PATH instead)."""
    base = Path(os.path.normpath((Path.cwd() if cwd is None else cwd).absolute()))
    absolute = Path(os.path.normpath(path.expanduser().absolute()))  # pipx's bin link stays
    shown = str(absolute)
    for inside, candidate in ((base, absolute), (base.resolve(), absolute.resolve())):
        if candidate.is_relative_to(inside):
            shown = str(candidate.relative_to(inside)) or "."
            break
    if command and "/" not in shown:
        shown = f"./{shown}"
    return shlex.quote(shown)


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or a.samefile(b)
    except OSError:
        return False
