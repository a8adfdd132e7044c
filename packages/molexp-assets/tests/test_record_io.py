"""Durable record I/O: name validation, slugs, atomic writes and versioned record loading."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import re
import threading
import time
from pathlib import Path, PurePosixPath
from typing import ClassVar

import pytest
from filelock import Timeout
from hypothesis import given
from hypothesis import strategies as st
from molexp.assets import (
    RecordError,
    UnsupportedVersionError,
    VersionedRecord,
    atomic_write_json,
    atomic_write_text,
    load_record,
    locked,
    slugify,
    validate_name,
)
from molexp.assets._io import MAX_NAME_BYTES
from molexp.assets.storage import create_exclusive_bytes


class Sample(VersionedRecord):
    SCHEMA_VERSION: ClassVar[int] = 2

    title: str
    count: int = 0


HOSTILE_NAMES = [
    "",
    ".",
    "..",
    "/abs",
    "a/b",
    "a\\b",
    "nul\x00byte",
    "tab\tname",
    " padded",
    "padded ",
    "x" * (MAX_NAME_BYTES + 1),
    "é" * (MAX_NAME_BYTES // 2 + 1),
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_are_rejected_naming_the_value(name: str) -> None:
    with pytest.raises(ValueError, match="artifact name"):
        validate_name(name, "artifact name")


def test_non_string_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="must be a string, got int"):
        validate_name(3)


@pytest.mark.parametrize("name", ["metrics.json", "a b", "QM9-baseline_v2", "é" * 100, "..x"])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


@given(st.text(max_size=260))
def test_accepted_names_are_exactly_one_safe_path_component(value: str) -> None:
    try:
        accepted = validate_name(value)
    except ValueError:
        return
    assert accepted == value
    assert PurePosixPath(value).parts == (value,)
    assert value not in {".", ".."}
    assert "/" not in value and "\\" not in value and "\x00" not in value
    assert len(value.encode("utf-8")) <= MAX_NAME_BYTES
    assert (Path("/root") / value).parent == Path("/root")


_SLUG = re.compile(r"^[a-z0-9_]([a-z0-9._-]*[a-z0-9_])?$")


@given(st.text(min_size=1, max_size=120))
def test_slugify_yields_a_stable_safe_id_or_refuses(name: str) -> None:
    try:
        slug = slugify(name)
    except ValueError:
        return
    assert _SLUG.match(slug), slug
    assert validate_name(slug) == slug
    assert slugify(slug) == slug


@given(
    st.from_regex(r"[A-Za-z0-9]+( [A-Za-z0-9]+)*", fullmatch=True).filter(lambda s: len(s) < 150)
)
def test_slugify_of_words_joins_them_lowercased(name: str) -> None:
    assert slugify(name) == name.lower().replace(" ", "-")


def test_slugify_without_usable_characters_names_the_input() -> None:
    with pytest.raises(ValueError, match="'日本'"):
        slugify("日本")


def test_atomic_write_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, Sample(title="x"))
    assert json.loads(target.read_text())["title"] == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_atomic_write_uses_the_umask_not_a_private_mode(tmp_path: Path) -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    target = tmp_path / "shared.txt"
    atomic_write_text(target, "x")
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def _raise_enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["write", "replace", "fsync"])
def test_failed_atomic_write_keeps_the_old_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    target = tmp_path / "record.json"
    atomic_write_json(target, {"generation": 1})
    monkeypatch.setattr(os, failing, _raise_enospc)
    with pytest.raises(OSError) as excinfo:
        atomic_write_json(target, {"generation": 2})
    monkeypatch.undo()
    assert excinfo.value.errno == errno.ENOSPC
    assert json.loads(target.read_text()) == {"generation": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_atomic_write_creates_missing_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "record.json"
    atomic_write_text(target, "x", durable=False)
    assert target.read_text() == "x"
    assert [p.name for p in target.parent.iterdir()] == ["record.json"]


def test_load_record_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "sample.json"
    atomic_write_json(target, Sample(title="t", count=3))
    assert load_record(target, Sample) == Sample(title="t", count=3)


def test_corrupt_json_record_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "broken.json"
    target.write_text("{not json")
    with pytest.raises(RecordError, match="broken.json") as excinfo:
        load_record(target, Sample)
    assert excinfo.value.path == target


def test_missing_record_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"absent\.json.*missing"):
        load_record(tmp_path / "absent.json", Sample)


def test_too_new_version_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "future.json"
    target.write_text(json.dumps({"version": 3, "title": "t"}))
    with pytest.raises(UnsupportedVersionError, match="future.json") as excinfo:
        load_record(target, Sample)
    assert excinfo.value.field == "version"


def test_invalid_field_names_the_file_and_field(tmp_path: Path) -> None:
    target = tmp_path / "bad.json"
    target.write_text(json.dumps({"version": 1, "title": "t", "count": "many"}))
    with pytest.raises(RecordError, match=r"bad\.json \(field 'count'\)"):
        load_record(target, Sample)


def test_record_that_is_not_an_object_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "list.json"
    target.write_text("[1, 2]")
    with pytest.raises(RecordError, match="expected a JSON object, got list"):
        load_record(target, Sample)


def test_locked_is_reentrant_in_a_thread_but_excludes_other_threads(tmp_path: Path) -> None:
    record = tmp_path / "r.json"
    outcome: list[str] = []

    def contender() -> None:
        try:
            with locked(record, timeout=0.2):
                outcome.append("acquired")
        except Timeout:
            outcome.append("timed out")

    with locked(record), locked(record, timeout=1):
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    after = threading.Thread(target=contender)
    after.start()
    after.join()
    assert outcome == ["timed out", "acquired"]


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"not valid JSON \(nested too deeply\)"),
        (b'{"version": 1, "title": "t", "count": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b'{"title": "\xff\xfe"}', "not valid JSON"),
    ],
)
def test_hostile_json_is_a_record_error_naming_the_file(
    tmp_path: Path, raw: bytes, why: str
) -> None:
    target = tmp_path / "hostile.json"
    target.write_bytes(raw)
    with pytest.raises(RecordError, match=rf"hostile\.json: {why}"):
        load_record(target, Sample)


def test_invalid_field_error_shows_the_offending_value_shortened(tmp_path: Path) -> None:
    target = tmp_path / "bad.json"
    target.write_text(json.dumps({"version": 1, "title": "t", "count": "many" * 100}))
    with pytest.raises(RecordError, match=r"\(field 'count'\).*got 'manymany.*\.\.\.$"):
        load_record(target, Sample)


def test_create_exclusive_writes_once_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    assert create_exclusive_bytes(target, b'{"first": true}\n', durable=True)
    assert not create_exclusive_bytes(target, b'{"second": true}\n', durable=False)
    assert target.read_bytes() == b'{"first": true}\n'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["record.json"]


def _race_create(target: Path, index: int, go: float) -> None:
    time.sleep(max(0.0, go - time.time()))
    won = create_exclusive_bytes(target, f"creator {index}\n".encode() * 1000, durable=False)
    os._exit(0 if won else 1)


def test_exactly_one_concurrent_creator_wins(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    fork = multiprocessing.get_context("fork")
    go = time.time() + 0.2
    children = [fork.Process(target=_race_create, args=(target, i, go)) for i in range(6)]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
    winners = [i for i, child in enumerate(children) if child.exitcode == 0]
    assert len(winners) == 1
    assert target.read_bytes() == f"creator {winners[0]}\n".encode() * 1000
