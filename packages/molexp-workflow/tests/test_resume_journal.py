"""The task-output journal: framing, crash tolerance, batching, buffering and flushing."""

from __future__ import annotations

import asyncio
import logging
import pickle
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from molexp.workflow._resume import (
    JOURNAL_MAGIC,
    AttemptHeader,
    JournalWriter,
    TaskOutputRecord,
    encode_frame,
    read_header,
    read_journal,
    task_output_record,
)


def _header(execution_id: str = "e1", started_at: float = 1.0) -> AttemptHeader:
    return AttemptHeader(
        execution_id=execution_id,
        workflow_id="0123456789abcdef",
        workflow_name="wf",
        started_at=started_at,
        inputs_hash=None,
    )


def _record(task: str, output: object) -> TaskOutputRecord:
    return TaskOutputRecord(
        task=task, snapshot_key="code:config", depends_on=(), output=pickle.dumps(output)
    )


def _write(path: Path, records: list[TaskOutputRecord]) -> bytes:
    writer = JournalWriter(path, _header())
    for record in records:
        writer.append(record.task, record.model_dump())
    writer.close()
    return path.read_bytes()


_records = st.lists(
    st.tuples(st.text(min_size=1, max_size=8), st.binary(max_size=64)), max_size=6
).map(lambda items: [_record(f"{i}-{name}", data) for i, (name, data) in enumerate(items)])


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records, cut=st.integers(min_value=0, max_value=10_000))
def test_any_truncation_keeps_an_intact_prefix(
    tmp_path_factory: pytest.TempPathFactory, records: list[TaskOutputRecord], cut: int
) -> None:
    path = tmp_path_factory.mktemp("journal") / "journal.bin"
    data = _write(path, records)
    header_end = len(JOURNAL_MAGIC) + len(_header().encode())
    cut = min(cut, len(data))
    path.write_bytes(data[:cut])
    journal = read_journal(path)
    if cut < header_end:
        assert journal is None
        return
    assert journal is not None
    kept = list(journal.tasks)
    assert kept == [record.task for record in records[: len(kept)]]
    assert all(journal.tasks[r.task].record == r for r in records[: len(kept)])
    boundaries = {header_end}
    position = header_end
    for record in records:
        position += len(record.encode())
        boundaries.add(position)
    assert journal.complete == (cut in boundaries)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=_records.filter(bool), data=st.data())
def test_a_flipped_byte_loses_at_most_the_records_from_there_on(
    tmp_path_factory: pytest.TempPathFactory,
    records: list[TaskOutputRecord],
    data: st.DataObject,
) -> None:
    path = tmp_path_factory.mktemp("journal") / "journal.bin"
    content = bytearray(_write(path, records))
    header_end = len(JOURNAL_MAGIC) + len(_header().encode())
    position = data.draw(st.integers(min_value=header_end, max_value=len(content) - 1))
    content[position] ^= data.draw(st.integers(min_value=1, max_value=255))
    path.write_bytes(bytes(content))
    journal = read_journal(path)
    assert journal is not None and not journal.complete
    offset = header_end
    intact = 0
    for record in records:
        offset += len(record.encode())
        if offset > position:
            break
        intact += 1
    assert list(journal.tasks) == [record.task for record in records[:intact]]


def test_header_round_trip_and_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, [_record("a", 1)])
    assert read_header(path) == _header()
    assert read_header(tmp_path / "missing.bin") is None
    (tmp_path / "foreign.bin").write_bytes(b"PK\x03\x04 zip file")
    assert read_header(tmp_path / "foreign.bin") is None
    assert read_journal(tmp_path / "foreign.bin") is None
    (tmp_path / "magic-only.bin").write_bytes(JOURNAL_MAGIC)
    assert read_header(tmp_path / "magic-only.bin") is None
    assert read_journal(tmp_path / "magic-only.bin") is None


def test_a_newer_record_version_stops_the_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.bin"
    future = TaskOutputRecord(
        version=TaskOutputRecord.SCHEMA_VERSION + 1,
        task="later",
        snapshot_key="k",
        depends_on=(),
        output=b"",
    )
    _write(path, [_record("a", 1), future, _record("b", 2)])
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"] and not journal.complete
    assert "newer than this MolExp understands" in caplog.text


def test_a_malformed_record_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    writer = JournalWriter(path, _header())
    writer.append("a", _record("a", 1).model_dump())
    writer.append("bad", _header("other").model_dump())  # a header where a task record belongs
    writer.close()
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"] and not journal.complete


