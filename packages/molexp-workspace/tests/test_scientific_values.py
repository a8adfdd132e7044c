"""Scientific values (numpy, pandas, Path, datetime, Decimal) become plain JSON, losslessly."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import IntEnum
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from molexp.workspace import Experiment, Workspace, derive_run_id
from molexp.workspace._hashing import MAX_ARRAY_ELEMENTS, plain_json
from workspace_helpers import on_disk


def round_trip(value: Any) -> Any:
    """What a JSON record gives back for ``value``."""
    return json.loads(json.dumps(value, allow_nan=False))


INT_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


@given(st.sampled_from(INT_DTYPES).flatmap(lambda name: hnp.from_dtype(np.dtype(name))))
def test_numpy_integers_become_equal_ints(value: np.integer[Any]) -> None:
    plain = plain_json(value, "v")
    assert type(plain) is int and plain == int(value)
    assert round_trip(plain) == plain


@given(
    st.sampled_from(FLOAT_DTYPES).flatmap(
        lambda name: hnp.from_dtype(np.dtype(name), allow_nan=False, allow_infinity=False)
    )
)
def test_numpy_floats_become_the_same_float(value: np.floating[Any]) -> None:
    plain = plain_json(value, "v")
    assert type(plain) is float and np.longdouble(plain) == value  # exactly the same number
    assert round_trip(plain) == plain


@given(
    hnp.arrays(
        dtype=st.sampled_from(["int64", "uint8", "float64", "float32", "bool", "<U3"]),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
        elements={"allow_nan": False, "allow_infinity": False},
    )
)
def test_small_numpy_arrays_become_nested_lists(array: np.ndarray[Any, Any]) -> None:
    plain = plain_json(array, "v")
    assert plain == array.tolist()
    assert round_trip(plain) == plain
    assert np.array_equal(np.array(plain, dtype=array.dtype), array)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_keep_their_value(value: Decimal) -> None:
    plain = plain_json(value, "v")
    assert round_trip(plain) == plain
    if isinstance(plain, int):
        assert Decimal(plain) == value and -(2**63) <= plain < 2**63
    elif isinstance(plain, float):
        assert Decimal(repr(plain)) == value  # the JSON text is the same number
    else:
        assert isinstance(plain, str) and Decimal(plain) == value


def test_decimal_choices() -> None:
    assert plain_json(Decimal("4.000"), "v") == 4
    assert plain_json(Decimal("0.1"), "v") == 0.1
    assert plain_json(Decimal("0.10000000000000000001"), "v") == "0.10000000000000000001"
    assert plain_json(Decimal("1e30"), "v") == 1e30
    with pytest.raises(ValueError, match=r"result 'x' is Decimal\('NaN'\)"):
        plain_json(Decimal("nan"), "result 'x'")


_offsets = st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)).map(
    lambda delta: timezone(timedelta(minutes=delta // timedelta(minutes=1)))
)


def _utc_wall(value: datetime) -> datetime:
    offset = value.utcoffset()
    assert offset is not None
    return value.replace(tzinfo=None) - offset


@given(st.datetimes(timezones=st.one_of(st.timezones(), _offsets)))
# An ambiguous local time (the repeated hour of a DST change): Python never calls it equal to a
# time of another zone, so the instant and the offset are compared instead.
@example(datetime(1999, 10, 31, 1, 0, tzinfo=ZoneInfo("MST7MDT")))
def test_aware_datetimes_become_iso_text_with_their_offset(value: datetime) -> None:
    plain = plain_json(value, "v")
    parsed = datetime.fromisoformat(plain)
    assert parsed.utcoffset() == value.utcoffset()
    assert _utc_wall(parsed) == _utc_wall(value)  # the same instant
    assert parsed.replace(tzinfo=None) == value.replace(tzinfo=None)  # the same wall time
    assert round_trip(plain) == plain


@pytest.fixture
def kolkata_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("kolkata_time")
def test_naive_datetimes_are_local_time_and_get_the_local_offset() -> None:
    assert plain_json(datetime(2026, 3, 1, 12, 30), "v") == "2026-03-01T12:30:00+05:30"
    stamp = pd.Timestamp("2026-03-01 12:30:00.000000001")
    assert plain_json(stamp, "v") == "2026-03-01T12:30:00.000000001+05:30"


def test_dates_paths_and_pandas_timestamps() -> None:
    assert plain_json(date(2026, 3, 1), "v") == "2026-03-01"
    assert plain_json(Path("/data/qm9.xyz"), "v") == "/data/qm9.xyz"
    assert plain_json(PureWindowsPath(r"C:\data\qm9.xyz"), "v") == "C:/data/qm9.xyz"
    assert plain_json(PurePosixPath("a/b"), "v") == "a/b"
    stamp = pd.Timestamp("2026-03-01 12:00:00.000000001", tz="UTC")
    assert plain_json(stamp, "v") == "2026-03-01T12:00:00.000000001+00:00"
    assert plain_json(pd.Timestamp("2026-06-01", tz="Europe/Paris"), "v").endswith("+02:00")


def test_subclasses_of_plain_types_become_plain() -> None:
    class Level(IntEnum):
        high = 3

    plain = plain_json({"level": Level.high, "flag": np.bool_(True), "name": np.str_("Cu")}, "v")
    assert plain == {"level": 3, "flag": True, "name": "Cu"}
    assert [type(item) for item in plain.values()] == [int, bool, str]


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (np.float64("nan"), ValueError, "cannot hold NaN or infinity"),
        (np.float32("inf"), ValueError, "cannot hold NaN or infinity"),
        (np.array([1.0, math.nan]), ValueError, r"results\['x'\]\[1\] is nan"),
        (pd.NA, ValueError, "a missing value"),
        (pd.NaT, ValueError, "a missing value"),
        (np.ma.masked_array([1, 2], mask=[0, 1]), ValueError, "masked numpy array"),
        (np.longdouble(1) / 3, ValueError, "cannot hold exactly"),
        (np.zeros(MAX_ARRAY_ELEMENTS + 1), ValueError, "10,001 elements.*save it as an artifact"),
        (np.array([1 + 2j]), TypeError, "dtype complex128"),
        (np.datetime64("2026-01-01"), TypeError, r"numpy\.datetime64"),
        ({1, 2}, TypeError, r"is a set, .*sorted\(value\)"),
        (b"bytes", TypeError, r"is a bytes, .*decode"),
        (timedelta(seconds=3), TypeError, r"total_seconds\(\)"),
        (pd.Series([1, 2]), TypeError, r"pandas\.Series.*tolist\(\)"),
        (object(), TypeError, r"is a object, which a JSON record cannot hold.*artifact"),
    ],
)
def test_other_values_are_refused_naming_the_key_the_type_and_what_to_do(
    value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as info:
        plain_json({"x": value}, "results")
    assert "results['x']" in str(info.value)


def test_an_array_at_the_limit_is_accepted() -> None:
    assert plain_json(np.ones(MAX_ARRAY_ELEMENTS, dtype=np.int8), "v") == [1] * MAX_ARRAY_ELEMENTS


def test_set_result_and_parameters_accept_scientific_values(exp: Experiment) -> None:
    run = exp.Run(parameters={"T": np.float64(300.0), "structure": Path("data/cu.xyz")})
    with run.start() as ctx:
        ctx.set_result("natoms", np.int64(4))
        ctx.set_result("energies", np.array([-1.5, -2.25]))
        ctx.set_result("when", datetime(2026, 3, 1, tzinfo=UTC))
    stored = on_disk(run)
    assert stored.parameters["structure"] == "data/cu.xyz"
    assert stored.results == {
        "natoms": 4,
        "energies": [-1.5, -2.25],
        "when": "2026-03-01T00:00:00+00:00",
    }
    ws = Workspace(exp.workspace.root)
    assert ws.runs("results.natoms == 4 and T == 300").ids == [run.id]


def test_run_ids_do_not_depend_on_the_numeric_type() -> None:
    assert derive_run_id({"n": np.int64(4), "x": np.float32(0.5)}) == derive_run_id(
        {"n": 4, "x": 0.5}
    )


def test_numpy_and_pandas_are_not_imported_by_the_workspace_layer() -> None:
    code = "import sys, molexp.workspace; print(sorted({'numpy', 'pandas'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
