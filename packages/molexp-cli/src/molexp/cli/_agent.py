"""The remote half of ``molexp run``/``pull`` over SSH: small helpers run on the login node.

Run as ``PYTHON -m molexp.cli._agent OP ARGS`` by the remote profile's interpreter (the one that
has molexp installed); they read their input from stdin and write JSON or a file stream to
stdout. Nothing else is ever executed remotely besides these and ``PYTHON -m molexp.cli ...``.

- ``missing STAGE``: stdin a JSON list of sha256 digests; stdout the ones ``STAGE/blobs`` lacks.
- ``stage STAGE WORKSPACE``: stdin a file stream of blobs (see below) then, after its end, a JSON
  tree spec ``{"files": {relpath: sha256}, "links": {relpath: target}}``; each blob is checked
  against its digest and stored atomically as ``STAGE/blobs/<sha256>``; the tree is materialized
  once as ``STAGE/trees/<tree id>/`` (built aside, then renamed: a tree is complete or absent);
  ``WORKSPACE`` is created if missing. stdout ``{"tree": path}``.
- ``detach CALLDIR -- ARGV...``: runs ARGV in a new session (through ``wrap CALLDIR -- ARGV``,
  which keeps its output and then its exit code, ``rc``, in ``CALLDIR``) and waits for it, then
  copies that output here. If this helper dies (the SSH connection was lost), ARGV carries on to
  its end: a submission is never cut in half by the network.
- ``manifest WORKSPACE [--project P]... [--experiment E]... [--artifacts GLOB]...``: stdout a JSON
  list of ``{path, size, sha256, mtime}`` of what ``molexp pull`` mirrors (see :func:`wanted`).
- ``send WORKSPACE``: stdin a JSON list of relative paths; stdout a file stream of them.

File stream: per file a JSON header line ``{"path": P, "size": N}``, exactly N bytes, a JSON
trailer line ``{"sha256": H}`` (the digest of the bytes sent); a line ``{"end": true}`` ends it.
A file that vanished is sent as ``{"path": P, "missing": true}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO, Any

__all__ = [
    "ManifestEntry",
    "copy_stream",
    "file_sha256",
    "main",
    "manifest",
    "read_stream",
    "safe_relpath",
    "tree_id",
    "wanted",
    "write_stream",
]

ManifestEntry = dict[str, Any]
_CHUNK = 1 << 20
_SKIPPED_DIRS = {"task-outputs", "remote", "checkpoints", "slurm", "__pycache__"}


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def safe_relpath(text: str) -> PurePosixPath:
    """``text`` as a relative path that stays inside its root; ``ValueError`` otherwise."""
    path = PurePosixPath(text)
    if not text or path.is_absolute() or any(part in {"..", ""} for part in path.parts):
        raise ValueError(f"unsafe relative path {text!r}")
    if str(path) != text or text.startswith("./"):
        raise ValueError(f"unsafe relative path {text!r}")
    return path


def tree_id(spec: dict[str, Any]) -> str:
    """The id of a staged tree: the digest of its canonical spec."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# -- file streams ----------------------------------------------------------------------------------


def _line(out: IO[bytes], data: dict[str, Any]) -> None:
    out.write(json.dumps(data, separators=(",", ":")).encode() + b"\n")


def write_stream(out: IO[bytes], root: Path, paths: Iterable[str]) -> None:
    """Write the files ``paths`` (relative to ``root``) as a file stream, then its end line."""
    for rel in paths:
        source = root / safe_relpath(rel)
        try:
            handle = source.open("rb")
        except OSError:
            _line(out, {"path": rel, "missing": True})
            continue
        with handle:
            size = os.fstat(handle.fileno()).st_size
            _line(out, {"path": rel, "size": size})
            digest = hashlib.sha256()
            left = size
            while left:
                chunk = handle.read(min(_CHUNK, left))
                if not chunk:  # truncated meanwhile: pad, the digest tells the receiver
                    chunk = b"\0" * min(_CHUNK, left)
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        _line(out, {"sha256": digest.hexdigest()})
    _line(out, {"end": True})
    out.flush()


def read_stream(
    source: IO[bytes], open_target: Callable[[str], tuple[IO[bytes], Callable[[bool], None]]]
) -> Iterator[tuple[str, str | None, int]]:
    """Read a file stream: for each file ``open_target(path)`` gives a writable handle and a
    ``finish(ok)`` callback (called with whether the digest matched); yields
    ``(path, sha256 or None when missing/corrupt, size)``. ``ValueError`` on a broken stream."""
    while True:
        raw = source.readline()
        if not raw:
            raise ValueError("the file stream ended early (connection lost?)")
        header = json.loads(raw)
        if header.get("end"):
            return
        rel = str(header["path"])
        safe_relpath(rel)
        if header.get("missing"):
            yield rel, None, 0
            continue
        size = int(header["size"])
        handle, finish = open_target(rel)
        digest = hashlib.sha256()
        left = size
        try:
            while left:
                chunk = source.read(min(_CHUNK, left))
                if not chunk:
                    raise ValueError("the file stream ended early (connection lost?)")
                digest.update(chunk)
                handle.write(chunk)
                left -= len(chunk)
            trailer = json.loads(source.readline() or b"{}")
        except BaseException:
            finish(False)
            raise
        ok = trailer.get("sha256") == digest.hexdigest()
        finish(ok)
        yield rel, digest.hexdigest() if ok else None, size


