"""Fail on any import of another layer's private module (``molexp.<layer>._name``).

What one MolExp layer offers another is its package surface or a documented public module
(e.g. ``molexp.assets.storage``); ``_private`` modules are free to change. Scans the layers'
sources and the benchmarks. Run by ``nox -s imports``; exits 1 listing every offending import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("workflow", "assets", "workspace", "cli", "server")
# Benchmarks that time an internal step on purpose, each with its reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("benchmarks/bench_locks.py", "molexp.assets._locks"): (
        "forces the lock-file mode of network filesystems on a local disk to time it"
    ),
    ("benchmarks/bench_run_overhead.py", "molexp.workflow._resume"): (
        "splits the run overhead into its parts, one of which is opening the resume plan"
    ),
    ("benchmarks/bench_run_overhead.py", "molexp.assets._execution"): (
        "times the execution-state encoder alone, one part of recording the state"
    ),
    ("benchmarks/bench_environment.py", "molexp.workspace._environment"): (
        "times the capture alone, including the once-per-process machine probe it resets"
    ),
    ("benchmarks/bench_slurm.py", "molexp.cli._"): (
        "times the Slurm submission path itself, below the command line and its start-up"
    ),
    ("benchmarks/bench_metrics.py", "molexp.workspace._metrics"): (
        "writes series files of a given size directly and times decoding them, without a run"
    ),
}


def _own_layer(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "packages" and "molexp" in parts:
        after = parts[parts.index("molexp") + 1 :]
        if len(after) > 1 and after[0] in LAYERS:
            return after[0]
    return None


def _private_target(module: str) -> tuple[str, str] | None:
    """``(layer, private part)`` when ``module`` is inside a layer's private module."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == "molexp" and parts[1] in LAYERS:
        for part in parts[2:]:
            if part.startswith("_") and not part.startswith("__"):
                return parts[1], part
    return None


def offending_imports(path: Path) -> list[str]:
    own = _own_layer(path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for module in modules:
            target = _private_target(module)
            relative = path.relative_to(ROOT).as_posix()
            allowed = any(
                relative == where and module.startswith(prefix) for where, prefix in ALLOWED
            )
            if target is not None and target[0] != own and not allowed:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports {module}")
                break
    return found


def main() -> int:
    sources = [
        *sorted((ROOT / "packages").glob("*/src/molexp/**/*.py")),
        *sorted((ROOT / "benchmarks").glob("*.py")),
    ]
    problems = [problem for path in sources for problem in offending_imports(path)]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} import(s) of another layer's private module", file=sys.stderr)
        return 1
    print(f"no cross-layer private imports in {len(sources)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
