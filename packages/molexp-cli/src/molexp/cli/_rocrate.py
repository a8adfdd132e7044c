"""Building a Workflow Run RO-Crate from workspace runs (``molexp export --format ro-crate``).

The crate follows the Workflow Run Crate and Process Run Crate profiles (0.5) on RO-Crate 1.1 and
Workflow RO-Crate 1.0; the model is the ``rocrate`` library's (the ``molexp-cli[export]`` extra).
What a crate holds, for every exported run:

* the workflow source (the script recorded on the run, else the experiment's
  ``workflow_source``) once per distinct content, as a ``ComputationalWorkflow``; the one most
  runs used is the crate's ``mainEntity``;
* ``runs/<project>/<experiment>/<run>/``: the record itself (``run.json``, plus the
  experiment's ``experiment.json``), the profile config (``config.json``), every metric series
  (``metrics/<name>.csv``) and, per attempt (``attempt-<n>/``), the artifacts it saved, its
  logs, its execution state (per-task status and code snapshot keys) and its traceback;
* one ``CreateAction`` per attempt: ``instrument`` the workflow, ``object`` the parameters
  (``PropertyValue``) and config file, ``result`` the artifacts, results and metric summaries
  it produced, ``startTime``/``endTime``, ``actionStatus`` (and ``error``), ``agent`` (the
  project owner, when recorded), ``location`` (the host, with the environment captured for the
  attempt as ``additionalProperty``), ``environment`` (the allow-listed variables);
* the catalog's lineage: assets a run used (data assets, other runs' artifacts) are ``object``
  of the attempt that used them, assets it produced are ``result``.

Every file carries ``sha256`` and ``contentSize`` of the bytes written into the crate. Names
from the workspace (projects, experiments, runs, artifacts, logs, metrics) become one path
component each, cleaned of anything but letters, digits and ``-_.+@=``, so none can leave its
directory.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from molexp.workspace.layout import EXPERIMENT_FILE

from ._errors import CliError

if TYPE_CHECKING:
    from molexp.assets import Asset
    from molexp.workspace import Attempt, Run

__all__ = [
    "PROCESS_RUN_CRATE",
    "WORKFLOW_RO_CRATE",
    "WORKFLOW_RUN_CRATE",
    "ExportSummary",
    "write_crate",
]

PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
WORKFLOW_RO_CRATE = "https://w3id.org/workflowhub/workflow-ro-crate/1.0"
WORKFLOW_RUN_CONTEXT = "https://w3id.org/ro/terms/workflow-run/context"
JSON_VALUE = "application/json"
"""``additionalType`` of a ``PropertyValue`` whose ``value`` is JSON text (lists, objects, null)."""
INSTALL_HINT = "pip install 'molexp-cli[export]'"

_STATUS = {
    "succeeded": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
    "cancelled": "http://schema.org/FailedActionStatus",
    "running": "http://schema.org/ActiveActionStatus",
    "pending": "http://schema.org/PotentialActionStatus",
    "queued": "http://schema.org/PotentialActionStatus",
}
_SAFE = frozenset("-_.+@=")
_COMPONENT_MAX = 120


@dataclass
class ExportSummary:
    """What ``write_crate`` wrote."""

    output: Path
    layout: str
    """``zip`` or ``directory``."""
    runs: list[str] = field(default_factory=list)
    """``project/experiment/run`` of every exported run."""
    attempts: int = 0
    files: int = 0
    bytes: int = 0
    workflows: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "ro-crate",
            "output": str(self.output),
            "layout": self.layout,
            "conforms_to": [PROCESS_RUN_CRATE, WORKFLOW_RUN_CRATE, WORKFLOW_RO_CRATE],
            "runs": list(self.runs),
            "attempts": self.attempts,
            "files": self.files,
            "bytes": self.bytes,
            "workflows": self.workflows,
            "notes": list(self.notes),
        }


def component(text: object) -> str:
    """``text`` as one safe path component: letters, digits and ``-_.+@=`` kept, anything else
    ``_``, no leading dot (so never ``.``, ``..`` or hidden), at most 120 characters."""
    cleaned = "".join(c if (c.isascii() and c.isalnum()) or c in _SAFE else "_" for c in str(text))
    cleaned = cleaned.lstrip(".")[:_COMPONENT_MAX]
    return cleaned or "_"


def _fragment(*parts: object) -> str:
    """A local identifier ``#a/b/c`` with every part percent-encoded."""
    return "#" + "/".join(quote(str(part), safe="") for part in parts)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _property_value(identifier: str, name: str, value: Any, kind: str) -> dict[str, Any]:
    """A ``PropertyValue``: scalars as they are, anything else as JSON text."""
    props: dict[str, Any] = {"@type": "PropertyValue", "name": name, "propertyID": kind}
    if isinstance(value, bool | int | float | str):
        props["value"] = value
    else:
        props["value"] = json.dumps(value, sort_keys=True)
        props["additionalType"] = JSON_VALUE
    props["@id"] = identifier
    return props


