"""Log handles: line splitting, lazy asset refresh, tail, and concurrent appenders."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.assets import AssetScope, Catalog, LogAsset, LogHandle, Producer
from molexp.assets._logs import encode_log_lines


@pytest.fixture
def log(catalog: Catalog, run_scope: AssetScope, run_dir: Path, producer: Producer) -> LogHandle:
    return LogHandle(catalog, run_scope, run_dir, "train", producer)


def _asset(catalog: Catalog, log: LogHandle) -> LogAsset:
    asset = catalog.get(log.asset_id)
    assert isinstance(asset, LogAsset)
    return asset


def test_append_writes_lines_to_the_log_file(log: LogHandle, run_dir: Path) -> None:
    log.append("loss=0.5")
    log.append("loss=0.4")
    assert log.path == run_dir / "logs" / "train.log"
    assert log.path.read_text() == "loss=0.5\nloss=0.4\n"
    assert log.read() == "loss=0.5\nloss=0.4\n"
    assert log.lines() == ["loss=0.5", "loss=0.4"]


@pytest.mark.parametrize(
    ("line", "lines"),
    [
        ("a\nb", ["a", "b"]),
        ("a\r\nb\rc", ["a", "b", "c"]),
        ("done\n", ["done"]),
        ("", [""]),
        ("x\n\ny", ["x", "", "y"]),
    ],
)
def test_embedded_newlines_split_the_line(log: LogHandle, line: str, lines: list[str]) -> None:
    log.append(line)
    assert log.lines() == lines


@given(st.lists(st.text(max_size=30), max_size=10))
def test_every_append_ends_in_exactly_one_newline(lines: list[str]) -> None:
    for line in lines:
        encoded = encode_log_lines(line)
        assert encoded.endswith(b"\n") and b"\r" not in encoded
        expected = line.replace("\r\n", "\n").replace("\r", "\n").removesuffix("\n")
        assert encoded.count(b"\n") == expected.count("\n") + 1


def test_non_string_lines_are_refused(log: LogHandle) -> None:
    with pytest.raises(TypeError, match="log 'train'.*got int"):
        log.append(3)  # type: ignore[arg-type]


def test_asset_registered_on_first_append_and_refreshed_on_flush(
    log: LogHandle, catalog: Catalog
) -> None:
    assert catalog.get(log.asset_id) is None
    log.append("one")
    first = _asset(catalog, log)
    assert first.line_count == 1 and first.size == 4
    assert first.producer is not None and first.producer.run_id == "r1"
    log.append("two")
    log.append("three")
    assert _asset(catalog, log).line_count == 1  # not refreshed per line
    flushed = log.flush()
    assert flushed is not None and flushed.line_count == 3
    assert _asset(catalog, log).size == len("one\ntwo\nthree\n")
    assert _asset(catalog, log).created_at == first.created_at


def test_close_and_context_exit_refresh_the_asset(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    with LogHandle(catalog, run_scope, run_dir, "eval", None) as log:
        log.append("a")
        log.append("b")
    assert _asset(catalog, log).line_count == 2
    log.append("c")  # a closed handle reopens on demand
    log.close()
    assert _asset(catalog, log).line_count == 3


def test_flush_without_appends_returns_none(log: LogHandle) -> None:
    assert log.flush() is None
    assert log.read() == "" and log.lines() == [] and log.tail(3) == []


def test_tail_reads_the_last_lines(log: LogHandle) -> None:
    for index in range(50):
        log.append(f"line {index} " + "x" * 5000)
    assert log.tail(3) == [f"line {i} " + "x" * 5000 for i in (47, 48, 49)]
    assert log.tail(500) == log.lines()
    assert log.tail(0) == []


@pytest.mark.parametrize("name", ["..", "a/b", "/abs", "nul\x00", "x" * 300, "x" * 197])
def test_hostile_log_names_are_rejected(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path, name: str
) -> None:
    with pytest.raises(ValueError, match="log"):
        LogHandle(catalog, run_scope, run_dir, name, None)


PROCESSES = 4
LINES_PER_PROCESS = 300


def _append_many(catalog: Catalog, scope: AssetScope, run_dir: Path, worker: int) -> None:
    with LogHandle(catalog, scope, run_dir, "shared", Producer(run_id="r1")) as log:
        for index in range(LINES_PER_PROCESS):
            # long lines (well above PIPE_BUF) would expose any interleaving
            log.append(f"{worker}:{index}:" + chr(ord("a") + worker) * (index * 37 % 9000))


def test_appends_from_four_processes_keep_every_line_intact(
    catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    fork = multiprocessing.get_context("fork")
    workers = [
        fork.Process(target=_append_many, args=(catalog, run_scope, run_dir, n))
        for n in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    log = LogHandle(catalog, run_scope, run_dir, "shared", None)
    lines = log.lines()
    assert len(lines) == PROCESSES * LINES_PER_PROCESS
    seen = set()
    for line in lines:
        writer, index, body = line.split(":")
        assert body == chr(ord("a") + int(writer)) * (int(index) * 37 % 9000)
        seen.add((int(writer), int(index)))
    assert len(seen) == PROCESSES * LINES_PER_PROCESS
    for worker_lines in range(PROCESSES):  # each process's own lines stay in order
        own = [int(line.split(":")[1]) for line in lines if line.startswith(f"{worker_lines}:")]
        assert own == sorted(own)
    assert _asset(catalog, log).line_count == PROCESSES * LINES_PER_PROCESS


def test_refresh_recounts_lines_written_by_others(
    log: LogHandle, catalog: Catalog, run_scope: AssetScope, run_dir: Path
) -> None:
    log.append("mine")
    other = LogHandle(catalog, run_scope, run_dir, "train", None)
    other.append("theirs")
    other.append("theirs again")
    # `other` registered on its first append (2 lines then); nothing has counted since
    assert _asset(catalog, log).line_count == 2
    assert log.refresh().line_count == 3
    assert _asset(catalog, log).line_count == 3


def test_refresh_of_a_log_never_written_names_the_file(log: LogHandle) -> None:
    with pytest.raises(FileNotFoundError, match="train.log"):
        log.refresh()
