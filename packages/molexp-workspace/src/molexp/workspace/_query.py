"""The run query language: parser, syntax tree, renderer and SQL compiler.

The language (grammar, how fields resolve, two-valued semantics, ``exists(field)``, the
``UnknownFieldError`` for a field no run has) is specified in docs/howto/query.md; every value is
bound as an SQL parameter.
"""

from __future__ import annotations

import difflib
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, TypeAlias

from ._errors import QuerySyntaxError, UnknownFieldError
from ._index import VALUE_COLUMNS, VALUES_TABLE

__all__ = [
    "And",
    "Comparison",
    "Exists",
    "Membership",
    "Not",
    "Or",
    "QuerySyntaxError",
    "check_fields",
    "compile_order",
    "compile_where",
    "parse_query",
    "render_query",
    "resolve_field",
    "where_from_mapping",
]

Scalar: TypeAlias = str | int | float | bool | None
ComparisonOp = Literal["==", "!=", "<", "<=", ">", ">="]

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

# Run columns addressable in queries: query name -> column of the ``runs`` table.
RUN_COLUMNS: dict[str, str] = {
    "id": "id",
    "status": "status",
    "experiment": "experiment_id",
    "project": "project_id",
    "created_at": "created_at",
    "updated_at": "updated_at",
    "started_at": "started_at",
    "finished_at": "finished_at",
    "profile": "profile_name",
    "config_hash": "config_hash",
    "workflow_id": "workflow_id",
    "replica_index": "replica_index",
}
# Only reachable as ``run.<name>`` (a bare ``seed`` is the parameter ``params.seed``).
RUN_ONLY_COLUMNS: dict[str, str] = {"seed": "seed"}
JSON_COLUMNS = ("params", "results", "config")
METRICS_COLUMN = "metrics"
METRIC_STATS = ("last", "min", "max", "count", "last_step")
"""``metrics.<name>.<stat>``; a bare ``metrics.<name>`` is the last value."""


@dataclass(frozen=True, slots=True)
class Comparison:
    field: str
    op: ComparisonOp
    value: Scalar


