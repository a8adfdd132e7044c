"""Remote execution over SSH, the parts that need no SSH server: the ``[remote]`` profile table,
ssh's arguments and error lines, ``ssh://`` URLs, staging, the agent's file streams and manifests,
and the pull plan and state (the real transport is tested in tests-integration/ssh)."""

from __future__ import annotations

import io
import json
import os
import stat
import sys
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st
from molexp.cli._agent import main as agent_main
from molexp.cli._agent import manifest, read_stream, safe_relpath, tree_id, wanted, write_stream
from molexp.cli._cmd_remote import _workspace_url, forward, remote_for_url
from molexp.cli._errors import CliUsageError
from molexp.cli._pull import PullState, plan_pull, state_path
from molexp.cli._ssh import (
    RemoteSettings,
    SshError,
    SshTarget,
    control_dir,
    describe_ssh_failure,
    format_ssh_url,
    parse_ssh_url,
    remote_shell_command,
    ssh_argv,
)
from molexp.cli._stage import first_party_files, stage_plan, strip_python_key
from molexp.cli.profiles import ProfileError, ProfileFile

REMOTE = {
    "host": "ana@login.cluster",
    "workspace": "/scratch/ana/lab",
    "python": "/scratch/ana/venv/bin/python",
}


def _profiles(remote: dict[str, object]) -> ProfileFile:
    return ProfileFile.from_mapping(
        {
            "defaults": {"scale": 1.0},
            "profiles": {"cluster": {"executor": "slurm", "remote": remote}},
        }
    )


# -- the [remote] table ----------------------------------------------------------------------------


def test_remote_table_is_an_execution_key() -> None:
    profiles = _profiles({**REMOTE, "port": 2222, "ssh_options": ["ProxyJump=gw"]})
    remote = profiles.execution("cluster").remote
    assert remote is not None
    assert remote.target == SshTarget("ana@login.cluster", 2222, None, ("ProxyJump=gw",))
    assert remote.stage_dir == "/scratch/ana/lab/.molexp/staging"
    # not part of the task config, so not of the config_hash: same runs wherever they execute
    assert profiles.resolve("cluster").config == {"scale": 1.0}
    assert profiles.resolve("cluster").config_hash == profiles.resolve("default").config_hash
    assert profiles.execution("default").remote is None
    assert profiles.execution("cluster").to_json()["remote"]["host"] == "ana@login.cluster"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"workspace": "/w", "python": "p"}, "remote: host is required"),
        ({**REMOTE, "host": "-oProxyCommand=x"}, "remote: host must be"),
        ({**REMOTE, "host": "a b"}, "remote: host must be"),
        ({**REMOTE, "workspace": "lab"}, "remote: workspace must be an absolute path"),
        ({**REMOTE, "python": ""}, "remote: python must be"),
        ({**REMOTE, "port": 0}, "remote: port must be an integer"),
        ({**REMOTE, "port": True}, "remote: port must be an integer"),
        ({**REMOTE, "ssh_options": "BatchMode=no"}, "remote: ssh_options must be a list"),
        ({**REMOTE, "ssh_options": ["-v"]}, "remote: ssh_options must be a list"),
        ({**REMOTE, "stage_dir": "rel"}, "remote: stage_dir must be an absolute path"),
        ({**REMOTE, "hostname": "x"}, "remote: unknown key 'hostname'"),
    ],
)
def test_invalid_remote_tables_are_one_line_naming_file_profile_key(
    tmp_path: Path, table: dict[str, object], message: str
) -> None:
    path = tmp_path / "molexp.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    path.write_text("[profiles.cluster.remote]\n" + "\n".join(lines) + "\n")
    with pytest.raises(ProfileError) as caught:
        ProfileFile.load(path)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: profile 'cluster': ")
    assert message in text


def test_remote_must_be_a_table() -> None:
    with pytest.raises(ProfileError, match="remote must be a table"):
        _profiles("login")  # type: ignore[arg-type]


# -- ssh arguments and errors ---------------------------------------------------------------


