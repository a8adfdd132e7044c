"""Input that JSON records or the filesystem cannot hold is refused up front, naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.assets import (
    ArtifactStore,
    AssetScope,
    Catalog,
    DataAssetLibrary,
    Producer,
    RecordError,
    validate_name,
)
from molexp.assets._io import checked_path, decode_json, is_valid_unicode, lone_surrogate_at

RUN = AssetScope.for_run("lab", "p", "e", "r")
EXPERIMENT = AssetScope.for_experiment("lab", "p", "e")


@pytest.mark.parametrize("name", ["\ud800", "a\udcffb"])
def test_names_with_lone_surrogates_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="artifact name .* is not valid Unicode"):
        validate_name(name, "artifact name")


def test_long_names_are_shown_shortened() -> None:
    with pytest.raises(ValueError, match=r"log name 'xxxx.*\.\.\. is too long \(300 bytes"):
        validate_name("x" * 300, "log name")


def test_unicode_checks() -> None:
    assert is_valid_unicode("名前 😀") and not is_valid_unicode("a\udcff")
    nested = {"a": [1, {"b": "ok", "c\ud800": 2}]}
    assert lone_surrogate_at(nested, "params") == "params['a'][1]['c\\ud800'] (the key)"
    assert lone_surrogate_at({"a": ["x", "\udfff"]}) == "['a'][1]"
    assert lone_surrogate_at({"a": "😀"}) is None


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        (b'{"a": "\\ud83d\\ude00"}', True),
        (b'{"a": "\\udcff"}', False),
        (b'{"a": "\\uD800"}', False),
    ],
)
def test_json_escapes_of_lone_surrogates_are_record_errors(raw: bytes, valid: bool) -> None:
    if valid:
        assert decode_json(Path("r.json"), raw) == {"a": "😀"}
    else:
        with pytest.raises(RecordError, match=r"r\.json: .*\['a'\] holds a lone surrogate"):
            decode_json(Path("r.json"), raw)


@pytest.mark.parametrize(
    ("value", "why"),
    [("a\x00b", "NUL"), ("\ud800", "cannot be encoded"), (3, "must be a path")],
)
def test_checked_path_names_what_the_os_would_refuse(value: object, why: str) -> None:
    with pytest.raises(ValueError, match=f"workspace root .*{why}"):
        checked_path(value, "workspace root")  # type: ignore[arg-type]


def test_text_payloads_that_utf8_cannot_hold_name_the_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(Catalog(tmp_path, "lab"), RUN, tmp_path / "run", Producer(run_id="r"))
    with pytest.raises(ValueError, match=r"artifact 'notes.txt' cannot be written as UTF-8"):
        store.save("notes.txt", "fine \udcff")
    with pytest.raises(ValueError, match=r"artifact 'data.json' cannot be written as UTF-8"):
        store.save("data.json", {"k": "\ud800"})
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


def test_importing_a_directory_that_contains_the_library_is_refused(tmp_path: Path) -> None:
    library = DataAssetLibrary(Catalog(tmp_path, "lab"), EXPERIMENT, tmp_path / "exp")
    (tmp_path / "exp").mkdir()
    with pytest.raises(ValueError, match="contains the destination"):
        library.import_asset("everything", tmp_path)
    with pytest.raises(ValueError, match="contains the destination"):
        library.import_asset("itself", tmp_path / "exp", action="symlink")
    assert library.list() == []
