"""Live tail of a run's log as Server-Sent Events.

Owns the event stream behind ``/runs/{run_id}/logs/{name}/stream``: it polls the log
file for complete new lines and sends each batch as a ``log`` event whose ``id`` is
the next byte offset (so a reconnecting ``EventSource`` resumes where it stopped). It
ends with an ``end`` event when the run reaches a terminal status (after sending the
last bytes), when its maximum duration is over, or when the client goes away.

The status check runs beside the polling, never in its way: however long an answer takes
(a busy server), new lines keep going out every ``poll_seconds``; only an answer that came
back terminal ends the stream, after a last read of what was written before it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ._files import read_log

__all__ = ["LogStreamSettings", "format_event", "stream_log"]


@dataclass(frozen=True, slots=True)
class LogStreamSettings:
    """Timing of one stream: how often to look for new bytes and the run's status."""

    max_seconds: float
    poll_seconds: float = 0.2
    status_every_seconds: float = 1.0
    keepalive_seconds: float = 15.0
    chunk_bytes: int = 256 * 1024


def format_event(event: str, data: object, *, event_id: int | None = None) -> str:
    """One SSE message; ``data`` is JSON on a single line (newlines are escaped by JSON)."""
    lines = [f"event: {event}"]
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines.append(f"data: {json.dumps(data, ensure_ascii=False)}")
    return "\n".join(lines) + "\n\n"


async def stream_log(
    path: Path,
    since: int,
    *,
    is_terminal: Callable[[], Awaitable[bool]],
    is_disconnected: Callable[[], Awaitable[bool]],
    settings: LogStreamSettings,
) -> AsyncIterator[str]:
    """Yield SSE messages for the lines appended to ``path`` after byte ``since``."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    last_status_check = float("-inf")
    last_sent = started
    offset = since
    status: asyncio.Task[bool] | None = None
    yield "retry: 2000\n\n"

    def drain(*, whole_lines: bool) -> list[str]:
        nonlocal offset
        messages = []
        while path.is_file():
            chunk = read_log(path, offset, max_bytes=settings.chunk_bytes, whole_lines=whole_lines)
            if chunk.next_offset == chunk.offset:
                break
            offset = chunk.next_offset
            payload = {"text": chunk.text, "offset": chunk.offset, "next_offset": offset}
            messages.append(format_event("log", payload, event_id=offset))
        return messages

    async def check() -> bool:
        return await is_terminal()

    try:
        while True:
            if await is_disconnected():
                return
            now = loop.time()
            terminal = False
            if status is None and now - last_status_check >= settings.status_every_seconds:
                last_status_check = now
                status = asyncio.create_task(check())
            if status is not None and status.done():
                terminal = status.result()
                status = None
            # Once terminal nobody writes any more: send the rest, even a last partial line.
            for message in drain(whole_lines=not terminal):
                last_sent = now
                yield message
            if terminal:
                yield format_event("end", {"reason": "terminal", "next_offset": offset})
                return
            if now - started >= settings.max_seconds:
                yield format_event("end", {"reason": "max_duration", "next_offset": offset})
                return
            if now - last_sent >= settings.keepalive_seconds:
                last_sent = now
                yield ": keep-alive\n\n"
            if status is not None:  # wake early for its answer (a terminal run ends sooner)
                await asyncio.wait({status}, timeout=settings.poll_seconds)
            else:
                await asyncio.sleep(settings.poll_seconds)
    finally:
        if status is not None:
            status.cancel()
