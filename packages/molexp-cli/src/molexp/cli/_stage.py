"""What ``molexp run`` sends to a remote host: the script, its first-party modules, molexp.toml.

The script is never imported here (the laptop may lack what it imports). Its ``import``
statements are read with :mod:`ast`; an imported name whose top-level module is a ``.py`` file or
a package directory beside the script is first-party, and is staged too: a module file as is, a
package as every ``.py`` file under it. Staged modules are read the same way, so what they import
from beside the script is staged as well. Everything else (the standard library, installed
distributions) must be installed in the remote Python.

The profile file (``--config``, else the ``molexp.toml`` beside the script) is staged as
``molexp.toml`` beside the staged script, without its top-level ``python`` key (a path of this
machine). Its ``workspace = "DIR"`` key names the directory, relative to the script, that the
remote stage links to the remote workspace, so ``me.Workspace("./DIR")`` (the remote run's
working directory is the staged script's directory) and ``Workspace(Path(__file__).parent /
"DIR")`` both open the remote workspace.

Files are content-addressed: each is a blob named by its sha256, a tree is the set of
``relative path -> blob`` plus the workspace link, named by the digest of that set
(:func:`molexp.cli._agent.tree_id`). Only blobs the remote lacks are uploaded, and the same
files always stage to the same tree (the same script path in the runs' records).
"""

from __future__ import annotations

import ast
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ._errors import CliError, CliUsageError

__all__ = ["StagedTree", "first_party_files", "stage_plan", "strip_python_key"]

_SKIP_DIRS = {"__pycache__", ".git", ".venv", "venv", "node_modules", ".molexp"}
_TABLE = re.compile(r"^\s*\[")
_PYTHON_KEY = re.compile(r"^\s*python\s*=")


@dataclass
class StagedTree:
    """The files of one staging: contents by relative path, and the workspace link."""

    script: str
    """The script's path inside the tree."""
    files: dict[str, bytes] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)

    def digests(self) -> dict[str, str]:
        return {rel: hashlib.sha256(data).hexdigest() for rel, data in self.files.items()}

    def spec(self) -> dict[str, Any]:
        return {"files": self.digests(), "links": dict(self.links)}

    def blobs(self) -> dict[str, bytes]:
        return {hashlib.sha256(data).hexdigest(): data for data in self.files.values()}


def _imported_modules(source: str, filename: str, package: tuple[str, ...]) -> set[str]:
    """Top-level names of the modules ``source`` imports (relative imports resolved against
    ``package``, the importing module's package parts)."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
            elif node.level > 0 and package:
                names.add(package[0])
    return names


def first_party_files(script: Path) -> dict[str, Path]:
    """``relative path -> file`` of the script and the first-party modules it imports."""
    base = script.parent
    found: dict[str, Path] = {script.name: script}
    pending: list[tuple[Path, tuple[str, ...]]] = [(script, ())]
    seen_modules: set[str] = set()
    while pending:
        path, package = pending.pop()
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for name in sorted(_imported_modules(source, str(path), package) - seen_modules):
            seen_modules.add(name)
            module_file = base / f"{name}.py"
            package_dir = base / name
            if module_file.is_file():
                found[module_file.name] = module_file
                pending.append((module_file, ()))
            elif package_dir.is_dir() and (package_dir / "__init__.py").is_file():
                for file in sorted(package_dir.rglob("*.py")):
                    rel = file.relative_to(base)
                    if any(part in _SKIP_DIRS for part in rel.parts):
                        continue
                    found[rel.as_posix()] = file
                    pending.append((file, (name,)))
    return found


def strip_python_key(text: str) -> str:
    """The profile file without its top-level ``python = ...`` line (a local path)."""
    lines = text.splitlines(keepends=True)
    kept = []
    in_tables = False
    for line in lines:
        in_tables = in_tables or bool(_TABLE.match(line))
        if not in_tables and _PYTHON_KEY.match(line):
            continue
        kept.append(line)
    return "".join(kept)


def stage_plan(script: Path, profile_file: Path | None, remote_workspace: str) -> StagedTree:
    """The tree to stage for ``script`` with the profile file ``profile_file``."""
    from .profiles import PROFILE_FILENAME, ProfileFile

    files = first_party_files(script)
    tree = StagedTree(script=script.name)
    for rel, path in files.items():
        try:
            tree.files[rel] = path.read_bytes()
        except OSError as exc:
            raise CliError(f"cannot read {path} to stage it: {exc.strerror or exc}") from None
    link = "lab"
    if profile_file is not None:
        text = profile_file.read_text(encoding="utf-8")
        tree.files[PROFILE_FILENAME] = strip_python_key(text).encode("utf-8")
        named = ProfileFile.load(profile_file).workspace
        if named is not None:
            link = _link_name(named, profile_file.parent, profile_file)
    if link in tree.files or any(rel.startswith(f"{link}/") for rel in tree.files):
        raise CliUsageError(
            f"the workspace directory {link!r} beside the script holds staged files; name "
            "another workspace directory in molexp.toml"
        )
    tree.links[link] = remote_workspace
    return tree


def _link_name(named: Path, base: Path, profile_file: Path) -> str:
    try:
        rel = PurePosixPath(named.relative_to(base).as_posix())
    except ValueError:
        rel = None
    if rel is None or not rel.parts or any(p in {"..", "."} for p in rel.parts):
        raise CliUsageError(
            f"{profile_file}: workspace must name a directory beside or below the script for a "
            "remote run (it is linked to the remote workspace there)"
        )
    return str(rel)
