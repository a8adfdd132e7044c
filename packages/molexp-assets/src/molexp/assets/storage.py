"""Low-level storage shared with the layers above: the index file, the change feed, attempt files.

The workspace layer keeps its own tables in the catalog's per-host index file and its
own record kinds in the change feed, and moves a run's files between attempts; this
module is the supported way to reach them.
"""

from molexp.assets._attempt_files import (
    ATTEMPT_DIR_NAME,
    SEALED_FILE_NAME,
    attempt_dir,
    preserve,
    show_in_view,
)
from molexp.assets._catalog import RECORD_DIR_NAME, consume_span
from molexp.assets._feed import RETENTION_SECONDS, Change, FeedSpan, changing, note_change
from molexp.assets._index_file import (
    INDEX_DIR_ENV,
    FileIdentity,
    discard_index,
    file_identity,
    index_dir,
    is_corruption,
    open_pinned,
)
from molexp.assets._io import create_exclusive_bytes

__all__ = [
    "ATTEMPT_DIR_NAME",
    "INDEX_DIR_ENV",
    "RECORD_DIR_NAME",
    "RETENTION_SECONDS",
    "SEALED_FILE_NAME",
    "Change",
    "FeedSpan",
    "FileIdentity",
    "attempt_dir",
    "changing",
    "consume_span",
    "create_exclusive_bytes",
    "discard_index",
    "file_identity",
    "index_dir",
    "is_corruption",
    "note_change",
    "open_pinned",
    "preserve",
    "show_in_view",
]
