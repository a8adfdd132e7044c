"""Metric series: ``ctx.log_metric`` / ``log_metrics``, their files, summaries and queries."""

from __future__ import annotations

import logging
import math
import os
import pickle
import struct
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from molexp.workspace import (
    Experiment,
    MetricSeries,
    MetricSummary,
    MetricWriter,
    Run,
    Workspace,
    _metrics,
)
from molexp.workspace._metrics import (
    HEADER,
    RECORD_SIZE,
    decode_records,
    encode_points,
    encode_records,
    parse_points,
    read_series,
)
from workspace_helpers import on_disk


def _series_files(run: Run) -> list[Path]:
    return sorted(run.run_dir.glob("execution/*/metrics/*.bin"))


def _values(path: Path, name: str = "loss") -> list[float]:
    found, _, _ = decode_records(path.read_bytes())
    return list(found[name].values) if name in found else []


def test_logged_points_read_back_as_series_with_steps_times_and_attempts(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metric("loss", 1.0)
        ctx.log_metric("loss", 0.5)
        ctx.log_metric("loss", 0.25, step=10, timestamp=100.0)
        ctx.log_metric("loss", 0.125)
        ctx.log_metric("lr", 3, timestamp=datetime(2026, 1, 1, tzinfo=UTC))
    series = run.metrics()
    assert list(series) == ["loss", "lr"]
    loss = series["loss"]
    assert isinstance(loss, MetricSeries) and len(loss) == 4
    assert loss.steps == [0, 1, 10, 11]
    assert loss.values == [1.0, 0.5, 0.25, 0.125]
    assert loss.timestamps[2] == 100.0 and loss.attempts == [1, 1, 1, 1]
    assert series["lr"].timestamps == [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    assert run.metric("lr").to_records() == [
        {"step": 0, "value": 3.0, "timestamp": series["lr"].timestamps[0], "attempt": 1}
    ]
    assert on_disk(run).metrics["loss"] == MetricSummary(
        last=0.125, last_step=11, min=0.125, max=1.0, count=4
    )
    assert run.metric_summaries["lr"].last == 3.0


def test_a_run_without_the_metric_says_which_it_has(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metric("loss", 1.0)
    with pytest.raises(KeyError, match=r"no metric 'acc' \(its metrics: loss\)"):
        run.metric("acc")


@pytest.mark.parametrize("name", ["a/b", "..", "", "a\\b", " x"])
def test_metric_names_that_are_no_path_component_are_refused_naming_the_value(
    exp: Experiment, name: str
) -> None:
    with exp.Run().start() as ctx, pytest.raises(ValueError, match="metric name") as info:
        ctx.log_metric(name, 1.0)
    assert repr(name) in str(info.value)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (float("nan"), ValueError, "must be finite, got nan"),
        (float("inf"), ValueError, "must be finite"),
        (True, TypeError, "real number, got bool"),
        ("0.5", TypeError, "real number, got str"),
    ],
)
def test_values_that_are_no_finite_number_are_refused(
    exp: Experiment, value: Any, error: type[Exception], match: str
) -> None:
    with exp.Run().start() as ctx, pytest.raises(error, match=match):
        ctx.log_metric("loss", value)


def test_steps_and_timestamps_are_checked(exp: Experiment) -> None:
    with exp.Run().start() as ctx:
        with pytest.raises(TypeError, match="step must be an integer, got float"):
            ctx.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="step must fit in 64 bits, got 9223372036854775808"):
            ctx.log_metric("loss", 1.0, step=2**63)
        with pytest.raises(ValueError, match="has no time zone"):
            ctx.log_metric("loss", 1.0, timestamp=datetime(2026, 1, 1))  # noqa: DTZ001
        with pytest.raises(TypeError, match="Unix seconds or an aware datetime"):
            ctx.log_metric("loss", 1.0, timestamp="now")  # type: ignore[arg-type]


