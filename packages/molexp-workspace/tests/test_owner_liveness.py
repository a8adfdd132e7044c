"""owner_is_alive: the pid on this host, the heartbeat's age elsewhere."""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from molexp.workspace import owner_is_alive
from molexp.workspace._records import OwnerInfo


def _owner(host: str, pid: int, heartbeat_age: float, now: datetime) -> OwnerInfo:
    beat = now - timedelta(seconds=heartbeat_age)
    return OwnerInfo(host=host, pid=pid, started_at=beat, heartbeat_at=beat)


def test_on_this_host_the_pid_decides_whatever_the_heartbeat() -> None:
    now = datetime.now(UTC)
    host = socket.gethostname()
    assert owner_is_alive(_owner(host, os.getpid(), 10_000, now), now=now)
    assert not owner_is_alive(_owner(host, 2**22 + 12345, 0, now), now=now)
    assert not owner_is_alive(None)


def test_on_another_host_the_heartbeat_age_decides() -> None:
    now = datetime.now(UTC)
    assert owner_is_alive(_owner("elsewhere", 1, 5, now), heartbeat_timeout=600, now=now)
    assert not owner_is_alive(_owner("elsewhere", 1, 900, now), heartbeat_timeout=600, now=now)
