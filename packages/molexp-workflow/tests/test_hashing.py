"""Tests for the canonical value hashing behind cache keys and config hashes."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
import json
import math
import os
import random
import subprocess
import sys
import uuid
from collections import OrderedDict, namedtuple
from decimal import Decimal
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from molexp.workflow._hashing import (
    UnhashableInputError,
    canonical_json,
    dumps_canonical,
    hash_value,
    to_canonical,
)
from pydantic import BaseModel

# --- strategies --------------------------------------------------------------------------------

keys = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
scalars = (
    keys
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.builds(PurePosixPath, st.text(alphabet="ab/.", max_size=6))
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(keys, children, max_size=4)
        | st.dictionaries(st.text(max_size=4), children, max_size=4)
        | st.frozensets(keys, max_size=4)
        | st.sets(keys, max_size=4)
    ),
    max_leaves=12,
)


def typed_key(value: Any) -> Any:
    """An independent, type-aware model of "same value": what hashing must agree with."""
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value.hex())
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, bytes | bytearray):
        return ("bytes", bytes(value))
    if isinstance(value, PurePosixPath):
        return ("path", value.as_posix())
    if isinstance(value, list):
        return ("list", tuple(typed_key(item) for item in value))
    if isinstance(value, tuple):
        return ("tuple", tuple(typed_key(item) for item in value))
    if isinstance(value, dict):
        return ("dict", frozenset((typed_key(k), typed_key(v)) for k, v in value.items()))
    if isinstance(value, set | frozenset):
        return ("set", frozenset(typed_key(item) for item in value))
    raise AssertionError(f"unexpected {type(value)}")


# --- properties --------------------------------------------------------------------------------


@given(values)
def test_hash_is_a_function_of_the_value_not_the_object(value: Any) -> None:
    assert hash_value(value) == hash_value(copy.deepcopy(value))


@settings(max_examples=300)
@given(values, values)
def test_hashes_agree_with_type_aware_equality(a: Any, b: Any) -> None:
    assert (hash_value(a) == hash_value(b)) == (typed_key(a) == typed_key(b))


@given(st.dictionaries(keys, values, max_size=6), st.randoms())
def test_dict_key_order_does_not_matter(mapping: dict[Any, Any], rnd: random.Random) -> None:
    items = list(mapping.items())
    rnd.shuffle(items)
    assert hash_value(dict(items)) == hash_value(mapping)
    assert canonical_json(dict(items)) == canonical_json(mapping)


@given(st.sets(keys, max_size=8), st.randoms())
def test_set_order_does_not_matter(elements: set[Any], rnd: random.Random) -> None:
    shuffled = list(elements)
    rnd.shuffle(shuffled)
    assert hash_value(set(shuffled)) == hash_value(elements)
    assert hash_value(frozenset(reversed(shuffled))) == hash_value(elements)


@given(values)
def test_canonical_tree_is_plain_json(value: Any) -> None:
    tree = to_canonical(value)
    assert json.loads(json.dumps(tree)) == json.loads(canonical_json(value))
    assert dumps_canonical(tree) == canonical_json(value)


@given(st.integers())
def test_numeric_kinds_are_distinct(number: int) -> None:
    variants = [number, float(number), str(number), Path(str(number)), [number], (number,)]
    if number in (0, 1):
        variants.append(bool(number))
    digests = [hash_value(variant) for variant in variants]
    assert len(set(digests)) == len(digests)


def test_one_one_point_zero_true_string_and_path_all_differ() -> None:
    digests = {hash_value(v) for v in (1, 1.0, True, "1", Path("1"), b"1", Decimal("1"))}
    assert len(digests) == 7


def test_special_floats() -> None:
    assert hash_value(0.0) != hash_value(-0.0)
    assert hash_value(math.inf) != hash_value(-math.inf)
    assert hash_value(math.nan) == hash_value(float("nan"))
    assert hash_value(math.nan) != hash_value("nan")
    assert hash_value([math.inf]) != hash_value([{"$float": "inf"}])


def test_str_and_bytes_and_list_and_tuple_differ() -> None:
    assert hash_value("ab") != hash_value(b"ab")
    assert hash_value([1, 2]) != hash_value((1, 2))
    assert hash_value(bytearray(b"ab")) == hash_value(b"ab")


def test_escaped_dicts_cannot_impersonate_tagged_values() -> None:
    assert hash_value({"$path": "x"}) != hash_value(Path("x"))
    assert hash_value({"$tuple": [1]}) != hash_value((1,))
    assert hash_value({1: "a"}) != hash_value({"1": "a"})
    assert hash_value({(1, 2): "a", "b": 2}) == hash_value({"b": 2, (1, 2): "a"})


def test_mapping_types_hash_like_dicts() -> None:
    plain = {"a": 1, "b": [2]}
    assert hash_value(OrderedDict(reversed(list(plain.items())))) == hash_value(plain)
    assert hash_value(MappingProxyType(plain)) == hash_value(plain)


@dataclasses.dataclass
class Point:
    x: int
    y: float


@dataclasses.dataclass
class OtherPoint:
    x: int
    y: float


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


class Params(BaseModel):
    lr: float
    layers: list[int]


Pair = namedtuple("Pair", "a b")


def test_structured_types() -> None:
    assert hash_value(Point(1, 2.0)) == hash_value(Point(1, 2.0))
    assert hash_value(Point(1, 2.0)) != hash_value(Point(1, 3.0))
    assert hash_value(Point(1, 2.0)) != hash_value(OtherPoint(1, 2.0))
    assert hash_value(Color.RED) != hash_value(Color.BLUE)
    assert hash_value(Color.RED) != hash_value(1)
    assert hash_value(Level.LOW) != hash_value(1)
    assert hash_value(Params(lr=0.1, layers=[1])) == hash_value(Params(lr=0.1, layers=[1]))
    assert hash_value(Params(lr=0.1, layers=[1])) != hash_value(Params(lr=0.2, layers=[1]))
    assert hash_value(Params(lr=0.1, layers=[1])) != hash_value({"lr": 0.1, "layers": [1]})
    assert hash_value(Pair(1, 2)) != hash_value((1, 2))
    assert hash_value(Pair(1, 2)) == hash_value(Pair(1, 2))


def test_dates_decimals_uuids_complex() -> None:
    moment = dt.datetime(2024, 1, 2, 3, 4, 5, 6)
    assert hash_value(moment) == hash_value(dt.datetime(2024, 1, 2, 3, 4, 5, 6))
    assert hash_value(moment) != hash_value(moment.replace(tzinfo=dt.UTC))
    assert hash_value(moment.date()) != hash_value(moment)
    assert hash_value(moment.time()) != hash_value(moment.date())
    assert hash_value(dt.timedelta(seconds=1)) != hash_value(dt.timedelta(seconds=2))
    assert hash_value(Decimal("1.5")) != hash_value(1.5)
    assert hash_value(uuid.UUID(int=1)) != hash_value(str(uuid.UUID(int=1)))
    assert hash_value(1 + 2j) != hash_value((1.0, 2.0))


class Opaque:
    pass


def test_unhashable_names_type_and_path() -> None:
    with pytest.raises(UnhashableInputError) as info:
        hash_value({"a": [0, 1, Opaque()]}, label="inputs")
    assert str(info.value) == "inputs['a'][2]: cannot hash object of type Opaque"
    assert info.value.path == "inputs['a'][2]"
    assert info.value.type_name == "Opaque"
    assert isinstance(info.value, TypeError)


def test_unhashable_inside_dataclass_set_and_key() -> None:
    with pytest.raises(UnhashableInputError, match=r"value\.x: cannot hash object of type"):
        hash_value(Point(Opaque(), 1.0))  # type: ignore[arg-type]
    with pytest.raises(
        UnhashableInputError, match=r"\{\.\.\.\}: cannot hash object of type Opaque"
    ):
        hash_value({Opaque()})
    with pytest.raises(UnhashableInputError, match=r"<key .*>: cannot hash object of type Opaque"):
        hash_value({Opaque(): 1})


def test_functions_are_not_silently_hashed() -> None:
    with pytest.raises(UnhashableInputError, match="function"):
        hash_value([print, len])


def test_cycles_are_an_error_but_shared_references_are_fine() -> None:
    shared = [1, 2]
    assert hash_value([shared, shared]) == hash_value([[1, 2], [1, 2]])
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UnhashableInputError, match=r"value\[1\]: cyclic reference"):
        hash_value(loop)
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    with pytest.raises(UnhashableInputError, match="cyclic"):
        hash_value(mapping)


def test_very_deep_nesting_is_a_clear_error() -> None:
    deep: list[Any] = []
    for _ in range(sys.getrecursionlimit() * 2):
        deep = [deep]
    with pytest.raises(UnhashableInputError, match="nested too deeply") as info:
        hash_value(deep)
    assert len(str(info.value)) < 300


def test_hash_mode_and_json_mode_agree_on_equality() -> None:
    data = bytes(range(256)) * 100
    assert hash_value(data) == hash_value(bytes(data))
    assert hash_value(data) != hash_value(data[:-1])
    assert to_canonical(b"hi") == {"$bytes": "aGk="}


SAMPLES = """[
    1, 1.0, True, "1", None, -0.0, float("nan"), float("inf"), b"x", (1, 2), [1, 2],
    {"b": 1, "a": {3, 2, 1}}, {1: "x", "y": frozenset({"a", "b"})}, Path("a/b"),
    Decimal("2.50"), uuid.UUID(int=7), dt.datetime(2020, 1, 1), 3 + 4j,
    "unicode \\u00e9 \\ud83d\\ude00",
]"""


def test_hashes_are_stable_across_processes() -> None:
    script = (
        "import datetime as dt, uuid, json\n"
        "from decimal import Decimal\n"
        "from pathlib import Path\n"
        "from molexp.workflow._hashing import hash_value\n"
        f"print(json.dumps([hash_value(v) for v in {SAMPLES}]))\n"
    )
    namespace: dict[str, Any] = {"dt": dt, "uuid": uuid, "Decimal": Decimal, "Path": Path}
    local = [hash_value(v) for v in eval(SAMPLES, namespace)]
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
        )
        assert json.loads(out.stdout) == local


def test_numpy_arrays_and_scalars() -> None:
    np = pytest.importorskip("numpy")
    array = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert hash_value(array) == hash_value(array.copy())
    assert hash_value(array) == hash_value(np.asfortranarray(array))
    assert hash_value(array) != hash_value(array.reshape(3, 2))
    assert hash_value(array) != hash_value(array.astype(np.float32))
    assert hash_value(array) != hash_value(array.tolist())
    assert hash_value(array.T) != hash_value(array)
    assert hash_value(np.float64(1.0)) != hash_value(1.0)
    assert hash_value(np.float64(1.0)) != hash_value(np.float32(1.0))
    assert hash_value(np.int64(3)) == hash_value(np.int64(3))
    objects = np.array([1, "a"], dtype=object)
    assert hash_value(objects) == hash_value(np.array([1, "a"], dtype=object))
    with pytest.raises(UnhashableInputError, match="Opaque"):
        hash_value(np.array([Opaque()], dtype=object))