def test_ssh_argv_puts_the_users_options_first_and_never_prompts(tmp_path: Path) -> None:
    target = SshTarget("ana@login", 2222, "/keys/id", ("ProxyJump=gw", "BatchMode=yes"))
    argv = ssh_argv(target, control=tmp_path)
    assert argv[0] == "ssh"
    assert argv[-2:] == ["--", "ana@login"]
    assert argv[1:5] == ["-o", "ProxyJump=gw", "-o", "BatchMode=yes"]
    assert argv[5:7] == ["-p", "2222"]
    assert argv[7:9] == ["-i", "/keys/id"]
    options = [argv[i + 1] for i, a in enumerate(argv) if a == "-o"]
    assert {"ControlMaster=auto", "ControlPersist=60", f"ControlPath={tmp_path}/%C"} <= set(options)
    assert "BatchMode=yes" in options[2:]
    assert not any("ControlMaster" in a for a in ssh_argv(SshTarget("h"), control=None))


def test_remote_shell_command_quotes_everything() -> None:
    line = remote_shell_command(
        ["/venv/bin/python", "-m", "molexp.cli", "ls", "a b; rm -rf /"],
        env={"MOLEXP_WORKSPACE": "/scratch/my lab"},
        cwd="/stage/tree 1",
    )
    assert line == (
        "cd '/stage/tree 1' && env 'MOLEXP_WORKSPACE=/scratch/my lab' /venv/bin/python -m "
        "molexp.cli ls 'a b; rm -rf /'"
    )


MISMATCH = """@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key for [127.0.0.1]:2222 has changed and you have requested strict checking.
Host key verification failed.
"""


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        (MISMATCH, "the host key does not match the one in known_hosts"),
        (
            "No ED25519 host key is known for [h]:22 and you have requested strict checking.\n"
            "Host key verification failed.\n",
            "the host key is not in known_hosts",
        ),
        ("root@127.0.0.1: Permission denied (publickey).\n", "authentication failed"),
        (
            "ssh: connect to host 127.0.0.1 port 1: Connection refused\n",
            "cannot connect or the connection was lost",
        ),
        ("ssh: Could not resolve hostname nowhere: Name or service not known\n", "cannot connect"),
        ("something odd\n", "failed: something odd"),
    ],
)
def test_ssh_failures_are_one_line(stderr: str, expected: str) -> None:
    line = describe_ssh_failure(SshTarget("ana@h", 2222), stderr)
    assert "\n" not in line
    assert line.startswith("ssh to ana@h:2222")
    assert expected in line


def test_control_dir_is_private(tmp_path: Path) -> None:
    good = control_dir({"MOLEXP_SSH_CONTROL_DIR": str(tmp_path / "c")})
    assert stat.S_IMODE(good.stat().st_mode) == 0o700
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    loose.chmod(0o755)
    with pytest.raises(SshError, match="mode 0700"):
        control_dir({"MOLEXP_SSH_CONTROL_DIR": str(loose)})


# -- ssh:// URLs ---------------------------------------------------------------------------------


def test_parse_ssh_url() -> None:
    assert parse_ssh_url("ssh://ana@login:2222/scratch/lab/") == (
        SshTarget("ana@login", 2222),
        "/scratch/lab",
    )
    assert parse_ssh_url("ssh://login/scratch/lab") == (SshTarget("login"), "/scratch/lab")
    assert parse_ssh_url("ssh://[::1]:22/x") == (SshTarget("::1", 22), "/x")
    for bad in (
        "login:/scratch",
        "ssh://login",
        "ssh://login:0/x",
        "ssh://login:http/x",
        "ssh://-oProxyCommand=x/x",
        "ssh://login/x?y=1",
        "ssh:///x",
    ):
        with pytest.raises(ValueError):
            parse_ssh_url(bad)


_label = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_users = st.none() | st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs"), blacklist_characters="@/\\:\n"),
    min_size=1,
    max_size=12,
).filter(lambda u: not u.startswith("-"))
_paths = st.lists(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/?#\n"),
        min_size=1,
        max_size=8,
    ).filter(lambda s: s not in {".", ".."}),
    min_size=1,
    max_size=4,
).map(lambda parts: "/" + "/".join(parts))


@given(
    user=_users,
    host=st.lists(_label, min_size=1, max_size=3).map(".".join),
    port=st.none() | st.integers(1, 65535),
    path=_paths,
)
def test_ssh_url_round_trips(user: str | None, host: str, port: int | None, path: str) -> None:
    target = SshTarget(host if user is None else f"{user}@{host}", port)
    url = format_ssh_url(target, path)
    assert parse_ssh_url(url) == (target, path.rstrip("/") or "/")


