"""MolExp command line: ``molexp run`` / ``molexp execute`` with profiles, and workspace inspection.

The public surface is re-exported here lazily (resolved on first attribute access) so that
starting the ``molexp`` executable stays fast. ``molexp.cli.profiles`` is the public module for the
profile file format and ``--set`` overrides.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "main": "molexp.cli.__main__",
    "run_cli": "molexp.cli.__main__",
    "app": "molexp.cli._app",
    "CliError": "molexp.cli._errors",
    "CliUsageError": "molexp.cli._errors",
    "ClaimedElsewhere": "molexp.cli._errors",
    "RemoteTaskError": "molexp.cli._errors",
    "SlurmError": "molexp.cli._errors",
    "SlurmFormatError": "molexp.cli._errors",
    "SlurmOptionError": "molexp.cli._errors",
    "Action": "molexp.cli._plan",
    "Decision": "molexp.cli._plan",
    "PlannedRun": "molexp.cli._plan",
    "RunPlan": "molexp.cli._plan",
    "decide": "molexp.cli._plan",
    "plan_runs": "molexp.cli._plan",
    "LoadedScript": "molexp.cli._script",
    "ScriptError": "molexp.cli._errors",
    "load_script": "molexp.cli._script",
    "find_workspace_root": "molexp.cli._resolve",
    "resolve_workspace_root": "molexp.cli._resolve",
    "resolve_run": "molexp.cli._resolve",
    "ExecutionSettings": "molexp.cli.profiles",
    "ProfileError": "molexp.cli._errors",
    "ProfileFile": "molexp.cli.profiles",
    "UnknownProfileError": "molexp.cli._errors",
    "OverrideError": "molexp.cli._errors",
    "resolve_profile": "molexp.cli.profiles",
}

__all__ = [
    "Action",
    "ClaimedElsewhere",
    "CliError",
    "CliUsageError",
    "Decision",
    "ExecutionSettings",
    "LoadedScript",
    "OverrideError",
    "PlannedRun",
    "ProfileError",
    "ProfileFile",
    "RemoteTaskError",
    "RunPlan",
    "ScriptError",
    "SlurmError",
    "SlurmFormatError",
    "SlurmOptionError",
    "UnknownProfileError",
    "app",
    "decide",
    "find_workspace_root",
    "load_script",
    "main",
    "plan_runs",
    "resolve_profile",
    "resolve_run",
    "resolve_workspace_root",
    "run_cli",
]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'molexp.cli' has no attribute {name!r}")
    from molexp.assets.packaging import publish_one

    value = getattr(importlib.import_module(module_name), name)
    publish_one(value, __name__)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from molexp.cli.__main__ import main, run_cli
    from molexp.cli._app import app
    from molexp.cli._errors import (
        ClaimedElsewhere,
        CliError,
        CliUsageError,
        OverrideError,
        ProfileError,
        RemoteTaskError,
        ScriptError,
        SlurmError,
        SlurmFormatError,
        SlurmOptionError,
        UnknownProfileError,
    )
    from molexp.cli._plan import Action, Decision, PlannedRun, RunPlan, decide, plan_runs
    from molexp.cli._resolve import find_workspace_root, resolve_run, resolve_workspace_root
    from molexp.cli._script import LoadedScript, load_script
    from molexp.cli.profiles import ExecutionSettings, ProfileFile, resolve_profile
