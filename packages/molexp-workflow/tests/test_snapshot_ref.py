"""Tests for WorkflowSnapshotRef: source hash and git commit capture, payload round trip."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from molexp.workflow.snapshot_ref import WorkflowSnapshotRef, git_checkout

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never let git discover a repository above tmp_path."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "flows" / "wf.py").write_text("wf = 1\n")
    git(root, "init", "-q")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "init")
    return root


@needs_git
def test_capture_in_a_git_repository(repo: Path) -> None:
    script = repo / "flows" / "wf.py"
    ref = WorkflowSnapshotRef.capture(script, workflow_id="abc123", workflow_name="demo")
    assert ref.git_commit == git(repo, "rev-parse", "HEAD")
    assert ref.git_dirty is False
    assert ref.source == str(script.resolve())
    assert ref.source_hash == hashlib.sha256(script.read_bytes()).hexdigest()
    assert (ref.workflow_id, ref.workflow_name, ref.version) == ("abc123", "demo", 1)


@needs_git
def test_uncommitted_edit_is_flagged_and_changes_the_hash(repo: Path) -> None:
    script = repo / "flows" / "wf.py"
    clean = WorkflowSnapshotRef.capture(str(script))
    script.write_text("wf = 2\n")
    dirty = WorkflowSnapshotRef.capture(str(script))
    assert dirty.git_commit == clean.git_commit
    assert dirty.git_dirty is True
    assert dirty.source_hash != clean.source_hash


@needs_git
def test_an_edited_module_beside_the_script_makes_the_checkout_dirty(repo: Path) -> None:
    helper = repo / "flows" / "helpers.py"
    helper.write_text("SCALE = 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "helper")
    script = repo / "flows" / "wf.py"
    assert WorkflowSnapshotRef.capture(script).git_dirty is False
    helper.write_text("SCALE = 2\n")  # the script imports it: the commit no longer reproduces
    assert WorkflowSnapshotRef.capture(script).git_dirty is True


@needs_git
def test_a_script_git_does_not_track_is_dirty_other_untracked_files_are_not(repo: Path) -> None:
    (repo / "flows" / "outputs.csv").write_text("1,2\n")  # untracked, not the script
    assert WorkflowSnapshotRef.capture(repo / "flows" / "wf.py").git_dirty is False
    new_script = repo / "flows" / "new.py"
    new_script.write_text("wf = 3\n")  # in no commit at all
    ref = WorkflowSnapshotRef.capture(new_script)
    assert ref.git_commit == git(repo, "rev-parse", "HEAD")
    assert ref.git_dirty is True
    assert git_checkout(repo) == (ref.git_commit, False)  # a directory: tracked files only
    assert git_checkout(repo / "flows" / "gone.py") == (ref.git_commit, None)


@needs_git
def test_a_script_name_is_never_read_as_a_pattern(repo: Path) -> None:
    (repo / "flows" / "wf[1].py").write_text("wf = 4\n")  # untracked; as a glob it names wf1.py
    (repo / "flows" / "wf1.py").write_text("wf = 1\n")
    git(repo, "add", "flows/wf1.py")
    git(repo, "commit", "-q", "-m", "wf1")
    assert WorkflowSnapshotRef.capture(repo / "flows" / "wf[1].py").git_dirty is True
    assert WorkflowSnapshotRef.capture(repo / "flows" / "wf1.py").git_dirty is False


def test_outside_a_repository_commit_is_none(tmp_path: Path) -> None:
    script = tmp_path / "wf.py"
    script.write_text("x = 1\n")
    ref = WorkflowSnapshotRef.capture(script)
    assert ref.git_commit is None and ref.git_dirty is None
    assert ref.source_hash == hashlib.sha256(b"x = 1\n").hexdigest()


def test_missing_git_never_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = tmp_path / "wf.py"
    script.write_text("x = 1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    ref = WorkflowSnapshotRef.capture(script)
    assert ref.git_commit is None
    assert ref.source_hash is not None


def test_no_source_and_unreadable_source(tmp_path: Path) -> None:
    empty = WorkflowSnapshotRef.capture(None, workflow_name="adhoc")
    assert empty.source is None and empty.source_hash is None and empty.git_commit is None
    assert empty.workflow_name == "adhoc"
    missing = WorkflowSnapshotRef.capture(tmp_path / "gone.py")
    assert missing.source == str((tmp_path / "gone.py").resolve())
    assert missing.source_hash is None


def test_payload_round_trip_is_plain_json(tmp_path: Path) -> None:
    script = tmp_path / "wf.py"
    script.write_text("x = 1\n")
    ref = WorkflowSnapshotRef.capture(script, workflow_id="id1")
    payload = ref.to_payload()
    assert json.loads(json.dumps(payload)) == payload
    assert payload["version"] == 1 and payload["workflow_id"] == "id1"
    assert WorkflowSnapshotRef.from_payload(payload) == ref


def test_from_payload_rejects_newer_versions_and_bad_fields() -> None:
    with pytest.raises(ValueError, match="version 2 is newer"):
        WorkflowSnapshotRef.from_payload({"version": 2})
    with pytest.raises(ValueError, match="field 'git_dirty'"):
        WorkflowSnapshotRef.from_payload({"git_dirty": "maybe"})
    with pytest.raises(ValueError, match="must be a JSON object, got list"):
        WorkflowSnapshotRef.from_payload([1])
    with pytest.raises(ValueError, match="'version' must be an integer"):
        WorkflowSnapshotRef.from_payload({"version": "1"})
    assert WorkflowSnapshotRef.from_payload({"unknown_extra": 1}).version == 1
