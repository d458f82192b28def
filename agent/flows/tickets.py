"""Queue tickets: the next number of a service today (local time) at this cart."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from agent.store import Writer


def local_day(ts: float, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts, tz).date().isoformat()


def next_number(w: Writer, service: str, day: str) -> int:
    """Numbers restart at 1 each local day; taken in the caller's write transaction."""
    row = w.execute(
        "INSERT INTO ticket_counters(service, day, last) VALUES (?, ?, 1) "
        "ON CONFLICT(service, day) DO UPDATE SET last = last + 1 RETURNING last",
        (service, day),
    ).fetchone()
    return int(row[0])