@dataclass(frozen=True, slots=True)
class Membership:
    field: str
    values: tuple[Scalar, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    field: str


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node: TypeAlias = Comparison | Membership | Exists | And | Or | Not


# ---------------------------------------------------------------------------- lexer

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE | re.DOTALL,
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPES = {"\\": "\\", '"': '"', "'": "'", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number | name | keyword | string | op | punct | end
    text: str
    column: int


def _unescape(body: str, query: str, column: int) -> str:
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
            continue
        code = body[index + 1]
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
            index += 2
        elif code == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", body[index + 2 : index + 6]):
            out.append(chr(int(body[index + 2 : index + 6], 16)))
            index += 6
        else:
            raise QuerySyntaxError(f"unknown escape \\{code} in string", query, column + 1 + index)
    return "".join(out)


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            char = query[position]
            if char in "\"'":
                raise QuerySyntaxError("unterminated string", query, position + 1)
            if char in "=!":
                raise QuerySyntaxError(
                    f"unexpected {char!r}; compare with == or !=", query, position + 1
                )
            raise QuerySyntaxError(f"unexpected character {char!r}", query, position + 1)
        kind = match.lastgroup
        assert kind is not None
        text = match.group()
        if kind == "name" and text in _KEYWORDS:
            kind = "keyword"
        if kind != "space":
            tokens.append(_Token(kind, text, position + 1))
        position = match.end()
    tokens.append(_Token("end", "", len(query) + 1))
    return tokens


# ---------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.index = 0

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def error(self, message: str, token: _Token | None = None) -> QuerySyntaxError:
        return QuerySyntaxError(message, self.query, (token or self.current).column)

    def describe(self, token: _Token) -> str:
        return "end of query" if token.kind == "end" else repr(token.text)

    def accept(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.current
        if token.kind == kind and (text is None or token.text == text):
            self.index += 1
            return token
        return None

    def expect(self, kind: str, text: str, what: str) -> _Token:
        token = self.accept(kind, text)
        if token is None:
            raise self.error(f"expected {what}, found {self.describe(self.current)}")
        return token

    def parse(self) -> Node:
        if self.current.kind == "end":
            raise self.error("empty query")
        node = self.or_expr()
        if self.current.kind != "end":
            raise self.error(
                f"unexpected {self.describe(self.current)}; expected 'and', 'or' or the end"
            )
        return node

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.accept("keyword", "or"):
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.not_expr()]
        while self.accept("keyword", "and"):
            items.append(self.not_expr())
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self) -> Node:
        if self.accept("keyword", "not"):
            return Not(self.not_expr())
        if self.accept("punct", "("):
            node = self.or_expr()
            self.expect("punct", ")", "')'")
            return node
        return self.comparison()

    def field(self) -> str:
        token = self.current
        if token.kind != "name":
            raise self.error(f"expected a field name, found {self.describe(token)}")
        self.index += 1
        try:
            resolve_field(token.text)
        except ValueError as exc:
            raise self.error(str(exc), token) from None
        return token.text

    def comparison(self) -> Node:
        following = self.tokens[min(self.index + 1, len(self.tokens) - 1)]
        if self.current.text == "exists" and following.kind == "punct" and following.text == "(":
            self.index += 2
            exists = Exists(self.field())
            self.expect("punct", ")", "')' after the field of exists(")
            return exists
        field = self.field()
        if self.accept("keyword", "not"):
            self.expect("keyword", "in", "'in' after 'not'")
            return Membership(field, self.literal_list(), negated=True)
        if self.accept("keyword", "in"):
            return Membership(field, self.literal_list())
        op_token = self.accept("op")
        if op_token is None:
            raise self.error(
                f"expected a comparison operator or 'in' after {field!r}, "
                f"found {self.describe(self.current)}"
            )
        value_token = self.current
        value = self.literal()
        op: ComparisonOp = op_token.text  # type: ignore[assignment]
        if value is None and op not in ("==", "!="):
            raise self.error(f"cannot compare {field!r} with null using {op}", value_token)
        return Comparison(field, op, value)

    def literal_list(self) -> tuple[Scalar, ...]:
        self.expect("punct", "[", "'[' to start the list")
        values: list[Scalar] = []
        if self.accept("punct", "]"):
            return ()
        values.append(self.literal())
        while self.accept("punct", ","):
            values.append(self.literal())
        self.expect("punct", "]", "',' or ']'")
        return tuple(values)

    def literal(self) -> Scalar:
        token = self.current
        self.index += 1
        if token.kind == "string":
            return _unescape(token.text[1:-1], self.query, token.column)
        if token.kind == "number":
            if re.fullmatch(r"-?\d+", token.text):
                number = int(token.text)
                if not INT64_MIN <= number <= INT64_MAX:
                    raise self.error("integer literal out of the 64-bit range", token)
                return number
            value = float(token.text)
            if value in (float("inf"), float("-inf")):
                raise self.error("number literal out of range", token)
            return value
        if token.kind == "keyword" and token.text in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[token.text]
        self.index -= 1
        raise self.error(f"expected a value, found {self.describe(token)}", token)


@lru_cache(maxsize=256)
def parse_query(query: str) -> Node:
    """Parse ``query`` into a syntax tree, raising ``QuerySyntaxError`` on malformed input."""
    return _Parser(query).parse()


# ---------------------------------------------------------------------------- renderer


def _render_literal(value: Scalar) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return repr(value)
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    )
    escaped = escaped.replace("\t", "\\t")
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def render_query(node: Node) -> str:
    """Text that parses back to exactly ``node`` (nested and/or are parenthesised)."""

    def child(item: Node) -> str:
        text = render_query(item)
        return f"({text})" if isinstance(item, And | Or) else text

    if isinstance(node, Comparison):
        return f"{node.field} {node.op} {_render_literal(node.value)}"
    if isinstance(node, Membership):
        values = ", ".join(_render_literal(value) for value in node.values)
        return f"{node.field} {'not in' if node.negated else 'in'} [{values}]"
    if isinstance(node, Exists):
        return f"exists({node.field})"
    if isinstance(node, Not):
        return f"not {child(node.item)}"
    keyword = " and " if isinstance(node, And) else " or "
    return keyword.join(child(item) for item in node.items)