def _additional_type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Integer"
    if isinstance(value, float):
        return "Float"
    if isinstance(value, str):
        return "Text"
    return "PropertyValue"


def _import_rocrate() -> tuple[Any, Any, Any]:
    try:
        from rocrate.model.computerlanguage import (  # type: ignore[import-untyped]
            ComputerLanguage,
        )
        from rocrate.model.contextentity import ContextEntity  # type: ignore[import-untyped]
        from rocrate.rocrate import ROCrate  # type: ignore[import-untyped]
    except ImportError:
        raise CliError(
            f"RO-Crate export needs the rocrate library, which is not installed: {INSTALL_HINT} "
            "(or pip install rocrate)"
        ) from None
    return ROCrate, ContextEntity, ComputerLanguage


class _Staging:
    """Files copied into the directory the crate is built from, hashed while copied."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._taken: set[str] = set()

    def unique(self, path: PurePosixPath) -> PurePosixPath:
        """``path``, or ``stem-2.suffix``, ... when cleaning made two names equal."""
        candidate, counter = path, 1
        while candidate.as_posix() in self._taken:
            counter += 1
            candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
        self._taken.add(candidate.as_posix())
        return candidate

    def target(self, path: PurePosixPath) -> Path:
        destination = (self.root / path).resolve()
        if not destination.is_relative_to(self.root.resolve()):
            raise CliError(f"refusing crate path {path}: it leaves the crate directory")
        destination.parent.mkdir(parents=True, exist_ok=True)
        return destination

    def copy(self, source: Path, path: PurePosixPath) -> tuple[Path, str, int]:
        """Copy ``source`` to ``path`` in the staging directory: (staged file, sha256, size)."""
        destination = self.target(path)
        digest, size = hashlib.sha256(), 0
        with source.open("rb") as reader, destination.open("wb") as writer:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
                writer.write(chunk)
        return destination, digest.hexdigest(), size

    def write(self, data: bytes, path: PurePosixPath) -> tuple[Path, str, int]:
        destination = self.target(path)
        destination.write_bytes(data)
        return destination, hashlib.sha256(data).hexdigest(), len(data)


class _Builder:
    def __init__(self, staging: Path, summary: ExportSummary) -> None:
        rocrate, context_entity, computer_language = _import_rocrate()
        self._context_entity = context_entity
        self.crate = rocrate(version="1.1")
        self.crate.metadata.extra_contexts.append(WORKFLOW_RUN_CONTEXT)
        self.staging = _Staging(staging)
        self.summary = summary
        self.python = self.crate.add(
            computer_language(
                self.crate,
                "https://www.python.org/",
                properties={
                    "name": "Python",
                    "identifier": {"@id": "https://www.python.org/"},
                    "url": {"@id": "https://www.python.org/"},
                },
            )
        )
        self._workflows: dict[str, Any] = {}
        self._workflow_use: Counter[str] = Counter()
        self._entities: dict[str, Any] = {}
        self._asset_entities: dict[str, Any] = {}
        self._actions: dict[tuple[str, str], Any] = {}
        self._latest_action: dict[str, Any] = {}
        self._run_keys: dict[str, str] = {}
        self._run_parts: list[Any] = []

    # -- helpers ---------------------------------------------------------------------

    def entity(self, props: Mapping[str, Any]) -> Any:
        identifier = props["@id"]
        known = self._entities.get(identifier)
        if known is None:
            rest = {key: value for key, value in props.items() if key != "@id"}
            known = self.crate.add(self._context_entity(self.crate, identifier, properties=rest))
            self._entities[identifier] = known
        return known

    def add_file(self, staged: tuple[Path, str, int], path: PurePosixPath, **props: Any) -> Any:
        source, sha256, size = staged
        properties = {key: value for key, value in props.items() if value is not None}
        if "type_" in properties:
            properties["@type"] = properties.pop("type_")
        properties.update({"sha256": sha256, "contentSize": str(size)})
        entity = self.crate.add_file(source=source, dest_path=path, properties=properties)
        self.summary.files += 1
        self.summary.bytes += size
        self._run_parts.append(entity)
        return entity

    def copy_file(self, source: Path, path: PurePosixPath, **props: Any) -> Any:
        unique = self.staging.unique(path)
        if unique != path and props.get("alternateName") is None:
            props["alternateName"] = path.name
        return self.add_file(self.staging.copy(source, unique), unique, **props)

    def write_file(self, data: bytes, path: PurePosixPath, **props: Any) -> Any:
        path = self.staging.unique(path)
        return self.add_file(self.staging.write(data, path), path, **props)

    # -- workflows -------------------------------------------------------------------

    def workflow(self, run: Run) -> Any:
        """The entity of the workflow ``run`` executed (its source file once per content)."""
        meta = run.metadata
        snapshot = dict(meta.workflow_snapshot or {})
        experiment = run.experiment.metadata
        name = snapshot.get("workflow_name") or snapshot.get("name") or experiment.id
        workflow_id = meta.workflow_id or snapshot.get("workflow_id")
        candidates = [snapshot.get("script"), experiment.workflow_source_path]
        if experiment.workflow_source:
            candidates.append(str(run.experiment.experiment_dir / experiment.workflow_source))
        script = next(
            (Path(c) for c in candidates if isinstance(c, str) and c and Path(c).is_file()), None
        )
        recorded_git = snapshot.get("git")
        git: dict[str, Any] = recorded_git if isinstance(recorded_git, dict) else {}
        props: dict[str, Any] = {
            "name": str(name),
            "identifier": workflow_id,
            "programmingLanguage": self.python,
            "version": git.get("commit") or experiment.git_commit,
        }
        if script is None:
            key = f"missing:{workflow_id or name}"
            if key not in self._workflows:
                where = snapshot.get("script") or experiment.workflow_source or "nowhere"
                self.summary.notes.append(
                    f"workflow source of run {run.id} not found ({where}); "
                    "the crate describes it without the file"
                )
                self._workflows[key] = self.entity(
                    {
                        "@id": _fragment("workflow", workflow_id or name),
                        "@type": ["SoftwareSourceCode", "ComputationalWorkflow"],
                        **{k: v for k, v in props.items() if v is not None},
                        "description": f"source not found at export: {where}",
                    }
                )
            self._workflow_use[key] += 1
            return self._workflows[key]
        data = script.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        if key not in self._workflows:
            path = self.staging.unique(PurePosixPath("workflows") / component(script.name))
            staged = self.staging.write(data, path)
            properties = {k: v for k, v in props.items() if v is not None}
            properties.update(
                {
                    "@type": ["File", "SoftwareSourceCode", "ComputationalWorkflow"],
                    "sha256": staged[1],
                    "contentSize": str(staged[2]),
                    "alternateName": script.name,
                    "description": "The workflow script as read at export time (the run "
                    "records its path, its workflow_id and the git commit of its checkout"
                    + (", which had uncommitted changes" if git.get("dirty") else "")
                    + ").",
                }
            )
            entity = self.crate.add_workflow(
                source=staged[0],
                dest_path=path,
                properties=properties,
                main=False,
                lang=self.python,
            )
            self.summary.files += 1
            self.summary.bytes += staged[2]
            self.summary.workflows += 1
            self._workflows[key] = entity
        self._workflow_use[key] += 1
        return self._workflows[key]

    def formal_parameter(self, workflow: Any, name: str, value: Any) -> Any:
        separator = "/" if workflow.id.startswith("#") else "#"
        identifier = f"{workflow.id}{separator}param/{quote(name, safe='')}"
        known = identifier in self._entities
        parameter = self.entity(
            {
                "@id": identifier,
                "@type": "FormalParameter",
                "name": name,
                "additionalType": _additional_type(value),
                "conformsTo": {
                    "@id": "https://bioschemas.org/profiles/FormalParameter/1.0-RELEASE"
                },
            }
        )
        if not known:
            workflow.append_to("input", parameter)
        return parameter

    # -- runs ------------------------------------------------------------------------

    def add_run(self, run: Run) -> None:
        meta = run.metadata
        key = f"{meta.project_id}/{meta.experiment_id}/{meta.id}"
        ref = (meta.project_id, meta.experiment_id, meta.id)
        self.summary.runs.append(key)
        self._run_keys[meta.id] = key
        base = (
            PurePosixPath("runs")
            / component(meta.project_id)
            / component(meta.experiment_id)
            / component(meta.id)
        )
        workflow = self.workflow(run)
        self._run_parts = []
        record = self.copy_file(
            run.record_path,
            base / "run.json",
            name=f"run record {key}",
            encodingFormat="application/json",
        )
        experiment_file = run.experiment.experiment_dir / EXPERIMENT_FILE
        if experiment_file.is_file():
            self.copy_file(
                experiment_file,
                base / "experiment.json",
                name=f"experiment record {meta.project_id}/{meta.experiment_id}",
                encodingFormat="application/json",
            )
        inputs: list[Any] = []
        for name, value in sorted(meta.parameters.items()):
            parameter = self.formal_parameter(workflow, name, value)
            pv = self.entity(_property_value(_fragment(*ref, "param", name), name, value, "param"))
            pv["exampleOfWork"] = parameter
            inputs.append(pv)
        if meta.profile is not None:
            config = {
                "profile": meta.profile.name,
                "config": meta.profile.config,
                "config_hash": meta.profile.config_hash,
                "overrides": meta.profile.overrides,
            }
            inputs.append(
                self.write_file(
                    (json.dumps(config, indent=2, sort_keys=True) + "\n").encode(),
                    base / "config.json",
                    name=f"profile {meta.profile.name!r} of run {key}",
                    encodingFormat="application/json",
                    identifier=meta.profile.config_hash,
                )
            )
        self._metric_files(run, base, key)
        attempts = run.attempts
        assets = run.workspace.catalog.query_assets(scope=run.scope)
        by_execution = {a.execution_id: a for a in attempts}
        latest = attempts[-1] if attempts else None
        for attempt in attempts:
            self._add_attempt(run, attempt, workflow, inputs, base, ref)
        self._attach_run_assets(run, assets, by_execution, latest, base)
        collection = self.entity(
            {
                "@id": _fragment(*ref),
                "@type": "Collection",
                "name": f"run {key}",
                "identifier": meta.id,
                "description": f"status {meta.status}; {len(attempts)} attempt(s)",
                "mainEntity": record,
            }
        )
        collection.append_to("hasPart", self._run_parts)
        self._run_parts = []
        self.crate.root_dataset.append_to("mentions", collection)

    def _metric_files(self, run: Run, base: PurePosixPath, key: str) -> None:
        if not run.metadata.metrics:
            return
        try:
            series = run.metrics()
        except (OSError, ValueError) as exc:
            self.summary.notes.append(f"metric series of run {key} unreadable: {exc}")
            return
        for name in sorted(series):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["step", "value", "timestamp", "attempt"])
            item = series[name]
            writer.writerows(
                zip(item.steps, item.values, item.timestamps, item.attempts, strict=True)
            )
            self.write_file(
                buffer.getvalue().encode(),
                base / "metrics" / f"{component(name)}.csv",
                name=f"metric {name} of run {key}",
                encodingFormat="text/csv",
            )

    def _add_attempt(
        self,
        run: Run,
        attempt: Attempt,
        workflow: Any,
        inputs: Sequence[Any],
        base: PurePosixPath,
        ref: tuple[str, str, str],
    ) -> None:
        record = attempt.record
        key = "/".join(ref)
        identifier = _fragment(*ref, "attempt", attempt.number)
        status = str(record.status)
        props: dict[str, Any] = {
            "@type": "CreateAction",
            "name": f"run {key}, attempt {attempt.number}",
            "identifier": record.execution_id,
            "description": f"attempt {attempt.number} of run {key}: {status}",
            "actionStatus": {"@id": _STATUS.get(status, _STATUS["pending"])},
            "startTime": _iso(record.started_at),
            "endTime": _iso(record.finished_at),
        }
        if record.error is not None:
            props["error"] = f"{record.error.type}: {record.error.message}"
        action = self.crate.add_action(
            workflow,
            identifier=identifier,
            properties={k: v for k, v in props.items() if v is not None},
        )
        self._actions[(run.id, record.execution_id)] = action
        self._latest_action[run.id] = action
        self.summary.attempts += 1
        self.crate.root_dataset.append_to("mentions", action)
        if inputs:
            action.append_to("object", list(inputs))
        owner = run.project.metadata.owner
        if owner:
            action["agent"] = self.entity(
                {"@id": _fragment("person", owner), "@type": "Person", "name": owner}
            )
        self._environment(action, attempt, identifier)
        results = attempt.own_results if attempt.own_results is not None else attempt.results
        produced: list[Any] = []
        for name, value in sorted(results.items()):
            produced.append(
                self.entity(
                    _property_value(
                        _fragment(*ref, "attempt", attempt.number, "result", name),
                        name,
                        value,
                        "result",
                    )
                )
            )
        for name, summary in sorted(record.metrics.items()):
            pv = _property_value(
                _fragment(*ref, "attempt", attempt.number, "metric", name),
                name,
                summary.last,
                "metric",
            )
            pv.update(
                {
                    "minValue": summary.min,
                    "maxValue": summary.max,
                    "description": f"last value (step {summary.last_step}) of "
                    f"{summary.count} point(s); min and max over them",
                }
            )
            produced.append(self.entity(pv))
        if produced:
            action.append_to("result", produced)
        folder = base / f"attempt-{attempt.number}"
        for log_name, path in sorted(attempt.logs.items()):
            self.copy_file(
                path,
                folder / "logs" / f"{component(log_name)}.log",
                name=f"log {log_name}",
                encodingFormat="text/plain",
                about=action,
            )
        state = attempt.execution_dir / "state.json"
        if state.is_file():
            self.copy_file(
                state,
                folder / "state.json",
                name="execution state: per-task status, timings and code snapshot keys",
                encodingFormat="application/json",
                about=action,
            )
            self._task_code(state, folder, action)
        error = attempt.execution_dir / "error.txt"
        if error.is_file():
            self.copy_file(
                error,
                folder / "error.txt",
                name="traceback",
                encodingFormat="text/plain",
                about=action,
            )

    def _task_code(self, state_file: Path, folder: PurePosixPath, action: Any) -> None:
        """The task code snapshots an execution state records (``sources``: source text by
        code hash, ``tasks.<name>.code_hash``, ``distributions``), one file per source."""
        try:
            state = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        sources = state.get("sources") if isinstance(state, dict) else None
        if not isinstance(sources, dict) or not sources:
            return
        tasks = state.get("tasks") if isinstance(state.get("tasks"), dict) else {}
        names: dict[str, list[str]] = {}
        for task, info in sorted(tasks.items()):
            if isinstance(info, dict) and isinstance(info.get("code_hash"), str):
                names.setdefault(info["code_hash"], []).append(str(task))
        distributions = state.get("distributions")
        requirements = (
            [
                self.entity(
                    {
                        "@id": f"https://pypi.org/project/{quote(str(n), safe='')}/"
                        f"{quote(str(v), safe='')}/",
                        "@type": "SoftwareApplication",
                        "name": str(n),
                        "softwareVersion": str(v),
                    }
                )
                for n, v in sorted(distributions.items())
            ]
            if isinstance(distributions, dict)
            else []
        )
        for code_hash, source in sorted(sources.items()):
            if not isinstance(source, str):
                continue
            tasks_of = names.get(str(code_hash), [])
            stem = component("-".join(tasks_of) if tasks_of else str(code_hash)[:16])
            entity = self.write_file(
                source.encode("utf-8"),
                folder / "code" / f"{stem}.py",
                name=f"source of task {', '.join(tasks_of)}" if tasks_of else "task source",
                encodingFormat="text/x-python",
                identifier=str(code_hash),
                about=action,
                type_=["File", "SoftwareSourceCode"],
            )
            entity["programmingLanguage"] = self.python
            if requirements:
                entity["softwareRequirements"] = requirements

    def _environment(self, action: Any, attempt: Attempt, identifier: str) -> None:
        record = attempt.record
        facts: dict[str, Any] = {
            "pid": record.pid,
            "python": record.python,
            "python_version": record.python_version,
            "profile": record.profile_name,
            "config_hash": record.config_hash,
        }
        environment = record.environment
        if environment is not None:
            facts.update(
                {
                    "implementation": environment.implementation,
                    "platform": environment.platform,
                    "cpu_count": environment.cpu_count,
                    "gpus": environment.gpus or None,
                }
            )
            facts.update({f"slurm.{k}": v for k, v in sorted(environment.slurm.items())})
            if environment.variables:
                action.append_to(
                    "environment",
                    [
                        self.entity(
                            _property_value(f"{identifier}/env/{quote(k, safe='')}", k, v, "env")
                        )
                        for k, v in sorted(environment.variables.items())
                    ],
                )
        if record.scheduler:
            facts["scheduler"] = record.scheduler
        values = [
            self.entity(
                _property_value(f"{identifier}/host/{quote(k, safe='')}", k, v, "environment")
            )
            for k, v in facts.items()
            if v is not None
        ]
        if record.host is None and not values:
            return
        place = self.entity(
            {
                "@id": f"{identifier}/host",
                "@type": "Place",
                "name": record.host or "unknown host",
                "description": "where the attempt ran, and with what",
            }
        )
        if values:
            place.append_to("additionalProperty", values)
        action["location"] = place

    def _attach_run_assets(
        self,
        run: Run,
        assets: Iterable[Asset],
        by_execution: Mapping[str, Attempt],
        latest: Attempt | None,
        base: PurePosixPath,
    ) -> None:
        """The run's artifacts, each in the folder of the attempt that saved it and in that
        attempt's ``result`` (artifacts no attempt claims: the latest attempt's)."""
        from molexp.assets import AssetKind

        root = run.workspace.root
        for asset in assets:
            if asset.kind is not AssetKind.ARTIFACT:
                continue
            producer = asset.producer
            attempt = by_execution.get(producer.execution_id or "") if producer else None
            owner = attempt or latest
            folder = base / (f"attempt-{owner.number}" if owner else "unattributed") / "artifacts"
            action = self._actions.get((run.id, owner.execution_id)) if owner else None
            payload = root / asset.path
            entities = self._payload(payload, folder / component(asset.name), asset)
            if not entities:
                self.summary.notes.append(
                    f"artifact {asset.name!r} of run {run.id}: file {payload} is missing"
                )
                continue
            if action is not None:
                action.append_to("result", entities[:1])
            self._asset_entities[asset.id] = entities[0]

    def _payload(self, payload: Path, path: PurePosixPath, asset: Asset) -> list[Any]:
        """The entity of an asset's file, or a ``Collection`` of a directory's files."""
        common = {
            "name": asset.name,
            "alternateName": asset.name if path.name != asset.name else None,
            "identifier": asset.id,
            "encodingFormat": getattr(asset, "media_type", None),
            "dateCreated": _iso(asset.created_at),
        }
        if payload.is_file():
            entity = self.copy_file(payload, path, **common)
            if asset.content_hash and entity["sha256"] != asset.content_hash:
                self.summary.notes.append(
                    f"{asset.kind.value} {asset.name!r} ({asset.id}) changed since it was "
                    "recorded: the crate holds the bytes read at export"
                )
            return [entity]
        if not payload.is_dir():
            return []
        files = [
            self.copy_file(
                child, path.joinpath(*(component(p) for p in child.relative_to(payload).parts))
            )
            for child in sorted(payload.rglob("*"))
            if child.is_file()
        ]
        collection = self.entity(
            {
                "@id": _fragment("asset", asset.id),
                "@type": "Collection",
                **{k: v for k, v in common.items() if v is not None},
                "description": "a directory artifact; the catalog's content hash of it (sha256 "
                f"over its sorted relative paths and file hashes) is {asset.content_hash}",
            }
        )
        if files:
            collection.append_to("hasPart", files)
        self.crate.root_dataset.append_to("mentions", collection)
        return [collection]

    # -- lineage -----------------------------------------------------------------------

    def add_lineage(self, runs: Sequence[Run]) -> None:
        """Producer and consumer links of every catalog asset that touches an exported run."""
        if not runs:
            return
        catalog = runs[0].workspace.catalog
        exported = {run.id for run in runs}
        for asset in catalog.query_assets():
            lineage = catalog.lineage(asset.id)
            producer = lineage.produced_by
            uses = [use for use in lineage.consumed_by if use.run_id in exported]
            produced_here = producer is not None and producer.run_id in exported
            if not uses and not (produced_here and asset.id not in self._asset_entities):
                continue
            if asset.kind.value in {"log", "execution_state", "error_trace"} and not uses:
                continue
            entity = self._asset_entities.get(asset.id) or self._asset_entity(asset)
            if produced_here and asset.id not in self._asset_entities:
                assert producer is not None
                action = self._actions.get((producer.run_id, producer.execution_id or ""))
                action = action or self._latest_action.get(producer.run_id)
                if action is not None:
                    action.append_to("result", entity)
            for use in uses:
                action = self._actions.get((use.run_id, use.execution_id or ""))
                action = action or self._latest_action.get(use.run_id)
                if action is not None:
                    action.append_to("object", entity)

    def _asset_entity(self, asset: Asset) -> Any:
        producer = asset.producer
        props: dict[str, Any] = {
            "@id": _fragment("asset", asset.id),
            "@type": "CreativeWork",
            "additionalType": f"molexp:{asset.kind.value}",
            "name": asset.name,
            "identifier": asset.id,
            "description": f"{asset.kind.value} asset of {asset.scope.describe()} "
            f"(workspace path {asset.path}); not copied into the crate",
            "sha256": asset.content_hash,
            "contentSize": None if asset.size is None else str(asset.size),
            "dateCreated": _iso(asset.created_at),
        }
        if producer is not None:
            producer_key = self._run_keys.get(producer.run_id, producer.run_id)
            props["creditText"] = f"produced by run {producer_key}"
        entity = self.entity({k: v for k, v in props.items() if v is not None})
        self._asset_entities[asset.id] = entity
        return entity

    # -- the root ----------------------------------------------------------------------

    def finish(self, title: str, description: str, license_id: str | None) -> None:
        root = self.crate.root_dataset
        root["name"] = title
        root["description"] = description
        root["datePublished"] = datetime.now(UTC).isoformat()
        if license_id:
            root["license"] = {"@id": license_id} if "://" in license_id else license_id
        profiles = [
            self.entity({"@id": uri, "@type": "CreativeWork", "name": name, "version": version})
            for uri, name, version in (
                (PROCESS_RUN_CRATE, "Process Run Crate", "0.5"),
                (WORKFLOW_RUN_CRATE, "Workflow Run Crate", "0.5"),
                (WORKFLOW_RO_CRATE, "Workflow RO-Crate", "1.0"),
            )
        ]
        root["conformsTo"] = profiles
        engine = self.entity(
            {
                "@id": "https://pypi.org/project/molexp-cli/",
                "@type": "SoftwareApplication",
                "name": "MolExp",
                "softwareVersion": _molexp_version(),
            }
        )
        root["publisher"] = engine
        if self._workflow_use:
            main_key = self._workflow_use.most_common(1)[0][0]
            main = self._workflows[main_key]
            self.crate.mainEntity = main
            self.crate.metadata["conformsTo"] = [
                {"@id": "https://w3id.org/ro/crate/1.1"},
                {"@id": WORKFLOW_RO_CRATE},
            ]


def _molexp_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("molexp-cli")
    except PackageNotFoundError:
        return "unknown"


@contextlib.contextmanager
def _sibling_temp(output: Path, *, directory: bool) -> Iterator[Path]:
    """A temporary file or directory beside ``output`` (same filesystem), removed on error."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        temp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    else:
        handle, name = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
        os.close(handle)
        temp = Path(name)
    try:
        yield temp
    finally:
        if temp.is_dir():
            shutil.rmtree(temp, ignore_errors=True)
        elif temp.exists():
            temp.unlink()


