"""R3: malformed files and hostile names give a typed, clear error and change nothing.

Hypothesis generates malformed ``workspace.json`` / ``project.json`` / ``experiment.json``
/ ``run.json`` files (random bytes, non-objects, fields of the wrong type, missing
fields, newer versions, truncations, deep nesting, huge integers, ``\\u`` escapes of
lone surrogates, ids that do not match their directory or are not valid names) and
malformed ``molexp.toml`` files. Every public entry that reads them must either succeed
or raise the typed error (``RecordError`` naming the file, ``ProfileError``), never
anything else; the CLI must answer with exactly one ``error: ...`` line naming the
broken file and a non-zero exit code, never a traceback; and nothing in the workspace
may change (the whole tree is hashed before and after, the rebuildable SQLite index
aside).

Every hypothesis test here is derandomized and keeps no example database: CI tries
the same inputs on every run (a failure reproduces), and cases found once are pinned
with ``@example``.

Hostile names (``..``, ``/abs``, NUL, separators, control characters, lone surrogates,
very long, unicode) go to every entry that takes a name - the hierarchy constructors
and lookups, artifact/log/checkpoint/data-asset names, result keys, run directories,
data-dir fallbacks, CLI arguments - and must be either accepted and kept inside their
directory, or rejected with a ``ValueError``/``KeyError`` (an ``OSError`` from the
filesystem, e.g. a name too long) naming the value, leaving the workspace unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from molexp.assets import RecordError
from molexp.assets._io import shown_value
from molexp.cli import run_cli
from molexp.cli.profiles import ProfileError, ProfileFile
from molexp.workspace import (
    BrokenRecordWarning,
    Experiment,
    ExperimentMetadata,
    ProjectMetadata,
    RunContext,
    RunMetadata,
    Workspace,
    WorkspaceMetadata,
    reap_stale_runs,
)
from molexp.workspace._records_io import read_record
from reliability_helpers import (
    assert_one_line_error,
    index_snapshot,
    molexp,
    tree_digest,
)

TRIED: Counter[str] = Counter()
RECORD_FILES = ["workspace.json", "project.json", "experiment.json", "run.json"]
EXAMPLES = 60
REPRODUCIBLE = settings(
    deadline=None,
    derandomize=True,  # the same inputs on every run: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module", autouse=True)
def _report_counts() -> Iterator[None]:
    yield
    print(f"\nR3 inputs tried: {dict(TRIED)} (total {sum(TRIED.values())})")


@contextlib.contextmanager
def lab() -> Iterator[tuple[Path, Experiment]]:
    """A fresh workspace with one project, experiment and finished run (r1, with a log)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "lab"
        exp = Workspace(root).Project("p").Experiment("e", params={"lr": 0.1})
        with exp.Run(id="r1").start() as ctx:
            ctx.log("train").append("ok")
            ctx.artifact.save("metrics.json", {"loss": 1.0})
            ctx.set_result("loss", 1.0)
        yield root, exp


def record_path(root: Path, name: str) -> Path:
    return {
        "workspace.json": root / "workspace.json",
        "project.json": root / "projects/p/project.json",
        "experiment.json": root / "projects/p/experiments/e/experiment.json",
        "run.json": root / "projects/p/experiments/e/runs/run-r1/run.json",
    }[name]


