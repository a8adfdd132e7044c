"""Reading long metric series fast: column-wise decoding of the text files of earlier versions
(the same points as the line parser, damaged and torn lines included) and the per-process cache
of decoded files, binary and text (an unchanged file is not decoded again, a grown one only from
where it was, a replaced one whole, the cache bounded)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.workspace import Experiment, _metrics
from molexp.workspace._metrics import (
    clear_series_cache,
    decode_columns,
    decode_records,
    encode_points,
    encode_records,
    parse_points,
    read_series,
)

Decoded = tuple[dict[str, _metrics._Columns], int, _metrics._BinaryState | None]

_points = st.lists(
    st.tuples(
        st.sampled_from(["loss", "acc", "énergie", "a.b"]),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
    ),
    max_size=30,
)


def _grouped(data: bytes) -> dict[str, list[tuple[int, float, float]]]:
    grouped: dict[str, list[tuple[int, float, float]]] = {}
    for name, step, value, stamp in parse_points(data):
        grouped.setdefault(name, []).append((step, value, stamp))
    return grouped


def _decoded(data: bytes) -> dict[str, list[tuple[int, float, float]]]:
    return {
        name: list(zip(list(cols.steps), list(cols.values), list(cols.stamps), strict=True))
        for name, cols in decode_columns(data).items()
    }


@given(_points, st.binary(max_size=40), _points, st.data())
def test_column_decoding_reads_what_the_line_parser_reads(
    before: list[tuple[str, int, float, float]],
    garbage: bytes,
    after: list[tuple[str, int, float, float]],
    data: st.DataObject,
) -> None:
    encoded = encode_points(before) + garbage + b"\n" + encode_points(after)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    for sample in (encode_points(before), encoded, encoded[:cut]):
        assert _decoded(sample) == _grouped(sample)


@given(
    st.lists(
        st.tuples(st.integers(-5, 5), st.floats(0, 10, allow_nan=False)),
        min_size=1,
        max_size=30,
    )
)
def test_the_order_flag_matches_sorting(pairs: list[tuple[int, float]]) -> None:
    points = [("loss", step, 1.0, stamp) for step, stamp in pairs]
    (columns,) = decode_columns(encode_points(points)).values()
    assert columns.ordered == (pairs == sorted(pairs, key=lambda pair: (pair[0], pair[1])))


def _one_attempt(
    exp: Experiment, points: int, legacy: bool = False
) -> tuple[Path, list[tuple[int, str]], Path]:
    """A run of one attempt and its series file (as an earlier version wrote it, if ``legacy``)."""
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metrics({"loss": 0.0, "acc": 1.0}, step=0)
        for step in range(1, points):
            ctx.log_metric("loss", float(step), step=step)
    attempts = [(r.attempt, r.execution_id) for r in run.metadata.execution_history]
    (path,) = run.run_dir.glob("execution/*/metrics/*.bin")
    if legacy:
        found, _, _ = decode_records(path.read_bytes())
        text = path.with_suffix(".tsv")
        text.write_bytes(
            encode_points(
                [
                    (name, step, value, stamp)
                    for name, cols in sorted(found.items(), reverse=True)
                    for step, value, stamp in zip(cols.steps, cols.values, cols.stamps, strict=True)
                ]
            )
        )
        path.unlink()
        path = text
    return run.run_dir, attempts, path


@pytest.mark.parametrize("legacy", [False, True], ids=["bin", "tsv"])
def test_an_unchanged_file_is_not_decoded_again(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, legacy: bool
) -> None:
    run_dir, attempts, _ = _one_attempt(exp, 100, legacy)
    clear_series_cache()
    calls: list[int] = []
    decode, decode_text = _metrics.decode_records, _metrics.decode_columns

    def counting(data: bytes, state: _metrics._BinaryState | None = None) -> Decoded:
        calls.append(len(data))
        return decode(data, state)

    def counting_text(data: bytes) -> dict[str, _metrics._Columns]:
        calls.append(len(data))
        return decode_text(data)

    monkeypatch.setattr(_metrics, "decode_records", counting)
    monkeypatch.setattr(_metrics, "decode_columns", counting_text)
    first = read_series(run_dir, attempts, only="loss")["loss"]
    again = read_series(run_dir, attempts)
    assert len(calls) == 1
    assert again["loss"] == first and first.values == [float(step) for step in range(100)]
    assert again["acc"].values == [1.0]
    again["loss"].values.append(5.0)  # a caller's list is its own
    assert len(read_series(run_dir, attempts)["loss"]) == 100


def test_a_grown_file_is_decoded_from_where_it_was_torn_tail_included(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, attempts, path = _one_attempt(exp, 10)
    clear_series_cache()
    assert len(read_series(run_dir, attempts)["loss"]) == 10
    calls: list[bytes] = []
    decode = _metrics.decode_records

    def recording(data: bytes, state: _metrics._BinaryState | None = None) -> Decoded:
        calls.append(data)
        return decode(data, state)

    monkeypatch.setattr(_metrics, "decode_records", recording)
    names = {"loss": 0, "acc": 1}  # as the writer numbered them
    tail = encode_records(
        [("loss", 10, 10.0, 1.0), ("loss", 11, 11.0, 2.0), ("val", 11, 5.0, 2.0)],
        names,
        header=False,
    )  # "val" defined (one record), then the three points
    with path.open("ab") as handle:
        handle.write(tail[:-40])  # the second point torn
    assert read_series(run_dir, attempts)["loss"].steps == list(range(11))
    with path.open("ab") as handle:
        handle.write(tail[-40:])
    series = read_series(run_dir, attempts)
    assert series["loss"].steps == list(range(12)) and series["loss"].values[-1] == 11.0
    assert series["val"].values == [5.0]  # its name defined in the first part read
    assert calls == [tail[:-40], tail[64:]]  # only what was added, from the torn record on
    with path.open("ab") as handle:  # an earlier step appended: sorted on read
        handle.write(encode_records([("loss", 3, 33.0, 0.5)], names, header=False))
    loss = read_series(run_dir, attempts)["loss"]
    assert loss.steps == [0, 1, 2, 3, 3, *range(4, 12)] and loss.values[3:5] == [33.0, 3.0]


def test_a_grown_text_file_is_decoded_from_where_it_was_torn_tail_included(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, attempts, path = _one_attempt(exp, 10, legacy=True)
    clear_series_cache()
    assert len(read_series(run_dir, attempts)["loss"]) == 10
    calls: list[bytes] = []
    decode = _metrics.decode_columns

    def recording(data: bytes) -> dict[str, _metrics._Columns]:
        calls.append(data)
        return decode(data)

    monkeypatch.setattr(_metrics, "decode_columns", recording)
    tail = encode_points([("loss", 10, 10.0, 1.0), ("loss", 11, 11.0, 2.0)])
    with path.open("ab") as handle:
        handle.write(tail[:-7])  # the second line torn
    assert read_series(run_dir, attempts)["loss"].steps == list(range(11))
    with path.open("ab") as handle:
        handle.write(tail[-7:])
    loss = read_series(run_dir, attempts)["loss"]
    assert loss.steps == list(range(12)) and loss.values[-1] == 11.0
    assert calls[0] == tail[: tail.index(b"\n") + 1]  # only the new complete line
    assert calls[1] == tail[tail.index(b"\n") + 1 :]  # then the completed one
    with path.open("ab") as handle:  # an earlier step appended: sorted on read
        handle.write(encode_points([("loss", 3, 33.0, 0.5)]))
    loss = read_series(run_dir, attempts)["loss"]
    assert loss.steps == [0, 1, 2, 3, 3, *range(4, 12)] and loss.values[3:5] == [33.0, 3.0]


def test_a_replaced_file_is_decoded_whole_and_the_cache_is_bounded(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir, attempts, path = _one_attempt(exp, 50)
    clear_series_cache()
    assert len(read_series(run_dir, attempts)["loss"]) == 50
    replacement = path.with_name("replacement.tmp")
    points = [("loss", step, -1.0, 1.0) for step in range(60)]
    replacement.write_bytes(encode_records(points, {}, header=True))
    os.replace(replacement, path)
    assert read_series(run_dir, attempts)["loss"].values == [-1.0] * 60

    monkeypatch.setattr(_metrics, "MAX_CACHED_POINTS", 10)
    clear_series_cache()
    assert len(read_series(run_dir, attempts)["loss"]) == 60  # too long to keep, still read
    assert _metrics._CACHE._points == 0
    path.unlink()
    assert read_series(run_dir, attempts) == {}