def _replace(temp: Path, output: Path) -> None:
    """Move ``temp`` to ``output``; an old output (checked removable by the caller) goes."""
    if output.is_dir() and not output.is_symlink():
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        output.rename(old)
        temp.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        temp.replace(output)


def write_crate(
    runs: Sequence[Run],
    output: Path,
    *,
    title: str,
    description: str,
    license_id: str | None = None,
) -> ExportSummary:
    """Write the Workflow Run RO-Crate of ``runs`` to ``output``: a zip file when its name ends
    in ``.zip``, else a directory. An existing ``output`` is replaced (the caller decides
    whether it may be)."""
    layout = "zip" if output.suffix.lower() == ".zip" else "directory"
    summary = ExportSummary(output=output, layout=layout)
    _import_rocrate()
    with _sibling_temp(output, directory=layout == "directory") as temp:
        if layout == "directory":
            _build(runs, temp, summary, title, description, license_id).write(temp)
            _replace(temp, output)
        else:
            with tempfile.TemporaryDirectory(prefix="molexp-crate-") as staging:
                crate = _build(runs, Path(staging), summary, title, description, license_id)
                crate.write_zip(temp)
            _replace(temp, output)
    return summary


def _build(
    runs: Sequence[Run],
    staging: Path,
    summary: ExportSummary,
    title: str,
    description: str,
    license_id: str | None,
) -> Any:
    builder = _Builder(staging, summary)
    for run in runs:
        builder.add_run(run)
    builder.add_lineage(runs)
    builder.finish(title, description, license_id)
    return builder.crate