def cli(*args: str | Path) -> tuple[int, str, str]:
    """``molexp`` in this process (so that NUL and lone surrogates can reach it)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run_cli([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


def assert_cli_clean(code: int, stderr: str) -> None:
    """Success, or exactly one ``error: ...`` line with a non-zero exit and no traceback."""
    assert "Traceback" not in stderr, stderr
    if code != 0:
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr


# -- malformed record files ----------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)


ID_FIELDS = ("id", "workspace_id", "project_id", "experiment_id")
INVALID_IDS = ["", " ", ".", "..", "a/b", "a\\b", "nul\x00", "tab\tid", " padded", "x" * 201]
"""Ids ``validate_name`` refuses: a record holding one must be refused when read."""


@dataclass(frozen=True)
class Corruption:
    """One way to break a valid record, applied to its bytes inside the test.

    ``key`` is the field to change: its name, or an index into the record's sorted field
    names (its id fields for ``invalid id``). ``value`` is what the kind needs: the new
    field value, the raw bytes, a cut position, a nesting depth or a number of digits.
    """

    kind: str
    key: str | int = 0
    value: Any = None

    def apply(self, valid: bytes) -> bytes:
        TRIED[f"record: {self.kind}"] += 1
        record = json.loads(valid)
        if isinstance(self.key, str):
            key = self.key
        elif self.kind == "invalid id":
            present = [field for field in ID_FIELDS if field in record]
            key = present[self.key % len(present)]
        else:
            key = sorted(record)[self.key % len(record)]
        if self.kind == "bytes":
            return bytes(self.value)
        if self.kind == "not an object":
            return json.dumps(self.value).encode()
        if self.kind in ("wrong type", "invalid id", "foreign id"):
            record["id" if self.kind == "foreign id" else key] = self.value
        elif self.kind == "missing field":
            del record[key]
        elif self.kind in ("newer version", "bad version"):
            record["version"] = self.value
        elif self.kind == "truncated":
            return valid[: self.value % len(valid)]
        elif self.kind == "deep nesting":
            depth = self.value
            return valid[:-2] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
        elif self.kind == "huge integer":
            text = json.dumps({**record, key: 0})
            digits = "9" * self.value
            return text.replace(f"{json.dumps(key)}: 0", f"{json.dumps(key)}: {digits}", 1).encode()
        elif self.kind == "lone surrogate":
            record[key] = self.value
            return json.dumps(record).encode()  # ensure_ascii: written as a \\u escape
        else:
            raise AssertionError(f"unknown corruption {self.kind!r}")
        return json.dumps(record).encode()


@st.composite
def corruptions(draw: st.DrawFn) -> Corruption:
    """A corruption of any valid record."""
    kind = draw(
        st.sampled_from(
            [
                "bytes",
                "not an object",
                "wrong type",
                "missing field",
                "newer version",
                "bad version",
                "truncated",
                "deep nesting",
                "huge integer",
                "lone surrogate",
                "foreign id",
                "invalid id",
            ]
        )
    )
    key = draw(st.integers(min_value=0, max_value=63))
    value: Any = {
        "bytes": st.binary(max_size=64),
        "not an object": st.one_of(_json_scalars, st.lists(_json_values)),
        "wrong type": _json_values,
        "missing field": st.none(),
        "newer version": st.integers(min_value=100),
        "bad version": st.sampled_from(["1", 1.5, None, True, [1]]),
        "truncated": st.integers(min_value=0, max_value=10_000),
        "deep nesting": st.integers(min_value=2_000, max_value=50_000),
        "huge integer": st.integers(min_value=4_400, max_value=6_000),
        "lone surrogate": st.sampled_from(["\ud800", "a\udcffb", "\udfff"]),
        "foreign id": st.sampled_from(["other", "p2", "r2"]),
        "invalid id": st.sampled_from(INVALID_IDS),
    }[kind]
    return Corruption(kind, key, draw(value))


def _expect_record_error(action: Callable[[], object], root: Path) -> None:
    """Success, or a ``RecordError`` naming a record file of the workspace: the broken one,
    or the record whose cross-check against it failed (e.g. a changed workspace id)."""
    try:
        action()
    except RecordError as exc:
        assert exc.path.name.endswith(".json") and exc.path.is_relative_to(root), exc
        assert str(exc).startswith(str(exc.path)), exc
    except Exception as exc:  # anything else is a bug
        raise AssertionError(f"{type(exc).__name__} instead of RecordError: {exc}") from exc


def _read_everything(root: Path, broken: Path) -> None:
    """Every public entry that reads the broken record: typed errors only."""
    run_dir = root / "projects/p/experiments/e/runs/run-r1"
    _expect_record_error(lambda: Workspace(root), root)
    _expect_record_error(lambda: Workspace.load(root), root)
    _expect_record_error(lambda: RunContext.open(run_dir), root)
    try:
        ws = Workspace(root)
    except RecordError:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BrokenRecordWarning)
        _expect_record_error(lambda: ws.project("p").experiment("e").get_run("r1"), root)
        _expect_record_error(lambda: ws.Project("p").Experiment("e").Run(id="r1"), root)
        _expect_record_error(lambda: ws.find_run("r1"), root)
        _expect_record_error(lambda: [p.list_experiments() for p in ws.list_projects()], root)
        _expect_record_error(lambda: reap_stale_runs(ws), root)
        report = ws.rebuild_index()
        listed = [item.path for item in (*report.broken, *ws.broken_records())]
        assert all(path.suffix == ".json" and path.is_relative_to(root) for path in listed)
        if broken.name == "run.json" and broken not in listed:
            ws.project("p").experiment("e").get_run("r1")  # then it must be readable
    commands: list[list[str | Path]] = [
        ["show", run_dir],
        ["ls", "-w", root],
        ["ls", "runs", "-w", root],
    ]
    for args in commands:
        code, _out, err = cli(*args)
        assert_cli_clean(code, err)
        if code != 0:  # the error names the broken record, never a query
            assert ".json" in err and "invalid query" not in err, err


@pytest.mark.parametrize("name", RECORD_FILES)
@settings(REPRODUCIBLE, max_examples=EXAMPLES)
@example(corruption=Corruption("wrong type", "id", ""))  # an empty workspace id: ValueError
@given(corruption=corruptions())
def test_malformed_records_give_typed_errors_and_change_nothing(
    name: str, corruption: Corruption
) -> None:
    note(f"{name}: {corruption!r}")  # shown with a failure, to replay it as an @example
    with lab() as (root, _exp):
        target = record_path(root, name)
        target.write_bytes(corruption.apply(target.read_bytes()))
        before = tree_digest(root)
        _read_everything(root, target)
        assert tree_digest(root) == before


MODELS = {
    "workspace.json": WorkspaceMetadata,
    "project.json": ProjectMetadata,
    "experiment.json": ExperimentMetadata,
    "run.json": RunMetadata,
}


@pytest.mark.parametrize("name", RECORD_FILES)
@pytest.mark.parametrize("bad", INVALID_IDS, ids=lambda bad: repr(bad)[:12])
def test_a_record_holding_an_invalid_id_is_refused_when_read(name: str, bad: str) -> None:
    """Every id field of every record, with every kind of invalid name: ``RecordError``
    naming the file and the field, as the id would be refused when written."""
    with lab() as (root, _exp):
        target = record_path(root, name)
        valid = target.read_bytes()
        for field in (field for field in ID_FIELDS if field in json.loads(valid)):
            target.write_bytes(Corruption("invalid id", field, bad).apply(valid))
            with pytest.raises(RecordError) as info:
                read_record(target, MODELS[name])
            assert info.value.path == target and info.value.field == field, info.value


def test_an_empty_workspace_id_is_a_record_error_in_the_cli() -> None:
    """The case that once opened, then failed later as "invalid query: workspace_id ..."."""
    with lab() as (root, _exp):
        target = root / "workspace.json"
        target.write_bytes(Corruption("wrong type", "id", "").apply(target.read_bytes()))
        with pytest.raises(RecordError, match="workspace.json .field 'id'.: workspace id"):
            Workspace(root)
        for args in (["ls", "-w", root], ["ls", "runs", "-w", root], ["show", "r1", "-w", root]):
            code, _out, err = cli(*args)
            assert code == 1 and "Traceback" not in err, err
            [line] = err.splitlines()
            assert "workspace.json (field 'id')" in line and "invalid query" not in line, line


def test_a_cli_run_on_a_broken_record_prints_one_line() -> None:
    """The real executable, on a few broken records: one line, exit 1, no traceback."""
    with lab() as (root, _exp):
        run_dir = root / "projects/p/experiments/e/runs/run-r1"
        (run_dir / "run.json").write_text('{"version": 1, "id": "r1", "status": "exploded"}')
        before = tree_digest(root)
        commands: list[list[str | Path]] = [
            ["show", run_dir],
            ["execute", run_dir],
            ["cancel", run_dir],
        ]
        for args in commands:
            line = assert_one_line_error(molexp(*args, cwd=root))
            assert "run.json" in line
        assert tree_digest(root) == before
        (root / "projects/p/experiments/e/experiment.json").write_text("[]")
        before = tree_digest(root)
        listing = molexp("ls", "-w", root, cwd=root)  # skips the broken record, in one line
        assert listing.returncode == 0, listing.stderr
        [warning] = listing.stderr.splitlines()
        assert warning.startswith("warning: skipped broken record"), warning
        assert "experiment.json" in warning
        (root / "workspace.json").write_bytes(b"\xff\xfe not json")
        before = tree_digest(root)
        line = assert_one_line_error(molexp("ls", "-w", root, cwd=root))
        assert "workspace.json" in line and "not valid JSON" in line
        assert tree_digest(root) == before


# -- molexp.toml --------------------------------------------------------------------------

_toml_values = st.one_of(
    st.integers(),
    st.floats().map(lambda f: repr(f).replace("inf", "inf").replace("nan", "nan")),
    st.sampled_from(
        ["1979-05-27T07:32:00Z", "nan", "inf", "-inf", '"x"', "[1, [2, [3]]]", "{ a = 1 }"]
    ),
    st.text(max_size=6).map(json.dumps),
)


@st.composite
def malformed_toml(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["text", "structure"]))
    TRIED[f"molexp.toml: {kind}"] += 1
    if kind == "text":
        return draw(st.text(max_size=80))
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        table = draw(st.sampled_from(["defaults", "profiles.a", "profiles.b", "other", "profiles"]))
        lines.append(f"[{table}]")
        key = draw(st.sampled_from(["scale", "extends", "model", "x.y", "extends"]))
        value = draw(st.one_of(_toml_values, st.sampled_from(['"a"', '"b"', '"zzz"'])))
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@settings(REPRODUCIBLE, max_examples=4 * EXAMPLES)
@given(content=malformed_toml())
def test_malformed_molexp_toml_gives_a_profile_error_and_changes_nothing(content: str) -> None:
    with lab() as (root, _exp):
        toml = root / "molexp.toml"
        toml.write_text(content, encoding="utf-8", errors="surrogatepass")
        before = tree_digest(root)
        try:
            profiles = ProfileFile.load(toml)
            for name in profiles.names:
                profiles.resolve(name)
        except ProfileError as exc:
            assert "molexp.toml" in str(exc), exc
        code, _out, err = cli("profiles", root)
        assert_cli_clean(code, err)
        if code != 0:
            assert "molexp.toml" in err
        assert tree_digest(root) == before


# -- hostile names --------------------------------------------------------------------------

HOSTILE = [
    "",
    ".",
    "..",
    "../x",
    "/abs",
    "a/b",
    "a\\b",
    "nul\x00byte",
    "tab\tname",
    "line\nbreak",
    " padded",
    "padded ",
    "x" * 300,
    "é" * 150,
    "\ud800",
    "a\udcffb",
    "\u202eevil",
    "~",
    "$HOME",
    "-rf",
    "...",
    "con",
    "a:b",
    "名前",
]
_names = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(st.characters(exclude_categories=()), min_size=0, max_size=30),
    st.text(st.sampled_from("./\\\x00 \t\n\udcffa"), max_size=8),
)


def _names_value(message: str, value: str) -> bool:
    """Whether an error message shows ``value`` (shortened if long; inside a path is fine)."""
    inner = repr(value)[1:-1]
    return shown_value(value)[:40] in message or inner[:40] in message


def _attempt(action: Callable[[], Any], value: str, root: Path, subject: str | None) -> str:
    """Run ``action``; a rejection must be typed, change nothing and name ``value`` (or,
    for data written into a named place, that place: ``subject``)."""
    before = tree_digest(root)
    try:
        result = action()
    except (ValueError, KeyError, OSError) as exc:  # OSError: e.g. a name too long for the FS
        message = str(exc.args[0]) if isinstance(exc, KeyError) else str(exc)
        named = (
            _names_value(message, value)
            or (subject is not None and subject in message)
            or (isinstance(exc, FileNotFoundError) and "is not a run directory" in message)
        )
        assert named, (type(exc).__name__, message)
        assert tree_digest(root) == before, f"a rejected {value!r} changed the workspace"
        return "rejected"
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} for {value!r}: {exc}") from exc
    path = getattr(result, "run_dir", None) or getattr(result, "path", None)
    if isinstance(path, Path):
        assert path.resolve().is_relative_to(root.resolve()), (value, path)
    return "accepted"


PATH_ENTRIES = {"run directory", "workspace root", "fallback"}
"""Entries taking a path: their errors name the (normalized) path, e.g. ``a/./b`` as ``a/b``."""


def _entries(root: Path, exp: Experiment, source: Path) -> dict[str, Callable[[str], Any]]:
    ws = exp.workspace
    project = exp.project
    return {
        "ws.Project(name)": lambda n: ws.Project(n),
        "ws.Project(id=)": lambda n: ws.Project("fine", id=n),
        "ws.project(name)": lambda n: ws.project(n),
        "project.Experiment(name)": lambda n: project.Experiment(n),
        "project.Experiment(id=)": lambda n: project.Experiment("fine", id=n),
        "project.experiment(id)": lambda n: project.experiment(n),
        "exp.Run(id=)": lambda n: exp.Run(id=n),
        "exp.get_run(id)": lambda n: exp.get_run(n),
        "ws.find_run(id)": lambda n: ws.find_run(n),
        "ws.delete_project(id)": lambda n: ws.delete_project(n) if n != "p" else None,
        "ws.runs(where=)": lambda n: ws.runs(where={"id": n}),
        "exp.Run(parameters=)": lambda n: exp.Run(parameters={n: n}),
        "exp.Run(tags=)": lambda n: exp.Run(tags=[n]),
        "project.Experiment(description=)": lambda n: project.Experiment(
            "described", description=n
        ),
        "run directory": lambda n: RunContext.open(root / n),
        "Workspace(name=)": lambda n: Workspace(root.parent / "other", name=n),
        "workspace root": lambda n: Workspace(root.parent / "roots" / n),
        "data_assets.import_asset(name)": lambda n: exp.data_assets.import_asset(n, source),
    }


def _run_entries(ctx: Any) -> dict[str, Callable[[str], Any]]:
    return {
        "artifact.save(name)": lambda n: ctx.artifact.save(n, "x"),
        "artifact 'text.txt'": lambda n: ctx.artifact.save("text.txt", n),
        "artifact 'data.json'": lambda n: ctx.artifact.save("data.json", {n: n}),
        "log(name)": lambda n: ctx.log(n),
        "checkpoint(name)": lambda n: ctx.checkpoint(n),
        "find_asset(name)": lambda n: ctx.find_asset(n),
        "set_result(key)": lambda n: ctx.set_result(n, 1),
        "result 'value'": lambda n: ctx.set_result("value", n),
        "fallback": lambda n: ctx.get_data_dir("absent", fallback=n),
    }


@settings(REPRODUCIBLE, max_examples=2 * EXAMPLES)
@given(name=_names)
@example(name="\ud800")  # a refused text artifact once left the attempt's directory behind
def test_hostile_names_are_kept_inside_or_rejected_naming_the_value(name: str) -> None:
    with lab() as (root, exp):
        source = root.parent / "source.csv"
        source.write_text("a\n")
        for label, entry in _entries(root, exp, source).items():
            TRIED[f"name: {label}"] += 1
            subject = label if label in PATH_ENTRIES else None  # the path may be normalized
            outcome = _attempt(lambda: entry(name), name, root, subject)  # noqa: B023
            TRIED[f"name {outcome}"] += 1
        with exp.Run(id="hostile").start() as ctx:
            for label, entry in _run_entries(ctx).items():
                TRIED[f"name: {label}"] += 1
                # data written into a named place, or a path that may be normalized
                subject = label if "'" in label or label in PATH_ENTRIES else None
                outcome = _attempt(lambda: entry(name), name, root, subject)  # noqa: B023
                TRIED[f"name {outcome}"] += 1
        check = Workspace(root)
        before = index_snapshot(check)
        check.rebuild_index()
        assert index_snapshot(check) == before  # the index still equals a rebuild


@settings(REPRODUCIBLE, max_examples=EXAMPLES)
@given(name=_names)
def test_hostile_cli_arguments_give_one_line_errors_and_change_nothing(name: str) -> None:
    with lab() as (root, _exp):
        script = root.parent / "script.py"
        script.write_text("raise SystemExit('not a molexp script')\n")
        before = tree_digest(root)
        for args in (
            ["show", name, "-w", root],
            ["logs", "r1", name, "-w", root],
            ["artifacts", name, "-w", root],
            ["cancel", name, "-w", root],
            ["ls", "runs", "-p", name, "-w", root],
            ["ls", "-w", name],
            ["query", name, "-w", root],
            ["assets", "--kind", name, "-w", root],
            ["execute", name],
            ["run", name],
            ["run", script, "--profile", name],
            ["run", script, "--set", name],
            ["profiles", name],
        ):
            TRIED[f"cli: {args[0]}"] += 1
            code, _out, err = cli(*args)
            assert_cli_clean(code, err)
        assert tree_digest(root) == before
