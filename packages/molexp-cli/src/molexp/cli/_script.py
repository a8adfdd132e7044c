"""Importing a user script the way ``molexp run`` / ``molexp execute`` do.

The script is imported as an ordinary module (never as ``__main__``, so an
``if __name__ == "__main__":`` block does not run) with its directory on ``sys.path``, after both
process-local registries (``me.entry`` workspaces and workflow bindings) were cleared. Whatever the
script registered is then collected. Import failures become one-line ``ScriptError`` messages
naming the exception and the script line that raised it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from ._errors import CliUsageError, ScriptError, one_line

if TYPE_CHECKING:
    from molexp.workspace import Workspace

__all__ = ["LoadedScript", "ScriptError", "import_script", "load_script"]


@dataclass(frozen=True)
class LoadedScript:
    """An imported script and the workspaces it registered with ``me.entry(ws)``."""

    path: Path
    module: ModuleType
    workspaces: list[Workspace]


def load_script(path: Path, *, require_workspace: bool = True) -> LoadedScript:
    """Clear the registries, import ``path`` and collect the workspaces it registered."""
    from molexp.workflow.bindings import clear_bindings
    from molexp.workspace import clear_registry, registered_workspaces

    clear_registry()
    clear_bindings()
    script = resolve_script_path(path)
    module = import_script(script)
    workspaces = list(registered_workspaces())
    if require_workspace and not workspaces:
        raise ScriptError(
            f"script {script} registered no workspace: call me.entry(ws) at module level "
            "so molexp can discover its projects and experiments"
        )
    return LoadedScript(path=script, module=module, workspaces=workspaces)


def resolve_script_path(path: Path) -> Path:
    """``path`` made absolute; a missing file or a directory is a usage error."""
    script = Path(path).expanduser()
    if not script.exists():
        raise CliUsageError(f"script not found: {script}")
    if not script.is_file():
        raise CliUsageError(f"script {script} is not a file")
    return script.resolve()


def import_script(script: Path) -> ModuleType:
    """Import ``script`` under a private module name; failures raise ``ScriptError``."""
    module_name = _module_name(script)
    spec = importlib.util.spec_from_file_location(module_name, script)
    if spec is None or spec.loader is None:
        raise ScriptError(f"cannot import {script}: not a Python source file")
    module = importlib.util.module_from_spec(spec)
    script_dir = str(script.parent)
    if script_dir not in sys.path:
        sys.path.insert(0, script_dir)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SystemExit as exc:
        sys.modules.pop(module_name, None)
        raise ScriptError(
            f"importing {script} called sys.exit({exc.code!r}); move that call under "
            '`if __name__ == "__main__":`'
        ) from exc
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ScriptError(describe_import_failure(script, exc)) from exc
    return module


def describe_import_failure(script: Path, exc: BaseException) -> str:
    """``importing S failed at line N: Type: message`` (the deepest frame inside ``script``)."""
    line = _script_line(script, exc)
    where = f" at line {line}" if line is not None else ""
    detail = f"{type(exc).__name__}: {one_line(str(exc))}" if str(exc) else type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.msg:
        detail = f"SyntaxError: {exc.msg}"
        if exc.filename and Path(exc.filename).resolve() != script:
            detail += f" (in {exc.filename}, line {exc.lineno})"
    return f"importing {script} failed{where}: {detail}"


def _script_line(script: Path, exc: BaseException) -> int | None:
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() == script:
        return exc.lineno
    line: int | None = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).resolve() == script:
            line = frame.lineno
    return line


_UNSAFE = re.compile(r"\W")


def _module_name(script: Path) -> str:
    """A private module name unique per script path, so it never shadows a real module."""
    digest = hashlib.sha1(str(script).encode("utf-8")).hexdigest()[:8]
    return f"_molexp_script_{_UNSAFE.sub('_', script.stem)}_{digest}"
