"""The compare view's facts beyond params and results (workflow, git, per-task code with the
diff of changed sources, environment, distributions, metric names), each attempt's environment
and distributions on the run, and the project table across experiments."""

from __future__ import annotations

import httpx
from server_helpers import Lab

API = "/api/v1"


def _state(source: str, code_hash: str, numpy: str) -> dict[str, object]:
    return {
        "tasks": {"fit": {"status": "succeeded", "code_hash": code_hash}},
        "sources": {code_hash: source},
        "distributions": {"numpy": numpy},
    }


def _code_runs(lab: Lab) -> None:
    exp = lab.ws.Project("QM9").Experiment("code")
    for run_id, value, numpy in (("v1", "1.0", "2.0.0"), ("v2", "2.0", "2.1.0")):
        with exp.Run(id=run_id, parameters={"x": float(value)}).start() as ctx:
            ctx.set_result("y", float(value))
            ctx.log_metric("loss", float(value))
            source = f"def fit():\n    return {value}\n"
            ctx.record_execution_state(_state(source, f"hash{value}" * 4, numpy))


async def test_compare_shows_code_environment_and_distributions(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    _code_runs(lab)
    body = (await client.get(f"{API}/projects/QM9/experiments/code/compare?runs=v1,v2")).json()
    rows = {(row["section"], row["key"]): row for row in body["rows"]}
    code = rows[("code", "fit")]
    assert code["differs"] and code["values"][0] != code["values"][1]
    numpy = rows[("distributions", "numpy")]
    assert numpy["values"] == ["2.0.0", "2.1.0"] and numpy["differs"]
    assert not rows[("environment", "platform")]["differs"]
    assert ("python", "python_version") in rows and ("workflow", "workflow_id") in rows
    assert rows[("param", "x")]["differs"]
    [diff] = body["code_diffs"]
    assert (diff["task"], diff["base"], diff["run"]) == ("fit", "v1", "v2")
    assert "-    return 1.0" in diff["diff"] and "+    return 2.0" in diff["diff"]
    assert body["metrics"] == ["loss"]
    # runs without code facts have none of those rows, and no diffs
    plain = await client.get(f"{API}/projects/QM9/experiments/baseline/compare?runs=ok0,ok1")
    plain_body = plain.json()
    assert plain_body["code_diffs"] == [] and plain_body["metrics"] == ["loss"]
    assert not [row for row in plain_body["rows"] if row["section"] == "code"]


async def test_a_run_shows_each_attempts_environment_and_distributions(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    _code_runs(lab)
    body = (await client.get(f"{API}/runs/v2", params={"experiment": "code"})).json()
    [attempt] = body["attempts"]
    assert attempt["environment"]["platform"] and attempt["python_version"]
    assert attempt["distributions"] == {}  # the list does not read each attempt's state
    detail = (await client.get(f"{API}/runs/v2/attempts/1", params={"experiment": "code"})).json()
    assert detail["attempt"]["distributions"] == {"numpy": "2.1.0"}
    ok0 = (await client.get(f"{API}/runs/ok0/attempts/1")).json()
    assert ok0["attempt"]["distributions"] == {}


async def test_the_project_table_holds_every_run_of_every_experiment(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    _code_runs(lab)
    body = (await client.get(f"{API}/projects/QM9/runs")).json()
    ids = [(run["experiment_id"], run["id"]) for run in body["runs"]]
    assert ids == sorted(ids) and body["total"] == len(ids) and body["truncated"] is False
    assert {"baseline", "code", "sweep"} == set(body["experiments"])
    assert {"lr", "model.depth", "x", "batch"} <= set(body["param_keys"])
    assert {"loss", "accuracy", "y"} <= set(body["result_keys"])
    assert body["metric_keys"] == ["loss"] and body["config_keys"] == ["scale"]
    by_id = {run["id"]: run for run in body["runs"] if run["experiment_id"] != "sweep"}
    assert by_id["ok1"]["metrics"] == {"loss": 1 / 6} and by_id["v2"]["metrics"] == {"loss": 2.0}
    assert by_id["ok1"]["config"] == {"scale": 1}
    assert by_id["boom"]["metrics"] == {}
    short = (await client.get(f"{API}/projects/QM9/runs", params={"limit": 2})).json()
    assert len(short["runs"]) == 2 and short["truncated"] is True
    assert short["total"] == body["total"]
    missing = await client.get(f"{API}/projects/nope/runs")
    assert missing.status_code == 404


async def test_runs_of_different_experiments_compare_side_by_side(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    _code_runs(lab)
    body = (await client.get(f"{API}/compare", params={"runs": "qm9/code/v1,ok1"})).json()
    assert [(run["experiment_id"], run["id"]) for run in body["runs"]] == [
        ("code", "v1"),
        ("baseline", "ok1"),
    ]
    rows = {(row["section"], row["key"]): row for row in body["rows"]}
    assert rows[("param", "x")]["values"] == [1.0, None]
    assert rows[("result", "loss")]["values"] == [None, 0.5]
    assert body["metrics"] == ["loss"]
    twin = await client.get(f"{API}/compare", params={"runs": "twin,ok1"})
    assert twin.status_code == 409  # the twin id names runs of two experiments
    assert (await client.get(f"{API}/compare", params={"runs": "ok1"})).status_code == 400
    bad = await client.get(f"{API}/compare", params={"runs": "a/b,ok1"})
    assert bad.status_code == 400 and "project/experiment/run_id" in bad.json()["detail"]
    missing = await client.get(f"{API}/compare", params={"runs": "qm9/code/nope,ok1"})
    assert missing.status_code == 404
