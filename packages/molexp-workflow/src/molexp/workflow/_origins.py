"""Where a module comes from: the user's own code, the standard library, MolExp, or a distribution.

A task's code hash folds in *first-party* code by source and identifies *third-party* code by the
versions of the installed distributions it comes from. The decision is made from the location of
the module's file, never from its name:

- no file (built-in or frozen modules), or a file under the standard library directories:
  ``stdlib``;
- a file inside a directory of the ``molexp`` namespace package: ``framework`` (MolExp itself;
  ``CACHE_FORMAT_VERSION`` stands for its semantics);
- a file under a ``site-packages``/``dist-packages`` directory, or in a ``sys.path`` directory
  whose ``*.dist-info`` claims the module's top-level name: ``third_party``, identified by the
  name, version and ``RECORD`` digest (the installer's list of files with their hashes: other
  code reinstalled under the same version changes it) of every distribution claiming that name;
  a module nobody claims is identified by the sha256 of its file;
- anything else (a script, the modules and packages beside it, an editable install of the user's
  project, a module without a file such as a notebook's ``__main__``): ``first_party``.

Results are memoized per module object, so a module imported again (after an upgrade) is
classified afresh, while a module that stays loaded keeps the version of the code that runs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import site
import sys
import sysconfig
import threading
import weakref
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Literal

from molexp.workflow._hashing import sha256_hex

__all__ = ["Distribution", "ModuleOrigin", "module_origin"]

OriginKind = Literal["first_party", "stdlib", "framework", "third_party"]

_SITE_DIR_NAMES = frozenset({"site-packages", "dist-packages"})


@dataclasses.dataclass(frozen=True, slots=True)
class Distribution:
    """An installed distribution: name, version and the digest of its ``RECORD`` ("" if none)."""

    name: str
    version: str
    record: str


@dataclasses.dataclass(frozen=True, slots=True)
class ModuleOrigin:
    """The kind of a module and, for third-party code, the distributions it comes from."""

    kind: OriginKind
    distributions: tuple[Distribution, ...] = ()


FIRST_PARTY = ModuleOrigin("first_party")
STDLIB = ModuleOrigin("stdlib")
FRAMEWORK = ModuleOrigin("framework")

_lock = threading.Lock()
_by_module: dict[str, tuple[weakref.ref[ModuleType], ModuleOrigin]] = {}
_site_indexes: dict[str, tuple[int, dict[str, tuple[Distribution, ...]]]] = {}


@functools.cache
def _install_roots() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(site-packages directories, standard library directories) of this interpreter."""
    sites: set[str] = set()
    stdlib: set[str] = set()
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        paths = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
        sites.update(paths[name] for name in ("purelib", "platlib"))
        stdlib.update(paths[name] for name in ("stdlib", "platstdlib"))
    sites.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    sites.add(site.getusersitepackages())
    return (
        tuple(sorted(str(Path(path).resolve()) for path in sites)),
        tuple(sorted(str(Path(path).resolve()) for path in stdlib)),
    )


def _is_under(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == root or path.startswith(root + os.sep) for root in roots)


def _framework_dirs() -> tuple[str, ...]:
    package = sys.modules.get("molexp")
    portions = getattr(package, "__path__", None) or ()
    return tuple(str(Path(portion).resolve()) for portion in portions)


def _sys_path_entry(module_name: str, path: Path) -> Path:
    """The ``sys.path`` directory ``module_name`` was imported from (by its file's location)."""
    depth = module_name.count(".") + (1 if path.stem == "__init__" else 0)
    return path.parents[min(depth, len(path.parents) - 1)]


def _claims(distribution: metadata.Distribution) -> set[str]:
    """Top-level import names a distribution provides."""
    declared = distribution.read_text("top_level.txt")
    if declared:
        return {line.strip() for line in declared.splitlines() if line.strip()}
    names: set[str] = set()
    for file in distribution.files or ():
        first = file.parts[0] if file.parts else ""
        if first.endswith((".dist-info", ".egg-info", ".data")) or first in {"..", "__pycache__"}:
            continue
        names.add(first.removesuffix(".py") if len(file.parts) == 1 else first)
    name = distribution.metadata["Name"] or ""
    names.add(name.replace("-", "_").replace(".", "_").lower())
    return names