def test_workspace_url_is_found_in_every_spelling() -> None:
    url = "ssh://h/w"
    assert _workspace_url(["ls", "runs", "-w", url]) == (2, 2, url)
    assert _workspace_url(["ls", f"--workspace={url}"]) == (1, 1, url)
    assert _workspace_url(["status", f"-w{url}"]) == (1, 1, url)
    assert _workspace_url(["ls", "-w", "lab"]) is None
    assert _workspace_url(["logs", "--", "-w", url]) is None
    assert forward(["ls", "-w", "lab"]) is None
    with pytest.raises(CliUsageError, match="works with status"):
        forward(["serve", "-w", url])


def test_remote_for_url_takes_python_and_options_from_a_matching_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "molexp.toml").write_text(
        '[profiles.cluster.remote]\nhost = "ana@login"\nport = 2222\nworkspace = "/s/lab"\n'
        'python = "/s/venv/bin/python"\nidentity_file = "/keys/id"\n'
    )
    remote = remote_for_url("ssh://ana@login:2222/s/lab", cwd=tmp_path)
    assert remote.python == "/s/venv/bin/python"
    assert remote.target.identity_file == "/keys/id"
    monkeypatch.setenv("MOLEXP_REMOTE_PYTHON", "/opt/py")
    other = remote_for_url("ssh://ana@login/elsewhere", cwd=tmp_path)
    assert (other.python, other.workspace, other.target) == (
        "/opt/py",
        "/elsewhere",
        SshTarget("ana@login"),
    )


# -- staging ---------------------------------------------------------------------------------------


def test_first_party_files_follow_imports_beside_the_script(tmp_path: Path) -> None:
    (tmp_path / "sweep.py").write_text(
        "import os, json\nimport helper\nfrom pkg.sub import thing\nimport numpy\n"
    )
    (tmp_path / "helper.py").write_text("from . import nothing\nimport deeper\n")
    (tmp_path / "deeper.py").write_text("X = 1\n")
    (tmp_path / "unused.py").write_text("X = 2\n")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("from .. import other\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "x.py").write_text("")
    files = first_party_files(tmp_path / "sweep.py")
    assert sorted(files) == [
        "deeper.py",
        "helper.py",
        "pkg/__init__.py",
        "pkg/sub/__init__.py",
        "sweep.py",
    ]


def test_stage_plan_links_the_workspace_key_and_drops_the_local_python(tmp_path: Path) -> None:
    (tmp_path / "sweep.py").write_text("import helper\n")
    (tmp_path / "helper.py").write_text("")
    profile = tmp_path / "molexp.toml"
    profile.write_text('workspace = "data/lab"\npython = ".venv/bin/python"\n[defaults]\nx = 1\n')
    tree = stage_plan(tmp_path / "sweep.py", profile, "/scratch/lab")
    assert tree.links == {"data/lab": "/scratch/lab"}
    assert tree.files["molexp.toml"] == b'workspace = "data/lab"\n[defaults]\nx = 1\n'
    assert set(tree.files) == {"sweep.py", "helper.py", "molexp.toml"}
    spec = tree.spec()
    assert tree_id(spec) == tree_id(
        stage_plan(tmp_path / "sweep.py", profile, "/scratch/lab").spec()
    )
    (tmp_path / "helper.py").write_text("CHANGED = 1\n")
    assert tree_id(spec) != tree_id(
        stage_plan(tmp_path / "sweep.py", profile, "/scratch/lab").spec()
    )
    profile.write_text('workspace = "../lab"\n')
    with pytest.raises(CliUsageError, match="beside or below the script"):
        stage_plan(tmp_path / "sweep.py", profile, "/scratch/lab")


def test_strip_python_key_only_at_top_level() -> None:
    text = 'python = "a"\nworkspace = "lab"\n[profiles.x]\npython = "kept"\n'
    assert strip_python_key(text) == 'workspace = "lab"\n[profiles.x]\npython = "kept"\n'


def test_agent_stages_blobs_and_a_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from molexp.cli._cmd_remote import _frames

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "sweep.py").write_text("import helper\n")
    (tmp_path / "src" / "helper.py").write_text("X = 1\n")
    tree = stage_plan(tmp_path / "src" / "sweep.py", None, str(tmp_path / "ws"))
    stage = tmp_path / "stage"

    def agent(*args: str, stdin: bytes) -> object:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
        assert agent_main(list(args)) == 0
        return json.loads(capsys.readouterr().out)

    missing = agent("missing", str(stage), stdin=json.dumps(list(tree.blobs())).encode())
    assert sorted(missing) == sorted(tree.blobs())  # type: ignore[arg-type]
    payload = _frames(tree.blobs()) + json.dumps(tree.spec()).encode()
    staged = agent("stage", str(stage), str(tmp_path / "ws"), stdin=payload)
    root = Path(staged["tree"])  # type: ignore[index]
    assert (root / "sweep.py").read_text() == "import helper\n"
    assert (root / "lab").resolve() == (tmp_path / "ws").resolve()
    assert (tmp_path / "ws").is_dir()
    assert agent("missing", str(stage), stdin=json.dumps(list(tree.blobs())).encode()) == []
    corrupt = _frames({"0" * 64: b"not that"}) + b"{}"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(corrupt)))
    with pytest.raises(ValueError, match="corrupted"):
        agent_main(["stage", str(stage), str(tmp_path / "ws")])


