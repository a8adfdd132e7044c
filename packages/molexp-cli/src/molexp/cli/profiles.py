"""Execution profiles: the ``molexp.toml`` file format, ``--set`` overrides and their merge.

A profile file holds a ``[defaults]`` table and any number of ``[profiles.NAME]`` tables. A profile
may name a parent with ``extends = "OTHER"``; its configuration is the deep merge of ``[defaults]``,
then the root ancestor, down to the profile itself. ``--set a.b=1`` overrides are merged last. The
result is a :class:`molexp.workspace.ProfileConfig` whose ``config_hash`` identifies the
configuration (independent of key order and of the profile name).

Four keys of a profile choose *how* its runs execute rather than what tasks compute:
``executor`` (``"local"`` or ``"slurm"``), ``heartbeat_interval`` (seconds between owner
heartbeats of an executing run), the ``[profiles.X.slurm]`` table of Slurm job options and the
``[profiles.X.remote]`` table of an SSH login host to run on (``molexp.cli._ssh``). They
merge like every other key (``[defaults]``, ``extends``, ``--set slurm.time=30``) but are taken out
of the configuration: tasks never see them in ``ctx.config`` and they are not part of the
``config_hash``, so running the same profile locally or on Slurm finds the same runs.
:meth:`ProfileFile.execution` returns them as :class:`ExecutionSettings`.

A top-level ``workspace = "lab"`` key (outside the tables) names the workspace of the directory
the file sits in, relative to it: commands run there (or below) find it without ``-w``
(:attr:`ProfileFile.workspace`; the lookup order is in ``molexp.cli._resolve``). A top-level
``python = "PATH"`` key names the interpreter ``molexp run``/``execute`` run the scripts beside
it with (:attr:`ProfileFile.python`; see ``molexp.cli._python``). A top-level
``record_variables = ["XTB_HOME", "MYAPP_*"]`` key names environment variables (or shell-style
patterns) each attempt records besides the built-in allow-list
(:attr:`ProfileFile.record_variables`).

This module owns the parsing, validation, merging and value coercion; it reads files but never
writes any.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import OverrideError, ProfileError, UnknownProfileError
from ._slurm_script import SlurmOptionError, SlurmOptions
from ._ssh import RemoteSettings

if TYPE_CHECKING:
    from molexp.workspace import ProfileConfig

__all__ = [
    "DASK_KEYS",
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_PROFILE",
    "EXECUTION_KEYS",
    "EXECUTORS",
    "PROFILE_FILENAME",
    "RUNTIMES",
    "ExecutionSettings",
    "OverrideError",
    "ProfileError",
    "ProfileFile",
    "UnknownProfileError",
    "apply_overrides",
    "coerce_value",
    "deep_merge",
    "execution_settings",
    "find_profile_file",
    "flat_overrides",
    "parse_override",
    "parse_overrides",
    "resolve_profile",
    "task_config_keys",
]

PROFILE_FILENAME = "molexp.toml"
DEFAULT_PROFILE = "default"
EXECUTION_KEYS = ("executor", "heartbeat_interval", "slurm", "runtime", "remote")
"""Profile keys that configure execution; never part of the task config or its hash."""
EXECUTORS = ("local", "slurm")
RUNTIMES = ("default", "dask")
DASK_KEYS = ("address", "n_workers", "processes", "threads_per_worker")
"""With ``runtime = "dask"``, these keys configure the Dask runtime (not the task config)."""
DEFAULT_HEARTBEAT_INTERVAL = 30.0

_TOP_LEVEL_TABLES = ("defaults", "profiles")
_WORKSPACE_KEY = "workspace"
_PYTHON_KEY = "python"
_RECORD_VARIABLES_KEY = "record_variables"
_EXTENDS = "extends"
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


@dataclass(frozen=True)
class ExecutionSettings:
    """How a profile's runs execute: the executor, the heartbeat and the Slurm job options."""

    executor: str = "local"
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    runtime: Mapping[str, Any] = field(default_factory=dict)
    """The workflow runtime's options: empty for the default runtime, else ``runtime`` plus the
    ``DASK_KEYS`` given (what ``molexp.workflow.runtime_from_config`` reads)."""
    remote: RemoteSettings | None = None
    """The ``[profiles.X.remote]`` table: run on this SSH login host (None: here)."""

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON data (``runtime`` defaults to the default runtime;
        ``remote`` only when the profile has that table)."""
        data = {
            "executor": self.executor,
            "heartbeat_interval": self.heartbeat_interval,
            "slurm": self.slurm.to_json(),
            "runtime": dict(self.runtime) or {"runtime": "default"},
        }
        if self.remote is not None:
            data["remote"] = self.remote.to_json()
        return data


def task_config_keys(config: Mapping[str, Any]) -> list[str]:
    """The keys of a merged profile that reach tasks as ``ctx.config`` (and its hash)."""
    excluded = set(EXECUTION_KEYS)
    if config.get("runtime") == "dask":
        excluded.update(DASK_KEYS)
    return [key for key in config if key not in excluded]


def execution_settings(data: Mapping[str, Any], *, where: str) -> ExecutionSettings:
    """Validate the execution keys of a merged profile (``where`` names it in errors)."""
    executor = data.get("executor", "local")
    if executor not in EXECUTORS:
        raise ProfileError(
            f"{where}: executor must be one of {', '.join(map(repr, EXECUTORS))}, got {executor!r}"
        )
    interval = data.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ProfileError(
            f"{where}: heartbeat_interval must be a positive number of seconds, got {interval!r}"
        )
    table = data.get("slurm", {})
    if not isinstance(table, Mapping):
        raise ProfileError(f"{where}: slurm must be a table ([...slurm]), got {_kind(table)}")
    try:
        slurm = SlurmOptions.from_mapping(table, where=f"{where}: slurm")
    except SlurmOptionError as exc:
        raise ProfileError(str(exc)) from None
    runtime = data.get("runtime", "default")
    if runtime not in RUNTIMES:
        raise ProfileError(
            f"{where}: runtime must be one of {', '.join(map(repr, RUNTIMES))}, got {runtime!r}"
        )
    runtime_options = (
        {"runtime": runtime, **{key: data[key] for key in DASK_KEYS if key in data}}
        if runtime == "dask"
        else {}
    )
    remote_table = data.get("remote")
    remote = None
    if remote_table is not None:
        if not isinstance(remote_table, Mapping):
            raise ProfileError(
                f"{where}: remote must be a table ([...remote]), got {_kind(remote_table)}"
            )
        try:
            remote = RemoteSettings.from_mapping(remote_table, where=f"{where}: remote")
        except ValueError as exc:
            raise ProfileError(str(exc)) from None
    return ExecutionSettings(
        executor=str(executor),
        heartbeat_interval=float(interval),
        slurm=slurm,
        runtime=runtime_options,
        remote=remote,
    )


@dataclass(frozen=True)
class ProfileFile:
    """A validated profile file: its ``[defaults]`` and raw ``[profiles.NAME]`` tables.

    ``path`` is None for the empty profile set used when no ``molexp.toml`` exists.
    """

    path: Path | None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    profiles: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    workspace: Path | None = None
    """The top-level ``workspace = "DIR"`` key, resolved against the file's directory (None:
    the file names no workspace)."""
    python: Path | None = None
    """The top-level ``python = "PATH"`` key, resolved against the file's directory (None: the
    file names no interpreter)."""
    record_variables: tuple[str, ...] = ()
    """The top-level ``record_variables`` key: environment variable names or patterns each
    attempt records too (never secrets unless listed here)."""

    @classmethod
    def load(cls, path: Path) -> ProfileFile:
        """Read and validate ``path``; every problem raises ``ProfileError`` naming the file."""
        path = Path(path)
        try:
            raw_bytes = path.read_bytes()
        except FileNotFoundError:
            raise ProfileError(f"profile file {path} does not exist") from None
        except OSError as exc:
            raise ProfileError(f"cannot read profile file {path}: {exc.strerror or exc}") from None
        try:
            data = tomllib.loads(raw_bytes.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ProfileError(f"malformed profile file {path}: not UTF-8 ({exc.reason})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ProfileError(_describe_toml_error(path, exc)) from None
        return cls.from_mapping(data, path=path)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, path: Path | None = None) -> ProfileFile:
        """Validate already-parsed TOML data (``path`` only names the source in errors)."""
        source = str(path) if path is not None else "profile data"
        top_level = {*_TOP_LEVEL_TABLES, _WORKSPACE_KEY, _PYTHON_KEY, _RECORD_VARIABLES_KEY}
        unknown = sorted(set(data) - top_level)
        if unknown:
            raise ProfileError(
                f"{source}: unknown top-level key {unknown[0]!r}; a profile file holds only "
                'workspace = "DIR", python = "PATH" and record_variables = ["NAME", ...] keys '
                "and [defaults] and [profiles.NAME] tables"
            )
        record_variables = data.get(_RECORD_VARIABLES_KEY, [])
        if not isinstance(record_variables, list) or not all(
            isinstance(name, str) and name.strip() and "," not in name and "=" not in name
            for name in record_variables
        ):
            raise ProfileError(
                f"{source}: record_variables must be a list of environment variable names or "
                f'patterns such as ["XTB_HOME", "MYAPP_*"], got {record_variables!r}'
            )
        workspace = data.get(_WORKSPACE_KEY)
        if workspace is not None and (not isinstance(workspace, str) or not workspace.strip()):
            raise ProfileError(
                f"{source}: workspace must be a directory path (a string, relative to the "
                f"file's directory), got {workspace!r}"
            )
        python = data.get(_PYTHON_KEY)
        if python is not None and (not isinstance(python, str) or not python.strip()):
            raise ProfileError(
                f"{source}: python must be an interpreter path (a string, relative to the "
                f"file's directory), got {python!r}"
            )
        defaults = data.get("defaults", {})
        if not isinstance(defaults, dict):
            raise ProfileError(f"{source}: 'defaults' must be a table, got {_kind(defaults)}")
        _check_plain(defaults, "defaults", source)
        if _EXTENDS in defaults:
            raise ProfileError(f"{source}: [defaults] cannot use 'extends'; only profiles can")
        profiles = data.get("profiles", {})
        if not isinstance(profiles, dict):
            raise ProfileError(f"{source}: 'profiles' must be a table, got {_kind(profiles)}")
        for name, table in profiles.items():
            if not isinstance(table, dict):
                raise ProfileError(
                    f"{source}: profiles.{name} must be a table ([profiles.{name}]), "
                    f"got {_kind(table)}"
                )
            parent = table.get(_EXTENDS)
            if parent is not None and (not isinstance(parent, str) or not parent):
                raise ProfileError(
                    f"{source}: profiles.{name}.extends must be a profile name, got {parent!r}"
                )
            _check_plain(table, f"profiles.{name}", source)
        base = path.parent if path is not None else Path.cwd()
        workspace_dir = base / Path(workspace).expanduser() if isinstance(workspace, str) else None
        python_path = base / Path(python).expanduser() if isinstance(python, str) else None
        loaded = cls(
            path=path,
            defaults=defaults,
            profiles=profiles,
            workspace=workspace_dir,
            python=python_path,
            record_variables=tuple(name.strip() for name in record_variables),
        )
        for name in loaded.names:
            loaded.chain(name)
            loaded.execution(name)
        return loaded

    @property
    def names(self) -> list[str]:
        """Every profile that can be requested: ``default`` first, then the file's, sorted."""
        return [DEFAULT_PROFILE, *sorted(n for n in self.profiles if n != DEFAULT_PROFILE)]

    def chain(self, name: str) -> list[str]:
        """The ``extends`` chain of ``name``, root ancestor first, ``name`` last.

        Raises ``UnknownProfileError`` when ``name`` is not defined and ``ProfileError`` naming the
        chain when a parent is missing or the chain loops.
        """
        if name not in self.profiles:
            if name == DEFAULT_PROFILE:
                return []
            raise UnknownProfileError(name, self.names, self.path)
        source = str(self.path) if self.path is not None else "profile data"
        chain = [name]
        current = name
        while (parent := self.profiles[current].get(_EXTENDS)) is not None:
            if parent in chain:
                loop = " -> ".join([*chain, parent])
                raise ProfileError(f"{source}: profile inheritance cycle {loop}")
            if parent not in self.profiles:
                path_text = " -> ".join([*chain, parent])
                raise ProfileError(
                    f"{source}: profile {current!r} extends unknown profile {parent!r} "
                    f"(chain {path_text}); defined: {', '.join(sorted(self.profiles)) or 'none'}"
                )
            chain.append(parent)
            current = parent
        chain.reverse()
        return chain

    def merged(self, name: str = DEFAULT_PROFILE) -> dict[str, Any]:
        """``[defaults]`` deep-merged with each profile of ``chain(name)`` (without ``extends``)."""
        config = deep_merge({}, self.defaults)
        for member in self.chain(name):
            table = {k: v for k, v in self.profiles[member].items() if k != _EXTENDS}
            config = deep_merge(config, table)
        return config

    def resolve(self, name: str | None = None, overrides: Iterable[str] = ()) -> ProfileConfig:
        """The ``ProfileConfig`` of ``name`` (``default`` when None) with ``--set`` overrides.

        The execution keys (``EXECUTION_KEYS``, and ``DASK_KEYS`` under ``runtime = "dask"``)
        are left out: see :meth:`execution`. The overrides that reach the task config are
        recorded apart as ``ProfileConfig.overrides`` (dotted key -> value).
        """
        from molexp.workspace import ProfileConfig

        profile_name = name or DEFAULT_PROFILE
        overrides = list(overrides)
        config = apply_overrides(self.merged(profile_name), overrides)
        task_keys = task_config_keys(config)
        task_config = {key: config[key] for key in task_keys}
        given = {
            key: value
            for key, value in flat_overrides(overrides).items()
            if key.partition(".")[0] in task_keys
        }
        return ProfileConfig(name=profile_name, config=task_config, overrides=given)

    def execution(
        self, name: str | None = None, overrides: Iterable[str] = ()
    ) -> ExecutionSettings:
        """The validated execution keys of ``name`` with ``--set`` overrides."""
        profile_name = name or DEFAULT_PROFILE
        overrides = list(overrides)
        config = apply_overrides(self.merged(profile_name), overrides)
        source = str(self.path) if self.path is not None else "profile data"
        where = f"{source}: profile {profile_name!r}" + (" with --set" if overrides else "")
        return execution_settings(config, where=where)


