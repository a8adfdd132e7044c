"""Commands driven in-process through ``run_cli``: output shapes, exit codes, one-line errors."""

from __future__ import annotations

import json
import platform
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import tree_digest, write_script
from molexp.cli import run_cli
from molexp.cli.__main__ import describe_error
from molexp.cli._errors import CliError, CliUsageError, one_line
from molexp.workspace import Workspace


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = run_cli(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err


@pytest.fixture
def ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    """A workspace after one `molexp run` of the helper script (2 succeeded runs)."""
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path)
    code, _, _ = invoke(capsys, "run", str(script), "--json")
    assert code == 0
    monkeypatch.setenv("MOLEXP_WORKSPACE", str(tmp_path / "lab"))
    return script


def test_one_line_collapses_whitespace() -> None:
    assert one_line("a\n  b   c\n\n d") == "a; b c; d"
    assert one_line("") == "unknown error"


def test_describe_error_codes() -> None:
    assert describe_error(CliError("x")) == ("x", 1)
    assert describe_error(CliUsageError("bad\nvalue")) == ("bad; value", 2)
    assert describe_error(KeyError("k")) == ("KeyError: 'k'", 1)


def test_usage_errors_are_one_line_with_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["run"], ["nonsense"], ["ls", "--bogus"], ["ls", "widgets"]):
        code, _, err = invoke(capsys, *args)
        assert code == 2, args
        assert_one_line_error(err)


def test_help_is_available(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "--help")
    assert code == 0
    for command in ("run", "execute", "init", "ls", "show", "logs", "query", "profiles", "reap"):
        assert command in out


def test_run_then_again_executes_nothing(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "run", str(ran), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["executed"] == 0 and report["skipped"] == 2
    assert report["notes"] == ["experiment demo/unbound has no bound workflow; skipped"]


def test_run_human_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path, replicas=1)
    code, out, err = invoke(capsys, "run", str(script), "--set", "scale=2")
    assert code == 0
    assert "1 executed, 0 failed, 0 skipped" in out
    assert "note: experiment demo/unbound has no bound workflow" in err


