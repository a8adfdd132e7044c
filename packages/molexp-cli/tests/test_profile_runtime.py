"""`runtime = "dask"` in a profile: execution settings, not task config (nor its hash)."""

from __future__ import annotations

from pathlib import Path

import pytest
from molexp.cli.profiles import ProfileError, ProfileFile


def _profiles(tmp_path: Path, text: str) -> ProfileFile:
    path = tmp_path / "molexp.toml"
    path.write_text(text)
    return ProfileFile.load(path)


def test_dask_runtime_keys_leave_the_task_config_and_its_hash(tmp_path: Path) -> None:
    profiles = _profiles(
        tmp_path,
        """
[defaults]
lr = 0.1

[profiles.cluster]
runtime = "dask"
address = "tcp://scheduler:8786"
n_workers = 4
""",
    )
    local = profiles.resolve("default")
    cluster = profiles.resolve("cluster")
    assert cluster.config == {"lr": 0.1}
    assert cluster.config_hash == local.config_hash
    assert profiles.execution("cluster").runtime == {
        "runtime": "dask",
        "address": "tcp://scheduler:8786",
        "n_workers": 4,
    }
    assert profiles.execution("default").runtime == {}


def test_address_is_task_config_without_the_dask_runtime(tmp_path: Path) -> None:
    profiles = _profiles(tmp_path, '[profiles.mail]\naddress = "lab@example.org"\n')
    assert profiles.resolve("mail").config == {"address": "lab@example.org"}
    assert profiles.execution("mail").runtime == {}


def test_unknown_runtime_is_a_profile_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"profile 'odd': runtime must be one of .*got 'ray'"):
        _profiles(tmp_path, '[profiles.odd]\nruntime = "ray"\n').execution("odd")
