"""Small stand-ins for the workspace's Run / RunContext, used by the workflow tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any


class FakeLog:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def append(self, line: str) -> None:
        self.lines.append(line)


class FakeArtifacts:
    def __init__(self) -> None:
        self.saved: dict[str, Any] = {}

    def save(self, name: str, data: Any) -> str:
        self.saved[name] = data
        return f"artifacts/{name}"


class FakeWorkspace:
    def __init__(self, root: Path) -> None:
        self.root = root


class FakeRunContext:
    """Records every call the workflow layer makes on a run context."""

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        root: Path = Path("/nonexistent/workspace"),
    ) -> None:
        self.params: Mapping[str, Any] = dict(params or {})
        self.config: Mapping[str, Any] = dict(config or {})
        self.run_dir = root / "run"
        self.execution_id = "exec0001"
        self.execution_dir = self.run_dir / "execution" / self.execution_id
        self.artifact = FakeArtifacts()
        self.workspace = FakeWorkspace(root)
        self.results: dict[str, Any] = {}
        self.logs: dict[str, FakeLog] = {}
        self.assets: dict[str, Any] = {}
        self.checkpoints: list[tuple[str, Any]] = []
        self.execution_states: list[Mapping[str, Any]] = []
        self.failures: list[tuple[BaseException | str, str | None]] = []
        self.metrics: list[tuple[str, float, int | None, Any]] = []

    def set_result(self, key: str, value: Any) -> None:
        self.results[key] = value

    def get_result(self, key: str, default: Any = None) -> Any:
        return self.results.get(key, default)

    def log_metric(
        self, name: str, value: float, step: int | None = None, timestamp: Any = None
    ) -> None:
        self.metrics.append((name, value, step, timestamp))

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, timestamp: Any = None
    ) -> None:
        for name, value in values.items():
            self.log_metric(name, value, step, timestamp)

    def flush_metrics(self) -> None:
        self.metrics.append(("<flush>", 0.0, None, None))

    def log(self, name: str) -> FakeLog:
        return self.logs.setdefault(name, FakeLog())

    def find_asset(self, name: str) -> Any:
        return self.assets.get(name)

    def checkpoint(self, name: str, data: Any = None) -> str:
        self.checkpoints.append((name, data))
        return name

    def record_execution_state(self, state: Mapping[str, Any]) -> None:
        self.execution_states.append(state)

    def mark_failed(self, error: BaseException | str, *, task_name: str | None = None) -> None:
        self.failures.append((error, task_name))


class FakeRun:
    """Mimics ``Run.start()``: a context manager that ends the run succeeded or failed."""

    def __init__(self, context: FakeRunContext | None = None, run_id: str = "run-1") -> None:
        self.id = run_id
        self.context = context or FakeRunContext()
        self.status = "pending"
        self.events: list[str] = []
        self.workflow_payloads: list[Mapping[str, Any]] = []
        self.profile_configs: list[Any] = []
        self.exit_exception: BaseException | None = None
        self.error_task_name: str | None = None

    @contextlib.contextmanager
    def start(self, profile_config: Any = None) -> Iterator[FakeRunContext]:
        self.profile_configs.append(profile_config)
        self.events.append("enter")
        self.status = "running"
        try:
            yield self.context
        except BaseException as exc:
            self.exit_exception = exc
            self.error_task_name = getattr(exc, "task_name", None)
            self.status = "failed"
            self.events.append("exit-failed")
            raise
        self.status = "failed" if self.context.failures else "succeeded"
        self.events.append("exit")

    def set_workflow(self, payload: Mapping[str, Any]) -> None:
        self.events.append("set_workflow")
        self.workflow_payloads.append(dict(payload))
