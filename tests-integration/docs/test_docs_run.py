"""Every page of docs/ and every README runs as written: its blocks execute in order in a fresh
directory, the files it shows are written where it says, and what it says a command prints is
what it prints (conventions in doc_pages.py and docs/contributing-docs.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doc_pages import blocks, requirements

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PAGES = sorted(
    [*ROOT.glob("docs/**/*.md"), ROOT / "README.md", *ROOT.glob("packages/*/README.md")]
    + [ROOT / "examples" / "README.md", *ROOT.glob("examples/*/README.md")]
)
RUNNABLE = [page for page in PAGES if any(block.runs or block.is_output for block in blocks(page))]


def _missing(need: str) -> str | None:
    """Why a page needing ``need`` cannot run here, or None."""
    if need == "slurm":
        return None if shutil.which("sbatch") else "needs Slurm (sbatch on PATH)"
    if need == "browser":
        return None if Path("/usr/bin/chromium").exists() else "needs Chromium"
    return f"needs {need}, which this suite does not provide"


def _environment(tmp_path: Path) -> dict[str, str]:
    """A new user's shell: the environment's `molexp` on PATH, no MOLEXP_* settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("MOLEXP_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(HERE)
    env["MOLEXP_INDEX_DIR"] = str(tmp_path / ".index")
    env["COLUMNS"] = "120"
    env["NO_COLOR"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def test_the_pages_are_found() -> None:
    assert ROOT / "docs" / "quickstart.md" in RUNNABLE
    assert len(RUNNABLE) >= 20


@pytest.mark.parametrize("page", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_page_runs_as_written(page: Path, tmp_path: Path) -> None:
    for need in sorted(requirements(page)):
        reason = _missing(need)
        if reason is not None:
            pytest.skip(reason)
    workdir = tmp_path / "page"
    workdir.mkdir()
    completed = subprocess.run(
        [sys.executable, str(HERE / "run_page.py"), str(page)],
        cwd=workdir,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-6000:]
