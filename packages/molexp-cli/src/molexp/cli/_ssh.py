"""The SSH transport: the system's OpenSSH client, run as a subprocess.

MolExp never opens a socket, reads a key or stores a password itself: every remote call is
``ssh [the profile's options] [MolExp's defaults] HOST COMMAND``, so the user's
``~/.ssh/config`` (aliases, ``ProxyJump``, ``IdentityFile``), the SSH agent and ``known_hosts``
apply unchanged. MolExp's defaults, placed after the user's options (ssh keeps the first value it
reads for an option, so the user's own win):

- ``BatchMode=yes``: never prompt (no password, no passphrase, no host key question);
- ``ControlMaster=auto``, ``ControlPath=<private dir>/%C``, ``ControlPersist=60``: the many calls
  of one command share one connection, kept 60 s for the next command;
- ``ServerAliveInterval=15``: a dead connection is noticed within about a minute.

``$MOLEXP_SSH_CONFIG`` names an ssh_config file to read instead of ``~/.ssh/config`` (``ssh -F``).
The control sockets live in ``$MOLEXP_SSH_CONTROL_DIR``, else ``$XDG_RUNTIME_DIR/molexp-ssh``,
else ``/tmp/molexp-ssh-<uid>``: a directory of this user's with mode 0700 (anything else is
refused). ssh's exit status 255 means the connection itself failed: its stderr is turned into
one line (host key mismatch, unknown host key, authentication failure, unreachable host).
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ._errors import CliError, one_line

__all__ = [
    "CONFIG_ENV",
    "CONTROL_DIR_ENV",
    "SSH_SCHEME",
    "RemoteSettings",
    "SshError",
    "SshTarget",
    "control_dir",
    "describe_ssh_failure",
    "format_ssh_url",
    "is_ssh_url",
    "parse_ssh_url",
    "remote_shell_command",
    "ssh_argv",
]

SSH_SCHEME = "ssh://"
CONTROL_DIR_ENV = "MOLEXP_SSH_CONTROL_DIR"
CONFIG_ENV = "MOLEXP_SSH_CONFIG"
SSH_FAILED = 255
"""ssh's exit status when the connection (not the remote command) failed."""
_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*[ =]\S.*$")


class SshError(CliError):
    """The SSH connection failed (unreachable, host key, authentication) or a transfer broke."""


