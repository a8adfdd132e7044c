"""Which Python runs the user's code: the lab's environment, not necessarily the CLI's own.

A ``molexp`` installed on its own (``pipx install molexp-cli``) lives in an isolated environment
that has neither the ``molexp`` meta package nor the lab's dependencies. ``molexp run`` and
``molexp execute`` therefore choose an interpreter, the first of:

1. ``--python PATH``;
2. ``python = "PATH"`` in the ``molexp.toml`` beside the script (relative to that file);
3. ``$VIRTUAL_ENV`` (an activated virtual environment): ``$VIRTUAL_ENV/bin/python``;
4. a ``.venv`` directory beside the script: ``.venv/bin/python``;
5. the CLI's own interpreter.

When the choice is another environment than the CLI's own, the command runs again there
(``PYTHON -m molexp.cli run ...``, with ``$MOLEXP_PYTHON_CHOSEN`` set so it does not choose
again), so everything it starts — ``--jobs N`` workers, the command written into Slurm job
scripts — runs there too. An environment without a working molexp is one error line naming the
environment and the command that installs molexp into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import CliError, CliUsageError
from ._launcher import LAUNCHER_ENV, launcher

__all__ = ["CHOSEN_ENV", "ChosenPython", "choose_python", "run_in"]

CHOSEN_ENV = "MOLEXP_PYTHON_CHOSEN"
"""Set in a command re-run under the chosen interpreter: it runs where it is."""
_CHECK = "import molexp.cli, molexp.workflow, molexp.workspace"


@dataclass(frozen=True)
class ChosenPython:
    """An interpreter other than the CLI's own, and what chose it (for messages)."""

    path: Path
    source: str


def choose_python(
    option: Path | None,
    script_dir: Path,
    *,
    profile_python: tuple[Path, Path] | None = None,
    environ: Mapping[str, str] | None = None,
) -> ChosenPython | None:
    """The interpreter to run the user's code with, or None for the CLI's own.

    ``profile_python`` is ``(molexp.toml, the python it names)`` when the profile file beside
    the script has a ``python`` key.
    """
    env = os.environ if environ is None else environ
    if env.get(CHOSEN_ENV):
        return None
    chosen: ChosenPython | None = None
    if option is not None:
        path = option.expanduser()
        if not path.exists():
            raise CliUsageError(f"--python {option}: no such interpreter")
        chosen = ChosenPython(path.absolute(), "--python")
    elif profile_python is not None:
        profile_file, path = profile_python
        if not path.exists():
            raise CliError(f"{profile_file}: python {path} does not exist")
        chosen = ChosenPython(path, f"python in {profile_file}")
    elif env.get("VIRTUAL_ENV", "").strip():
        venv = Path(env["VIRTUAL_ENV"].strip())
        chosen = ChosenPython(_venv_python(venv), f"$VIRTUAL_ENV {venv}")
    elif (script_dir / ".venv").is_dir():
        venv = script_dir / ".venv"
        chosen = ChosenPython(_venv_python(venv), f".venv beside the script ({venv})")
    if chosen is None or is_own_environment(chosen.path):
        return None
    return chosen


def _venv_python(venv: Path) -> Path:
    for name in ("bin/python", "bin/python3", "Scripts/python.exe"):
        if (venv / name).exists():
            return (venv / name).absolute()
    return (venv / "bin" / "python").absolute()


def environment_of(python: Path) -> Path:
    """The environment ``python`` belongs to: its virtual environment (the directory holding
    ``pyvenv.cfg``), else the interpreter file itself."""
    for directory in (python.parent.parent, python.parent):
        if (directory / "pyvenv.cfg").is_file():
            return directory.resolve()
    return python.resolve()


def is_own_environment(python: Path) -> bool:
    """Whether ``python`` is this process's environment (a venv's python is a symlink to the
    base interpreter, so environments are compared, not resolved executables)."""
    if sys.prefix != sys.base_prefix:
        return environment_of(python) == Path(sys.prefix).resolve()
    return environment_of(python) == Path(sys.executable).resolve()


def run_in(chosen: ChosenPython, args: Sequence[str]) -> int:
    """Run ``molexp ARGS`` under ``chosen``; its output is this command's, its code returned."""
    if not os.access(chosen.path, os.X_OK):
        raise CliError(f"{chosen.path} ({chosen.source}) is not an executable Python")
    probe = subprocess.run(
        [str(chosen.path), "-c", _CHECK], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        reason = (probe.stderr.strip().splitlines() or ["it did not start"])[-1]
        raise CliError(
            f"the Python chosen to run your code, {chosen.path} ({chosen.source}), cannot run "
            f"molexp: {reason}; install molexp into that environment: "
            f"`{chosen.path} -m pip install molexp` (or `uv pip install --python {chosen.path} "
            "molexp`), or pass --python with an environment that has it"
        )
    sys.stdout.flush()
    sys.stderr.flush()
    env = {**os.environ, CHOSEN_ENV: str(chosen.path), LAUNCHER_ENV: launcher()}
    completed = subprocess.run([str(chosen.path), "-m", "molexp.cli", *args], env=env, check=False)
    return completed.returncode
