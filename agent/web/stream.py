"""Server-sent events for the resident screen: each answer to a scan, and the cart's status.

One generator per open screen, running in that connection's server thread. It subscribes to
the feedback bus (which drops old events for a slow reader rather than blocking the flows),
and ends when the client goes away (the server closes the generator) or the service stops.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

from agent.ports import Feeds, HealthView, ReadModel
from agent.web.present import resident_event, resident_status

STATUS_EVERY_S = 2.0
PING_EVERY_S = 15.0   # a comment line, so a vanished client is noticed on the next write
WAIT_S = 0.5          # how long one wait on the bus lasts: bounds the reaction to a stop


def sse(event: str, data: dict[str, Any], ident: int | None = None) -> str:
    head = f"id: {ident}\n" if ident is not None else ""
    # json.dumps never emits a raw newline, so the payload is one `data:` line.
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def resident_stream(feeds: Feeds, read: ReadModel, health: HealthView,
                    stopping: Callable[[], bool], hold_s: Callable[[], int]) -> Iterator[str]:
    """`hold_s` (web.answer_s as it is now) goes with each answer, so a pushed change is
    taken up by a screen that stays open for days."""
    sub = feeds.feedback.subscribe(50)
    try:
        # `retry` makes the browser reconnect quickly after a daemon restart.
        yield "retry: 2000\n\n"
        last_status: dict[str, Any] | None = None
        next_status = next_ping = 0.0
        while not stopping():
            now = time.monotonic()
            if now >= next_status:
                next_status = now + STATUS_EVERY_S
                status = resident_status(read, health)
                if status != last_status:
                    last_status = status
                    yield sse("status", status)
            if now >= next_ping:
                next_ping = now + PING_EVERY_S
                yield ": ping\n\n"
            try:
                event = sub.get(timeout=WAIT_S)
            except queue.Empty:
                continue
            public = resident_event(event)
            if public is not None:
                yield sse("feedback", {**public, "hold_s": hold_s()}, event.id)
    finally:
        feeds.feedback.unsubscribe(sub)
