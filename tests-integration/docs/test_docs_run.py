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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ssh"))
import ssh_helpers  # noqa: E402 - the ssh suite's harness: the cluster's Python, the sshd state

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PAGES = sorted(
    [*ROOT.glob("docs/**/*.md"), ROOT / "README.md", *ROOT.glob("packages/*/README.md")]
    + [ROOT / "examples" / "README.md", *ROOT.glob("examples/*/README.md")]
)
RUNNABLE = [page for page in PAGES if any(block.runs or block.is_output for block in blocks(page))]


SSH_PAGE_ROOT = Path("/scratch/ana")
"""Where docs/howto/ssh.md keeps its cluster workspace and the cluster's Python."""


def _missing(need: str) -> str | None:
    """Why a page needing ``need`` cannot run here, or None."""
    if need == "slurm":
        return None if shutil.which("sbatch") else "needs Slurm (sbatch on PATH)"
    if need == "browser":
        return None if Path("/usr/bin/chromium").exists() else "needs Chromium"
    if need == "ssh":
        return _missing_ssh()
    return f"needs {need}, which this suite does not provide"


def _missing_ssh() -> str | None:
    """The ssh pages need the loopback sshd as the cluster `cluster` (as root: the page's
    /scratch/ana is created for it, as a cluster account would have it)."""
    if os.geteuid() != 0:
        return "needs root to provide the page's /scratch/ana on the simulated cluster"
    try:
        ssh_helpers.require_harness()
    except pytest.skip.Exception as exc:
        return str(exc)
    if SSH_PAGE_ROOT.exists() and not (SSH_PAGE_ROOT / ".molexp-doc-test").exists():
        return f"{SSH_PAGE_ROOT} exists and was not made by this test: not touching it"
    return None


def _provide_ssh(env: dict[str, str], tmp_path: Path) -> None:
    """What the ssh page's first steps set up by hand: a `cluster` alias reaching the login node
    (the loopback sshd), and molexp installed in /scratch/ana/venv on the cluster."""
    shutil.rmtree(SSH_PAGE_ROOT, ignore_errors=True)
    SSH_PAGE_ROOT.mkdir(parents=True)
    (SSH_PAGE_ROOT / ".molexp-doc-test").write_text("made by tests-integration/docs\n")
    ssh_helpers.build_cluster_python(SSH_PAGE_ROOT)
    state = ssh_helpers.STATE
    config = tmp_path / "ssh_config"
    config.write_text(
        "Host cluster\n"
        "    HostName 127.0.0.1\n"
        f"    Port {(state / 'port').read_text().strip()}\n"
        "    User root\n"
        f"    IdentityFile {state / 'client'}\n"
        f"    UserKnownHostsFile {state / 'known_hosts'}\n"
        "    StrictHostKeyChecking yes\n"
    )
    env["MOLEXP_SSH_CONFIG"] = str(config)


def _environment(tmp_path: Path) -> dict[str, str]:
    """A new user's shell: the environment's `molexp` on PATH, no MOLEXP_* settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOLEXP_") and key != "UV"  # not inside `uv run`: hints say molexp
    }
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
    needs = requirements(page)
    for need in sorted(needs):
        reason = _missing(need)
        if reason is not None:
            pytest.skip(reason)
    env = _environment(tmp_path)
    if "ssh" in needs:
        _provide_ssh(env, tmp_path)
    workdir = tmp_path / "page"
    workdir.mkdir()
    try:
        completed = subprocess.run(
            [sys.executable, str(HERE / "run_page.py"), str(page)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        if "ssh" in needs:
            shutil.rmtree(SSH_PAGE_ROOT, ignore_errors=True)
    assert completed.returncode == 0, completed.stdout[-6000:] + completed.stderr[-6000:]
