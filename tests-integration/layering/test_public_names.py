"""Every public name says where it lives: no ``molexp.<layer>._private`` in reprs and tracebacks."""

from __future__ import annotations

import importlib
import pickle

import pytest

LAYERS = ["molexp.workflow", "molexp.assets", "molexp.workspace", "molexp.cli", "molexp.server"]


@pytest.mark.parametrize("package", LAYERS)
def test_public_classes_and_functions_name_their_public_module(package: str) -> None:
    module = importlib.import_module(package)
    private = []
    for name in module.__all__:
        value = getattr(module, name)
        where = getattr(value, "__module__", None)
        named = isinstance(value, type) or hasattr(value, "__code__")
        if named and isinstance(where, str) and "._" in where:
            private.append(f"{name}: {where}")
    assert private == []


def test_public_objects_still_pickle_by_their_public_path() -> None:
    from molexp.workflow import TaskStatus
    from molexp.workspace import ProfileConfig, RunStatus

    assert pickle.loads(pickle.dumps(RunStatus.running)) is RunStatus.running
    assert pickle.loads(pickle.dumps(TaskStatus.SUCCEEDED)) is TaskStatus.SUCCEEDED
    profile = ProfileConfig(name="fast", config={"n": 1})
    assert pickle.loads(pickle.dumps(profile)) == profile
    assert repr(type(profile)) == "<class 'molexp.workspace.ProfileConfig'>"
