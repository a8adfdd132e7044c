"""The read API on a real workspace: hierarchy, run pages, queries, run detail, compare, assets."""

from __future__ import annotations

import httpx
from server_helpers import PNG_BYTES, Lab

API = "/api/v1"


async def test_workspace_overview_counts_runs_by_status(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    body = (await client.get(f"{API}/workspace")).json()
    assert body["id"] == lab.ws.id
    assert body["name"] == "Test Lab"
    assert body["root"] == str(lab.root)
    assert body["counts"] == {
        "projects": 1,
        "experiments": 2,
        "runs": 7,
        "by_status": {"succeeded": 4, "failed": 1, "pending": 2},
    }
    assert body["broken"] == []


async def test_projects_and_experiments_list_with_keys(client: httpx.AsyncClient) -> None:
    projects = (await client.get(f"{API}/projects")).json()
    assert [(p["id"], p["name"], p["experiment_count"], p["run_count"]) for p in projects] == [
        ("qm9", "QM9", 2, 7)
    ]
    experiments = (await client.get(f"{API}/projects/qm9/experiments")).json()
    by_id = {item["id"]: item for item in experiments}
    assert set(by_id) == {"baseline", "sweep"}
    baseline = by_id["baseline"]
    assert baseline["run_count"] == 6
    assert baseline["by_status"] == {"succeeded": 3, "failed": 1, "pending": 2}
    assert baseline["param_keys"] == ["batch", "lr", "model.depth"]
    assert baseline["result_keys"] == ["accuracy", "loss"]
    single = (await client.get(f"{API}/projects/qm9/experiments/baseline")).json()
    assert single == baseline


async def test_unknown_project_and_experiment_are_404_naming_them(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/projects/nope/experiments")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]
    response = await client.get(f"{API}/projects/qm9/experiments/missing/runs")
    assert response.status_code == 404
    assert "missing" in response.json()["detail"]


async def test_runs_are_sorted_and_paged(client: httpx.AsyncClient) -> None:
    url = f"{API}/projects/qm9/experiments/baseline/runs"
    page = (await client.get(url, params={"order_by": "-params.lr", "limit": 2})).json()
    assert page["total"] == 6
    assert [run["id"] for run in page["items"]] == ["boom", "ok2"]
    lrs = [
        run["params"]["lr"]
        for offset in (0, 2, 4)
        for run in (
            await client.get(url, params={"order_by": "params.lr", "limit": 2, "offset": offset})
        ).json()["items"]
    ]
    assert lrs == sorted(lrs)
    assert len(lrs) == 6


async def test_where_filters_with_the_query_language(client: httpx.AsyncClient) -> None:
    url = f"{API}/projects/qm9/experiments/baseline/runs"
    page = (await client.get(url, params={"where": "lr >= 1e-2 and results.loss < 0.6"})).json()
    assert sorted(run["id"] for run in page["items"]) == ["ok1", "ok2"]
    page = (await client.get(url, params={"where": "model.depth == 3"})).json()
    assert [run["id"] for run in page["items"]] == ["ok1"]


async def test_status_filter_combines_with_where(client: httpx.AsyncClient) -> None:
    url = f"{API}/projects/qm9/experiments/baseline/runs"
    page = (await client.get(url, params={"status": "failed,pending"})).json()
    assert sorted(run["id"] for run in page["items"]) == ["boom", "twin", "waiting"]
    page = (await client.get(url, params={"status": "pending", "where": "lr < 1e-3"})).json()
    assert [run["id"] for run in page["items"]] == ["waiting"]


async def test_query_syntax_error_is_400_with_the_message(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/runs", params={"where": "lr < "})
    assert response.status_code == 400
    assert "column" in response.json()["detail"]
    response = await client.get(f"{API}/runs", params={"status": "exploded"})
    assert response.status_code == 400
    assert "exploded" in response.json()["detail"]
    response = await client.get(f"{API}/runs", params={"order_by": "params."})
    assert response.status_code == 400


async def test_whole_workspace_runs(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"{API}/runs", params={"where": 'experiment == "sweep"'})).json()
    assert [(run["id"], run["experiment_id"]) for run in page["items"]] == [("twin", "sweep")]
    page = (await client.get(f"{API}/runs", params={"order_by": "-created_at", "limit": 1})).json()
    assert page["total"] == 7
    assert len(page["items"]) == 1


async def test_run_detail_has_attempts_results_config_and_tasks(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    detail = (await client.get(f"{API}/runs/ok1")).json()
    assert detail["status"] == "succeeded"
    assert detail["params"] == {"lr": 1e-2, "batch": 32, "model": {"depth": 3}}
    assert detail["results"] == {"loss": 0.5, "accuracy": 0.6}
    assert detail["config"] == {"scale": 1}
    assert detail["config_hash"] == lab.succeeded[1].metadata.profile.config_hash  # type: ignore[union-attr]
    assert detail["profile"]["name"] == "default"
    assert detail["seed"] == 1
    assert detail["cancellable"] is False
    [attempt] = detail["attempts"]
    assert attempt["attempt"] == 1
    assert attempt["status"] == "succeeded"
    assert attempt["duration_seconds"] >= 0
    assert [
        (task["name"], task["status"], task["duration_seconds"]) for task in detail["tasks"]
    ] == [
        ("prepare", "succeeded", 1.0),
        ("train", "succeeded", 2.0),
    ]
    assert detail["execution_state_id"] is not None


async def test_failed_run_shows_error_with_task(client: httpx.AsyncClient) -> None:
    detail = (await client.get(f"{API}/runs/boom")).json()
    assert detail["status"] == "failed"
    assert detail["error"]["type"] == "RuntimeError"
    assert detail["error"]["message"] == "diverged at step 7"
    assert detail["error"]["task_name"] == "train"
    assert detail["attempts"][0]["error"]["message"] == "diverged at step 7"
    assert detail["tasks"] == []


async def test_ambiguous_run_id_is_409_and_resolved_by_experiment(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get(f"{API}/runs/twin")
    assert response.status_code == 409
    assert "baseline" in response.json()["detail"] and "sweep" in response.json()["detail"]
    detail = (await client.get(f"{API}/runs/twin", params={"experiment": "sweep"})).json()
    assert detail["status"] == "succeeded"
    assert detail["experiment_id"] == "sweep"


async def test_unknown_run_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/runs/nosuchrun")
    assert response.status_code == 404
    assert "nosuchrun" in response.json()["detail"]


async def test_cancel_only_pending_queued_or_running(client: httpx.AsyncClient, lab: Lab) -> None:
    response = await client.post(f"{API}/runs/waiting/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancellable"] is False
    assert lab.ws.find_run("waiting").status.value == "cancelled"
    again = await client.post(f"{API}/runs/waiting/cancel")
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]
    done = await client.post(f"{API}/runs/ok0/cancel")
    assert done.status_code == 409
    assert "succeeded" in done.json()["detail"]


async def test_cancel_a_running_run(client: httpx.AsyncClient, lab: Lab) -> None:
    run = lab.ws.project("qm9").experiment("baseline").Run(id="live")
    with run.start():
        response = await client.post(f"{API}/runs/live/cancel")
        assert response.status_code == 200
        assert response.json()["status"] == "cancelled"
    assert run.reload().status.value == "cancelled"


async def test_logs_list_and_read_from_offset(client: httpx.AsyncClient) -> None:
    logs = (await client.get(f"{API}/runs/ok0/logs")).json()
    assert [(log["name"], log["size"]) for log in logs] == [
        ("train", 3 * len("epoch 0 lr=0.001\n"))
    ]
    whole = (await client.get(f"{API}/runs/ok0/logs/train")).json()
    assert whole["text"].splitlines() == [f"epoch {n} lr=0.001" for n in range(3)]
    assert whole["offset"] == 0 and whole["next_offset"] == whole["size"]
    first_line = len("epoch 0 lr=0.001\n")
    rest = (await client.get(f"{API}/runs/ok0/logs/train", params={"since": first_line})).json()
    assert rest["text"] == "epoch 1 lr=0.001\nepoch 2 lr=0.001\n"
    end = (await client.get(f"{API}/runs/ok0/logs/train", params={"since": whole["size"]})).json()
    assert end["text"] == "" and end["next_offset"] == whole["size"]
    missing = await client.get(f"{API}/runs/ok0/logs/nolog")
    assert missing.status_code == 404


async def test_artifacts_list_and_download_with_media_types(client: httpx.AsyncClient) -> None:
    artifacts = (await client.get(f"{API}/runs/ok2/artifacts")).json()
    by_name = {artifact["name"]: artifact for artifact in artifacts}
    assert set(by_name) == {"metrics.json", "notes.txt", "plot.png"}
    assert by_name["metrics.json"]["media_type"] == "application/json"
    assert by_name["plot.png"]["media_type"] == "image/png"
    assert all(artifact["asset_id"] for artifact in artifacts)
    metrics = await client.get(f"{API}/runs/ok2/artifacts/metrics.json")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == "application/json"
    assert metrics.json() == {"loss": 1.0 / 3}
    image = await client.get(f"{API}/runs/ok2/artifacts/plot.png")
    assert image.headers["content-type"] == "image/png"
    assert image.content == PNG_BYTES
    notes = await client.get(f"{API}/runs/ok2/artifacts/notes.txt")
    assert notes.headers["content-type"].startswith("text/plain")
    assert notes.text == "run 2\n"


async def test_nested_artifact_directory_files_are_listed_and_served(
    client: httpx.AsyncClient, lab: Lab, tmp_path: object
) -> None:
    run = lab.ws.project("qm9").experiment("baseline").Run(id="withdir")
    with run.start() as ctx:
        source = lab.root.parent / "plots"
        (source / "sub").mkdir(parents=True)
        (source / "sub" / "curve.csv").write_text("x,y\n1,2\n")
        ctx.artifact.save("plots", source)
    names = [a["name"] for a in (await client.get(f"{API}/runs/withdir/artifacts")).json()]
    assert names == ["plots/sub/curve.csv"]
    served = await client.get(f"{API}/runs/withdir/artifacts/plots/sub/curve.csv")
    assert served.text == "x,y\n1,2\n"
    assert served.headers["content-type"].startswith("text/csv")
    directory = await client.get(f"{API}/runs/withdir/artifacts/plots")
    assert directory.status_code == 400
    assert "directory" in directory.json()["detail"]


async def test_compare_table_of_params_and_results(client: httpx.AsyncClient) -> None:
    url = f"{API}/projects/qm9/experiments/baseline/compare"
    table = (await client.get(url, params={"runs": "ok0,ok2"})).json()
    assert [run["id"] for run in table["runs"]] == ["ok0", "ok2"]
    rows = {(row["section"], row["key"]): row for row in table["rows"]}
    assert rows[("param", "lr")]["values"] == [1e-3, 1e-1]
    assert rows[("param", "lr")]["differs"] is True
    assert rows[("param", "batch")]["values"] == [32, 32]
    assert rows[("param", "batch")]["differs"] is False
    assert rows[("param", "model.depth")]["values"] == [2, 4]
    assert rows[("result", "loss")]["values"] == [1.0, 0.3333]
    too_few = await client.get(url, params={"runs": "ok0"})
    assert too_few.status_code == 400
    foreign = await client.get(url, params={"runs": "ok0,nothere"})
    assert foreign.status_code == 404
    assert "nothere" in foreign.json()["detail"]


async def test_assets_by_kind_and_scope_with_lineage(client: httpx.AsyncClient, lab: Lab) -> None:
    artifacts = (await client.get(f"{API}/assets", params={"kind": "artifact"})).json()
    assert len(artifacts) == 9
    in_run = (await client.get(f"{API}/assets", params={"scope": "qm9/baseline/ok1"})).json()
    assert {asset["kind"] for asset in in_run} == {"artifact", "log", "execution_state"}
    assert all(asset["run_id"] == "ok1" for asset in in_run)
    exact_experiment = (
        await client.get(f"{API}/assets", params={"scope": "qm9/baseline", "exact": "true"})
    ).json()
    assert exact_experiment == []
    traces = (await client.get(f"{API}/assets", params={"kind": "error_trace"})).json()
    assert [asset["run_id"] for asset in traces] == ["boom"]

    data_file = lab.root.parent / "qm9.csv"
    data_file.write_text("smiles\nC\n")
    dataset = lab.ws.project("qm9").data_assets.import_asset("qm9-data", data_file)
    lab.ws.catalog.record_use(dataset.id, run_id="ok0", task_name="train")
    detail = (await client.get(f"{API}/assets/{dataset.id}")).json()
    assert detail["asset"]["kind"] == "data"
    assert detail["asset"]["scope"] == "qm9"
    assert [use["run_id"] for use in detail["lineage"]["consumed_by"]] == ["ok0"]
    metrics = next(asset for asset in in_run if asset["name"] == "metrics.json")
    produced = (await client.get(f"{API}/assets/{metrics['id']}")).json()
    assert produced["lineage"]["produced_by"]["run_id"] == "ok1"


async def test_asset_query_errors_are_400_or_404(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{API}/assets", params={"kind": "nonsense"})).status_code == 400
    assert (await client.get(f"{API}/assets", params={"scope": "a/b/c/d"})).status_code == 400
    assert (await client.get(f"{API}/assets/0123456789abcdef")).status_code == 404
