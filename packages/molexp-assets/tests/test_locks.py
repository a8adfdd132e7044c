"""Record locks: directory flocks on local filesystems, lock files elsewhere, both exclusive."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from filelock import Timeout
from molexp.assets import _locks
from molexp.assets._locks import directory_locking, lock_path_for, locked

_fork = multiprocessing.get_context("fork")


@pytest.fixture
def lock_files_everywhere(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Pretend every filesystem is a network one: records get lock files."""
    monkeypatch.setattr(_locks, "_filesystem_type", lambda st_dev, directory: "nfs4")
    monkeypatch.setattr(_locks, "_directory_locking", {})
    yield


def _hold_then_report(record: Path, started: Path, seconds: float) -> None:
    with locked(record):
        started.write_text(str(time.monotonic()))
        time.sleep(seconds)


def _try_lock(record: Path, timeout: float, outcome: Path) -> None:
    try:
        with locked(record, timeout=timeout):
            outcome.write_text("acquired")
    except Timeout:
        outcome.write_text("timed out")


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 10
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.005)


def test_the_test_filesystem_uses_directory_locks(tmp_path: Path) -> None:
    assert directory_locking(tmp_path.stat().st_dev, tmp_path)


def test_directory_lock_leaves_no_file(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    with locked(record), locked(record):
        pass
    assert list(tmp_path.iterdir()) == []


def test_lock_creates_the_missing_directory(tmp_path: Path) -> None:
    record = tmp_path / "a" / "b" / "run.json"
    with locked(record):
        assert record.parent.is_dir()


@pytest.mark.parametrize("mode", ["directory", "lock file"])
def test_a_held_lock_excludes_another_process_until_released(
    tmp_path: Path, mode: str, request: pytest.FixtureRequest
) -> None:
    if mode == "lock file":
        request.getfixturevalue("lock_files_everywhere")
    record = tmp_path / "run.json"
    started, outcome = tmp_path / "started", tmp_path / "outcome"
    holder = _fork.Process(target=_hold_then_report, args=(record, started, 0.5))
    holder.start()
    _wait_for(started)
    contender = _fork.Process(target=_try_lock, args=(record, 0.1, outcome))
    contender.start()
    contender.join(10)
    assert outcome.read_text() == "timed out"
    holder.join(10)
    outcome.unlink()
    contender = _fork.Process(target=_try_lock, args=(record, 5, outcome))
    contender.start()
    contender.join(10)
    assert outcome.read_text() == "acquired"


def test_records_of_one_directory_share_the_directory_lock(tmp_path: Path) -> None:
    outcome = tmp_path / "outcome"
    with locked(tmp_path / "a.json"):
        contender = _fork.Process(target=_try_lock, args=(tmp_path / "b.json", 0.1, outcome))
        contender.start()
        contender.join(10)
    assert outcome.read_text() == "timed out"


def test_lock_files_are_per_record_and_persist(tmp_path: Path, lock_files_everywhere: None) -> None:
    outcome = tmp_path / "outcome"
    with locked(tmp_path / "a.json"):
        contender = _fork.Process(target=_try_lock, args=(tmp_path / "b.json", 0.1, outcome))
        contender.start()
        contender.join(10)
    assert outcome.read_text() == "acquired"
    assert lock_path_for(tmp_path / "a.json").is_file()
    assert lock_path_for(tmp_path / "b.json").is_file()


def test_reentrant_within_a_thread_exclusive_across_threads(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    outcome: list[str] = []

    def contender() -> None:
        try:
            with locked(record, timeout=0.1):
                outcome.append("acquired")
        except Timeout:
            outcome.append("timed out")

    with locked(record), locked(tmp_path / "other.json"):
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    after = threading.Thread(target=contender)
    after.start()
    after.join()
    assert outcome == ["timed out", "acquired"]


def test_a_child_forked_while_the_lock_is_held_does_not_keep_it(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    outcome = tmp_path / "outcome"
    with locked(record):
        sleeper = _fork.Process(target=time.sleep, args=(2,))
        sleeper.start()
    try:
        contender = _fork.Process(target=_try_lock, args=(record, 0.5, outcome))
        contender.start()
        contender.join(10)
        assert outcome.read_text() == "acquired"
    finally:
        sleeper.kill()
        sleeper.join()


def test_a_child_forked_inside_the_lock_takes_it_afresh(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    outcome = tmp_path / "outcome"
    with locked(record):
        child = _fork.Process(target=_try_lock, args=(record, 0.1, outcome))
        child.start()
        child.join(10)
    assert outcome.read_text() == "timed out"


def test_waiters_are_released_in_time(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    started = tmp_path / "started"
    holder = _fork.Process(target=_hold_then_report, args=(record, started, 0.2))
    holder.start()
    _wait_for(started)
    began = time.monotonic()
    with locked(record, timeout=10):
        waited = time.monotonic() - began
    holder.join(10)
    assert waited < 2.0


def test_timeout_names_what_was_locked(tmp_path: Path) -> None:
    record = tmp_path / "run.json"
    started = tmp_path / "started"
    holder = _fork.Process(target=_hold_then_report, args=(record, started, 0.3))
    holder.start()
    _wait_for(started)
    with pytest.raises(Timeout, match=str(tmp_path)), locked(record, timeout=0):
        pass
    holder.join(10)


def test_a_lock_file_deleted_while_waited_on_is_locked_again(
    tmp_path: Path, lock_files_everywhere: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "run.json"
    lock_file = lock_path_for(record)
    real_flock_until = _locks._flock_until
    replaced: list[bool] = []

    def flock_then_replace(fd: int, target: Path, deadline: float | None) -> None:
        real_flock_until(fd, target, deadline)
        if not replaced:
            replaced.append(True)
            lock_file.unlink()
            lock_file.touch()

    monkeypatch.setattr(_locks, "_flock_until", flock_then_replace)
    with locked(record):
        held_inode = os.stat(lock_file).st_ino
        outcome = tmp_path / "outcome"
        contender = _fork.Process(target=_try_lock, args=(record, 0.1, outcome))
        contender.start()
        contender.join(10)
    assert replaced == [True]
    assert outcome.read_text() == "timed out"
    assert os.stat(lock_file).st_ino == held_inode


def test_mountinfo_decides_by_device_then_by_mount_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mountinfo = tmp_path / "mountinfo"
    mountinfo.write_text(
        "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
        "40 27 0:50 / /scratch rw - nfs4 server:/export rw\n"
        "41 27 0:51 / /with\\040space rw shared:1 - lustre mgs@tcp:/fs rw\n"
        "garbage line without separator\n"
    )
    monkeypatch.setattr(_locks, "_MOUNTINFO", mountinfo)
    assert _locks._filesystem_type(os.makedev(254, 0), Path("/anything")) == "ext4"
    assert _locks._filesystem_type(os.makedev(0, 50), Path("/x")) == "nfs4"
    unknown_device = os.makedev(0, 99)
    assert _locks._filesystem_type(unknown_device, Path("/with space/deep")) == "lustre"
    assert _locks._filesystem_type(unknown_device, Path("/scratch/a")) == "nfs4"
    assert _locks._filesystem_type(unknown_device, Path("/scratchy")) == "ext4"


def test_without_mountinfo_records_get_lock_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_locks, "_MOUNTINFO", tmp_path / "absent")
    monkeypatch.setattr(_locks, "_directory_locking", {})
    record = tmp_path / "run.json"
    with locked(record):
        pass
    assert lock_path_for(record).is_file()