def find_profile_file(directories: Iterable[Path | None]) -> Path | None:
    """The first ``molexp.toml`` found directly in one of ``directories`` (None entries skipped)."""
    for directory in directories:
        if directory is None:
            continue
        candidate = Path(directory) / PROFILE_FILENAME
        if candidate.is_file():
            return candidate
    return None


def resolve_profile(
    name: str | None = None,
    *,
    search_dirs: Iterable[Path | None] = (),
    config_file: Path | None = None,
    overrides: Iterable[str] = (),
) -> ProfileConfig:
    """Resolve a profile the way the CLI does.

    The profile file is ``config_file`` when given (it must exist), else the first ``molexp.toml``
    in ``search_dirs``; without a file only the ``default`` profile exists (empty config).
    """
    path = config_file if config_file is not None else find_profile_file(search_dirs)
    profiles = ProfileFile.load(path) if path is not None else ProfileFile(path=None)
    return profiles.resolve(name, overrides)


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base``, tables recursively, anything else replaced.

    Neither input is modified; nested tables of the result are fresh copies.
    """
    merged: dict[str, Any] = {key: _copy(value) for key, value in base.items()}
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = _copy(value)
    return merged


def coerce_value(text: str) -> Any:
    """Type a ``--set`` value: ``true``/``false`` -> bool, integers, finite floats, else str.

    A value wrapped in matching single or double quotes is always a string (quotes removed), so
    ``--set tag='"42"'`` keeps ``"42"`` textual.
    """
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    if text == "true":
        return True
    if text == "false":
        return False
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def parse_override(text: str) -> tuple[tuple[str, ...], Any]:
    """Split ``"a.b=1"`` into the key path ``("a", "b")`` and the coerced value ``1``."""
    key, sep, raw_value = text.partition("=")
    if not sep:
        raise OverrideError(f"--set {text!r}: expected KEY=VALUE (for example model.depth=3)")
    key = key.strip()
    parts = tuple(part.strip() for part in key.split("."))
    if not key or any(not part for part in parts):
        raise OverrideError(
            f"--set {text!r}: the key {key!r} must be dot-separated names without empty parts"
        )
    return parts, coerce_value(raw_value.strip())


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """The nested table described by ``--set`` arguments, applied in order (later ones win)."""
    tree: dict[str, Any] = {}
    for item in items:
        path, value = parse_override(item)
        node = tree
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        node[path[-1]] = value
    return tree


def flat_overrides(items: Iterable[str]) -> dict[str, Any]:
    """The leaves of ``parse_overrides(items)`` under dotted keys: what the ``--set``s set."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, Mapping):
                walk(f"{prefix}{key}.", value)
            else:
                flat[f"{prefix}{key}"] = value

    walk("", parse_overrides(items))
    return flat


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """``config`` with the ``--set`` arguments merged on top (dotted keys create tables)."""
    return deep_merge(config, parse_overrides(overrides))


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {json.dumps(value, default=str)}"


def _check_plain(value: Any, where: str, source: str) -> None:
    """Reject TOML values JSON cannot carry (dates, times, NaN/inf) so hashing never fails later."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(item, f"{where}.{key}", source)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain(item, f"{where}[{index}]", source)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ProfileError(f"{source}: {where} is {value}; profile values must be finite numbers")
    elif not isinstance(value, str | int | float | bool):
        raise ProfileError(
            f"{source}: {where} is a TOML {type(value).__name__}; profile values must be "
            "strings, numbers, booleans, arrays or tables"
        )


def _describe_toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position is not None:
        reason = message[: position.start()]
        return (
            f"malformed profile file {path}: line {position.group(1)}, "
            f"column {position.group(2)}: {reason}"
        )
    end = _TOML_END.search(message)
    if end is not None:
        return f"malformed profile file {path}: at end of file: {message[: end.start()]}"
    return f"malformed profile file {path}: {message}"
