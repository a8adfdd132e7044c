"""Development sessions for the MolExp monorepo.

`nox` (no arguments) runs everything CI runs: each package's tests in its own environment
holding only that package's declared dependencies, the integration suite, lint, type checks,
the import-layering contracts, docs and the wheel smoke test. `nox -s bench` runs the
benchmarks (never part of CI tests).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).parent
PACKAGES_DIR = ROOT / "packages"

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_external_run = True
nox.options.sessions = [
    "lint",
    "typecheck",
    "imports",
    "tests",
    "integration",
    "docs",
    "wheels",
]


def _package_names() -> list[str]:
    names = []
    for pyproject in sorted(PACKAGES_DIR.glob("*/pyproject.toml")):
        names.append(tomllib.loads(pyproject.read_text())["project"]["name"])
    return names


PACKAGES = _package_names()


def _sync(session: nox.Session, *args: str) -> None:
    """Install the locked workspace subset into this session's venv with `uv sync`."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        *args,
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
        external=True,
    )


def _pytest(session: nox.Session, *paths: str) -> None:
    """Run pytest; a suite with no tests collected (exit 5) is a failure, never a pass."""
    session.run("pytest", *paths, *session.posargs)


@nox.session
@nox.parametrize("package", PACKAGES)
def tests(session: nox.Session, package: str) -> None:
    """One package installed alone with its declared dependencies (extras included).

    Catches imports of siblings the package does not declare.
    """
    _sync(session, "--package", package, "--all-extras", "--group", "dev")
    tests_dir = PACKAGES_DIR / package / "tests"
    _pytest(session, str(tests_dir.relative_to(ROOT)), "-p", "no:cacheprovider")


@nox.session
def integration(session: nox.Session) -> None:
    """Cross-package tests: the real CLI in subprocesses, examples, reliability scenarios."""
    _sync(session, "--all-packages", "--all-extras", "--group", "dev")
    _pytest(session, "tests-integration", "-p", "no:cacheprovider")


@nox.session
def lint(session: nox.Session) -> None:
    _sync(session, "--all-packages", "--group", "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    _sync(session, "--all-packages", "--all-extras", "--group", "dev")
    layers = [
        p
        for p in sorted(PACKAGES_DIR.glob("*/src/molexp/*"))
        if p.is_dir() and p.name != "__pycache__"  # a bytecode cache is not a layer
    ]
    meta = sorted(PACKAGES_DIR.glob("*/src/molexp/__init__.py"))
    session.run("mypy", *(str(p.relative_to(ROOT)) for p in [*layers, *meta]))


@nox.session
def imports(session: nox.Session) -> None:
    """The layering rules of docs/architecture.md, enforced on the code.

    import-linter's contracts, then ``tools/check_private_imports.py``: no layer (nor a benchmark)
    imports another layer's ``_private`` module. This session is the one way to run
    ``lint-imports``: the meta package is left out on purpose (its `molexp/__init__.py` turns the
    namespace into a regular package, and import-linter analyses each layer as a namespace
    portion), so ``lint-imports`` in the all-packages dev venv cannot work.
    """
    _sync(session, "--package", "molexp-cli", "--package", "molexp-server", "--group", "dev")
    session.run("lint-imports")
    session.run("python", "tools/check_private_imports.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation with ``--strict`` into a temporary directory, removed afterwards.

    ``NO_MKDOCS_2_WARNING=1`` silences the MkDocs 2.0 notice mkdocs-material prints on every build.
    """
    _sync(session, "--all-packages", "--group", "dev", "--group", "docs")
    with tempfile.TemporaryDirectory(prefix="molexp-site-") as site:
        session.run(
            "mkdocs", "build", "--strict", "--site-dir", site, env={"NO_MKDOCS_2_WARNING": "1"}
        )


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py; each prints its figures as ratios to a same-run reference."""
    _sync(session, "--all-packages", "--all-extras", "--group", "dev")
    for script in sorted((ROOT / "benchmarks").glob("bench_*.py")):
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)


@nox.session
def wheels(session: nox.Session) -> None:
    """Build every wheel; install each alone in a clean venv outside the workspace; import it."""
    dist = Path(tempfile.mkdtemp(prefix="molexp-dist-"))
    session.run("uv", "build", "--all-packages", "--wheel", "--out-dir", str(dist), external=True)
    checks = {
        "molexp-workflow": "import molexp.workflow as w; w.workflow('smoke').build()",
        "molexp-assets": "import molexp.assets",
        "molexp-workspace": "import molexp.workspace",
        "molexp-cli": "import molexp.cli",
        "molexp-server": "import molexp.server",
        "molexp": "import molexp as me; me.Workspace; me.workflow",
    }
    # What installing a distribution alone must NOT bring along (the layering promise to users).
    absent_when_alone = {
        "molexp-workflow": ["typer", "fastapi", "rich", "molexp.assets", "molexp.workspace"],
        "molexp-assets": ["molexp.workflow", "molexp.workspace", "typer"],
        "molexp-workspace": ["molexp.workflow", "typer", "fastapi"],
    }
    for package in PACKAGES:
        wheel = next(dist.glob(f"{package.replace('-', '_')}-*.whl"))
        with tempfile.TemporaryDirectory(prefix=f"venv-{package}-") as venv_dir:
            python = Path(venv_dir) / "bin" / "python"
            session.run("uv", "venv", "-q", "-p", sys.executable, venv_dir, external=True)
            session.run(
                "uv",
                "pip",
                "install",
                "-q",
                "-p",
                str(python),
                "--find-links",
                str(dist),
                str(wheel),
                external=True,
            )
            code = checks[package]
            absent = absent_when_alone.get(package, [])
            code += (
                "\nimport importlib.util"
                f"\nfound = [m for m in {absent!r} if importlib.util.find_spec(m) is not None]"
                f"\nassert not found, f'{package} alone must not install {{found}}'"
            )
            session.run(
                str(python), "-c", code, external=True, env={"PYTHONPATH": ""}, silent=False
            )
    shutil.rmtree(dist, ignore_errors=True)
