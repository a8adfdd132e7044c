"""The comparable facts of runs (``run_facts``), a row per fact across runs (``compare_facts``)
and the unified diff of changed task sources (``code_diffs``): the one implementation behind
``molexp diff`` and the server's compare view."""

from __future__ import annotations

from pathlib import Path

from molexp.workspace import (
    ProfileConfig,
    Run,
    Workspace,
    code_diffs,
    compare_facts,
    run_facts,
)


def _state(source: str, code_hash: str, numpy: str) -> dict[str, object]:
    return {
        "tasks": {"fit": {"status": "succeeded", "code_hash": code_hash}},
        "sources": {code_hash: source},
        "distributions": {"numpy": numpy},
    }


def _runs(root: Path) -> tuple[Run, Run]:
    ws = Workspace(root)
    a = ws.Project("p").Experiment("one", params={"lr": 0.1}).Run(id="a")
    b = ws.Project("q").Experiment("two", params={"lr": 0.2}).Run(id="b")
    fast = ProfileConfig(name="fast", config={"steps": 10})
    with a.start(profile_config=fast) as ctx:
        ctx.set_result("loss", 0.5)
        ctx.record_execution_state(_state("def fit():\n    return 1.0\n", "h1" * 8, "2.0.0"))
    with b.start(profile_config=fast) as ctx:
        ctx.set_result("loss", 0.4)
        ctx.set_result("extra", 1)
        ctx.record_execution_state(_state("def fit():\n    return 2.0\n", "h2" * 8, "2.1.0"))
    return a, b


def test_facts_rows_and_code_diffs(tmp_path: Path) -> None:
    a, b = _runs(tmp_path / "lab")
    facts_a = run_facts(a)
    assert facts_a["params.lr"] == 0.1
    assert facts_a["profile"] == "fast" and facts_a["config.steps"] == 10
    assert facts_a["code.fit"] == ("h1" * 8)[:12]
    assert facts_a["distributions.numpy"] == "2.0.0"
    assert isinstance(facts_a["environment.platform"], str)

    rows = {row.key: row for row in compare_facts([facts_a, run_facts(b)])}
    assert rows["params.lr"].differs and rows["params.lr"].values == [0.1, 0.2]
    assert rows["params.lr"].section == "params" and rows["params.lr"].change == "changed"
    assert not rows["config.steps"].differs and rows["config.steps"].change == "same"
    assert rows["config_hash"].section == "config"
    assert rows["results.extra"].present == [False, True]
    assert rows["results.extra"].change == "added" and rows["results.extra"].values == [None, 1]
    assert rows["code.fit"].differs and rows["distributions.numpy"].differs
    assert not rows["environment.platform"].differs
    sections = [row.section for row in rows.values()]
    order = ["params", "profile", "config", "code", "results", "environment", "distributions"]
    positions = [sections.index(section) for section in order]
    assert positions == sorted(positions)

    [(task, diff)] = code_diffs(a, b).items()
    assert task == "fit"
    assert "-    return 1.0" in diff and "+    return 2.0" in diff and "a/fit (a)" in diff
    assert code_diffs(a, a) == {}


def test_three_runs_and_a_run_without_state(tmp_path: Path) -> None:
    a, b = _runs(tmp_path / "lab")
    bare = Workspace(tmp_path / "lab").project("p").experiment("one").Run(id="bare")
    with bare.start() as ctx:
        ctx.set_result("loss", 0.5)
    rows = {row.key: row for row in compare_facts([run_facts(r) for r in (a, b, bare)])}
    assert rows["code.fit"].present == [True, True, False]
    assert rows["code.fit"].change == "changed"
    assert rows["results.loss"].values == [0.5, 0.4, 0.5]
    assert code_diffs(a, bare) == {}
