"""Where ``get_data_dir`` points, for the owner's ``RunContext`` and a worker's context alike: the
asset's directory, else a fallback directory confined to the workspace."""

from __future__ import annotations

import os
from pathlib import Path

from molexp.assets import Asset
from molexp.assets.storage import checked_path

__all__ = ["data_dir"]


def data_dir(
    root: Path,
    asset: Asset | None,
    asset_name: str,
    *,
    run_id: str,
    fallback: str | os.PathLike[str] | None,
) -> Path:
    """``root / asset.path``; without an asset, ``root / fallback`` created (a relative path
    naming a directory below the workspace root, never escaping it)."""
    if asset is not None:
        return root / asset.path
    if fallback is None:
        raise FileNotFoundError(
            f"no asset {asset_name!r} visible from run {run_id!r} "
            "(searched run, experiment, project and workspace) and no fallback given"
        )
    relative = checked_path(fallback, f"fallback for asset {asset_name!r}")
    directory = root / relative
    if (
        relative.is_absolute()
        or ".." in relative.parts
        or not directory.resolve().is_relative_to(root)
        or directory.resolve() == root
    ):
        raise ValueError(
            f"fallback {str(fallback)!r} for asset {asset_name!r} must be a relative path "
            "inside the workspace, naming a directory below its root"
        )
    directory.mkdir(parents=True, exist_ok=True)
    return directory