def _site_index(directory: Path, *, with_egg_info: bool) -> dict[str, tuple[Distribution, ...]]:
    """Top-level name -> the distributions in ``directory`` claiming it."""
    key = f"{directory}|{with_egg_info}"
    try:
        stamp = directory.stat().st_mtime_ns
    except OSError:
        return {}
    with _lock:
        cached = _site_indexes.get(key)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    index: dict[str, set[Distribution]] = {}
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        entries = []
    suffixes = (".dist-info", ".egg-info") if with_egg_info else (".dist-info",)
    for entry in entries:
        if not entry.name.endswith(suffixes):
            continue
        distribution = metadata.PathDistribution(entry)
        name, version = distribution.metadata["Name"], distribution.version
        if not name or not version:
            continue
        record = distribution.read_text("RECORD")
        found = Distribution(name, version, sha256_hex(record)[:16] if record else "")
        for top in _claims(distribution):
            index.setdefault(top, set()).add(found)
    result = {
        top: tuple(sorted(found, key=lambda d: (d.name, d.version))) for top, found in index.items()
    }
    with _lock:
        _site_indexes[key] = (stamp, result)
    return result


def _file_digest(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()[:16]
    except OSError:
        return "unreadable"


def _location(module_name: str, module: ModuleType | None, filename: str | None) -> str | None:
    """The file of a module, or the directory of a namespace package's first portion."""
    if filename is None and module is not None:
        filename = getattr(module, "__file__", None)
        if not filename:
            portions = list(getattr(module, "__path__", None) or ())
            filename = portions[0] if portions else None
    return filename or None


def _classify(module_name: str, module: ModuleType | None, filename: str | None) -> ModuleOrigin:
    location = _location(module_name, module, filename)
    if location is None:
        if module_name in sys.builtin_module_names:
            return STDLIB
        spec = getattr(module, "__spec__", None)
        return STDLIB if getattr(spec, "origin", None) == "frozen" else FIRST_PARTY
    path = Path(location)
    if not path.is_absolute() and not path.exists():
        return FIRST_PARTY  # "<stdin>", "<ipython-input-...>": code the user typed
    real = path.resolve()
    text = str(real)
    if _is_under(text, _framework_dirs()):
        return FRAMEWORK
    sites, stdlib = _install_roots()
    in_site = _is_under(text, sites) or not _SITE_DIR_NAMES.isdisjoint(real.parts)
    if not in_site and _is_under(text, stdlib):
        return STDLIB
    top = module_name.partition(".")[0]
    entry = _sys_path_entry(module_name, real)
    claimed = _site_index(entry, with_egg_info=in_site).get(top, ())
    if claimed:
        return ModuleOrigin("third_party", claimed)
    if in_site:
        unclaimed = Distribution(
            f"{module_name} (no distribution)", "unpackaged", _file_digest(real)
        )
        return ModuleOrigin("third_party", (unclaimed,))
    return FIRST_PARTY


def module_origin(module_name: str | None, filename: str | None = None) -> ModuleOrigin:
    """Classify the module ``module_name`` (loaded or not; ``filename`` when it has no module).

    A name that is not a loaded module is classified by ``filename`` alone, and without a
    filename it counts as first-party: code built at run time belongs to the user.
    """
    if not module_name:
        return _classify("", None, filename) if filename else FIRST_PARTY
    module = sys.modules.get(module_name)
    if module is None:
        return _classify(module_name, None, filename) if filename else FIRST_PARTY
    with _lock:
        cached = _by_module.get(module_name)
    if cached is not None and cached[0]() is module:
        return cached[1]
    origin = _classify(module_name, module, None)
    try:
        reference = weakref.ref(module)
    except TypeError:  # a module replaced by an object without weakref support
        return origin
    with _lock:
        _by_module[module_name] = (reference, origin)
    return origin