# ---------------------------------------------------------------------------- compiler


def resolve_field(field: str) -> tuple[str, str | None]:
    """Map a query field to ``(column, json_path)``; ``json_path`` is None for plain columns."""
    head, _, rest = field.partition(".")
    if not rest:
        if field in RUN_COLUMNS:
            return RUN_COLUMNS[field], None
        if field in JSON_COLUMNS or field in ("run", METRICS_COLUMN):
            raise ValueError(f"{field!r} needs a key, e.g. {field}.<name>")
        return "params", f"$.{field}"
    if head in JSON_COLUMNS:
        return head, f"$.{rest}"
    if head == METRICS_COLUMN:
        name, _, stat = rest.rpartition(".")
        if not name or stat not in METRIC_STATS:
            name, stat = rest, "last"
        return METRICS_COLUMN, f'$."{name}".{stat}'

    if head == "run":
        if rest in RUN_COLUMNS:
            return RUN_COLUMNS[rest], None
        if rest in RUN_ONLY_COLUMNS:
            return RUN_ONLY_COLUMNS[rest], None
        known = ", ".join(sorted({*RUN_COLUMNS, *RUN_ONLY_COLUMNS}))
        raise ValueError(f"unknown run field {rest!r}; run fields are: {known}")
    return "params", f"$.{field}"


def _field_sql(field: str, args: list[Any]) -> str:
    column, path = resolve_field(field)
    if path is None:
        return column
    args.append(path)
    return f"json_extract({column}, ?)"


@dataclass(frozen=True, slots=True)
class _ValueTest:
    """A test of one JSON value that a run lacking the value fails, answered from the index of
    JSON values: ``test`` is SQL over ``{v}`` (the value) with ``args`` bound in order."""

    source: str
    path: str
    test: str
    args: tuple[Scalar, ...]

    def sql(self, alias: str, args: list[Any]) -> str:
        args.extend((self.source, self.path, *self.args))
        return f"{alias}.source = ? AND {alias}.path = ?" + self.test.format(v=f"{alias}.value")


def _value_test(node: Node) -> _ValueTest | None:
    """The positive value test ``node`` is (an equality to a non-null value, an ordering, a
    non-negated ``in`` without null, ``exists``) on a field of an indexed JSON column; None for
    anything else.

    The index holds, per run, the ``json_extract`` value of every path a query can spell, so
    the runs it finds are exactly those for which the same test of ``json_extract`` is true."""
    args: tuple[Scalar, ...]
    if isinstance(node, Comparison):
        if node.value is None or node.op == "!=":
            return None
        if node.op == "==":
            test, args = " AND {v} = ?", (node.value,)
        else:
            types = "('text')" if isinstance(node.value, str) else "('integer', 'real')"
            test, args = f" AND typeof({{v}}) IN {types} AND {{v}} {node.op} ?", (node.value,)
    elif isinstance(node, Membership):
        if node.negated or not node.values or None in node.values:
            return None
        test, args = f" AND {{v}} IN ({', '.join('?' * len(node.values))})", node.values
    elif isinstance(node, Exists):
        test, args = "", ()
    else:
        return None
    column, path = resolve_field(node.field)
    if path is None or column not in VALUE_COLUMNS:
        return None
    return _ValueTest(column, path, test, args)


def _runs_passing(tests: Sequence[_ValueTest], args: list[Any]) -> str:
    """``rowid IN`` the runs passing every test: one walk of the value index for the first,
    a point lookup per run found for each of the others."""
    first, *others = tests
    sql = f"SELECT v0.run_rowid FROM {VALUES_TABLE} AS v0"
    for number, test in enumerate(others, start=1):
        alias = f"v{number}"
        sql += f" JOIN {VALUES_TABLE} AS {alias} ON {alias}.run_rowid = v0.run_rowid AND "
        sql += test.sql(alias, args)
    sql += " WHERE " + first.sql("v0", args)
    return f"(rowid IN ({sql}))"


