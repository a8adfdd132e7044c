"""Path checks and log reading, property-tested: no path escapes, chunked reads lose nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from molexp.server._files import (
    PathRejected,
    list_files,
    media_type_for,
    read_log,
    resolve_inside,
)

LINE_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\n")
PATH_ALPHABET = st.sampled_from(["a", "b", ".", "..", "/", "\\", "%2e", "\x00", " ", "run.json"])


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """root/run/artifacts with files, a link inside the root and links escaping it."""
    base = tmp_path_factory.mktemp("tree")
    root = base / "root"
    artifacts = root / "run" / "artifacts"
    (artifacts / "a").mkdir(parents=True)
    (artifacts / "a" / "b").write_text("inside")
    (artifacts / "b").write_text("inside")
    (root / "run" / "run.json").write_text("{}")
    (base / "secret").write_text("outside")
    os.symlink(base / "secret", artifacts / "a" / "..b")
    os.symlink(base, artifacts / "up")
    os.symlink(root / "run" / "run.json", artifacts / "inner")
    return root, artifacts


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PATH_ALPHABET, min_size=0, max_size=8))
def test_resolved_paths_never_leave_the_root(tree: tuple[Path, Path], parts: list[str]) -> None:
    root, artifacts = tree
    relative = "".join(parts)
    try:
        resolved = resolve_inside(artifacts, relative, root=root, what="artifact")
    except PathRejected as exc:
        assert exc.status in {400, 404}
        return
    assert resolved.is_relative_to(root.resolve())
    assert ".." not in Path(relative).parts


def test_rejections_say_which_status(tree: tuple[Path, Path]) -> None:
    root, artifacts = tree
    cases = {"../run.json": 400, "/etc/passwd": 400, "a//b": 400, "a\\b": 400, "zzz": 404}
    cases |= {"up/secret": 404, "a/..b": 404}
    for relative, status in cases.items():
        with pytest.raises(PathRejected) as caught:
            resolve_inside(artifacts, relative, root=root, what="artifact")
        assert caught.value.status == status, relative
    assert resolve_inside(artifacts, "inner", root=root, what="artifact").name == "run.json"


def test_listing_skips_links_out_of_the_root(tree: tuple[Path, Path]) -> None:
    root, artifacts = tree
    assert [entry.name for entry in list_files(artifacts, root=root)] == ["a/b", "b", "inner"]


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(st.text(LINE_CHARACTERS, max_size=30), max_size=12),
    trailing=st.text(LINE_CHARACTERS, max_size=10),
    chunk=st.integers(min_value=4, max_value=64),
)
def test_chunked_reads_reassemble_the_log(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str], trailing: str, chunk: int
) -> None:
    path = tmp_path_factory.mktemp("log") / "x.log"
    text = "".join(f"{line}\n" for line in lines) + trailing
    path.write_bytes(text.encode("utf-8"))
    data = path.read_bytes()

    pieces, offset = [], 0
    while offset < len(data):
        part = read_log(path, offset, max_bytes=chunk, whole_lines=False)
        assert part.next_offset > offset  # always progresses
        pieces.append(part.text)
        offset = part.next_offset
    assert "".join(pieces) == text

    whole, offset = [], 0
    while True:
        part = read_log(path, offset, max_bytes=chunk, whole_lines=True)
        if part.next_offset == offset:
            break
        whole.append(part.text)
        offset = part.next_offset
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    fits = [len(f"{line}\n".encode()) <= chunk for line in lines]
    if all(fits) and len(trailing.encode()) <= chunk:
        assert "".join(whole) == complete.decode("utf-8")
        assert offset == len(complete)


def test_offset_past_the_end_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("abc\n")
    part = read_log(path, 100, max_bytes=1024, whole_lines=False)
    assert (part.text, part.offset, part.next_offset, part.size) == ("", 4, 4, 4)


def test_chunks_smaller_than_a_character_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.log"
    path.write_text("é\n")
    with pytest.raises(ValueError, match="max_bytes"):
        read_log(path, 0, max_bytes=3, whole_lines=False)


def test_media_types_prefer_specific_recorded_types() -> None:
    assert media_type_for("x.bin", "application/x-custom") == "application/x-custom"
    assert media_type_for("plot.png", "application/octet-stream") == "image/png"
    assert media_type_for("train.log") == "text/plain"
    assert media_type_for("blob") == "application/octet-stream"
