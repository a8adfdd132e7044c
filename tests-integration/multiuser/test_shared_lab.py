"""Many users, one lab workspace: two real Unix users in one group share a workspace.

Set up as a lab would: group ``molexp-lab``, users ``molexp-alice`` and ``molexp-bob`` in it, a
workspace directory owned by the group with mode 2775 (setgid), members with ``umask 0002``. Each
member's Python runs as that user (``setpriv``). The interpreter and the virtual environment live
where other users cannot read them (``/root``), so the children get the ambient capability
CAP_DAC_READ_SEARCH - read access everywhere, but no write access: they still lack
CAP_DAC_OVERRIDE and CAP_FOWNER (asserted), so every write below is allowed by the modes and
groups MolExp gave its files, not by privilege. Because that capability also lets them *read*
files whatever their mode, the modes are asserted explicitly: everything is group-readable and
group-writable, in the lab's group.

Scenario: alice creates the workspace and runs to success (results, log, artifact, checkpoint,
a data asset, a cached workflow task); bob runs in her experiment and a new one, replaces records
she wrote (experiment, run, data asset), hits her cache entry, lists and queries; alice sees
everything bob did. Then alice works with ``umask 0022`` and bob gets one line naming the
directory and the fix, from the Python API and from the CLI. Each scenario runs with directory
locks (local filesystems) and with lock files beside the records (network filesystems).

Needs root, ``useradd``/``groupadd`` and ``setpriv``; skipped otherwise.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

GROUP = "molexp-lab"
ALICE = "molexp-alice"
BOB = "molexp-bob"
MEMBER_SCRIPT = Path(__file__).with_name("lab_member.py")
HELP = "docs/howto/cluster.md#a-shared-lab-workspace"
TIMEOUT_S = 180


def _why_not() -> str | None:
    if not sys.platform.startswith("linux"):
        return "needs Linux (setpriv, ambient capabilities)"
    if os.geteuid() != 0:
        return "needs root to create the lab's Unix users and group"
    missing = [tool for tool in ("useradd", "groupadd", "setpriv") if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} to create and act as the lab's users"
    return None


pytestmark = pytest.mark.skipif(_why_not() is not None, reason=_why_not() or "")


def _ensure_users() -> None:
    """Create the group and the two users if missing (idempotent, no home, no login)."""
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        subprocess.run(["groupadd", "-f", GROUP], check=True, capture_output=True)
    for user in (ALICE, BOB):
        try:
            pwd.getpwnam(user)
        except KeyError:
            done = subprocess.run(
                [
                    "useradd",
                    "-M",
                    "-N",
                    "-g",
                    GROUP,
                    "-d",
                    "/nonexistent",
                    "-s",
                    "/usr/sbin/nologin",
                    user,
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode not in (0, 9):  # 9: created meanwhile by another process
                pytest.fail(f"useradd {user} failed: {done.stderr.strip()}")


@dataclass
class Lab:
    base: Path
    root: Path
    gid: int

    def home(self, user: str) -> Path:
        return self.base / f"home-{user}"

    def run(
        self, user: str, *args: str, umask: int = 0o002, lock_files: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``python ARGS`` as ``user`` with ``umask``, in the lab's group, no write privilege."""
        account = pwd.getpwnam(user)
        command = [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={self.gid}",
            "--init-groups",
            "--inh-caps=+dac_read_search",
            "--ambient-caps=+dac_read_search",
            "--",
            sys.executable,
            *args,
        ]
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("MOLEXP_", "XDG_"))
        }
        env.update(
            HOME=str(self.home(user)),
            MOLEXP_INDEX_DIR=str(self.base / f"index-{user}"),  # per user, on this host
            PYTHONDONTWRITEBYTECODE="1",
            LAB_LOCK_FILES="1" if lock_files else "0",
        )
        return subprocess.run(
            command,
            env=env,
            umask=umask,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )

    def step(self, user: str, step: str, **options: Any) -> dict[str, Any]:
        """One step of ``lab_member.py`` as ``user``: its JSON report (fails on an error)."""
        done = self.run(user, str(MEMBER_SCRIPT), str(self.root), step, **options)
        assert done.returncode == 0, f"{user} {step} failed:\n{done.stderr}"
        report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        identity = report["identity"]
        assert identity["uid"] == pwd.getpwnam(user).pw_uid
        assert identity["umask"] == f"{options.get('umask', 0o002):04o}"
        assert identity["dac_read_search"], "the child cannot read the interpreter without it"
        assert not identity["dac_override"] and not identity["fowner"], (
            "writes must be unprivileged"
        )
        return report