def _compile(node: Node, args: list[Any]) -> str:
    test = _value_test(node)
    if test is not None:
        return _runs_passing([test], args)
    if isinstance(node, Comparison):
        if node.value is None:
            expr = _field_sql(node.field, args)
            return f"({expr} IS {'NOT ' if node.op == '!=' else ''}NULL)"
        if node.op == "!=":
            negated = _value_test(Comparison(node.field, "==", node.value))
            if negated is not None:
                return f"(NOT {_runs_passing([negated], args)})"
        if node.op in ("==", "!="):
            expr = _field_sql(node.field, args)
            args.append(node.value)
            return f"({expr} IS {'NOT ' if node.op == '!=' else ''}?)"
        types = "('text')" if isinstance(node.value, str) else "('integer', 'real')"
        type_expr = _field_sql(node.field, args)
        expr = _field_sql(node.field, args)
        args.append(node.value)
        return f"(typeof({type_expr}) IN {types} AND {expr} {node.op} ?)"
    if isinstance(node, Membership):
        if not node.values:
            return "(1)" if node.negated else "(0)"
        if node.negated:
            negated = _value_test(Membership(node.field, node.values))
            if negated is not None:
                return f"(NOT {_runs_passing([negated], args)})"
        tests = []
        for value in node.values:
            expr = _field_sql(node.field, args)
            if value is None:
                tests.append(f"{expr} IS NULL")
            else:
                args.append(value)
                tests.append(f"{expr} IS ?")
        joined = " OR ".join(tests)
        return f"(NOT ({joined}))" if node.negated else f"({joined})"
    if isinstance(node, Exists):
        column, path = resolve_field(node.field)
        if path is None:
            return f"({column} IS NOT NULL)"
        args.append(path)
        return f"(json_type({column}, ?) IS NOT NULL)"
    if isinstance(node, Not):
        return f"(NOT {_compile(node.item, args)})"
    if isinstance(node, And):
        # The value tests of a conjunction are answered together, by one join in the index.
        # Equalities lead (they usually find the fewest runs), presence tests come last.
        value_tests = sorted(
            (test for item in node.items if (test := _value_test(item)) is not None),
            key=lambda test: (not test.test.startswith(" AND {v} ="), not test.test),
        )
        rest = [item for item in node.items if _value_test(item) is None]
        parts = [_runs_passing(value_tests, args)] if value_tests else []
        parts.extend(_compile(item, args) for item in rest)
        return "(" + " AND ".join(parts) + ")"
    return "(" + " OR ".join(_compile(item, args) for item in node.items) + ")"


def compile_where(node: Node) -> tuple[str, list[Any]]:
    """SQL boolean expression over the ``runs`` table plus its bound arguments."""
    args: list[Any] = []
    return _compile(node, args), args


def where_from_mapping(where: Mapping[str, Any]) -> Node | None:
    """Equalities ``{field: value}`` (a list/tuple value means ``field in [...]``) as a tree."""
    items: list[Node] = []
    for field, value in where.items():
        if not isinstance(field, str):
            raise ValueError(f"query field names must be strings, got {field!r}")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", field):
            raise ValueError(f"query field {field!r} is not a dotted identifier path")
        resolve_field(field)
        if isinstance(value, list | tuple):
            for item in value:
                _check_scalar(field, item)
            items.append(Membership(field, tuple(value)))
        else:
            _check_scalar(field, value)
            items.append(Comparison(field, "==", value))
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items))


def _check_scalar(field: str, value: object) -> None:
    if value is not None and not isinstance(value, str | int | float | bool):
        raise ValueError(
            f"query value for {field!r} must be a string, number, bool or None, got {value!r}"
        )


def compile_order(order_by: str | Sequence[str]) -> tuple[str, list[Any]]:
    """``"field"`` / ``"-field"`` (or a list of them) as an SQL ORDER BY list plus arguments."""
    specs = [order_by] if isinstance(order_by, str) else list(order_by)
    args: list[Any] = []
    parts: list[str] = []
    for spec in specs:
        descending = spec.startswith("-")
        field = spec[1:] if descending else spec
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", field):
            raise ValueError(f"order_by field {spec!r} is not a dotted identifier path")
        parts.append(f"{_field_sql(field, args)} {'DESC' if descending else 'ASC'}")
    return ", ".join(parts), args


