"""The run query language: parsing, errors, SQL semantics and a pure-Python oracle."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workspace import (
    Experiment,
    QuerySyntaxError,
    RunStatus,
    UnknownFieldError,
    Workspace,
)
from molexp.workspace._index import RunIndex, format_time, row_for, upsert_rows
from molexp.workspace._query import (
    And,
    Comparison,
    Exists,
    Membership,
    Node,
    Not,
    Or,
    compile_where,
    parse_query,
    render_query,
    resolve_field,
)
from molexp.workspace._records import RunMetadata, utc_now

# ---------------------------------------------------------------------------- parser


def test_parses_the_documented_examples() -> None:
    assert parse_query("lr < 1e-3 or batch == 64") == Or(
        (Comparison("lr", "<", 1e-3), Comparison("batch", "==", 64))
    )
    assert parse_query('status == "failed" and params.model.depth >= 3') == And(
        (Comparison("status", "==", "failed"), Comparison("params.model.depth", ">=", 3))
    )
    assert parse_query("seed in [1, 2]") == Membership("seed", (1, 2))
    assert parse_query("not (x == 1)") == Not(Comparison("x", "==", 1))
    assert parse_query("a != 'it\\'s' and b == true or c == null and d not in []") == Or(
        (
            And((Comparison("a", "!=", "it's"), Comparison("b", "==", True))),
            And((Comparison("c", "==", None), Membership("d", (), negated=True))),
        )
    )
    assert parse_query("(a == 1 and b == 2) and c == -0.5") == And(
        (And((Comparison("a", "==", 1), Comparison("b", "==", 2))), Comparison("c", "==", -0.5))
    )
    assert parse_query("exists(params.x) and not exists(results.y)") == And(
        (Exists("params.x"), Not(Exists("results.y")))
    )
    # ``exists`` is only the test when a parenthesis follows; otherwise it is a parameter
    assert parse_query("exists == 1") == Comparison("exists", "==", 1)


@pytest.mark.parametrize(
    ("query", "column", "reason"),
    [
        ("", 1, "empty query"),
        ("lr <", 5, "expected a value, found end of query"),
        ("lr === 1", 6, "unexpected '='; compare with == or !="),
        ("lr = 1", 4, "unexpected '='; compare with == or !="),
        ("lr == 'open", 7, "unterminated string"),
        ("(lr == 1", 9, "expected ')'"),
        ("lr == 1 and", 12, "expected a field name"),
        ("lr == 1 lr == 2", 9, "unexpected 'lr'"),
        ("lr 1", 4, "expected a comparison operator or 'in' after 'lr'"),
        ("params == 1", 1, "'params' needs a key"),
        ("run.nope == 1", 1, "unknown run field 'nope'"),
        ("x < null", 5, "cannot compare 'x' with null using <"),
        ("x in [1, 2", 11, "expected ',' or ']'"),
        ("x not 1", 7, "expected 'in' after 'not'"),
        ("x == 99999999999999999999", 6, "integer literal out of the 64-bit range"),
        ("x == 1e999", 6, "number literal out of range"),
        ("x == 'a\\q'", 8, "unknown escape \\q"),
        ("x == 1 ; DROP TABLE runs", 8, "unexpected character ';'"),
        ("exists(1)", 8, "expected a field name, found '1'"),
        ("exists(x", 9, "expected ')' after the field of exists("),
        ("exists(params)", 8, "'params' needs a key"),
    ],
)
def test_syntax_errors_point_at_the_column(query: str, column: int, reason: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    assert info.value.column == column
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)
    assert str(info.value).endswith(" " * (column - 1) + "^")


def test_field_resolution() -> None:
    assert resolve_field("status") == ("status", None)
    assert resolve_field("experiment") == ("experiment_id", None)
    assert resolve_field("profile") == ("profile_name", None)
    assert resolve_field("lr") == ("params", "$.lr")
    assert resolve_field("seed") == ("params", "$.seed")
    assert resolve_field("model.depth") == ("params", "$.model.depth")
    assert resolve_field("params.status") == ("params", "$.status")
    assert resolve_field("results.val.loss") == ("results", "$.val.loss")
    assert resolve_field("run.seed") == ("seed", None)
    assert resolve_field("run.status") == ("status", None)


def test_values_are_bound_never_interpolated() -> None:
    sql, args = compile_where(parse_query('name == "x\' OR 1=1 --"'))
    assert "OR 1=1" not in sql
    assert "x' OR 1=1 --" in args


# ---------------------------------------------------------------------------- on real runs


@pytest.fixture
def populated(exp: Experiment) -> Workspace:
    specs: list[dict[str, Any]] = [
        {"lr": 1e-4, "batch": 32, "model": {"depth": 2}, "seed": 1},
        {"lr": 1e-3, "batch": 64, "model": {"depth": 3}, "seed": 2},
        {"lr": 1e-2, "batch": 64, "model": {"depth": 4}, "seed": 3, "name": "wide"},
        {"lr": 1e-2, "batch": 16, "flag": True},
    ]
    for index, params in enumerate(specs):
        run = exp.Run(parameters=params, id=f"r{index}", seed=100 + index)
        if index == 2:
            with pytest.raises(ValueError), run.start():
                raise ValueError("x")
        else:
            with run.start() as ctx:
                ctx.set_result("loss", index / 10)
    return exp.workspace


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("lr < 1e-3 or batch == 64", ["r0", "r1", "r2"]),
        ('status == "failed" and params.model.depth >= 3', ["r2"]),
        ("seed in [1, 2]", ["r0", "r1"]),
        ("run.seed in [100, 103]", ["r0", "r3"]),
        ("not (batch == 64)", ["r0", "r3"]),
        ("batch != 64", ["r0", "r3"]),
        ("model.depth > 2", ["r1", "r2"]),
        ("model.depth == null", ["r3"]),
        ("model != null", ["r0", "r1", "r2"]),
        ("name == 'wide'", ["r2"]),
        ("name < 'x'", ["r2"]),
        ("name < 5", []),
        ("flag == true", ["r3"]),
        ("flag == 1", ["r3"]),
        ("lr == '0.01'", []),
        ("results.loss >= 0.1", ["r1", "r3"]),
        ("results.loss == null", ["r2"]),
        ("status in ['failed', 'succeeded'] and lr not in [0.01]", ["r0", "r1"]),
        (
            "experiment == 'baseline' and project == 'qm9' and profile == 'default'",
            ["r0", "r1", "r2", "r3"],
        ),
        ("id == 'r1' or id == 'r2'", ["r1", "r2"]),
    ],
)
def test_queries_over_runs(populated: Workspace, query: str, expected: list[str]) -> None:
    assert sorted(populated.runs(query).ids) == expected


def test_time_fields_compare_as_iso_text(populated: Workspace) -> None:
    past = format_time(utc_now() - timedelta(days=1))
    future = format_time(utc_now() + timedelta(days=1))
    assert len(populated.runs(f"created_at > '{past}'")) == 4
    assert len(populated.runs(f"finished_at < '{future}'")) == 4
    assert len(populated.runs("started_at > '2000'")) == 4


def test_a_hostile_value_is_just_a_value(populated: Workspace) -> None:
    assert populated.runs('name == "\'; DROP TABLE runs; --"').ids == []
    assert len(populated.runs()) == 4


def test_syntax_error_through_the_workspace(populated: Workspace) -> None:
    with pytest.raises(QuerySyntaxError, match="at column 5"):
        populated.runs("lr <")


@pytest.mark.parametrize(
    ("query", "field", "suggestions"),  # the closest suggestion
    [
        ("elment == 'Cu'", "elment", []),
        ("btch == 64", "btch", ["batch"]),
        ("params.modl.depth > 2", "params.modl.depth", ["params.model.depth"]),
        ("model.dept > 2", "model.dept", ["model.depth"]),
        ("loss < 0.5", "loss", ["results.loss"]),  # a result, not a parameter
        ("results.los == null", "results.los", ["results.loss"]),  # null is no exemption
        ("status == 'failed' or lr in [1] or flg == true", "flg", ["flag"]),
    ],
)
def test_an_unknown_field_is_an_error_naming_the_closest_known_ones(
    populated: Workspace, query: str, field: str, suggestions: list[str]
) -> None:
    with pytest.raises(UnknownFieldError) as info:
        populated.runs(query)
    error = info.value
    assert isinstance(error, ValueError)
    assert (error.field, error.suggestions[:1], error.query) == (field, suggestions, query)
    assert f"unknown field {field!r}" in str(error) and f"exists({field})" in str(error)
    assert "params.batch" in error.known and "results.loss" in error.known


def test_unknown_fields_in_a_mapping_and_in_order_by(populated: Workspace) -> None:
    with pytest.raises(UnknownFieldError, match="did you mean 'batch'"):
        populated.runs(where={"bach": 64})
    with pytest.raises(UnknownFieldError, match="unknown field 'results.los'"):
        populated.runs(order_by=["batch", "-results.los"])
    assert populated.runs(where={"batch": 64, "status": "succeeded"}).ids == ["r1"]


def test_exists_asks_for_a_field_on_purpose(populated: Workspace) -> None:
    assert populated.runs("exists(name)").ids == ["r2"]
    assert populated.runs("exists(model.depth)").ids == ["r0", "r1", "r2"]
    assert populated.runs("not exists(results.loss)").ids == ["r2"]
    assert populated.runs("exists(run.seed) and exists(started_at)").ids == ["r0", "r1", "r2", "r3"]
    # a field nobody has: exists() is false, and the field is exempt in the whole query
    assert populated.runs("exists(elment)").ids == []
    assert len(populated.runs("not exists(elment)")) == 4
    assert populated.runs("exists(params.elment) and elment == 'Cu'").ids == []


def test_a_workspace_without_runs_knows_no_fields(ws: Workspace) -> None:
    assert ws.runs("elment == 'Cu'").ids == []
    ws.Project("p").Experiment("e").Run(id="bare")  # a run with no parameters or results
    with pytest.raises(UnknownFieldError, match="runs have no parameters or results yet"):
        ws.runs("elment == 'Cu'")
    assert ws.runs("status == 'pending'").ids == ["bare"]  # run columns are always known


# ---------------------------------------------------------------------------- properties

FIELDS = ["a", "b", "c.d", "n_x", "m", "m.d", "params.c", "results.r", "status", "id", "run.seed"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.25, 2.0, 1e-3]),
    # The last two: a list's and an object's JSON text, which equals the list or object.
    st.sampled_from(["", "x", "y", "a b", "ü", "[0,1]", '{"d":0}']),
)
literals = scalars.filter(lambda value: value is not None)


@st.composite
def comparisons(draw: st.DrawFn) -> Node:
    field = draw(st.sampled_from(FIELDS))
    if draw(st.integers(0, 5)) == 0:
        return Exists(field)
    if draw(st.booleans()):
        values = tuple(draw(st.lists(scalars, max_size=3)))
        return Membership(field, values, negated=draw(st.booleans()))
    value = draw(scalars)
    ops = ["==", "!="] if value is None else ["==", "!=", "<", "<=", ">", ">="]
    return Comparison(field, draw(st.sampled_from(ops)), value)


nodes: st.SearchStrategy[Node] = st.recursive(
    comparisons(),
    lambda children: st.one_of(
        st.builds(Not, children),
        st.builds(And, st.lists(children, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(children, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=8,
)


@given(nodes)
def test_render_then_parse_round_trips(node: Node) -> None:
    assert parse_query(render_query(node)) == node


@given(st.text(max_size=12), st.floats(allow_nan=False, allow_infinity=False))
def test_literals_round_trip(text: str, number: float) -> None:
    node = And((Comparison("s", "==", text), Comparison("n", "<=", number)))
    assert parse_query(render_query(node)) == node


def _value(metadata: RunMetadata, field: str) -> Any:
    column, path = resolve_field(field)
    if path is None:
        return {"status": metadata.status.value, "id": metadata.id, "seed": metadata.seed}[column]
    value: Any = metadata.parameters if column == "params" else metadata.results
    for key in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return value


def _present(metadata: RunMetadata, field: str) -> bool:
    column, path = resolve_field(field)
    if path is None:
        return _value(metadata, field) is not None
    value: Any = metadata.parameters if column == "params" else metadata.results
    for key in path.removeprefix("$.").split("."):
        if not isinstance(value, dict) or key not in value:
            return False
        value = value[key]
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _equal(left: Any, right: Any) -> bool:
    if left is None or right is None:
        return left is None and right is None
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    return isinstance(left, str) and isinstance(right, str) and left == right


def _ordered(left: Any, op: str, right: Any) -> bool:
    comparable = (_is_number(left) and _is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if not comparable:
        return False
    return bool(
        {
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    )


def evaluate(node: Node, metadata: RunMetadata) -> bool:
    """Reference semantics, written independently of the SQL compiler."""
    if isinstance(node, Comparison):
        value = _value(metadata, node.field)
        if node.op == "==":
            return _equal(value, node.value)
        if node.op == "!=":
            return not _equal(value, node.value)
        return _ordered(value, node.op, node.value)
    if isinstance(node, Membership):
        found = any(_equal(_value(metadata, node.field), item) for item in node.values)
        return not found if node.negated else found
    if isinstance(node, Exists):
        return _present(metadata, node.field)
    if isinstance(node, Not):
        return not evaluate(node.item, metadata)
    if isinstance(node, And):
        return all(evaluate(item, metadata) for item in node.items)
    return any(evaluate(item, metadata) for item in node.items)


json_values = st.one_of(scalars, st.lists(st.integers(0, 2), max_size=2))


@st.composite
def run_records(draw: st.DrawFn, index: int) -> RunMetadata:
    params: dict[str, Any] = draw(
        # "c.d" is one key (not ``c`` then ``d``); "n_x" one that SQLite's json_tree quotes.
        st.dictionaries(st.sampled_from(["a", "b", "c", "seed", "c.d", "n_x"]), json_values)
    )
    if draw(st.booleans()):
        params["m"] = draw(st.dictionaries(st.sampled_from(["d", "e"]), json_values))
    results = draw(st.dictionaries(st.sampled_from(["r", "s"]), json_values))
    return RunMetadata(
        id=draw(st.sampled_from(["x", "y", "a b"])) + str(index),
        experiment_id="e",
        project_id="p",
        workspace_id="w",
        parameters=params,
        results=results,
        status=draw(st.sampled_from(list(RunStatus))),
        seed=draw(st.one_of(st.none(), st.integers(-3, 3))),
    )


@pytest.fixture(scope="module")
def memory_index() -> Iterator[RunIndex]:
    connection = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    yield RunIndex(lambda: connection, lambda: iter(()))
    connection.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(), min_size=0, max_size=6).flatmap(
        lambda seeds: st.tuples(*(run_records(i) for i in range(len(seeds))))
    ),
    nodes,
)
def test_sql_matches_the_reference_semantics(
    memory_index: RunIndex, rows: tuple[RunMetadata, ...], node: Node
) -> None:
    connection = memory_index.connection()
    connection.execute("DELETE FROM runs")
    upsert_rows(connection, [row_for(metadata) for metadata in rows])
    selected = memory_index.select([compile_where(node)], None, None)
    assert sorted(row[2] for row in selected) == sorted(
        metadata.id for metadata in rows if evaluate(node, metadata)
    )
