"""`cart-fleet status`: every cart's retained status and report, plus telemetry heard meanwhile."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from agent.contract import FLEET_SCOPE
from fleet.client import BrokerOptions
from fleet.watch import FleetWatcher


def topic_kind(prefix: str, topic: str) -> tuple[str, str] | None:
    """(cart, kind) for P/C/status, P/C/telemetry, P/C/config/reported|desired, P/C/cmd/result."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    if len(parts) == 2 and parts[1] in ("status", "telemetry"):
        return parts[0], parts[1]
    if len(parts) == 3 and parts[1] in ("config", "cmd") and parts[2] in ("reported",
                                                                           "desired", "result"):
        return parts[0], f"{parts[1]}/{parts[2]}"
    return None


def collect_status(opts: BrokerOptions, wait_s: float) -> list[dict[str, Any]]:
    """All retained statuses and reports (at QoS 0: every one of them), then telemetry for
    `wait_s` seconds, folded per cart."""
    carts: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        found = topic_kind(opts.prefix, topic)
        if found is None or found[0] == FLEET_SCOPE:
            return
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        with lock:
            carts.setdefault(found[0], {"cart": found[0]})[found[1]] = doc

    p = opts.prefix
    watcher = FleetWatcher(opts, [f"{p}/+/status", f"{p}/+/telemetry", f"{p}/+/config/reported"],
                           on_message)
    watcher.start()
    try:
        time.sleep(wait_s)
    finally:
        watcher.close()
    with lock:
        return [_fold(carts[c]) for c in sorted(carts)]


def _fold(entry: dict[str, Any]) -> dict[str, Any]:
    status = entry.get("status", {})
    telemetry = entry.get("telemetry", {})
    reported = entry.get("config/reported", {})
    seen = [t for t in (status.get("at"), telemetry.get("at")) if isinstance(t, str)]
    return {
        "cart": entry["cart"],
        "state": status.get("state", "unknown"),
        "last_seen": max(seen) if seen else None,
        "agent_version": status.get("agent_version"),
        "queue": telemetry.get("queue"),
        "config_version": status.get("config_version", reported.get("version")),
        "fleet_config_version": status.get("fleet_config_version",
                                           reported.get("fleet_version")),
        "config_status": reported.get("status"),
        "config_errors": reported.get("errors", []),
        "devices": telemetry.get("devices"),
        "disk_free_mb": telemetry.get("disk_free_mb"),
        "since": status.get("since"),  # when the cart's current (or last) connection began
        "clock": telemetry.get("clock"),  # the cart's trusted clock, as its telemetry says
        "software": _newest_software(status, telemetry),
    }


def _newest_software(status: dict[str, Any], telemetry: dict[str, Any]) -> dict[str, Any] | None:
    """`software` from whichever of status and telemetry is newer (both carry it)."""
    both = [d for d in (status, telemetry) if isinstance(d.get("software"), dict)]
    if not both:
        return None
    newest = max(both, key=lambda d: str(d.get("at", "")))
    software: dict[str, Any] = newest["software"]
    return software


def software_line(software: dict[str, Any] | None) -> str | None:
    """running, pending (and its step) and the last outcome, for the text view."""
    if not software:
        return None
    parts = []
    if software.get("pending"):
        parts.append(f"pending {software['pending']} ({software.get('step') or '?'})")
    outcome = software.get("outcome")
    if isinstance(outcome, dict):
        verdict = "ok" if outcome.get("ok") else f"FAILED: {outcome.get('reason')}"
        parts.append(f"last update {outcome.get('version')}: {verdict}")
    return "    software: " + "; ".join(parts) if parts else None


def format_status(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no carts seen"
    lines = [f"{'CART':<14}{'STATE':<9}{'VERSION':<10}{'LAST SEEN':<26}{'QUEUE':>7}  "
             f"{'CONFIG':<12}DEVICES"]
    for r in rows:
        queue = r["queue"]["pending"] if isinstance(r["queue"], dict) else "-"
        config = f"{r['config_version'] or '-'}/{r['fleet_config_version'] or '-'}"
        if r["config_status"] == "rejected":
            config += "!"
        devices = r["devices"] or {}
        health = " ".join(f"{name}:{'ok' if d.get('ok') else d.get('error') or 'down'}"
                          for name, d in devices.items() if isinstance(d, dict)) or "-"
        software = r.get("software") or {}
        running = software.get("running") or r.get("agent_version") or "-"
        lines.append(f"{r['cart']:<14}{r['state']:<9}{running:<10}{r['last_seen'] or '-':<26}"
                     f"{queue:>7}  {config:<12}{health}")
        said = software_line(software)
        if said:
            lines.append(said)
        for error in r["config_errors"]:
            lines.append(f"    config: {error}")
        clock = r.get("clock")
        if isinstance(clock, dict) and clock.get("alarm"):
            lines.append(f"    clock: {clock['alarm']} (offset {clock.get('offset_s')} s)")
    return "\n".join(lines)
