"""Session-wide setup for the integration suite."""

from __future__ import annotations

import os
import tempfile

# Every test session keeps its per-host index files in a directory of its own, not in ~/.cache.
os.environ.setdefault("MOLEXP_INDEX_DIR", tempfile.mkdtemp(prefix="molexp-test-index-"))
