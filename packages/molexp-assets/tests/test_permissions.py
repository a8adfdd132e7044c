"""Shared lab workspaces: every file and directory follows the umask and the setgid group.

The modes are checked under two umasks (0002, a lab's; 0022, a private user's), so a
hard-coded mode in either direction fails. The fixture sets the umask and restores it.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from molexp.assets import (
    SHARED_WORKSPACE_HELP,
    ArtifactStore,
    AssetScope,
    Catalog,
    CheckpointStore,
    DataAssetLibrary,
    LogHandle,
    Producer,
    SharedPermissionError,
    _locks,
    _permissions,
    atomic_write_bytes,
    atomic_write_text,
    explain_permission_error,
    locked,
    process_umask,
)
from molexp.assets._locks import lock_path_for
from molexp.assets._payload import staging_dir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


@pytest.fixture(params=[0o002, 0o022], ids=["umask0002", "umask0022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


@pytest.fixture
def lab(root: Path) -> Path:
    """A setgid directory inside the workspace root, as a lab's shared directory is."""
    path = root / "projects"
    path.mkdir()
    path.chmod(0o2775)
    return path


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _file(umask: int, *, executable: bool = False) -> int:
    return (0o777 if executable else 0o666) & ~umask


def _dir(umask: int) -> int:
    return (0o777 & ~umask) | stat.S_ISGID  # the setgid bit is inherited, never cleared


def _tree_modes(top: Path) -> dict[str, int]:
    modes = {".": _mode(top)}
    for path in sorted(top.rglob("*")):
        if not path.is_symlink():
            modes[str(path.relative_to(top))] = _mode(path)
    return modes


def test_process_umask_reads_without_changing_it(umask: int) -> None:
    assert process_umask() == umask
    assert process_umask() == umask
    assert os.umask(umask) == umask


def test_process_umask_in_a_fresh_process() -> None:
    code = "from molexp.assets import process_umask; print(oct(process_umask()))"
    out = subprocess.run(
        [sys.executable, "-c", f"import os; os.umask(0o027); {code}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "0o27"


def test_record_writes_follow_the_umask(umask: int, lab: Path) -> None:
    record = lab / "p" / "project.json"
    atomic_write_text(record, "{}\n")
    assert _mode(record) == _file(umask)
    assert _mode(record.parent) == _dir(umask)
    atomic_write_text(record, "{ }\n")  # a replacement gets the same mode
    assert _mode(record) == _file(umask)
    script = lab / "p" / "job.sh"
    atomic_write_bytes(script, b"#!/bin/sh\n", executable=True)
    assert _mode(script) == _file(umask, executable=True)


def test_record_writes_keep_the_group_of_a_setgid_directory(umask: int, lab: Path) -> None:
    group = lab.stat().st_gid
    record = lab / "a" / "b" / "run.json"
    atomic_write_text(record, "{}\n")
    assert record.stat().st_gid == group
    assert lab.stat().st_mode & stat.S_ISGID
    assert all(path.stat().st_mode & stat.S_ISGID for path in (lab / "a", lab / "a" / "b"))


def test_lock_files_follow_the_umask(
    umask: int, lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_locks, "_filesystem_type", lambda st_dev, directory: "nfs4")
    monkeypatch.setattr(_locks, "_directory_locking", {})
    record = lab / "x" / "experiment.json"
    with locked(record):
        pass
    assert _mode(lock_path_for(record)) == _file(umask)
    assert _mode(record.parent) == _dir(umask)


def test_a_read_only_lock_file_still_locks_on_a_local_filesystem(
    lab: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user's lock file without group write is opened read-only: flock needs no write."""
    monkeypatch.setattr(_locks, "_filesystem_type", lambda st_dev, directory: "fuse.sshfs")
    monkeypatch.setattr(_locks, "_directory_locking", {})
    record = lab / "experiment.json"
    lock_file = lock_path_for(record)
    lock_file.touch()
    lock_file.chmod(0o444)
    opened: list[int] = []
    real_open = os.open

    def refusing_write(path: object, flags: int, *args: int, **kwargs: object) -> int:
        if str(path) == str(lock_file) and flags & os.O_RDWR:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        opened.append(flags)
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_write)
    with locked(record):
        pass
    assert any(flags & os.O_ACCMODE == os.O_RDONLY for flags in opened)


def test_logs_follow_the_umask(
    umask: int, lab: Path, catalog: Catalog, run_scope: AssetScope, producer: Producer
) -> None:
    log = LogHandle(catalog, run_scope, lab / "run-r1", "train", producer)
    log.append("hello")
    log.close()
    assert _mode(log.path) == _file(umask)
    assert _mode(log.path.parent) == _dir(umask)


def test_artifacts_follow_the_umask_not_the_source(
    umask: int,
    lab: Path,
    tmp_path: Path,
    catalog: Catalog,
    run_scope: AssetScope,
    producer: Producer,
) -> None:
    store = ArtifactStore(catalog, run_scope, lab / "run-r1", producer)
    store.save("m.json", {"a": 1})
    private = tmp_path / "private.bin"
    private.write_bytes(b"x")
    private.chmod(0o600)
    store.save("copy.bin", private)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "data.txt").write_text("d")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o700)
    (tree / "sub" / "data.txt").chmod(0o600)
    (tree / "sub").chmod(0o700)
    tree.chmod(0o700)
    store.save("tree", tree)
    directory = lab / "run-r1" / "artifacts"
    assert _mode(directory / "m.json") == _file(umask)
    assert _mode(directory / "copy.bin") == _file(umask)
    assert _tree_modes(directory / "tree") == {
        ".": _dir(umask),
        "run.sh": _file(umask, executable=True),
        "sub": _dir(umask),
        "sub/data.txt": _file(umask),
    }
    assert not [path for path in directory.iterdir() if path.name.startswith(".")]


