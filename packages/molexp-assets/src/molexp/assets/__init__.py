"""MolExp assets layer: typed assets with producer attribution, indexed by a SQLite catalog.

Public surface: the asset models (``Asset`` and its per-kind subclasses, scopes,
producers), the ``Catalog`` and read-only ``AssetView``, the per-scope stores that
write payloads and register assets (data assets, artifacts, logs, checkpoints,
error traces, execution state), and the durable record helpers shared with the
workspace layer, including the permission helpers of a workspace a lab shares.
"""

from molexp.assets._artifacts import ArtifactStore
from molexp.assets._catalog import (
    BrokenRecord,
    Catalog,
    CatalogRebuildReport,
    load_asset_record,
)
from molexp.assets._checkpoints import CheckpointStore
from molexp.assets._data import IMPORT_ACTIONS, DataAssetLibrary
from molexp.assets._execution import write_error_trace, write_execution_state
from molexp.assets._io import (
    VersionedRecord,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_record,
    locked,
    parse_record,
    slugify,
    validate_name,
)
from molexp.assets._logs import LogHandle
from molexp.assets._models import (
    AnyAsset,
    ArtifactAsset,
    Asset,
    AssetKind,
    AssetScope,
    AssetUse,
    CheckpointAsset,
    DataAsset,
    ErrorTraceAsset,
    ExecutionStateAsset,
    ImportAction,
    Lineage,
    LogAsset,
    Producer,
    ScopeLevel,
    asset_id_for,
    parse_asset,
)
from molexp.assets._permissions import (
    SHARED_WORKSPACE_HELP,
    explain_permission_error,
    explained_permissions,
    file_mode,
    make_dirs,
    process_umask,
)
from molexp.assets._views import AssetView
from molexp.assets.errors import (
    AssetError,
    RecordError,
    SharedPermissionError,
    UnsupportedVersionError,
)

__all__ = [
    "IMPORT_ACTIONS",
    "SHARED_WORKSPACE_HELP",
    "AnyAsset",
    "ArtifactAsset",
    "ArtifactStore",
    "Asset",
    "AssetError",
    "AssetKind",
    "AssetScope",
    "AssetUse",
    "AssetView",
    "BrokenRecord",
    "Catalog",
    "CatalogRebuildReport",
    "CheckpointAsset",
    "CheckpointStore",
    "DataAsset",
    "DataAssetLibrary",
    "ErrorTraceAsset",
    "ExecutionStateAsset",
    "ImportAction",
    "Lineage",
    "LogAsset",
    "LogHandle",
    "Producer",
    "RecordError",
    "ScopeLevel",
    "SharedPermissionError",
    "UnsupportedVersionError",
    "VersionedRecord",
    "asset_id_for",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "explain_permission_error",
    "explained_permissions",
    "file_mode",
    "load_asset_record",
    "load_record",
    "locked",
    "make_dirs",
    "parse_asset",
    "parse_record",
    "process_umask",
    "slugify",
    "validate_name",
    "write_error_trace",
    "write_execution_state",
]

from molexp.assets.packaging import publish

publish(globals())