# -- file streams and manifests -------------------------------------------------------------------


def test_file_stream_round_trip_and_corruption(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_bytes(b"x" * 3000)
    (tmp_path / "y.bin").write_bytes(b"")
    out = io.BytesIO()
    write_stream(out, tmp_path, ["a/x.txt", "y.bin", "gone.txt"])
    received: dict[str, bytes] = {}

    def open_target(rel: str):  # type: ignore[no-untyped-def]
        buffer = io.BytesIO()

        def finish(ok: bool) -> None:
            if ok:
                received[rel] = buffer.getvalue()

        return buffer, finish

    got = list(read_stream(io.BytesIO(out.getvalue()), open_target))
    assert [(rel, size) for rel, _, size in got] == [
        ("a/x.txt", 3000),
        ("y.bin", 0),
        ("gone.txt", 0),
    ]
    assert got[2][1] is None
    assert received == {"a/x.txt": b"x" * 3000, "y.bin": b""}
    flipped = out.getvalue().replace(b"xxxx", b"xxxy", 1)
    assert next(iter(read_stream(io.BytesIO(flipped), open_target)))[1] is None
    with pytest.raises(ValueError, match="ended early"):
        list(read_stream(io.BytesIO(out.getvalue()[:100]), open_target))


def test_safe_relpath_refuses_escapes() -> None:
    assert safe_relpath("a/b.json") == PurePosixPath("a/b.json")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "./a", "a//b"):
        with pytest.raises(ValueError):
            safe_relpath(bad)


def test_wanted_files_of_a_run() -> None:
    keep = ["run.json", "logs/train.log", "execution/e1/slurm.out", "execution/e1/state.json"]
    for rel in keep:
        assert wanted(PurePosixPath(rel), ())
    for rel in ["execution/e1/task-outputs/journal.bin", "remote/t/inputs.pkl", ".x.lock"]:
        assert not wanted(PurePosixPath(rel), ("*",))
    assert not wanted(PurePosixPath("artifacts/model.pt"), ())
    assert wanted(PurePosixPath("artifacts/model.pt"), ("*.pt",))
    assert wanted(PurePosixPath("execution/e/artifacts/plots/a.png"), ("plots/*",))


def _workspace(root: Path) -> None:
    (root / "projects" / "p" / "experiments" / "e1" / "runs" / "run-1" / "logs").mkdir(parents=True)
    (root / "projects" / "p" / "experiments" / "e2" / "runs").mkdir(parents=True)
    (root / "workspace.json").write_text('{"id": "w"}')
    (root / "projects" / "p" / "project.json").write_text('{"name": "proj"}')
    (root / "projects" / "p" / "experiments" / "e1" / "experiment.json").write_text(
        '{"name": "first"}'
    )
    (root / "projects" / "p" / "experiments" / "e2" / "experiment.json").write_text("{}")
    run = root / "projects" / "p" / "experiments" / "e1" / "runs" / "run-1"
    (run / "run.json").write_text("{}")
    (run / "logs" / "a.log").write_text("hello\n")


def test_manifest_selects_projects_and_experiments_by_id_or_name(tmp_path: Path) -> None:
    _workspace(tmp_path)
    everything = {e["path"] for e in manifest(tmp_path)}
    assert "projects/p/experiments/e2/experiment.json" in everything
    assert "projects/p/experiments/e1/runs/run-1/logs/a.log" in everything
    named = {e["path"] for e in manifest(tmp_path, projects=["proj"], experiments=["fir*"])}
    assert named == {
        "workspace.json",
        "projects/p/project.json",
        "projects/p/experiments/e1/experiment.json",
        "projects/p/experiments/e1/runs/run-1/run.json",
        "projects/p/experiments/e1/runs/run-1/logs/a.log",
    }
    assert {e["path"] for e in manifest(tmp_path, projects=["nope"])} == {"workspace.json"}


