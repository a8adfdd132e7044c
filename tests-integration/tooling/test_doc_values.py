"""Values the documentation prints must be the values MolExp computes: the profile record shown
in docs/concepts/profiles.md carries the ``config_hash`` of the config it shows."""

from __future__ import annotations

import json
import re
from pathlib import Path

from molexp.workspace import ProfileConfig

ROOT = Path(__file__).resolve().parents[2]
PROFILES_PAGE = ROOT / "docs" / "concepts" / "profiles.md"


def test_the_profile_record_example_shows_the_hash_of_its_own_config() -> None:
    text = PROFILES_PAGE.read_text(encoding="utf-8")
    match = re.search(r"```json\n(\"profile\": \{.*?\n\})\n```", text, re.DOTALL)
    assert match is not None, "the profile record example is missing from profiles.md"
    shown = json.loads("{" + match.group(1) + "}")["profile"]
    computed = ProfileConfig(
        name=shown["name"], config=shown["config"], overrides=shown["overrides"]
    ).config_hash
    assert shown["config_hash"] == computed
