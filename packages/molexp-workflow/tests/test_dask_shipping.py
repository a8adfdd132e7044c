"""Code shipping and the worker-side run context, without a cluster: the user's modules pickled
by value, a missing module named with the worker, a run opener's report riding on the outcome."""

from __future__ import annotations

import importlib
import importlib.util
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from molexp.workflow import TaskContext
from molexp.workflow._dask.worker import WorkerCall, body_of, encode_call, run_remote_task

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="needs the molexp-workflow[dask] extra",
)

_LOAD = "import pickle, sys; f = pickle.loads(sys.stdin.buffer.read()); print(f(20))"


@pytest.fixture
def user_module(tmp_path: Path) -> Iterator[Any]:
    """A first-party module importable only from this process's sys.path (like helpers.py)."""
    name = f"molexp_test_helpers_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            OFFSET = 1

            def double(x):
                return 2 * x

            def task(x):
                return double(x) + OFFSET
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


def _in_other_process(data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", _LOAD], input=data, capture_output=True, timeout=60, check=False
    )


def test_first_party_modules_travel_by_value(user_module: Any) -> None:
    import cloudpickle
    from molexp.workflow._dask.shipping import ship_first_party_modules

    unshipped = _in_other_process(cloudpickle.dumps(user_module.task))
    assert b"ModuleNotFoundError" in unshipped.stderr  # by reference, as before
    assert user_module.__name__ in ship_first_party_modules()
    assert "json" not in ship_first_party_modules()  # stdlib and already-seen: not again
    shipped = _in_other_process(cloudpickle.dumps(user_module.task))
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.strip() == b"41"


def test_standard_third_party_and_molexp_modules_stay_by_reference() -> None:
    import json

    import cloudpickle
    import molexp.workflow
    from molexp.workflow._dask.shipping import _shippable

    for module in (json, cloudpickle, molexp.workflow):
        assert not _shippable(module.__name__, module)


def test_a_module_missing_on_the_worker_is_named_with_the_worker() -> None:
    # A call whose pickle refers to a module the "worker" (this process) cannot import.
    encoded = _call(lambda ctx: 1).replace(
        b"molexp.workflow._dask.worker", b"molexp_absent_package_xyz_ab"
    )
    outcome = run_remote_task(encoded)
    assert outcome.error is not None and outcome.payload is None
    message = outcome.error.message
    assert "molexp_absent_package_xyz_ab" in message and "cannot import module" in message
    import socket

    assert socket.gethostname() in message
    assert "install it in the workers' environment" in message


# -- the run context on a worker ------------------------------------------------------------


@dataclass
class _KeepingContext:
    """A stand-in for the workspace's worker run context (picklable through its opener)."""

    task_name: str
    results: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def set_result(self, key: str, value: Any) -> None:
        self.results[key] = value

    def log(self, name: str) -> Any:
        lines = self.lines

        class _Log:
            def append(self, line: str) -> None:
                lines.append(f"{name}: {line}")

        return _Log()

    def close(self) -> Any:
        return {"task": self.task_name, "results": self.results, "lines": self.lines}


@dataclass(frozen=True)
class _Opener:
    def open(self, task_name: str) -> Any:
        return _KeepingContext(task_name)


def _call(body: Any, *, opener: Any = None) -> bytes:
    kind, code = body_of(body)
    return encode_call(
        WorkerCall(
            task_name="probe",
            workflow_name="wf",
            workflow_id="0123456789abcdef",
            kind=kind,
            body=code,
            dep_names=(),
            config={},
            run_opener=opener,
        )
    )


def test_a_task_with_a_run_opener_uses_the_run_context_and_reports_back() -> None:
    def body(ctx: TaskContext) -> int:
        ctx.set_result("loss", 0.5)
        ctx.log("train").append("step 1")
        return 7

    outcome = run_remote_task(_call(body, opener=_Opener()))
    assert outcome.error is None and outcome.output() == 7
    assert outcome.report == {"task": "probe", "results": {"loss": 0.5}, "lines": ["train: step 1"]}
    assert pickle.loads(pickle.dumps(outcome)).report == outcome.report


def test_a_failing_task_still_reports_what_it_recorded() -> None:
    def body(ctx: TaskContext) -> None:
        ctx.set_result("partial", 1)
        raise ValueError("boom")

    outcome = run_remote_task(_call(body, opener=_Opener()))
    assert outcome.error is not None and "boom" in outcome.error.message
    assert outcome.report["results"] == {"partial": 1}