def copy_stream(source: IO[bytes], destination: IO[bytes]) -> None:
    shutil.copyfileobj(source, destination, _CHUNK)


# -- staging -------------------------------------------------------------------------------------


def _missing(stage: Path, digests: Sequence[str]) -> list[str]:
    blobs = stage / "blobs"
    return [d for d in digests if not (blobs / d).is_file()]


def _atomic_target(final: Path) -> tuple[IO[bytes], Callable[[bool], None]]:
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
    handle = temp.open("wb")

    def finish(ok: bool) -> None:
        handle.close()
        if ok:
            temp.replace(final)
        else:
            temp.unlink(missing_ok=True)

    return handle, finish


def _stage(stage: Path, workspace: Path, source: IO[bytes]) -> dict[str, str]:
    blobs = stage / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)

    def open_blob(rel: str) -> tuple[IO[bytes], Callable[[bool], None]]:
        if len(rel) != 64 or any(c not in "0123456789abcdef" for c in rel):
            raise ValueError(f"not a blob name: {rel!r}")
        return _atomic_target(blobs / rel)

    for rel, digest, _ in read_stream(source, open_blob):
        if digest != rel:
            raise ValueError(f"blob {rel} arrived corrupted")
    spec = json.loads(source.read() or b"{}")
    files: dict[str, str] = dict(spec.get("files", {}))
    links: dict[str, str] = dict(spec.get("links", {}))
    workspace.mkdir(parents=True, exist_ok=True)
    final = stage / "trees" / tree_id({"files": files, "links": links})
    if not final.is_dir():
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{uuid.uuid4().hex[:8]}.tmp")
        for rel, digest in files.items():
            target = temp / safe_relpath(rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blobs / digest, target)
        for rel, link_to in links.items():
            link = temp / safe_relpath(rel)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(link_to)
        temp.mkdir(parents=True, exist_ok=True)
        try:
            temp.rename(final)
        except OSError:  # staged meanwhile by another submitter: theirs is the same
            shutil.rmtree(temp, ignore_errors=True)
            if not final.is_dir():
                raise
    return {"tree": str(final)}


def _detach(call_dir: Path, argv: Sequence[str]) -> int:
    """Run ``argv`` through ``_wrap`` in its own session (it survives this process), wait for
    it, relay its output and remove ``call_dir``. A call left behind by a helper that died is
    removed by a later one once it has ended (its ``rc`` written) for a day."""
    _sweep_calls(call_dir.parent)
    call_dir.mkdir(parents=True, exist_ok=True)
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "molexp.cli._agent", "wrap", str(call_dir), "--", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    wrapper.wait()
    try:
        code = int((call_dir / "rc").read_text())
    except (OSError, ValueError):
        code = 1
    for name, stream in (("stderr", sys.stderr.buffer), ("stdout", sys.stdout.buffer)):
        with contextlib.suppress(OSError), (call_dir / name).open("rb") as handle:
            copy_stream(handle, stream)
        stream.flush()
    shutil.rmtree(call_dir, ignore_errors=True)
    return code