@pytest.fixture
def lab() -> Iterator[Lab]:
    _ensure_users()
    gid = grp.getgrnam(GROUP).gr_gid
    base = Path(tempfile.mkdtemp(prefix="molexp-shared-lab-", dir="/tmp"))
    try:
        base.chmod(0o755)  # traversable by the lab's users
        root = base / "lab"
        root.mkdir()
        os.chown(root, 0, gid)
        root.chmod(0o2775)
        for user in (ALICE, BOB):
            uid = pwd.getpwnam(user).pw_uid
            for private in (base / f"home-{user}", base / f"index-{user}"):
                private.mkdir(mode=0o700)
                os.chown(private, uid, gid)
        shared = Lab(base, root, gid)
        probe = shared.run(ALICE, "-c", "import molexp.workspace")
        if probe.returncode != 0:  # e.g. a container whose bounding set lacks the capability
            pytest.skip(f"cannot run Python as another user here: {probe.stderr.strip()[-300:]}")
        yield shared
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _audit(
    root: Path, gid: int, *, file_mode: int, dir_mode: int, only: set[Path] | None = None
) -> list[str]:
    """Every path below ``root`` (or in ``only``) that is not in the lab's group with the modes."""
    wrong = []
    for path in sorted(root.rglob("*")):
        if only is not None and path not in only:
            continue
        info = path.lstat()
        mode = stat.S_IMODE(info.st_mode)
        expected = dir_mode if stat.S_ISDIR(info.st_mode) else file_mode
        if stat.S_ISLNK(info.st_mode):
            continue
        if info.st_gid != gid or mode != expected:
            owner = pwd.getpwuid(info.st_uid).pw_name
            wrong.append(
                f"{path.relative_to(root)}: {owner}:{info.st_gid} {mode:04o} (want {expected:04o})"
            )
    return wrong


@pytest.mark.parametrize("lock_files", [False, True], ids=["directory-locks", "lock-files"])
def test_two_members_share_one_workspace(lab: Lab, lock_files: bool) -> None:
    alice = lab.step(ALICE, "alice-starts", lock_files=lock_files)
    assert alice["status"] == "succeeded"
    assert alice["workflow"] == {"expensive": "succeeded", "report": "succeeded"}
    assert alice["runs"] == ["alice-1", "alice-wf"]

    bob = lab.step(BOB, "bob-joins", lock_files=lock_files)
    assert bob["status"] == ["succeeded", "succeeded"]
    assert bob["workflow"] == {"expensive": "cached", "report": "succeeded"}  # alice's entry
    assert bob["alice_log"] == "alice: epoch 1 loss=0.5\n"
    assert json.loads(bob["alice_artifact"]) == {"loss": 0.5, "who": "alice"}
    everyone = ["alice-1", "alice-wf", "bob-1", "bob-2", "bob-wf"]
    assert bob["runs"] == everyone
    assert bob["low_loss"] == ["bob-1", "bob-2"]

    seen = lab.step(ALICE, "alice-sees", lock_files=lock_files)
    assert seen["runs"] == everyone and seen["low_loss"] == ["bob-1", "bob-2"]
    assert seen["description"] == "reviewed by bob"
    assert "reviewed" in seen["alice_tags"]
    assert seen["bob_log"] == "bob: epoch 1 loss=0.4\n"
    assert seen["inputs"] == "a,b\n3,4\n"  # bob replaced alice's data asset

    for user in (ALICE, BOB):
        listed = lab.run(user, "-m", "molexp.cli", "ls", "runs", "-w", str(lab.root), "--json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(run["id"] for run in json.loads(listed.stdout)) == everyone
        queried = lab.run(
            user, "-m", "molexp.cli", "query", "results.loss < 0.45", "-w", str(lab.root), "--json"
        )
        assert queried.returncode == 0, queried.stderr
        assert sorted(run["id"] for run in json.loads(queried.stdout)) == ["bob-1", "bob-2"]

    # Everything MolExp created is in the lab's group, group-writable, and no directory lost
    # the setgid bit that hands the group down.
    assert _audit(lab.root, lab.gid, file_mode=0o664, dir_mode=0o2775) == []
    owners = {pwd.getpwuid(path.lstat().st_uid).pw_name for path in lab.root.rglob("*")}
    assert owners == {ALICE, BOB}
    lock_names = [path.name for path in lab.root.rglob(".*.lock")]
    if lock_files:
        assert ".experiment.json.lock" in lock_names  # taken by both members
    else:
        assert not [name for name in lock_names if not name.startswith(".execute")]

    # A member with umask 0022 makes directories the others cannot write into...
    before = set(lab.root.rglob("*"))
    assert lab.step(ALICE, "private", umask=0o022, lock_files=lock_files)["status"] == "succeeded"
    created = set(lab.root.rglob("*")) - before
    private = lab.root / "projects" / "qm9" / "experiments" / "private"
    assert private in created
    assert _audit(lab.root, lab.gid, file_mode=0o644, dir_mode=0o2755, only=created) == []

    # ...and the other gets one line naming the directory and the fix, not a traceback.
    refused = lab.step(BOB, "bob-refused", lock_files=lock_files)["refusals"]
    runs_dir = private / "runs"
    assert len(refused) == 2
    for refusal in refused:
        assert refusal["error_type"] == "SharedPermissionError", refusal
        message = refusal["message"]
        assert "\n" not in message
        assert message.startswith(
            f"cannot write in directory {runs_dir}: owned by {ALICE} with mode 2755"
        )
        assert "umask 0002" in message and f"chmod -R g+rwX {runs_dir}" in message
        assert HELP in message
    assert sorted(path.name for path in runs_dir.iterdir()) == ["run-private-1", "run-private-2"]

    cancelled = lab.run(BOB, "-m", "molexp.cli", "cancel", "private-2", "-w", str(lab.root))
    assert cancelled.returncode == 1
    lines = cancelled.stderr.strip().splitlines()
    assert len(lines) == 1, cancelled.stderr
    # The directory refused may be the run's or one MolExp keeps inside it (claims, ...).
    assert lines[0].startswith(f"error: cannot write in directory {runs_dir / 'run-private-2'}")
    assert f"owned by {ALICE} with mode 2755 (not group-writable)" in lines[0]
    assert "umask 0002" in lines[0] and HELP in lines[0]
    assert "Traceback" not in cancelled.stderr