def test_manifest_takes_a_value_naming_a_project_exactly_as_that_name(tmp_path: Path) -> None:
    for project, name in (("proj-1", "proj[1]"), ("proj1", "proj1")):
        (tmp_path / "projects" / project).mkdir(parents=True)
        (tmp_path / "projects" / project / "project.json").write_text(json.dumps({"name": name}))
    (tmp_path / "workspace.json").write_text("{}")

    def mirrored(*projects: str) -> set[str]:
        return {e["path"] for e in manifest(tmp_path, projects=list(projects))} - {"workspace.json"}

    assert mirrored("proj[1]") == {"projects/proj-1/project.json"}  # not proj1, its glob
    assert mirrored("proj?") == {"projects/proj1/project.json"}


# -- the pull plan and state ----------------------------------------------------------------


def _entry(rel: str, data: bytes) -> dict[str, object]:
    import hashlib

    return {"path": rel, "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mtime": 0}


def test_plan_pull_never_overwrites_local_changes(tmp_path: Path) -> None:
    state = PullState("ssh://h/w")
    for rel in ("same", "pulled", "edited", "foreign"):
        (tmp_path / rel).write_bytes(b"v1")
        if rel != "foreign":
            state.record(rel, tmp_path / rel, _entry(rel, b"v1")["sha256"])  # type: ignore[arg-type]
    (tmp_path / "edited").write_bytes(b"mine")
    manifest_ = [
        _entry("same", b"v1"),
        _entry("pulled", b"v2"),
        _entry("edited", b"v2"),
        _entry("foreign", b"v2"),
        _entry("new/file", b"v2"),
    ]
    plan = plan_pull(manifest_, state, tmp_path)
    assert [e["path"] for e in plan.fetch] == ["pulled", "new/file"]
    assert [rel for rel, _ in plan.unchanged] == ["same"]
    assert dict(plan.conflicts) == {
        "edited": "changed here since the last pull",
        "foreign": "exists here and was not written by a pull",
    }
    with pytest.raises(ValueError):
        plan_pull([_entry("../escape", b"")], state, tmp_path)


def test_plan_pull_trusts_the_state_only_while_size_and_mtime_match(tmp_path: Path) -> None:
    state = PullState("s")
    (tmp_path / "f").write_bytes(b"abc")
    state.record("f", tmp_path / "f", "recorded-digest")
    assert state.known_digest("f", tmp_path / "f") == "recorded-digest"
    os.utime(tmp_path / "f", ns=(1, 1))
    assert state.known_digest("f", tmp_path / "f") is None


def test_pull_state_round_trip_and_damage(tmp_path: Path) -> None:
    path = state_path(tmp_path, "ssh://h/w")
    assert path.parent == tmp_path / ".molexp" / "pull"
    state = PullState("ssh://h/w", {"a": {"sha256": "x", "size": 1, "mtime_ns": 2}})
    state.save(path)
    assert PullState.load(path, "ssh://h/w").files == state.files
    path.write_text("{not json")
    assert PullState.load(path, "ssh://h/w").files == {}
    assert PullState.load(tmp_path / "missing.json", "s").files == {}


def test_remote_settings_default_stage_dir() -> None:
    remote = RemoteSettings(SshTarget("h"), "/w", "python3")
    assert remote.stage_dir == "/w/.molexp/staging"


# -- pull end to end, with the remote commands run locally instead of over ssh -------------------