def test_a_refused_batch_logs_nothing(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        with pytest.raises(ValueError, match="metric name 'a/b'"):
            ctx.log_metrics({"loss": 1.0, "a/b": 2.0})
        ctx.log_metrics({"loss": 0.5})
    assert run.metric("loss").steps == [0]


def test_points_are_buffered_until_a_batch_is_flushed(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metrics, "FLUSH_INTERVAL", 3600.0)
    run = exp.Run()
    with run.start() as ctx:
        for step in range(100):
            ctx.log_metric("loss", 1.0 / (step + 1))
        assert _series_files(run) == []  # nothing written per point
        ctx.flush_metrics()
        assert len(run.metric("loss")) == 100
        assert on_disk(run).metrics["loss"].count == 100  # the summary is in run.json now


@pytest.mark.parametrize("flush", ["heartbeat", "flush_results"])
def test_a_heartbeat_and_flush_results_write_buffered_points(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch, flush: str
) -> None:
    monkeypatch.setattr(_metrics, "FLUSH_INTERVAL", 3600.0)
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metric("loss", 0.5)
        assert _series_files(run) == []
        getattr(ctx, flush)()
        assert run.metric("loss").values == [0.5]
        assert on_disk(run).metrics["loss"].count == 1


def test_log_flushes_by_itself_after_the_interval(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metrics, "FLUSH_INTERVAL", 0.0)
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metric("loss", 1.0)
        assert run.metric("loss").values == [1.0]


def test_log_flushes_by_itself_after_max_buffered_points(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metrics, "FLUSH_INTERVAL", 3600.0)
    monkeypatch.setattr(_metrics, "MAX_BUFFERED_POINTS", 3)
    run = exp.Run()
    with run.start() as ctx:
        for value in (1.0, 2.0, 3.0, 4.0):
            ctx.log_metric("loss", value)
        assert run.metric("loss").values == [1.0, 2.0, 3.0]


def test_one_fsync_per_batch_not_per_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(_metrics.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    writer = MetricWriter(tmp_path / "metrics")
    writer.log_many({"a": 1.0, "b": 2.0})
    first = len(synced)  # the new file and its directory entry
    writer.log_many({f"m{i}": float(i) for i in range(50)}, step=3)
    assert len(synced) == first + 1
    writer.close()


def test_a_failed_batch_is_cut_off_and_written_once_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = MetricWriter(tmp_path / "metrics")
    writer.log_many({"loss": 1.0})
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        monkeypatch.setattr(_metrics.os, "fsync", real_fsync)
        raise OSError(5, "I/O error")

    monkeypatch.setattr(_metrics.os, "fsync", failing)
    with pytest.raises(OSError, match="I/O error"):
        writer.log_many({"loss": 2.0, "acc": 0.5})  # "acc" is defined in the failed batch
    writer.flush()
    (path,) = (tmp_path / "metrics").iterdir()
    assert _values(path) == [1.0, 2.0] and _values(path, "acc") == [0.5]
    assert writer.summaries()["loss"].count == 2
    assert len(path.read_bytes()) == len(HEADER) + 5 * RECORD_SIZE  # 3 points, 2 names once each


def test_a_failed_first_batch_leaves_an_empty_file_and_is_written_whole_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = MetricWriter(tmp_path / "metrics")
    real_fsync = os.fsync
    calls: list[int] = []

    def failing(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 2:  # the directory's fsync passes, the first batch's fails
            raise OSError(5, "I/O error")
        real_fsync(fd)

    monkeypatch.setattr(_metrics.os, "fsync", failing)
    with pytest.raises(OSError, match="I/O error"):
        writer.log_many({"loss": 1.0})
    (path,) = (tmp_path / "metrics").iterdir()
    assert path.read_bytes() == b""
    writer.close()
    assert path.read_bytes().startswith(HEADER) and _values(path) == [1.0]


def test_a_file_that_cannot_be_cut_back_is_left_for_a_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = MetricWriter(tmp_path / "metrics")
    writer.log_many({"loss": 1.0})
    real_fsync = os.fsync

    def failing(fd: int) -> None:
        monkeypatch.setattr(_metrics.os, "fsync", real_fsync)
        raise OSError(5, "I/O error")

    def no_truncate(fd: int, size: int) -> None:
        raise OSError(22, "cannot truncate")

    monkeypatch.setattr(_metrics.os, "fsync", failing)
    monkeypatch.setattr(_metrics.os, "ftruncate", no_truncate)
    with pytest.raises(OSError, match="I/O error"):
        writer.log_many({"loss": 2.0})
    writer.close()
    files = [_values(f) for f in (tmp_path / "metrics").iterdir()]
    assert sorted(files) == [[1.0, 2.0], [2.0]]  # the batch whose fsync failed may read twice


def test_a_killed_process_keeps_every_flushed_batch(exp: Experiment) -> None:
    run = exp.Run()
    script = textwrap.dedent(
        f"""
        import os
        from molexp.workspace import RunContext, _context
        _context.RESULT_WRITE_INTERVAL = 3600.0  # summaries held back until the end
        ctx = RunContext.open({str(run.run_dir)!r}).start().__enter__()
        for step in range(3):
            ctx.log_metrics({{"loss": float(step)}}, step=step)
        ctx.log_metric("loss", 99.0, step=3)  # buffered: lost with the process
        os._exit(9)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False)
    assert done.returncode == 9
    series = run.metric("loss")
    assert series.steps == [0, 1, 2] and series.values == [0.0, 1.0, 2.0]
    assert "loss" not in on_disk(run).metrics
    assert run.reap()  # the owner is gone: its summaries are counted from the files
    expected = MetricSummary(last=2.0, last_step=2, min=0.0, max=2.0, count=3)
    metadata = on_disk(run)
    assert metadata.metrics["loss"] == expected
    assert metadata.execution_history[-1].metrics["loss"] == expected


def test_a_torn_tail_is_ignored_on_read(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metrics({"loss": 1.0})
    (path,) = _series_files(run)
    torn = encode_records([("loss", 1, 0.5, 1.0), ("acc", 1, 0.5, 1.0)], {"loss": 0}, header=False)
    with path.open("ab") as handle:
        handle.write(torn[: 2 * RECORD_SIZE + 5])  # one point whole; "acc" defined, its point torn
    assert run.metric("loss").values == [1.0, 0.5]
    assert sorted(run.metrics()) == ["loss"]


def test_a_second_attempt_appends_its_series_and_its_summary_becomes_the_view(
    exp: Experiment,
) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metrics({"loss": 5.0, "acc": 0.5})
    with run.start() as ctx:
        ctx.log_metric("loss", 1.0)
    loss = run.metric("loss")
    assert loss.values == [5.0, 1.0] and loss.attempts == [1, 2]
    metadata = on_disk(run)
    assert metadata.metrics["loss"].max == 1.0  # the latest attempt's series
    assert metadata.metrics["acc"].last == 0.5  # not logged again: kept, like results
    assert [sorted(r.metrics) for r in metadata.execution_history] == [["acc", "loss"], ["loss"]]


def test_summaries_reach_run_json_while_running_at_most_once_per_interval(
    exp: Experiment, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_metrics, "FLUSH_INTERVAL", 0.0)
    run = exp.Run()
    with run.start() as ctx:
        ctx._last_write = 0.0  # the last record write is long ago
        ctx.log_metric("loss", 2.0)
        assert on_disk(run).metrics["loss"].last == 2.0
        ctx.log_metric("loss", 1.0)  # written to the series, its summary held back
        assert on_disk(run).metrics["loss"].last == 2.0
        assert run.metric("loss").values == [2.0, 1.0]
    assert on_disk(run).metrics["loss"].last == 1.0


def test_summary_merge_takes_the_last_of_the_highest_step() -> None:
    early = MetricSummary(last=1.0, last_step=5, min=0.5, max=3.0, count=2)
    late = MetricSummary(last=2.0, last_step=5, min=1.0, max=2.0, count=1)
    assert early.merged(late) == MetricSummary(last=2.0, last_step=5, min=0.5, max=3.0, count=3)
    behind = MetricSummary(last=9.0, last_step=1, min=9.0, max=9.0, count=1)
    assert early.merged(behind).last == 1.0


def test_a_worker_writes_its_own_series_and_reports_the_summary(tmp_path: Path) -> None:
    run = Workspace(tmp_path / "lab").Project("p").Experiment("e").Run()
    with run.start() as ctx:
        ctx.log_metric("loss", 4.0, step=0)
        opener = pickle.loads(pickle.dumps(ctx.worker_opener()))
        worker = opener.open("train")
        worker.log_metric("loss", 2.0, step=1)
        worker.log_metrics({"loss": 1.0}, step=2)
        worker.flush_metrics()
        report = worker.close()
        assert report is not None
        assert report["metrics"]["loss"] == {
            "last": 1.0,
            "last_step": 2,
            "min": 1.0,
            "max": 2.0,
            "count": 2,
        }
        assert "loss" not in on_disk(run).metrics  # workers never write run.json
        ctx.apply_worker_report(report, "train")
    assert len(_series_files(run)) == 2  # one file per writer
    assert run.metric("loss").values == [4.0, 2.0, 1.0]
    assert on_disk(run).metrics["loss"] == MetricSummary(
        last=1.0, last_step=2, min=1.0, max=4.0, count=3
    )


def test_a_worker_without_the_workspace_says_so_on_its_first_metric(tmp_path: Path) -> None:
    from molexp.workspace._worker_context import WorkerRunOpener, WorkspaceUnreachableError

    opener = WorkerRunOpener(
        run_dir=str(tmp_path / "elsewhere" / "run-x"),
        run_id="x",
        execution_id="e1",
        params={},
        config={},
        owner_host="login1",
    )
    with pytest.raises(WorkspaceUnreachableError, match="shared with every worker"):
        opener.open("train").log_metric("loss", 1.0)


def test_runs_are_queried_and_ordered_by_metrics(ws: Workspace, exp: Experiment) -> None:
    for final in (0.3, 0.05, 0.2):
        with exp.Run(parameters={"final": final}).start() as ctx:
            ctx.log_metrics({"loss": 1.0})
            ctx.log_metrics({"loss": final})
    found = ws.runs(where="metrics.loss < 0.25", order_by="metrics.loss")
    assert [row.params["final"] for row in found] == [0.05, 0.2]
    assert [r.params["final"] for r in ws.runs(order_by="-metrics.loss.min")] == [0.3, 0.2, 0.05]
    assert len(ws.runs(where="metrics.loss.max == 1.0")) == 3
    record = found[0].to_record()
    assert (record["metrics.loss"], record["metrics.loss.min"], record["metrics.loss.max"]) == (
        0.05,
        0.05,
        1.0,
    )
    assert found[0].metrics["loss"].count == 2


def test_an_unknown_metric_in_a_query_suggests_the_known_one(
    ws: Workspace, exp: Experiment
) -> None:
    with exp.Run().start() as ctx:
        ctx.log_metric("loss", 1.0)
    with pytest.raises(Exception, match="metrics.loss"):
        ws.runs(where="metrics.los < 1")


def test_a_context_not_entered_refuses_metrics(exp: Experiment) -> None:
    with pytest.raises(RuntimeError, match="cannot log a metric"):
        exp.Run().start().log_metric("loss", 1.0)


# -- the series file -------------------------------------------------------------------------

LONG_NAME = "a-name-of-more-than-24-bytes-" + "é" * 40  # spread over several name records
_points = st.lists(
    st.tuples(
        st.sampled_from(["loss", "acc", "énergie", "a.b", LONG_NAME]),
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.floats(min_value=0, max_value=4e9, allow_nan=False),
    ),
    max_size=30,
)
Points = list[tuple[str, int, float, float]]
Exact = dict[str, list[tuple[int, bytes, bytes]]]


def _bits(number: float) -> bytes:
    return struct.pack("<d", number)


def _exact(points: Points) -> Exact:
    """Points by metric, floats as their bits (0.0 and -0.0 differ)."""
    grouped: Exact = {}
    for name, step, value, stamp in points:
        grouped.setdefault(name, []).append((step, _bits(value), _bits(stamp)))
    return grouped


def _exact_columns(found: dict[str, _metrics._Columns]) -> Exact:
    exact: Exact = {}
    for name, cols in found.items():
        steps = list(cols.steps)
        assert all(type(step) is int for step in steps)
        exact[name] = list(
            zip(steps, map(_bits, cols.values), map(_bits, cols.stamps), strict=True)
        )
    return exact


def _file(batches: list[Points]) -> bytes:
    """A series file as a writer appends it: one batch after the other."""
    names: dict[str, int] = {}
    return b"".join(
        encode_records(batch, names, header=index == 0) for index, batch in enumerate(batches)
    )


@given(st.lists(_points, min_size=1, max_size=4), st.data())
def test_any_prefix_of_a_series_file_reads_as_a_prefix_of_its_points(
    batches: list[Points], data: st.DataObject
) -> None:
    encoded = _file(batches)
    points = [point for batch in batches for point in batch]
    found, end, _ = decode_records(encoded)
    assert _exact_columns(found) == _exact(points) and end == len(encoded)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    found, end, _ = decode_records(encoded[:cut])
    assert end <= cut and (cut - end < RECORD_SIZE or cut < len(HEADER))
    read = _exact_columns(found)
    assert any(read == _exact(points[:count]) for count in range(len(points) + 1))


@given(st.lists(_points, min_size=1, max_size=4), st.data())
def test_a_file_decoded_in_two_reads_reads_as_decoded_at_once(
    batches: list[Points], data: st.DataObject
) -> None:
    """As the cache decodes a grown file: from where the first read stopped, with its state."""
    encoded = _file(batches)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    first, end, state = decode_records(encoded[:cut])
    second, rest, _ = decode_records(encoded[end:], state)
    assert end + rest == len(encoded)
    joined = _exact_columns(first)
    for name, points in _exact_columns(second).items():
        joined.setdefault(name, []).extend(points)
    assert joined == _exact([point for batch in batches for point in batch])


@given(_points, st.binary(min_size=RECORD_SIZE, max_size=RECORD_SIZE), st.data())
def test_a_damaged_record_loses_only_itself(
    points: Points, garbage: bytes, data: st.DataObject
) -> None:
    assume(points and garbage[4:6] != b"MX")  # a record of no kind (as zeros after a crash)
    encoded = bytearray(_file([points]))
    index = data.draw(st.integers(min_value=0, max_value=len(points) - 1))
    at = len(encoded) - RECORD_SIZE * (len(points) - index)  # the points follow the names
    encoded[at : at + RECORD_SIZE] = garbage
    found, _, _ = decode_records(bytes(encoded))
    assert _exact_columns(found) == _exact(points[:index] + points[index + 1 :])


_records = st.builds(
    lambda index, kind, payload: struct.pack("<I4s", index, kind) + payload,
    st.integers(min_value=0, max_value=3),
    st.sampled_from([b"MXp\0", b"MXn\0", b"MXN\0"]),
    st.binary(min_size=24, max_size=24),
)  # records of a known kind, any payload (NaN, names that are no name, undefined metrics)
_garbage = st.lists(st.one_of(st.binary(max_size=40), _records), max_size=12).map(b"".join)


_DEFINED = HEADER + encode_records([("loss", 0, 0.0, 0.0)], {}, header=False)[:RECORD_SIZE]


@given(st.sampled_from([b"", HEADER, _DEFINED]), _garbage, st.data())
def test_garbage_never_raises_and_reads_as_finite_points_of_valid_names(
    start: bytes, garbage: bytes, data: st.DataObject
) -> None:
    encoded = start + garbage
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    first, end, state = decode_records(encoded[:cut])
    for found in (first, decode_records(encoded[end:], state)[0], decode_records(encoded)[0]):
        for name, cols in found.items():
            assert _metrics.check_metric_name(name) == name
            assert all(map(math.isfinite, [*cols.values, *cols.stamps]))


def test_a_file_of_another_format_or_version_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "execution" / "e1" / "metrics"
    directory.mkdir(parents=True)
    good = encode_records([("loss", 0, 1.0, 1.0)], {}, header=True)
    (directory / "a.bin").write_bytes(good)
    (directory / "b.bin").write_bytes(b"\x00" * 100)
    (directory / "c.bin").write_bytes(HEADER[:8] + struct.pack("<I", 99) + good[12:])
    (directory / "d.bin").write_bytes(HEADER[:5])  # a header torn: no points yet
    with caplog.at_level(logging.WARNING, logger="molexp.workspace._metrics"):
        series = read_series(tmp_path, [(1, "e1")])
    assert series["loss"].values == [1.0]
    assert "b.bin is skipped: not a metric series file" in caplog.text
    assert "c.bin is skipped: a metric series file of an unknown version" in caplog.text
    assert "d.bin" not in caplog.text and "a.bin" not in caplog.text


def test_files_of_earlier_versions_are_still_read_with_the_new_ones(exp: Experiment) -> None:
    run = exp.Run()
    with run.start() as ctx:
        ctx.log_metrics({"loss": 2.0}, step=1)
    (path,) = _series_files(run)
    legacy = path.with_name("0123456789ab.tsv")
    legacy.write_bytes(encode_points([("loss", 0, 3.0, 1.0), ("acc", 0, 0.5, 1.0)]) + b"loss\t1")
    assert run.metric("loss").values == [3.0, 2.0]
    assert run.metric("acc").values == [0.5]


# -- the series file of earlier versions (text lines, ``.tsv``) ------------------------------


@given(_points, st.data())
def test_any_prefix_of_a_series_file_reads_as_the_points_of_its_complete_lines(
    points: list[tuple[str, int, float, float]], data: st.DataObject
) -> None:
    encoded = encode_points(points)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded)))
    complete = encoded[:cut].count(b"\n")
    assert list(parse_points(encoded[:cut])) == points[:complete]


@given(_points, st.binary(max_size=40), _points)
def test_a_damaged_line_loses_only_itself(
    before: list[tuple[str, int, float, float]],
    garbage: bytes,
    after: list[tuple[str, int, float, float]],
) -> None:
    line = garbage.replace(b"\n", b"") + b"\n"
    read = list(parse_points(encode_points(before) + line + encode_points(after)))
    assert read[: len(before)] == before and read[-len(after) or len(read) :] == after
    assert len(read) - len(before) - len(after) in (0, 1)


def test_reading_one_metric_skips_the_others() -> None:
    data = encode_points([("loss", 0, 1.0, 1.0), ("lossy", 0, 2.0, 1.0), ("loss", 1, 3.0, 2.0)])
    assert [p[2] for p in parse_points(data, only="loss")] == [1.0, 3.0]
