"""DaskRuntime without a cluster: lazy import, the missing extra, arguments, profile selection,
and the worker-side helpers called in-process."""

from __future__ import annotations

import asyncio
import importlib.util
import pickle
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workflow import NoRunContextError, TaskContext, runtime_from_config
from molexp.workflow._dask.worker import (
    BodyKind,
    TaskOutcome,
    WorkerCall,
    body_of,
    encode_call,
    portable_error,
    run_remote_task,
)

needs_distributed = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="needs the molexp-workflow[dask] extra",
)


def test_importing_the_workflow_layer_does_not_import_distributed() -> None:
    code = (
        "import sys, molexp.workflow as w\n"
        "w.DaskRuntime, w.runtime_from_config\n"
        "assert 'distributed' not in sys.modules, 'distributed imported'\n"
        "assert w.runtime_from_config({}) is None\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_missing_distributed_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from molexp.workflow import DaskRuntime

    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` now fails
    with pytest.raises(ImportError, match=r"pip install 'molexp-workflow\[dask\]'") as info:
        DaskRuntime()
    assert isinstance(info.value.__cause__, ImportError)
    with pytest.raises(ImportError, match=r"molexp-workflow\[dask\]"):
        runtime_from_config({"runtime": "dask"})


@pytest.mark.parametrize("config", [{}, {"runtime": "default"}, {"address": "tcp://x:1"}])
def test_profiles_without_the_dask_runtime_select_the_default(config: dict[str, Any]) -> None:
    assert runtime_from_config(config) is None


def test_an_unknown_runtime_name_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match="runtime = 'dsak' is not a known runtime"):
        runtime_from_config({"runtime": "dsak"})
    with pytest.raises(TypeError, match="config must be a mapping, got list"):
        runtime_from_config([("runtime", "dask")])  # type: ignore[arg-type]


@needs_distributed
def test_a_dask_profile_builds_a_dask_runtime_without_connecting() -> None:
    from molexp.workflow import DaskRuntime

    runtime = runtime_from_config({"runtime": "dask", "address": "tcp://scheduler:8786"})
    assert isinstance(runtime, DaskRuntime)
    assert runtime.address == "tcp://scheduler:8786"
    assert repr(runtime) == "DaskRuntime(address='tcp://scheduler:8786', not started)"
    local = runtime_from_config(
        {"runtime": "dask", "n_workers": 3, "processes": False, "threads_per_worker": 2}
    )
    assert isinstance(local, DaskRuntime)
    assert (local.address, local.n_workers, local.processes, local.threads_per_worker) == (
        None,
        3,
        False,
        2,
    )
    with pytest.raises(ValueError, match="n_workers must be a positive int, got 0"):
        runtime_from_config({"runtime": "dask", "n_workers": 0})


@needs_distributed
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"address": 8786}, TypeError, "address must be a scheduler address string"),
        ({"address": "tcp://a:1", "client": object()}, ValueError, "either address= or client="),
        ({"client": object()}, TypeError, "client must be a distributed.Client, got object"),
        ({"address": "tcp://a:1", "n_workers": 2}, ValueError, "n_workers only applies"),
        ({"n_workers": True}, ValueError, "n_workers must be a positive int"),
        ({"processes": "yes"}, TypeError, "processes must be True or False"),
        ({"threads_per_worker": 0}, ValueError, "threads_per_worker must be a positive int"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    from molexp.workflow import DaskRuntime

    with pytest.raises(error, match=message):
        DaskRuntime(**kwargs)


@needs_distributed
def test_a_bad_scheduler_address_is_a_connection_error_naming_it() -> None:
    import dask
    from molexp.workflow import DaskRuntime, workflow

    wf = workflow(name="nowhere")
    wf.task(name="t")(lambda ctx: 1)
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        runtime = DaskRuntime("tcp://127.0.0.1:9")  # nothing listens on the discard port
        with pytest.raises(ConnectionError, match="scheduler at 'tcp://127.0.0.1:9'"):
            asyncio.run(wf.build().execute(runtime=runtime))


# -- what runs in the workers, called in-process ------------------------------------------------


def _call(body: Any, *, dep_names: tuple[str, ...] = (), inputs: Any = None) -> bytes:
    kind, code = body_of(body)
    return encode_call(
        WorkerCall(
            task_name="probe",
            workflow_name="wf",
            workflow_id="0123456789abcdef",
            kind=kind,
            body=code,
            dep_names=dep_names,
            config={"k": 1},
            inputs=inputs,
        )
    )


def test_body_kinds_match_how_the_runners_call_them() -> None:
    async def coroutine(ctx: TaskContext) -> int:
        return 1

    async def agen(ctx: TaskContext) -> AsyncIterator[int]:
        yield 1

    def gen(ctx: TaskContext) -> Iterator[int]:
        yield 1

    class AsyncCallable:
        async def __call__(self, ctx: TaskContext) -> int:
            return 1

    assert body_of(coroutine)[0] is BodyKind.ASYNC
    assert body_of(AsyncCallable())[0] is BodyKind.ASYNC
    assert body_of(agen)[0] is BodyKind.ASYNC_STREAM
    assert body_of(gen)[0] is BodyKind.SYNC_STREAM
    assert body_of(lambda ctx: 1)[0] is BodyKind.SYNC


@needs_distributed
def test_a_remote_task_gets_its_inputs_and_returns_a_timed_outcome() -> None:
    def several(ctx: TaskContext) -> Any:
        return {"inputs": dict(ctx.inputs), "config": dict(ctx.config), "id": ctx.workflow_id}

    left, right = TaskOutcome.of("left", [1]), TaskOutcome.of("right", "r")
    outcome = run_remote_task(_call(several, dep_names=("left", "right")), left, right)
    assert outcome.error is None
    assert outcome.output() == {
        "inputs": {"left": [1], "right": "r"},
        "config": {"k": 1},
        "id": "0123456789abcdef",
    }
    assert 0 < outcome.started_at <= outcome.finished_at
    root = run_remote_task(_call(lambda ctx: ctx.inputs * 2, inputs=21))
    assert root.output() == 42


@needs_distributed
def test_run_backed_helpers_in_a_worker_explain_why_they_fail() -> None:
    def record(ctx: TaskContext) -> None:
        ctx.set_result("x", 1)

    outcome = run_remote_task(_call(record))
    assert outcome.payload is None and outcome.error is not None
    exception = outcome.error.exception
    assert isinstance(exception, NoRunContextError)
    assert (exception.task_name, exception.helper) == ("probe", "set_result")
    assert "Dask runtime runs tasks remotely" in outcome.error.message
    copy = pickle.loads(pickle.dumps(exception))
    assert str(copy) == str(exception) and copy.helper == "set_result"


@needs_distributed
def test_an_unpicklable_exception_keeps_type_message_and_traceback() -> None:
    class Unpicklable(Exception):
        def __init__(self, lock: Any) -> None:
            super().__init__("holds a lock")
            self.lock = lock

    def fail() -> None:
        raise Unpicklable(threading.Lock())

    with pytest.raises(Unpicklable) as info:
        fail()
    error = portable_error(info.value)
    assert (error.type, error.message, error.exception) == (
        "test_an_unpicklable_exception_keeps_type_message_and_traceback.<locals>.Unpicklable",
        "holds a lock",
        None,
    )
    assert "raise Unpicklable" in error.traceback
    assert isinstance(portable_error(ValueError("v")).exception, ValueError)


@needs_distributed
def test_an_unpicklable_output_fails_with_the_task_name() -> None:
    with pytest.raises(TypeError, match="output of task 'probe' \\(lock\\) cannot be pickled"):
        TaskOutcome.of("probe", threading.Lock())


@needs_distributed
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_outputs_round_trip_through_an_outcome(value: Any) -> None:
    assert TaskOutcome.of("t", value).output() == value
