"""One canonical JSON, two implementations: the workflow and workspace layers cannot import each
other, so each encodes MolExp's canonical JSON (docs/architecture.md) itself; for the same plain
JSON value both must produce the same bytes (and so the same hashes)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st
from molexp.workflow._hashing import canonical_json as workflow_canonical_json
from molexp.workflow._hashing import sha256_hex
from molexp.workspace._hashing import canonical_json as workspace_canonical_json
from molexp.workspace._hashing import config_hash, plain_json

# Valid Unicode only (a lone surrogate has no UTF-8 encoding; the workspace refuses it), and no
# object key starting with "$" (the workflow layer's tags for non-JSON kinds, see _hashing).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
keys = text.filter(lambda key: not key.startswith("$"))
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
@example({"name": "é"})  # the disagreement issue 14 found: \u00e9 on one side, é on the other
@example({"b": [1, 1.0, True, None, -0.0], "a": "日本"})
def test_both_layers_write_the_same_canonical_bytes(value: Any) -> None:
    workflow_text = workflow_canonical_json(value)
    workspace_text = workspace_canonical_json(plain_json(value, "value"))
    assert workflow_text.encode("utf-8") == workspace_text.encode("utf-8")
    assert json.loads(workflow_text) == json.loads(json.dumps(value))


@given(st.dictionaries(keys, json_values, max_size=5))
@example({"name": "é"})
def test_config_hash_is_the_sha256_of_the_canonical_bytes(config: dict[str, Any]) -> None:
    expected = hashlib.sha256(workflow_canonical_json(config).encode("utf-8")).hexdigest()
    assert config_hash(config) == expected == sha256_hex(workflow_canonical_json(config))