class _LocalSsh:
    """``Ssh`` running the remote command with the local shell; ``cut`` truncates streams."""

    cut: int | None = None

    def __init__(self, target: SshTarget) -> None:
        from molexp.cli._ssh import Ssh

        self._ssh = Ssh(target, None)
        self.target = target

    def argv(self, command: str) -> list[str]:
        if self.cut is not None and "_agent send" in command:
            command = f"{command} | head -c {self.cut}"
        return ["sh", "-c", command]

    def run(self, command: str, *, input: bytes | None = None, timeout: float | None = None):  # type: ignore[no-untyped-def]
        import subprocess

        return subprocess.run(self.argv(command), input=input or b"", capture_output=True)

    def popen(self, command: str):  # type: ignore[no-untyped-def]
        import subprocess

        return subprocess.Popen(
            self.argv(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def check(self, completed, what: str) -> bytes:  # type: ignore[no-untyped-def]
        return self._ssh.check(completed, what)


def test_pull_is_incremental_resumable_and_keeps_local_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from molexp.cli import _cmd_remote
    from molexp.cli._errors import CliError

    remote = tmp_path / "remote"
    _workspace(remote)
    run = remote / "projects" / "p" / "experiments" / "e1" / "runs" / "run-1"
    (run / "logs" / "big.log").write_bytes(b"line\n" * 40000)
    (run / "artifacts").mkdir()
    (run / "artifacts" / "model.pt").write_bytes(b"weights")
    monkeypatch.setenv("MOLEXP_REMOTE_PYTHON", sys.executable)
    monkeypatch.setattr(_cmd_remote.Ssh, "to", classmethod(lambda cls, target: _LocalSsh(target)))
    mirror = tmp_path / "mirror"
    url = f"ssh://h{remote}"
    errors: list[str] = []

    def pull(*artifacts: str) -> dict[str, object]:
        _cmd_remote.pull_command(
            url,
            profile=None,
            config=None,
            workspace=mirror,
            projects=[],
            experiments=[],
            artifacts=list(artifacts),
            as_json=True,
        )
        captured = capsys.readouterr()
        errors.append(captured.err)
        return json.loads(captured.out)  # type: ignore[no-any-return]

    _LocalSsh.cut = 100_000  # the connection drops in the middle of big.log
    try:
        with pytest.raises(CliError, match="run molexp pull again to resume"):
            pull()
    finally:
        _LocalSsh.cut = None
    partial = mirror / run.relative_to(remote) / "logs" / "big.log"
    assert not partial.exists()  # cut off inside it: never renamed into place
    assert not list(mirror.rglob("*.pull-tmp"))  # a partial file never stays
    resumed = pull()
    assert resumed["transferred"] >= 1 and not resumed["skipped"]
    for name in ("run.json", "logs/a.log", "logs/big.log"):
        assert (mirror / run.relative_to(remote) / name).read_bytes() == (run / name).read_bytes()
    assert not (mirror / run.relative_to(remote) / "artifacts").exists()
    assert pull()["transferred"] == 0
    with_artifacts = pull("*.pt")
    assert (with_artifacts["transferred"], with_artifacts["bytes"]) == (1, len(b"weights"))

    (run / "logs" / "a.log").write_text("hello again\n")  # the remote moved on...
    local_log = mirror / run.relative_to(remote) / "logs" / "a.log"
    local_log.write_text("my own edit\n")  # ...and so did the mirror
    report = pull("*.pt")
    assert report["skipped"] == [
        {
            "path": str(local_log.relative_to(mirror)),
            "reason": "changed here since the last pull",
        }
    ]
    assert local_log.read_text() == "my own edit\n"
    assert "not overwritten" in errors[-1]

    other = tmp_path / "other"
    other.mkdir()
    (other / "workspace.json").write_text('{"id": "another"}')
    mirror = other
    with pytest.raises(CliError, match="is another workspace"):
        pull()


@pytest.mark.parametrize(
    ("code", "stderr", "hint"),
    [
        (127, "bash: line 1: /nope/python: No such file or directory", "is the python of"),
        (1, "Error while finding module ... No module named 'molexp'", "install molexp into"),
        (1, "Traceback ...\nValueError: blob 00 arrived corrupted", "arrived corrupted"),
    ],
)
def test_a_failing_remote_helper_is_one_line_with_a_hint(code: int, stderr: str, hint: str) -> None:
    import subprocess

    from molexp.cli._ssh import Ssh

    completed = subprocess.CompletedProcess(["ssh"], code, b"", stderr.encode())
    with pytest.raises(SshError) as caught:
        Ssh(SshTarget("h"), None).check(completed, "staging the script")
    assert str(caught.value).startswith("staging the script on h failed: ")
    assert hint in str(caught.value) and "\n" not in str(caught.value)


def test_molexp_ssh_config_is_read_instead_of_the_users(tmp_path: Path) -> None:
    argv = ssh_argv(SshTarget("cluster"), control=None, environ={"MOLEXP_SSH_CONFIG": "/lab/ssh"})
    assert argv[:3] == ["ssh", "-F", "/lab/ssh"]
    assert "-F" not in ssh_argv(SshTarget("cluster"), control=None, environ={})