@dataclass(frozen=True)
class SshTarget:
    """Where ``ssh`` connects: ``host`` is ``user@login``, ``login`` or an ssh_config alias."""

    host: str
    port: int | None = None
    identity_file: str | None = None
    options: tuple[str, ...] = ()
    """Extra ``-o`` options, each ``Key=Value`` (the profile's ``ssh_options``)."""

    def describe(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class RemoteSettings:
    """A profile's ``[remote]`` table: the login host, its workspace, its Python, staging."""

    target: SshTarget
    workspace: str
    """The remote workspace root (absolute, on the cluster's filesystem)."""
    python: str
    """The remote interpreter that has molexp installed."""
    stage_dir: str = ""
    """Where scripts are staged (default ``<workspace>/.molexp/staging``)."""

    def __post_init__(self) -> None:
        if not self.stage_dir:
            object.__setattr__(self, "stage_dir", f"{self.workspace.rstrip('/')}/.molexp/staging")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any], *, where: str) -> RemoteSettings:
        """Validate a ``[remote]`` table; problems raise ``ValueError`` naming ``where.key``."""
        known = {"host", "workspace", "python", "port", "identity_file", "ssh_options", "stage_dir"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(
                f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
            )
        for key in ("host", "workspace", "python"):
            if key not in table:
                raise ValueError(f"{where}: {key} is required")
        host = table["host"]
        if not isinstance(host, str) or not host or host.startswith("-") or _blank(host):
            raise ValueError(
                f"{where}: host must be 'user@login' or an ssh_config alias, got {host!r}"
            )
        workspace = _absolute(table["workspace"], f"{where}: workspace")
        python = table["python"]
        if not isinstance(python, str) or not python or python.startswith("-") or _blank(python):
            raise ValueError(
                f"{where}: python must be the remote interpreter's path, got {python!r}"
            )
        port = table.get("port")
        if port is not None and (
            isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536
        ):
            raise ValueError(f"{where}: port must be an integer from 1 to 65535, got {port!r}")
        identity = table.get("identity_file")
        if identity is not None and (not isinstance(identity, str) or not identity.strip()):
            raise ValueError(f"{where}: identity_file must be a path, got {identity!r}")
        options = table.get("ssh_options", [])
        if not isinstance(options, list) or not all(
            isinstance(o, str) and _OPTION.match(o) for o in options
        ):
            raise ValueError(
                f"{where}: ssh_options must be a list of 'Key=Value' strings "
                f"(ssh -o options), got {options!r}"
            )
        stage_dir = table.get("stage_dir")
        stage = "" if stage_dir is None else _absolute(stage_dir, f"{where}: stage_dir")
        return cls(
            target=SshTarget(
                host=host,
                port=port,
                identity_file=None if identity is None else str(Path(identity).expanduser()),
                options=tuple(options),
            ),
            workspace=workspace,
            python=python,
            stage_dir=stage,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.target.host,
            "port": self.target.port,
            "identity_file": self.target.identity_file,
            "ssh_options": list(self.target.options),
            "workspace": self.workspace,
            "python": self.python,
            "stage_dir": self.stage_dir,
        }


def _blank(text: str) -> bool:
    return any(ch.isspace() for ch in text)


def _absolute(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or "\n" in value:
        raise ValueError(f"{where} must be an absolute path on the remote host, got {value!r}")
    return value.rstrip("/") or "/"


# -- ssh:// URLs ---------------------------------------------------------------------------------


def is_ssh_url(text: str) -> bool:
    return text.startswith(SSH_SCHEME)


def parse_ssh_url(url: str) -> tuple[SshTarget, str]:
    """``ssh://[user@]host[:port]/abs/path`` -> (target, ``/abs/path``); ``ValueError`` if not."""
    if not is_ssh_url(url):
        raise ValueError(f"{url!r} is not an ssh:// URL (ssh://user@host[:port]/path)")
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port must be a number from 1 to 65535") from None
    host = parts.hostname
    if not host or host.startswith("-") or port == 0 or _blank(host):
        raise ValueError(f"{url!r}: expected ssh://user@host[:port]/absolute/path")
    # an IPv6 address ([::1] in the URL) is given to ssh bare
    if parts.username is not None:
        user = unquote(parts.username)
        if not user or user.startswith("-") or _blank(user) or "@" in user:
            raise ValueError(f"{url!r}: invalid user name {user!r}")
        host = f"{user}@{host}"
    path = unquote(parts.path)
    if parts.query or parts.fragment or not path.startswith("/") or "\n" in path:
        raise ValueError(f"{url!r}: the workspace must be an absolute path (ssh://host/abs/path)")
    return SshTarget(host=host, port=port), path.rstrip("/") or "/"


def format_ssh_url(target: SshTarget, path: str) -> str:
    """The ``ssh://`` URL of ``path`` on ``target`` (the inverse of :func:`parse_ssh_url`)."""
    from urllib.parse import quote

    user, _, host = target.host.rpartition("@")
    if ":" in host:
        host = f"[{host}]"
    netloc = (f"{quote(user, safe='')}@" if user else "") + host
    if target.port is not None:
        netloc += f":{target.port}"
    return f"{SSH_SCHEME}{netloc}{quote(path, safe='/')}"


# -- running ssh -----------------------------------------------------------------------------------


def control_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The private directory of the ControlMaster sockets (created 0700; refused if not ours)."""
    env = os.environ if environ is None else environ
    named = env.get(CONTROL_DIR_ENV, "").strip()
    if named:
        directory = Path(named)
    elif env.get("XDG_RUNTIME_DIR", "").strip():
        directory = Path(env["XDG_RUNTIME_DIR"].strip()) / "molexp-ssh"
    else:
        directory = Path(tempfile.gettempdir()) / f"molexp-ssh-{os.getuid()}"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
    except OSError as exc:
        raise SshError(f"cannot create the ssh control directory {directory}: {exc}") from None
    if (
        not stat.S_ISDIR(info.st_mode)
        or info.st_uid != os.getuid()
        or stat.S_IMODE(info.st_mode) & 0o077
    ):
        raise SshError(
            f"the ssh control directory {directory} must be a directory of yours with mode 0700 "
            f"(set ${CONTROL_DIR_ENV} to another one)"
        )
    return directory


def ssh_argv(
    target: SshTarget, *, control: Path | None, environ: Mapping[str, str] | None = None
) -> list[str]:
    """``ssh`` and its options up to the destination (the remote command is appended).

    ``$MOLEXP_SSH_CONFIG`` names an ssh_config file read instead of ``~/.ssh/config``
    (``ssh -F``)."""
    env = os.environ if environ is None else environ
    args = ["ssh"]
    config = env.get(CONFIG_ENV, "").strip()
    if config:
        args += ["-F", str(Path(config).expanduser())]
    for option in target.options:
        args += ["-o", option]
    if target.port is not None:
        args += ["-p", str(target.port)]
    if target.identity_file is not None:
        args += ["-i", target.identity_file]
    args += ["-o", "BatchMode=yes", "-o", "ServerAliveInterval=15", "-o", "ConnectTimeout=20"]
    if control is not None:
        args += [
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={control}/%C",
            "-o",
            "ControlPersist=60",
        ]
    return [*args, "--", target.host]


def remote_shell_command(
    argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> str:
    """One POSIX shell command line running ``argv`` (for the remote login shell)."""
    words = [shlex.quote(a) for a in argv]
    if env:
        words = ["env", *(shlex.quote(f"{k}={v}") for k, v in env.items()), *words]
    line = " ".join(words)
    return line if cwd is None else f"cd {shlex.quote(cwd)} && {line}"


def describe_ssh_failure(target: SshTarget, stderr: str) -> str:
    """ssh's stderr after exit status 255, as one line naming the host and what to do."""
    where = f"ssh to {target.describe()}"
    text = stderr.strip()
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text or (
        "Host key for" in text and ("has changed" in text)
    ):
        return (
            f"{where}: the host key does not match the one in known_hosts (a reinstalled host, "
            "or someone intercepting the connection): verify the new key, then "
            f"`ssh-keygen -R {_bare_host(target)}`"
        )
    if "Host key verification failed" in text or ("No " in text and "host key is known" in text):
        return (
            f"{where}: the host key is not in known_hosts: connect once with `ssh "
            f"{target.host}` and verify it (MolExp runs ssh with BatchMode=yes, which never asks)"
        )
    if "Permission denied" in text or "Too many authentication failures" in text:
        return (
            f"{where}: authentication failed (Permission denied): add your key to the agent "
            "(`ssh-add`), or set identity_file in the profile's [remote] table; MolExp never "
            "asks for passwords"
        )
    lines = [line for line in text.splitlines() if line.strip()]
    for pattern in (
        "Could not resolve hostname",
        "Connection refused",
        "Connection timed out",
        "No route to host",
        "Network is unreachable",
        "Connection closed",
        "Connection reset",
        "closed by remote host",
        "Broken pipe",
    ):
        for line in lines:
            if pattern in line:
                return f"{where}: cannot connect or the connection was lost: {one_line(line)}"
    detail = one_line(lines[-1]) if lines else "ssh exited with status 255"
    return f"{where} failed: {detail}"


def _bare_host(target: SshTarget) -> str:
    host = target.host.rpartition("@")[2]
    return host if target.port is None or target.port == 22 else f"[{host}]:{target.port}"


@dataclass
class Ssh:
    """Runs commands on one target, all through one shared connection."""

    target: SshTarget
    control: Path | None = field(default=None)

    @classmethod
    def to(cls, target: SshTarget) -> Ssh:
        return cls(target, control_dir())

    def argv(self, command: str) -> list[str]:
        return [*ssh_argv(self.target, control=self.control), command]

    def run(
        self, command: str, *, input: bytes | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run ``command`` remotely; the connection failing raises ``SshError``."""
        try:
            completed = subprocess.run(
                self.argv(command),
                input=input if input is not None else b"",
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError:
            raise SshError("ssh is not on PATH: install the OpenSSH client") from None
        except subprocess.TimeoutExpired:
            raise SshError(
                f"ssh to {self.target.describe()}: no answer within {timeout:g} s"
            ) from None
        if completed.returncode == SSH_FAILED:
            raise SshError(
                describe_ssh_failure(self.target, completed.stderr.decode(errors="replace"))
            )
        return completed

    def popen(self, command: str) -> subprocess.Popen[bytes]:
        """Start ``command`` remotely with piped stdin/stdout/stderr (for streams)."""
        try:
            return subprocess.Popen(
                self.argv(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        except FileNotFoundError:
            raise SshError("ssh is not on PATH: install the OpenSSH client") from None

    def check(self, completed: subprocess.CompletedProcess[bytes], what: str) -> bytes:
        """The stdout of a remote helper that must succeed; else one line naming ``what``."""
        if completed.returncode != 0:
            err = completed.stderr.decode(errors="replace").strip().splitlines()
            detail = one_line(err[-1]) if err else f"exit status {completed.returncode}"
            text = "\n".join(err)
            if completed.returncode == 127 or "No such file or directory" in text:
                detail += " (is the python of the profile's [remote] table right?)"
            elif "No module named" in text and "molexp" in text:
                detail += " (install molexp into the python of the profile's [remote] table)"
            raise SshError(f"{what} on {self.target.describe()} failed: {detail}")
        return completed.stdout
