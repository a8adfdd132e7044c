"""Live log tail over Server-Sent Events: new lines arrive, the stream ends when the run does."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
from molexp.server._sse import LogStreamSettings, format_event, stream_log
from server_helpers import Lab

API = "/api/v1"
FAST = LogStreamSettings(max_seconds=5.0, poll_seconds=0.01, status_every_seconds=0.01)


def parse_events(text: str) -> list[tuple[str, dict[str, object]]]:
    """(event, data) pairs of an SSE body, skipping comments and retry hints."""
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


async def test_stream_sends_a_line_appended_while_open_and_ends_with_the_run(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    run = lab.ws.project("qm9").experiment("baseline").Run(id="streaming")
    with run.start() as ctx:
        log = ctx.log("train")
        log.append("before the page opened")
        log.flush()
        size = (run.run_dir / "logs" / "train.log").stat().st_size
        request = asyncio.create_task(
            client.get(f"{API}/runs/streaming/logs/train/stream", params={"since": size})
        )
        await asyncio.sleep(0.3)
        log.append("a new line")
        await asyncio.sleep(0.3)
    response = await asyncio.wait_for(request, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    texts = "".join(str(data["text"]) for name, data in events if name == "log")
    assert texts == "a new line\n"
    assert events[-1][0] == "end"
    assert events[-1][1]["reason"] == "terminal"
    assert events[-1][1]["next_offset"] == size + len("a new line\n")


async def test_stream_of_a_finished_run_sends_the_rest_then_ends(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/runs/ok0/logs/train/stream")
    events = parse_events(response.text)
    assert [name for name, _ in events] == ["log", "end"]
    assert str(events[0][1]["text"]).splitlines() == [f"epoch {n} lr=0.001" for n in range(3)]


async def test_reconnect_resumes_from_last_event_id(client: httpx.AsyncClient) -> None:
    first_line = len("epoch 0 lr=0.001\n")
    response = await client.get(
        f"{API}/runs/ok0/logs/train/stream", headers={"Last-Event-ID": str(first_line)}
    )
    [(_, data), _end] = parse_events(response.text)
    assert data["text"] == "epoch 1 lr=0.001\nepoch 2 lr=0.001\n"
    assert data["offset"] == first_line


async def test_stream_stops_after_max_seconds_while_the_run_goes_on(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    run = lab.ws.project("qm9").experiment("baseline").Run(id="long")
    with run.start() as ctx:
        ctx.log("train").append("working")
        response = await client.get(
            f"{API}/runs/long/logs/train/stream", params={"max_seconds": 0.5}
        )
    events = parse_events(response.text)
    assert events[-1] == ("end", {"reason": "max_duration", "next_offset": len("working\n")})


async def test_stream_bounds_are_validated(client: httpx.AsyncClient) -> None:
    for value in ("0", "-1", "100000"):
        response = await client.get(
            f"{API}/runs/ok0/logs/train/stream", params={"max_seconds": value}
        )
        assert response.status_code == 422


async def _collect(
    path: Path, since: int, terminal_after: int, settings: LogStreamSettings
) -> list[str]:
    checks = 0

    async def is_terminal() -> bool:
        nonlocal checks
        checks += 1
        return checks > terminal_after

    async def connected() -> bool:
        return False

    return [
        message
        async for message in stream_log(
            path, since, is_terminal=is_terminal, is_disconnected=connected, settings=settings
        )
    ]


async def test_partial_line_waits_for_its_end_until_the_run_is_over(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"whole\npart")
    messages = await _collect(log, 0, terminal_after=3, settings=FAST)
    events = parse_events("".join(messages))
    assert [data["text"] for name, data in events if name == "log"] == ["whole\n", "part"]
    assert events[-1][1]["next_offset"] == len(b"whole\npart")


async def test_keepalive_comments_while_nothing_happens(tmp_path: Path) -> None:
    log = tmp_path / "quiet.log"
    log.write_bytes(b"")
    settings = LogStreamSettings(
        max_seconds=0.2, poll_seconds=0.01, status_every_seconds=10, keepalive_seconds=0.05
    )
    messages = await _collect(log, 0, terminal_after=1000, settings=settings)
    assert ": keep-alive\n\n" in messages
    assert parse_events("".join(messages))[-1][1]["reason"] == "max_duration"


async def test_stream_stops_when_the_client_disconnects(tmp_path: Path) -> None:
    log = tmp_path / "gone.log"
    log.write_bytes(b"line\n")

    async def never() -> bool:
        return False

    async def gone() -> bool:
        return True

    messages = [
        message
        async for message in stream_log(
            log, 0, is_terminal=never, is_disconnected=gone, settings=FAST
        )
    ]
    assert messages == ["retry: 2000\n\n"]


def test_event_data_stays_on_one_line() -> None:
    message = format_event("log", {"text": "a\nb\n"}, event_id=7)
    assert message == 'event: log\nid: 7\ndata: {"text": "a\\nb\\n"}\n\n'