def test_checkpoints_follow_the_umask(
    umask: int, lab: Path, catalog: Catalog, run_scope: AssetScope, producer: Producer
) -> None:
    store = CheckpointStore(catalog, run_scope, lab / "run-r1", producer)
    store.save("epoch-1", {"w": [1]})
    store.save("marker")
    files = sorted((lab / "run-r1" / ".ckpt").iterdir())
    assert files
    assert {_mode(path) for path in files} == {_file(umask)}


@pytest.mark.parametrize("action", ["copy", "move", "symlink", "hardlink"])
def test_data_asset_directories_follow_the_umask(
    umask: int, lab: Path, tmp_path: Path, catalog: Catalog, action: str
) -> None:
    """The asset directory is the renamed staging directory: it must not keep mkdtemp's 0700."""
    source = tmp_path / "dataset"
    source.mkdir()
    (source / "rows.csv").write_text("a,b\n")
    source.chmod(0o700)
    library = DataAssetLibrary(catalog, AssetScope.for_project("lab", "p1"), lab / "p1")
    asset = library.import_asset("qm9", source, action=action)
    asset_dir = lab / "p1" / "data_assets" / asset.id
    assert _mode(asset_dir) == _dir(umask)
    assert _mode(asset_dir / "payload") == _dir(umask)
    if action == "copy":
        assert _tree_modes(asset_dir / "payload" / "dataset") == {
            ".": _dir(umask),
            "rows.csv": _file(umask),
        }


def test_staging_directories_follow_the_umask(umask: int, lab: Path) -> None:
    staged = staging_dir(lab / "artifact")
    assert _mode(staged) == _dir(umask)


# -- permission errors that name the path and the fix ----------------------------------


def _refused(monkeypatch: pytest.MonkeyPatch, *blocked: Path) -> None:
    """Pretend this process may not write ``blocked`` (the suite may run as root)."""
    monkeypatch.setattr(_permissions, "_writable", lambda path: path not in blocked)


def test_a_directory_without_group_write_is_named_with_the_fix(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = root / "runs"
    runs.mkdir()
    runs.chmod(0o755)
    _refused(monkeypatch, runs)
    error = explain_permission_error(
        PermissionError(errno.EACCES, "Permission denied", str(runs / "run-x"))
    )
    assert isinstance(error, PermissionError)
    assert error.path == runs
    message = str(error)
    assert "\n" not in message
    assert f"cannot write in directory {runs}: owned by " in message
    assert "mode 0755 (not group-writable)" in message
    assert "umask 0002" in message
    assert f"chmod -R g+rwX {runs}" in message
    assert SHARED_WORKSPACE_HELP in message


def test_a_file_of_another_group_names_the_group(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = root / "train.log"
    log.write_text("")
    log.chmod(0o664)
    _refused(monkeypatch, log)
    monkeypatch.setattr(_permissions, "_in_group", lambda gid: False)
    message = str(explain_permission_error(PermissionError(errno.EACCES, "denied", str(log))))
    assert f"cannot write file {log}: owned by " in message
    assert "is not in group" in message
    assert SHARED_WORKSPACE_HELP in message


def test_atomic_writes_raise_the_explained_error(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def refusing(path: object, flags: int, *args: int, **kwargs: object) -> int:
        if str(path).endswith(".tmp"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    directory = root / "exp"
    directory.mkdir()
    directory.chmod(0o755)
    _refused(monkeypatch, directory)
    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(SharedPermissionError, match=r"cannot write in directory .*umask 0002"):
        atomic_write_text(directory / "run.json", "{}")
    assert [path.name for path in directory.iterdir()] == []