def _wrap(call_dir: Path, argv: Sequence[str]) -> int:
    """Run ``argv`` with its output in ``call_dir``, then write its exit code to ``rc``."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    (call_dir / "pid").write_text(f"{os.getpid()}\n")
    with (call_dir / "stdout").open("wb") as out, (call_dir / "stderr").open("wb") as err:
        code = subprocess.call(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    temp = call_dir / ".rc.tmp"
    temp.write_text(f"{code}\n")
    temp.replace(call_dir / "rc")
    return code


def _sweep_calls(calls: Path) -> None:
    if not calls.is_dir():
        return
    for call in calls.iterdir():
        with contextlib.suppress(OSError):
            if time.time() - (call / "rc").stat().st_mtime > 86400:
                shutil.rmtree(call, ignore_errors=True)


# -- manifests -----------------------------------------------------------------------------------


def _record_name(path: Path) -> str | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) else None


def _names(directory: Path, record: str) -> list[str]:
    """The id (directory name) and the recorded name of a project or experiment."""
    name = _record_name(directory / record)
    return [directory.name] + ([name] if name is not None else [])


def _selected(patterns: Sequence[str], names: Sequence[str], literal: set[str]) -> bool:
    """Whether ``-p``/``-e`` values select an item with these names: as ``molexp`` selects
    (``Selection`` in ``_resolve``), a value that names an item of the workspace exactly
    (``literal``) is that name only, any other value a glob."""
    if not patterns:
        return True
    return any(n == p or (p not in literal and fnmatchcase(n, p)) for p in patterns for n in names)


def wanted(rel_in_run: PurePosixPath, artifacts: Sequence[str]) -> bool:
    """Whether a file of a run directory is mirrored: records, logs and metrics always; files
    under ``artifacts/`` when a glob matches their path there or their name; never task-output
    journals, remote-task pickles, checkpoints or lock files."""
    parts = rel_in_run.parts
    if any(part in _SKIPPED_DIRS for part in parts[:-1]) or rel_in_run.name.endswith(".lock"):
        return False
    if ".tmp" in rel_in_run.name and rel_in_run.name.startswith("."):
        return False
    if "artifacts" in parts[:-1]:
        inside = PurePosixPath(*parts[parts.index("artifacts") + 1 :])
        return any(fnmatchcase(str(inside), g) or fnmatchcase(inside.name, g) for g in artifacts)
    return True


def manifest(
    root: Path,
    *,
    projects: Sequence[str] = (),
    experiments: Sequence[str] = (),
    artifacts: Sequence[str] = (),
) -> list[ManifestEntry]:
    """What ``molexp pull`` mirrors of the workspace at ``root``, with sizes and digests."""
    files: list[Path] = [root / "workspace.json"]
    feed = root / ".molexp" / "changes"
    if feed.is_dir():
        files += sorted(p for p in feed.glob("*.jsonl") if p.is_file())
    every_project = {
        project: _names(project, "project.json")
        for project in sorted((root / "projects").glob("*/"))
    }
    experiments_of = {
        project: {
            experiment: _names(experiment, "experiment.json")
            for experiment in sorted((project / "experiments").glob("*/"))
        }
        for project in every_project
    }
    literal_projects = {n for names in every_project.values() for n in names}
    literal_experiments = {
        n for found in experiments_of.values() for names in found.values() for n in names
    }
    for project, project_names in every_project.items():
        if not _selected(projects, project_names, literal_projects):
            continue
        files.append(project / "project.json")
        for experiment, experiment_names in experiments_of[project].items():
            if not _selected(experiments, experiment_names, literal_experiments):
                continue
            files.append(experiment / "experiment.json")
            for run_dir in sorted((experiment / "runs").glob("*/")):
                for directory, dirs, names in os.walk(run_dir):
                    dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_DIRS)
                    for name in sorted(names):
                        path = Path(directory) / name
                        rel = PurePosixPath(path.relative_to(run_dir).as_posix())
                        if wanted(rel, artifacts) and not path.is_symlink():
                            files.append(path)
    entries = []
    for path in files:
        try:
            info = path.stat()
            digest = file_sha256(path)
        except OSError:
            continue
        entries.append(
            {
                "path": path.relative_to(root).as_posix(),
                "size": info.st_size,
                "sha256": digest,
                "mtime": info.st_mtime,
            }
        )
    return entries


# -- entry ---------------------------------------------------------------------------------------


def _options(args: Sequence[str], names: Sequence[str]) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {name: [] for name in names}
    it = iter(args)
    for arg in it:
        key = arg.removeprefix("--")
        if key not in found:
            raise SystemExit(f"_agent: unknown option {arg!r}")
        found[key].append(next(it))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        raise SystemExit("usage: python -m molexp.cli._agent OP ARGS")
    op, rest = args[0], args[1:]
    if op == "missing":
        digests = json.loads(sys.stdin.buffer.read() or b"[]")
        print(json.dumps(_missing(Path(rest[0]), digests)))
    elif op == "stage":
        print(json.dumps(_stage(Path(rest[0]), Path(rest[1]), sys.stdin.buffer)))
    elif op == "detach":
        if len(rest) < 3 or rest[1] != "--":
            raise SystemExit("usage: _agent detach CALLDIR -- ARGV...")
        return _detach(Path(rest[0]), rest[2:])
    elif op == "wrap":
        return _wrap(Path(rest[0]), rest[2:])
    elif op == "manifest":
        opts = _options(rest[1:], ["project", "experiment", "artifacts"])
        entries = manifest(
            Path(rest[0]),
            projects=opts["project"],
            experiments=opts["experiment"],
            artifacts=opts["artifacts"],
        )
        print(json.dumps(entries))
    elif op == "send":
        paths = json.loads(sys.stdin.buffer.read() or b"[]")
        write_stream(sys.stdout.buffer, Path(rest[0]), paths)
    else:
        raise SystemExit(f"_agent: unknown operation {op!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
