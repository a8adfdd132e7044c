"""The experiment page's keys (parameter, result and config paths) after a change: computed in
the request while that is quick; once slow, the previous keys are answered while a background
pass recomputes them, and the answer is not kept. See ``molexp.server._cache.FieldPaths``.

None of these tests is timed: each checks who computes what, and what is answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from molexp.server import _cache
from molexp.server._cache import FieldPaths
from molexp.server._service import WorkspaceService
from molexp.workspace import Workspace
from server_helpers import Lab

GENEROUS = 30.0  # seconds: a deadlock shows as a timeout, a loaded machine never gets near it


def _wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GENEROUS
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _paths(name: str) -> dict[str, list[str]]:
    return {"params": [name], "results": [], "config": []}


def test_slow_paths_are_reused_while_recomputed_aside() -> None:
    now: dict[str, Any] = {"version": (1, 1, 1), "paths": _paths("a")}
    inline: list[object] = []
    aside: list[object] = []
    release = threading.Event()

    def compute(scope: object) -> dict[str, list[str]]:
        inline.append(scope)
        return dict(now["paths"])

    def compute_aside(scope: object) -> dict[str, list[str]]:
        aside.append(scope)
        assert release.wait(GENEROUS)
        return dict(now["paths"])

    paths = FieldPaths(compute, compute_aside, lambda: now["version"], sync_seconds=0.0)
    scope = ("p", "e")
    assert paths.get(scope, now["version"]) == (_paths("a"), True)  # none known: inline
    assert paths.get(scope, now["version"]) == (_paths("a"), True)  # unchanged: reused
    now.update(version=(1, 1, 2), paths=_paths("b"))
    assert paths.get(scope, now["version"]) == (_paths("a"), False)  # stale, recomputed aside
    assert paths.get(scope, now["version"]) == (_paths("a"), False)  # one pass at a time
    assert len(inline) == 1
    release.set()
    _wait_until(lambda: not paths.refreshing(), "the background pass never ended")
    assert aside == [scope]
    assert paths.get(scope, now["version"]) == (_paths("b"), True)


def test_quick_paths_are_computed_in_the_request() -> None:
    now: dict[str, Any] = {"version": (1, 1, 1), "paths": _paths("a")}
    paths = FieldPaths(
        lambda scope: dict(now["paths"]),
        lambda scope: pytest.fail("computed aside"),
        lambda: now["version"],
        sync_seconds=GENEROUS,
    )
    assert paths.get(("p", "e"), now["version"]) == (_paths("a"), True)
    now.update(version=(1, 1, 2), paths=_paths("b"))
    assert paths.get(("p", "e"), now["version"]) == (_paths("b"), True)


def test_a_new_key_shows_at_once_in_a_small_experiment(lab: Lab) -> None:
    service = WorkspaceService(lab.ws)
    before = service.experiment("qm9", "baseline")
    assert "extra" not in before.param_keys
    lab.ws.project("qm9").experiment("baseline").Run(parameters={"extra": 1}, id="new")
    info = service.experiment("qm9", "baseline")
    assert "extra" in info.param_keys
    assert info.run_count == before.run_count + 1


def test_after_a_change_slow_keys_are_not_computed_in_the_request(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "FIELD_PATHS_SYNC_SECONDS", 0.0)  # every computation is "slow"
    service = WorkspaceService(lab.ws)
    before = service.experiment("qm9", "baseline")
    assert "extra" not in before.param_keys
    calls: list[bool] = []
    run_field_paths = Workspace.run_field_paths

    def spy(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        calls.append(self is lab.ws)
        return run_field_paths(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "run_field_paths", spy)
    experiment = lab.ws.project("qm9").experiment("baseline")
    experiment.Run(parameters={"warm": 1}, id="warm")  # a first change: the handle aside opens
    service.experiment("qm9", "baseline")
    _wait_until(lambda: not service._field_paths.refreshing(), "no background pass ended")
    assert "warm" in service.experiment("qm9", "baseline").param_keys
    calls.clear()
    before = service.experiment("qm9", "baseline")
    experiment.Run(parameters={"extra": 1}, id="new")
    info = service.experiment("qm9", "baseline")
    assert info.run_count == before.run_count + 1  # the counts are exact
    assert "extra" not in info.param_keys  # the keys from before the change, meanwhile
    assert True not in calls  # the keys were not computed in the request
    _wait_until(lambda: not service._field_paths.refreshing(), "no background pass ended")
    assert calls == [False]  # but aside, on a handle of its own
    assert (
        "extra" in service.experiment("qm9", "baseline").param_keys
    )  # the stale answer was not kept


def test_a_background_pass_does_not_start_another_by_itself(
    lab: Lab, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_cache, "FIELD_PATHS_SYNC_SECONDS", 0.0)  # every computation is "slow"
    service = WorkspaceService(lab.ws)
    service.experiment("qm9", "baseline")
    aside: list[bool] = []
    run_field_paths = Workspace.run_field_paths

    def spy(self: Workspace, *args: Any, **kwargs: Any) -> Any:
        if self is not lab.ws:
            aside.append(True)
        return run_field_paths(self, *args, **kwargs)

    monkeypatch.setattr(Workspace, "run_field_paths", spy)
    lab.ws.project("qm9").experiment("baseline").Run(parameters={"warm": 1}, id="warm")
    # The first pass opens its own handle, whose first catch-up writes the index file.
    service.experiment("qm9", "baseline")
    _wait_until(lambda: not service._field_paths.refreshing(), "no background pass ended")
    for _ in range(3):  # nothing changed since that pass: its answer stands
        assert "warm" in service.experiment("qm9", "baseline").param_keys
        _wait_until(lambda: not service._field_paths.refreshing(), "no background pass ended")
    assert aside == [True]
