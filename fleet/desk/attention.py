"""Which carts need a visit, and why: a pure fold of what a cart last said about itself.

`assess` turns one cart's live state into a score (higher sorts first) and reasons (codes
with their figures; `i18n` puts them into words), plus the conditions that are alarms while
they last (printer out of paper, clock alarm). Alarms, compartments out of service and a cart
out of service add to the score in SQL (desk_carts.rank), where those counts live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BACKLOG_AGE_S = 3600          # oldest pending record older than this: the cart cannot sync
BACKLOG_COUNT = 500
TELEMETRY_STALE_S = 600       # online but silent this long: its loop or link is stuck
DISK_LOW_MB = 200
CLOCK_ALARM_S = 120.0         # the carts' default clock_skew_s: tokens start failing beyond it

SCORES = {"offline": 60, "never_seen": 10, "paper_out": 40, "device": 30, "config_rejected": 25,
          "clock": 25, "backlog": 20, "telemetry_stale": 20, "disk_low": 15,
          "config_pending": 10}


@dataclass
class CartLive:
    """What the desk knows of one cart from the broker (times are epoch seconds)."""

    cart: str
    state: str = "unknown"
    state_since: float | None = None
    last_seen: float | None = None
    status: dict[str, Any] | None = None
    telemetry: dict[str, Any] | None = None
    telemetry_at: float | None = None     # when the desk received it
    reported: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None  # the cart's own retained {"version", "config"}
    clock_offset_s: float | None = None


@dataclass
class Assessment:
    score: int = 0
    reasons: list[dict[str, Any]] = field(default_factory=list)
    conditions: dict[str, dict[str, Any]] = field(default_factory=dict)  # live alarms

    def add(self, code: str, **facts: Any) -> None:
        self.score += SCORES[code]
        self.reasons.append({"code": code, **facts})


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def version_of(doc: dict[str, Any] | None, key: str = "version") -> int | None:
    return _int((doc or {}).get(key))


def assess(c: CartLive, fleet_desired: int | None, now: float) -> Assessment:
    out = Assessment()
    if c.state == "offline":
        out.add("offline", since=c.state_since)
    elif c.state == "unknown":
        out.add("never_seen")
    telemetry = c.telemetry or {}
    online = c.state == "online"
    devices = telemetry.get("devices") if online else None
    if isinstance(devices, dict):
        for name in sorted(devices):
            health = devices[name]
            if not isinstance(health, dict) or health.get("ok") is True:
                continue
            error = str(health.get("error") or "not ok")[:120]
            if name == "printer" and "paper out" in error:
                out.add("paper_out")
                out.conditions["paper_out"] = {"error": error}
            else:
                out.add("device", device=str(name)[:16], error=error)
    queue = telemetry.get("queue")
    if isinstance(queue, dict):
        pending, oldest = _int(queue.get("pending")), _num(queue.get("oldest_pending_s"))
        if (oldest or 0) > BACKLOG_AGE_S or (pending or 0) > BACKLOG_COUNT:
            out.add("backlog", pending=pending, oldest_s=oldest)
    if online and c.telemetry_at is not None and now - c.telemetry_at > TELEMETRY_STALE_S:
        out.add("telemetry_stale", last=c.telemetry_at)
    disk = _num(telemetry.get("disk_free_mb"))
    if disk is not None and disk < DISK_LOW_MB:
        out.add("disk_low", free_mb=disk)
    reported = c.reported or {}
    if reported.get("status") == "rejected":
        errors = [str(e)[:200] for e in reported.get("errors") or []][:3]
        out.add("config_rejected", errors=errors)
    pending_versions = []
    wanted, have = version_of(c.desired), version_of(reported)
    if wanted is not None and (have is None or have < wanted):
        pending_versions.append(("cart", wanted, have))
    have_fleet = version_of(reported, "fleet_version")
    if fleet_desired is not None and (have_fleet is None or have_fleet < fleet_desired):
        pending_versions.append(("fleet", fleet_desired, have_fleet))
    if pending_versions and reported.get("status") != "rejected":
        scope, wanted, have = pending_versions[0]
        out.add("config_pending", scope=scope, desired=wanted, reported=have)
    clock = telemetry.get("clock") if online else None
    cart_alarm = clock.get("alarm") if isinstance(clock, dict) else None
    offset = c.clock_offset_s if online else None
    if cart_alarm or (offset is not None and abs(offset) > CLOCK_ALARM_S):
        facts = {"alarm": str(cart_alarm)[:16] if cart_alarm else None, "offset_s": offset}
        out.add("clock", **facts)
        out.conditions["clock"] = facts
    return out