def test_dry_run_on_fresh_directory_touches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    script = write_script(tmp_path)
    before = tree_digest(tmp_path)
    code, out, _ = invoke(capsys, "run", str(script), "--dry-run", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["dry_run"] is True and plan["to_execute"] == 2
    assert tree_digest(tmp_path) == before
    assert not (tmp_path / "lab").exists()


def test_profile_errors(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = invoke(capsys, "run", str(ran), "--profile", "gpu")
    assert code == 2
    assert_one_line_error(err)
    assert "unknown profile 'gpu'" in err and "available: default" in err

    (ran.parent / "molexp.toml").write_text("[defaults]\nx = = 1\n")
    code, _, err = invoke(capsys, "run", str(ran))
    assert code == 1
    assert_one_line_error(err)
    assert "malformed profile file" in err and "line 2, column" in err

    code, _, err = invoke(capsys, "run", str(ran), "--config", "missing.toml")
    assert code == 2
    assert_one_line_error(err)


def test_ls_views(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "ls", "--json")
    overview = json.loads(out)
    assert code == 0
    [project] = overview["projects"]
    assert project["id"] == "demo" and project["total_runs"] == 2
    assert {e["id"]: e["runs"] for e in project["experiments"]} == {
        "baseline": {"succeeded": 2},
        "unbound": {},
    }
    projects = json.loads(invoke(capsys, "ls", "projects", "--json")[1])
    assert projects == [
        {"id": "demo", "name": "demo", "description": None, "total_runs": 2, "experiments": 2}
    ]
    experiments = json.loads(invoke(capsys, "ls", "experiments", "-e", "baseline", "--json")[1])
    assert [e["id"] for e in experiments] == ["baseline"]
    runs = json.loads(invoke(capsys, "ls", "runs", "--status", "succeeded", "--json")[1])
    assert len(runs) == 2 and {r["params"]["seed"] for r in runs} == {0, 1}
    assert json.loads(invoke(capsys, "ls", "runs", "--where", "seed == 1", "--json")[1])[0][
        "params"
    ] == {"lr": 0.01, "seed": 1}
    assert json.loads(invoke(capsys, "ls", "runs", "--status", "failed", "--json")[1]) == []
    code, out, _ = invoke(capsys, "ls")
    assert code == 0 and "experiment baseline: 2 succeeded" in out


def test_show_logs_artifacts_assets(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = json.loads(invoke(capsys, "query", "seed == 0", "--json")[1])
    run_id = runs[0]["id"]
    shown = json.loads(invoke(capsys, "show", run_id, "--json")[1])
    assert shown["id"] == run_id and shown["status"] == "succeeded"
    assert shown["results"] == {"total": 3.0}
    assert shown["profile"]["name"] == "default" and len(shown["profile"]["config_hash"]) == 64
    assert len(shown["execution_history"]) == 1
    assert any(a["kind"] == "execution_state" for a in shown["assets"])
    code, out, _ = invoke(capsys, "show", runs[0]["run_dir"])
    assert code == 0 and run_id in out and "Attempts" in out
    assert platform.python_version() in out  # the interpreter that ran each attempt

    code, out, err = invoke(capsys, "logs", run_id)
    assert code == 0 and "has no logs" in err
    assert json.loads(invoke(capsys, "artifacts", run_id, "--json")[1]) == []
    kinds = {a["kind"] for a in json.loads(invoke(capsys, "assets", "--json")[1])}
    assert kinds == {"execution_state"}
    assert json.loads(invoke(capsys, "assets", "--kind", "log", "--json")[1]) == []
    code, _, err = invoke(capsys, "assets", "--kind", "nope")
    assert code == 2
    assert_one_line_error(err)


def test_logs_tail_and_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        log = ctx.log("train")
        for index in range(5):
            log.append(f"line {index}")
        ctx.log("eval").append("eval line")
    code, out, _ = invoke(capsys, "logs", "r", "train", "--tail", "2", "-w", str(ws.root))
    assert code == 0 and out == "line 3\nline 4\n"
    code, out, _ = invoke(capsys, "logs", "r", "-w", str(ws.root))
    assert "==> eval <==" in out and "==> train <==" in out
    code, out, _ = invoke(capsys, "logs", "r", "eval", "--follow", "-w", str(ws.root))
    assert code == 0 and out == "eval line\n"
    code, _, err = invoke(capsys, "logs", "r", "nope", "-w", str(ws.root))
    assert code == 1 and "available: eval, train" in err
    code, _, err = invoke(capsys, "logs", "r", "--follow", "-w", str(ws.root))
    assert code == 2
    assert_one_line_error(err)
    code, out, _ = invoke(capsys, "logs", "r", "--json", "-n", "1", "-w", str(ws.root))
    payload = json.loads(out)
    assert code == 0
    assert payload["run_id"] == "r" and payload["attempt"] == 1
    assert sorted(payload["logs"]) == ["eval", "train"]
    assert all(len(lines) <= 1 for lines in payload["logs"].values())
    code, _, err = invoke(capsys, "logs", "r", "train", "--json", "-f", "-w", str(ws.root))
    assert code == 2 and "--json" in err


def test_logs_follow_waits_for_a_queued_run_to_write_the_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Right after a submission the run is queued and its log does not exist yet: --follow
    # waits for it (as `tail -F` does) instead of failing; without --follow it is an error
    # that says so.
    ws = Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    run.mark_queued({"name": "a-queue", "job": "7"})
    code, _, err = invoke(capsys, "logs", "r", "train", "-w", str(ws.root))
    assert code == 1 and "queued" in err and "--follow" in err

    def job() -> None:
        time.sleep(0.5)
        with run.start() as ctx:
            log = ctx.log("train")
            log.append("epoch 1")
            log.flush()
            time.sleep(0.5)
            log.append("epoch 2")

    worker = threading.Thread(target=job)
    worker.start()
    try:
        code, out, err = invoke(capsys, "logs", "r", "train", "--follow", "-w", str(ws.root))
    finally:
        worker.join()
    assert code == 0
    assert out == "epoch 1\nepoch 2\n"
    assert "waiting for run r (queued)" in err


def test_logs_follow_of_a_run_that_ends_without_the_log_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    run.mark_queued({"name": "a-queue", "job": "7"})

    def job() -> None:
        time.sleep(0.3)
        with run.start() as ctx:
            ctx.log("other").append("not the one")

    worker = threading.Thread(target=job)
    worker.start()
    try:
        code, _, err = invoke(capsys, "logs", "r", "train", "--follow", "-w", str(ws.root))
    finally:
        worker.join()
    assert code == 1
    assert "has no log 'train'; available: other" in err


def test_logs_of_a_run_with_one_log_print_it_without_a_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "lab")
    run = ws.Project("p").Experiment("e").Run(id="r")
    with run.start() as ctx:
        ctx.log("fit").append("loss=0.5")
    code, out, _ = invoke(capsys, "logs", "r", "-w", str(ws.root))
    assert code == 0 and out == "loss=0.5\n"


def test_cancel_and_reap(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = Workspace(tmp_path / "lab")
    exp = ws.Project("p").Experiment("e")
    exp.Run(id="waiting")
    code, out, _ = invoke(capsys, "cancel", "waiting", "-w", str(ws.root))
    assert code == 0 and "cancelled (was pending)" in out
    assert exp.get_run("waiting").status == "cancelled"
    code, _, err = invoke(capsys, "cancel", "waiting", "-w", str(ws.root))
    assert code == 1
    assert_one_line_error(err)
    exp.Run(id="queued-json")
    code, out, _ = invoke(capsys, "cancel", "queued-json", "-w", str(ws.root), "--json")
    assert code == 0
    assert json.loads(out) == {
        "run_id": "queued-json",
        "was": "pending",
        "status": "cancelled",
        "slurm_job": None,
        "slurm_cancelled": False,
        "notes": [],
    }

    code, out, _ = invoke(capsys, "reap", "-w", str(ws.root), "--json")
    assert code == 0 and json.loads(out) == []
    crashed = exp.Run(id="crashed")
    context = crashed.start()
    context.__enter__()
    record = json.loads((crashed.run_dir / "run.json").read_text())
    record["owner"]["pid"] = 2**22 + 4321
    (crashed.run_dir / "run.json").write_text(json.dumps(record))
    code, out, _ = invoke(capsys, "reap", "-w", str(ws.root), "--json")
    reaped = json.loads(out)
    assert code == 0 and [r["id"] for r in reaped] == ["crashed"]
    assert reaped[0]["status"] == "failed"


def test_profiles_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "molexp.toml").write_text(
        '[defaults]\nscale = 1\n[profiles.fast]\nscale = 2\n[profiles.gpu]\nextends = "fast"\n'
    )
    code, out, _ = invoke(capsys, "profiles", str(tmp_path), "--json")
    listing = json.loads(out)
    assert code == 0 and listing["file"] == str(tmp_path / "molexp.toml")
    by_name = {p["name"]: p for p in listing["profiles"]}
    assert by_name["gpu"]["chain"] == ["fast", "gpu"]
    assert by_name["gpu"]["config"] == {"scale": 2}
    assert by_name["gpu"]["config_hash"] == by_name["fast"]["config_hash"]
    assert by_name["default"]["config_hash"] != by_name["fast"]["config_hash"]
    code, out, _ = invoke(capsys, "profiles", str(tmp_path / "molexp.toml"))
    assert code == 0 and "gpu" in out


def test_query_errors_and_order(ran: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(invoke(capsys, "query", "lr > 0", "--order-by", "-seed", "--json")[1])
    assert [r["params"]["seed"] for r in rows] == [1, 0]
    assert len(json.loads(invoke(capsys, "query", "lr > 0", "--limit", "1", "--json")[1])) == 1
    code, _, err = invoke(capsys, "query", "lr <")
    assert code == 2
    assert_one_line_error(err)
    assert "column" in err


def test_ids_print_bare_run_ids_for_shell_pipelines(
    ran: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = json.loads(invoke(capsys, "query", "lr > 0", "--order-by", "-seed", "--json")[1])
    code, out, _ = invoke(capsys, "query", "lr > 0", "--order-by", "-seed", "--ids")
    assert code == 0 and out.splitlines() == [row["id"] for row in rows]
    code, out, _ = invoke(capsys, "ls", "runs", "--ids")
    assert code == 0 and sorted(out.splitlines()) == sorted(row["id"] for row in rows)
    for args in (["ls", "--ids"], ["query", "lr > 0", "--ids", "--json"]):
        code, _, err = invoke(capsys, *args)
        assert code == 2, args
        assert_one_line_error(err)


def test_a_query_on_an_unknown_field_is_one_line_naming_it(
    ran: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = invoke(capsys, "query", "sed == 0")  # a typo of the parameter seed
    assert code == 2 and out == ""
    assert_one_line_error(err)
    assert "unknown field 'sed'" in err and "did you mean 'seed'?" in err
    code, _, err = invoke(capsys, "ls", "runs", "--where", "results.nope > 1")
    assert code == 2 and "unknown field 'results.nope'" in err
    code, _, err = invoke(capsys, "query", "lr > 0", "--order-by", "-sead")
    assert code == 2 and "unknown field 'sead'" in err
    code, out, _ = invoke(capsys, "query", "not exists(sed)", "--json")  # asked on purpose
    assert code == 0 and len(json.loads(out)) == 2


def test_a_broken_workspace_record_is_not_reported_as_a_query_error(
    ran: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = Path.cwd() / "lab" / "workspace.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "id": ""}))
    for args in (["ls"], ["ls", "runs"], ["query", "seed == 0"]):
        code, _, err = invoke(capsys, *args)
        assert code == 1, args
        assert_one_line_error(err)
        assert "workspace.json (field 'id')" in err and "invalid query" not in err, err


def test_init_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "init", str(tmp_path / "new"), "--name", "Lab", "--json")
    created = json.loads(out)
    assert code == 0 and created["created"] is True and created["name"] == "Lab"
    again = json.loads(invoke(capsys, "init", str(tmp_path / "new"), "--json")[1])
    assert again["created"] is False and again["id"] == created["id"]


def test_debug_env_prints_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke(capsys, "ls")
    assert code == 1
    assert_one_line_error(err)
    monkeypatch.setenv("MOLEXP_DEBUG", "1")
    code, _, err = invoke(capsys, "ls")
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error:")


def test_execute_reimports_from_the_recorded_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project_dir = tmp_path / "project"
    project_dir.mkdir()
    script = write_script(project_dir, replicas=1)
    # A workspace path relative to the working directory, as scripts commonly write it.
    script.write_text(script.read_text().replace('HERE / "lab"', '"lab"'))
    monkeypatch.chdir(project_dir)
    report = json.loads(invoke(capsys, "run", str(script), "--json")[1])
    run_dir = Path(report["runs"][0]["run_dir"])

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = invoke(capsys, "execute", str(run_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["status"] == "succeeded"
    record = json.loads((run_dir / "run.json").read_text())
    assert len(record["execution_history"]) == 2
    assert not (elsewhere / "lab").exists()


def test_execute_rejects_a_non_run_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = invoke(capsys, "execute", str(tmp_path))
    assert code == 2
    assert_one_line_error(err)
    assert "is not a run directory" in err
