"""The end-of-day report: what happened at this cart on one local day."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from agent.config import AgentConfig
from agent.contract import rfc3339
from agent.flows.compartments import Compartments
from agent.flows.tickets import local_day
from agent.store import Store


def day_report(store: Store, cfg: AgentConfig, now: float,
               day: str | None = None) -> dict[str, Any]:
    tz = cfg.tz
    day = day or local_day(now, tz)
    try:
        start_local = datetime.combine(datetime.fromisoformat(day).date(), time(0), tz)
    except ValueError:
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}") from None
    start = rfc3339(start_local.timestamp())
    end = rfc3339((start_local + timedelta(days=1)).timestamp())
    by_type = {r["type"]: r["n"] for r in store.query(
        "SELECT type, COUNT(*) AS n FROM transactions WHERE at >= ? AND at < ? GROUP BY type "
        "ORDER BY type", (start, end))}
    tickets = {r["service"]: r["last"] for r in store.query(
        "SELECT service, last FROM ticket_counters WHERE day = ? ORDER BY service", (day,))}
    waiting = [c.view() for c in Compartments(store).all() if c.parcel]
    return {
        "cart_id": cfg.cart_id,
        "day": day,
        "transactions": by_type,
        "tickets": tickets,
        "parcels": {"in": by_type.get("parcel.deposit", 0),
                    "out": by_type.get("parcel.pickup", 0),
                    "waiting": len(waiting)},
        "waiting": [{"compartment": c["id"], "parcel": c["parcel"], "since": c["since"]}
                    for c in waiting],
        "meals": by_type.get("meal.pickup", 0),
        "refused": by_type.get("scan.rejected", 0),
    }
