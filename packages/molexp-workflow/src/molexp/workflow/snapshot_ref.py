"""WorkflowSnapshotRef: which source file (and git commit) defined a workflow that ran.

The workspace layer stores this record as opaque JSON on a run (``run.set_workflow(payload)``);
this module gives the payload its shape. Capturing never fails because git is missing or the file
is outside a repository: those fields are then None.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["WorkflowSnapshotRef", "git_checkout"]

_GIT_TIMEOUT_SECONDS = 10.0


def _git(directory: Path, *args: str) -> str | None:
    """Output of ``git -C <directory> <args>``, or None if git is missing or the command fails."""
    try:
        completed = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def _file_sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def git_checkout(source: Path) -> tuple[str | None, bool | None]:
    """The ``HEAD`` commit of the repository holding ``source`` (a file or directory) and
    whether that commit alone may not reproduce it (see :class:`WorkflowSnapshotRef`);
    ``(None, None)`` outside a repository or without git, ``dirty`` None if git could not say.
    """
    directory = source if source.is_dir() else source.parent
    commit = _git(directory, "rev-parse", "HEAD") if directory.is_dir() else None
    if not commit:
        return None, None
    changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    if changed is None:
        return commit, None
    if changed:
        return commit, True
    if source.is_dir():
        return commit, False
    if not source.is_file():
        return commit, None  # nothing there: git cannot say whether the commit holds it
    tracked = _git(directory, "--literal-pathspecs", "ls-files", "--", source.name)
    return commit, None if tracked is None else tracked == ""


class WorkflowSnapshotRef(BaseModel):
    """Reference to the source a workflow was defined in, at the time it ran.

    ``source`` is the absolute path of the script; ``source_hash`` the sha256 of its bytes;
    ``git_commit`` the ``HEAD`` commit of the repository containing it and ``git_dirty`` whether
    that commit alone may not reproduce it: some tracked file of the repository differs from
    it (the script, or a module it imports), or the script itself is not in git. Untracked
    files other than the script (outputs, a workspace inside the checkout) do not count.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1

    version: int = 1
    source: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    workflow_id: str | None = None
    workflow_name: str | None = None
    source_hash: str | None = None

    @classmethod
    def capture(
        cls,
        source: str | Path | None,
        *,
        workflow_id: str | None = None,
        workflow_name: str | None = None,
    ) -> WorkflowSnapshotRef:
        """Record ``source`` (a script path, or None) with its hash and git commit."""
        if source is None:
            return cls(workflow_id=workflow_id, workflow_name=workflow_name)
        path = Path(source).expanduser().resolve()
        commit, dirty = git_checkout(path)
        return cls(
            source=str(path),
            git_commit=commit or None,
            git_dirty=dirty,
            workflow_id=workflow_id,
            workflow_name=workflow_name,
            source_hash=_file_sha256(path) if path.is_file() else None,
        )

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (what the workspace stores on a run)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_payload(cls, payload: Any) -> WorkflowSnapshotRef:
        """Read back a payload written by :meth:`to_payload`.

        Raises ``ValueError`` naming the field for a malformed payload, or when the payload comes
        from a newer schema version than this MolExp understands.
        """
        if not isinstance(payload, dict):
            raise ValueError(
                f"workflow snapshot payload must be a JSON object, got {type(payload).__name__}"
            )
        version = payload.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"workflow snapshot field 'version' must be an integer: {version!r}")
        if version > cls.SCHEMA_VERSION:
            raise ValueError(
                f"workflow snapshot version {version} is newer than this MolExp understands "
                f"({cls.SCHEMA_VERSION}); upgrade MolExp to read it"
            )
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"workflow snapshot field {field!r}: {first['msg']}") from None
