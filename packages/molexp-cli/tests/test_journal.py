"""The dry-run filesystem journal restores every change made while it is active."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from cli_helpers import tree_digest
from molexp.cli._journal import journaled


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "sub").mkdir(parents=True)
    (root / "keep.txt").write_text("original")
    (root / "sub" / "inner.bin").write_bytes(b"\x00\x01")
    (root / "link").symlink_to("keep.txt")
    return root


def test_created_files_and_directories_are_removed(tree: Path) -> None:
    before = tree_digest(tree)
    with journaled() as journal:
        (tree / "new" / "deeper").mkdir(parents=True)
        (tree / "new" / "deeper" / "f.txt").write_text("x")
        fd, name = tempfile.mkstemp(dir=tree)
        os.close(fd)
        os.replace(name, tree / "renamed.txt")
        assert journal.touched
    assert tree_digest(tree) == before
    assert not (tree / "new").exists()


def test_modified_removed_and_replaced_files_are_restored(tree: Path) -> None:
    before = tree_digest(tree)
    with journaled():
        (tree / "keep.txt").write_text("changed")
        with (tree / "sub" / "inner.bin").open("ab") as handle:
            handle.write(b"more")
        (tree / "link").unlink()
        fd, name = tempfile.mkstemp(dir=tree)
        os.write(fd, b"replacement")
        os.close(fd)
        os.replace(name, tree / "keep.txt")
    assert tree_digest(tree) == before
    assert (tree / "keep.txt").read_text() == "original"
    assert os.readlink(tree / "link") == "keep.txt"


def test_removed_tree_is_restored(tree: Path) -> None:
    before = tree_digest(tree)
    with journaled():
        shutil.rmtree(tree / "sub")
    assert tree_digest(tree) == before


def test_rolls_back_when_the_body_raises(tree: Path) -> None:
    before = tree_digest(tree)
    with pytest.raises(RuntimeError), journaled():
        (tree / "oops.txt").write_text("x")
        raise RuntimeError("fail")
    assert tree_digest(tree) == before


def test_new_sqlite_database_and_side_files_are_removed(tree: Path) -> None:
    before = tree_digest(tree)
    with journaled():
        (tree / "db").mkdir()
        connection = sqlite3.connect(tree / "db" / "index.sqlite")
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        connection.close()
    assert tree_digest(tree) == before


def test_changed_existing_database_is_restored(tree: Path) -> None:
    path = tree / "existing.sqlite"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    connection.close()
    before = tree_digest(tree)
    with journaled():
        open_connection = sqlite3.connect(path)
        open_connection.execute("INSERT INTO t VALUES (1)")
        open_connection.commit()
    assert tree_digest(tree) == before
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check.close()


def test_changes_after_the_journal_are_kept(tree: Path) -> None:
    with journaled():
        pass
    (tree / "after.txt").write_text("kept")
    assert (tree / "after.txt").read_text() == "kept"


def test_journals_do_not_nest() -> None:
    with journaled(), pytest.raises(RuntimeError, match="already active"), journaled():
        pass
