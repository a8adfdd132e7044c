"""Content hashes of payload files and directory trees."""

from __future__ import annotations

import hashlib
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from molexp.assets._hashing import digest_payload

_segment = st.text(alphabet="abcxyz0129_-", min_size=1, max_size=6)
_trees = st.dictionaries(
    st.lists(_segment, min_size=1, max_size=3).map(tuple),
    st.binary(max_size=64),
    min_size=1,
    max_size=8,
).filter(
    # no path may be both a file and a directory
    lambda tree: not any(a != b and b[: len(a)] == a for a in tree for b in tree)
)


def _build(root: Path, tree: dict[tuple[str, ...], bytes], order: list[tuple[str, ...]]) -> Path:
    root.mkdir()
    for parts in order:
        target = root.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(tree[parts])
    return root


@given(st.binary(max_size=4096))
def test_file_hash_is_sha256_of_its_bytes(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.bin"
        path.write_bytes(data)
        digest = digest_payload(path)
    assert digest.content_hash == hashlib.sha256(data).hexdigest()
    assert digest.size == len(data)


@settings(max_examples=50)
@given(_trees, st.randoms())
def test_directory_hash_ignores_creation_order(
    tree: dict[tuple[str, ...], bytes], rnd: random.Random
) -> None:
    order = sorted(tree)
    shuffled = list(order)
    rnd.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as tmp:
        first = digest_payload(_build(Path(tmp) / "one", tree, order))
        second = digest_payload(_build(Path(tmp) / "two", tree, shuffled))
    assert first == second
    assert first.size == sum(len(data) for data in tree.values())


@settings(max_examples=50)
@given(_trees, st.data())
def test_directory_hash_changes_with_any_content_or_name(
    tree: dict[tuple[str, ...], bytes], data: st.DataObject
) -> None:
    victim = data.draw(st.sampled_from(sorted(tree)))
    changed_content = dict(tree)
    changed_content[victim] = tree[victim] + b"!"
    renamed = {k: v for k, v in tree.items() if k != victim}
    renamed[(*victim[:-1], victim[-1] + "_renamed")] = tree[victim]
    with tempfile.TemporaryDirectory() as tmp:
        base = digest_payload(_build(Path(tmp) / "base", tree, sorted(tree)))
        content = digest_payload(_build(Path(tmp) / "content", changed_content, sorted(tree)))
        name = digest_payload(_build(Path(tmp) / "name", renamed, sorted(renamed)))
    assert base.content_hash != content.content_hash
    assert base.content_hash != name.content_hash


def test_directory_hash_matches_the_documented_format(tmp_path: Path) -> None:
    root = _build(tmp_path / "tree", {("b",): b"2", ("a", "x"): b"1"}, [("b",), ("a", "x")])
    lines = [
        f"a/x\0{hashlib.sha256(b'1').hexdigest()}\n",
        f"b\0{hashlib.sha256(b'2').hexdigest()}\n",
    ]
    expected = hashlib.sha256("".join(lines).encode()).hexdigest()
    assert digest_payload(root).content_hash == expected


def test_links_inside_a_tree_are_hashed_by_target(tmp_path: Path) -> None:
    root = _build(tmp_path / "tree", {("f",): b"data"}, [("f",)])
    (tmp_path / "outside").mkdir()
    (root / "dir-link").symlink_to(tmp_path / "outside")
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    before = digest_payload(root)
    (tmp_path / "outside" / "big").write_bytes(b"x" * 100)
    assert digest_payload(root) == before
    (root / "dangling").unlink()
    (root / "dangling").symlink_to(tmp_path / "elsewhere")
    assert digest_payload(root) != before


def test_a_top_level_symlink_is_followed(tmp_path: Path) -> None:
    target = tmp_path / "real.txt"
    target.write_text("hello")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    assert digest_payload(link) == digest_payload(target)


def test_missing_payload_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="gone.bin"):
        digest_payload(tmp_path / "gone.bin")