def test_a_later_record_of_the_same_task_wins(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, [_record("a", 1), _record("a", 2)])
    journal = read_journal(path)
    assert journal is not None
    assert pickle.loads(journal.tasks["a"].record.output) == 2


async def test_records_reach_the_file_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    writer = JournalWriter(path, _header(), flush_interval=0.05)
    writer.append("a", _record("a", 1).model_dump())
    assert path.read_bytes() == b""  # buffered, not yet written
    assert writer.written_tasks == frozenset()
    await asyncio.sleep(0.15)
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"]
    assert writer.written_tasks == {"a"}
    writer.append("b", _record("b", 2).model_dump())
    writer.close()
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a", "b"] and journal.complete


async def test_records_buffered_together_share_one_frame(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    writer = JournalWriter(path, _header(), flush_interval=60)
    records = [_record(name, index) for index, name in enumerate("abc")]
    for record in records:
        writer.append(record.task, record.model_dump())
    writer.close()
    expected = JOURNAL_MAGIC + _header().encode() + encode_frame([r.model_dump() for r in records])
    assert path.read_bytes() == expected
    path.write_bytes(expected[:-1])  # the whole batch is one frame: it goes as a unit
    journal = read_journal(path)
    assert journal is not None and journal.tasks == {} and not journal.complete


def test_the_fast_record_encoding_is_the_model_dump() -> None:
    record = _record("t", [1, 2])
    fast = task_output_record("t", "code:config", (), pickle.dumps([1, 2]))
    assert fast == record.model_dump()
    assert TaskOutputRecord.model_validate(fast) == record


def test_a_frame_that_is_not_a_list_of_records_stops_the_read(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, [_record("a", 1)])
    payload = pickle.dumps({"not": "a list"})
    with path.open("ab") as handle:
        handle.write(struct.pack("<II", len(payload), zlib.crc32(payload)) + payload)
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"] and not journal.complete


async def test_a_full_buffer_is_written_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    writer = JournalWriter(path, _header(), flush_interval=60, flush_bytes=1024)
    writer.append("small", _record("small", 1).model_dump())
    assert path.read_bytes() == b""
    writer.append("big", _record("big", b"x" * 2048).model_dump())
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["small", "big"]
    writer.close()


def test_without_an_event_loop_every_append_is_written(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    writer = JournalWriter(path, _header())
    writer.append("a", _record("a", 1).model_dump())
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"]
    writer.close()
    writer.close()
    writer.append("late", _record("late", 1).model_dump())  # ignored once closed
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["a"]


def test_a_new_attempt_replaces_a_stale_file_at_its_path(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, [_record("old", 1)])
    _write(path, [_record("new", 2)])
    journal = read_journal(path)
    assert journal is not None and list(journal.tasks) == ["new"]


def test_an_unwritable_path_turns_the_writer_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        writer = JournalWriter(blocker / "sub" / "j.bin", _header())
    assert writer.failure is not None and str(blocker) in writer.failure
    writer.append("a", _record("a", 1).model_dump())
    writer.close()
    assert writer.written_tasks == frozenset()
    assert "will not be resumable" in caplog.text


def test_before_frame_runs_before_each_frame_of_records(tmp_path: Path) -> None:
    path = tmp_path / "journal.bin"
    sizes: list[int] = []
    writer = JournalWriter(path, _header(), before_frame=lambda: sizes.append(path.stat().st_size))
    writer.flush()  # the header alone: no records, no call
    assert sizes == []
    writer.append("a", _record("a", 1).model_dump())  # no loop: written at once
    assert sizes == [len(JOURNAL_MAGIC) + len(_header().encode())]
    writer.close()
    assert sizes == [sizes[0]]
    journal = read_journal(path)
    assert journal is not None and set(journal.tasks) == {"a"}


def test_a_failing_before_frame_keeps_the_records_out_of_the_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "journal.bin"
    failures = [OSError("run.json could not be written")]

    def persist_results() -> None:
        if failures:
            raise failures.pop()

    writer = JournalWriter(path, _header(), before_frame=persist_results)
    with caplog.at_level(logging.WARNING, logger="molexp.workflow"):
        writer.append("a", _record("a", 1).model_dump())
    journal = read_journal(path)
    assert journal is None or journal.tasks == {}
    assert "persisting their run results failed" in caplog.text
    writer.close()  # the next flush succeeds and writes the held records
    journal = read_journal(path)
    assert journal is not None and set(journal.tasks) == {"a"}
