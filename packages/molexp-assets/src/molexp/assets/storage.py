"""Low-level storage shared with the layers above: record I/O, the index, the feed, attempt files.

What the workspace, CLI and server layers build on besides the package's main surface:
validated paths and text, settled reads of records other hosts may be replacing, exclusive
creation, the per-host index file (the workspace keeps its own tables there), the change feed
(its own record kinds travel there; a layer may also follow the journals itself) and a run's
files between attempts. Other layers import these from here, never from private modules.
"""

from molexp.assets._attempt_files import (
    ATTEMPT_DIR_NAME,
    SEALED_FILE_NAME,
    TEMP,
    attempt_dir,
    preserve,
    show_in_view,
)
from molexp.assets._catalog import RECORD_DIR_NAME, consume_span
from molexp.assets._feed import (
    ACTIVE_JOURNAL_SECONDS,
    RETENTION_SECONDS,
    Change,
    FeedLine,
    FeedSpan,
    JournalState,
    changing,
    feed_dir,
    journal_states,
    note_change,
    read_journal,
)
from molexp.assets._index_file import (
    INDEX_DIR_ENV,
    FileIdentity,
    discard_index,
    file_identity,
    index_dir,
    is_corruption,
    open_pinned,
)
from molexp.assets._io import (
    checked_path,
    create_exclusive_bytes,
    decode_json,
    is_valid_unicode,
    lone_surrogate_at,
    read_record_bytes,
    read_settled,
    restore_file,
)
from molexp.assets._locks import on_local_filesystem

__all__ = [
    "ACTIVE_JOURNAL_SECONDS",
    "ATTEMPT_DIR_NAME",
    "INDEX_DIR_ENV",
    "RECORD_DIR_NAME",
    "RETENTION_SECONDS",
    "SEALED_FILE_NAME",
    "TEMP",
    "Change",
    "FeedLine",
    "FeedSpan",
    "FileIdentity",
    "JournalState",
    "attempt_dir",
    "changing",
    "checked_path",
    "consume_span",
    "create_exclusive_bytes",
    "decode_json",
    "discard_index",
    "feed_dir",
    "file_identity",
    "index_dir",
    "is_corruption",
    "is_valid_unicode",
    "journal_states",
    "lone_surrogate_at",
    "note_change",
    "on_local_filesystem",
    "open_pinned",
    "preserve",
    "read_journal",
    "read_record_bytes",
    "read_settled",
    "restore_file",
    "show_in_view",
]