# ---------------------------------------------------------------------------- known fields

_KEY_PATH = re.compile(r'\$((?:\.(?:[A-Za-z_][A-Za-z0-9_]*|"[A-Za-z_][A-Za-z0-9_]*"))+)')
"""A ``json_tree`` full key that a query field can spell: object members whose names are
identifiers (SQLite quotes some, e.g. ``$."n_strains"``, depending on its version)."""


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, And | Or):
        for item in node.items:
            yield from _walk(item)
    elif isinstance(node, Not):
        yield from _walk(node.item)


def check_fields(
    connection: sqlite3.Connection,
    node: Node | None,
    order_by: str | Sequence[str] | None = None,
    query: str | None = None,
) -> None:
    """Raise ``UnknownFieldError`` for the first field of ``node`` or ``order_by`` that no
    run in the ``runs`` table has.

    Run columns are always known; fields named in an ``exists(...)`` of the query are
    exempt (asked for on purpose); a table without rows knows nothing and checks nothing.
    Each check stops at the first run having the field; only an unknown field pays for
    collecting the known ones (for the suggestions).
    """
    fields: dict[tuple[str, str | None], str] = {}
    on_purpose: set[tuple[str, str | None]] = set()
    for item in _walk(node) if node is not None else ():
        if isinstance(item, Exists):
            on_purpose.add(resolve_field(item.field))
        elif isinstance(item, Comparison | Membership):
            fields.setdefault(resolve_field(item.field), item.field)
    specs = [order_by] if isinstance(order_by, str) else list(order_by or ())
    for spec in specs:
        field = spec.removeprefix("-")
        fields.setdefault(resolve_field(field), field)
    unchecked = [
        (column, path, field)
        for (column, path), field in fields.items()
        if path is not None and (column, path) not in on_purpose
    ]
    if not unchecked or connection.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None:
        return
    for column, path, field in unchecked:
        if column in VALUE_COLUMNS:
            sql = f"SELECT 1 FROM {VALUES_TABLE} WHERE source = '{column}' AND path = ? LIMIT 1"
        else:
            sql = f"SELECT 1 FROM runs WHERE json_type({column}, ?) IS NOT NULL LIMIT 1"
        if connection.execute(sql, (path,)).fetchone() is None:
            known = known_fields(connection)
            stored = {resolve_field(name): name for name in reversed(known)}  # first spelling
            listed = sorted(name for (_, path), name in stored.items() if path is not None)
            raise UnknownFieldError(field, closest_fields(field, known), listed, query)


def known_fields(connection: sqlite3.Connection) -> list[str]:
    """Every field some run has, as a query spells it: run columns, then ``params.<path>``
    (also bare, when that means the same), ``results.<path>``, ``config.<path>`` and
    ``metrics.<name>`` with ``metrics.<name>.<stat>``."""
    known = [*RUN_COLUMNS, *(f"run.{name}" for name in (*RUN_COLUMNS, *RUN_ONLY_COLUMNS))]
    for column in (*JSON_COLUMNS, METRICS_COLUMN):
        rows = connection.execute(
            f"SELECT DISTINCT tree.fullkey FROM runs, json_tree(runs.{column}) AS tree"
        ).fetchall()
        paths = sorted(
            match.group(1)[1:].replace('"', "")
            for (key,) in rows
            if (match := _KEY_PATH.fullmatch(str(key)))
        )
        for path in paths:
            known.append(f"{column}.{path}")
            if column == "params" and resolve_field(path) == ("params", f"$.{path}"):
                known.append(path)
    return known


def closest_fields(field: str, known: Sequence[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` known fields ``field`` may be a typo of: the most similar spellings
    (difflib), then fields with the same last name (``loss`` -> ``results.loss``); one
    spelling per field."""
    leaf = field.rpartition(".")[2]
    candidates = [
        *difflib.get_close_matches(field, known, n=limit * 3, cutoff=0.75),
        *(name for name in known if name.rpartition(".")[2] == leaf),
    ]
    chosen: dict[tuple[str, str | None], str] = {}
    for name in candidates:
        if name != field:
            chosen.setdefault(resolve_field(name), name)
    return list(chosen.values())[:limit]
