"""`cart-agent status`: what the store knows, readable with or without the daemon running.

The store is read directly (WAL lets this process read while the daemon writes); live device
health comes from the running daemon over its control socket.
"""

from __future__ import annotations

import json
import time
from typing import Any

from agent.config import AgentConfig
from agent.flows.compartments import Compartments
from agent.store import Store

DEVICES = ("scanner", "printer", "locker")


def write_health(store: Store, health: dict[str, dict[str, Any]], now: float) -> None:
    store.set_meta("health", json.dumps({"at": now, "services": health}, default=str))


def live_health(cfg: AgentConfig) -> dict[str, Any] | None:
    """The running daemon's service health, asked over its control socket; None if no daemon
    answers. (Asked live because a daemon on a full disk cannot write a snapshot.)"""
    from agent.control import call

    try:
        for reply in call(cfg.data_dir, {"op": "ping"}, 3.0):
            if reply.get("ok"):
                return dict(reply.get("health") or {})
    except (ConnectionError, OSError, ValueError):
        return None
    return None


def device_view(services: dict[str, Any], running: bool, cfg: AgentConfig) -> dict[str, Any]:
    kinds = {"scanner": cfg.scanner.kind, "printer": cfg.printer.kind,
             "locker": "rs485" if cfg.locker.enabled and cfg.locker.compartments else "none"}
    out: dict[str, Any] = {}
    for name in DEVICES:
        if kinds[name] == "none":
            out[name] = {"ok": True, "error": None, "configured": False}
        elif not running:
            out[name] = {"ok": False, "error": "agent not running"}
        else:
            snap = services.get(name) or {"ok": False, "error": "not started"}
            out[name] = {"ok": bool(snap.get("ok")), "error": snap.get("error")}
    return out


def collect(cfg: AgentConfig, store: Store, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    from agent.sync.desired import config_versions

    services = live_health(cfg)
    running = services is not None
    services = services or {}
    versions = config_versions(store)
    return {
        "cart_id": cfg.cart_id,
        "agent_running": running,
        "queue": store.queue_stats(),
        "last_sync_at": store.get_meta("last_sync_at"),
        "config_version": versions.get("config_version"),
        "fleet_config_version": versions.get("fleet_config_version"),
        "out_of_service": store.get_meta("out_of_service") == "1",
        "devices": device_view(services, running, cfg),
        "services": services,
        "storage": services.get("storage"),
        "print_queue": int(store.query(
            "SELECT COUNT(*) AS n FROM print_jobs WHERE state = 'queued'")[0]["n"]),
        "compartments": [
            {"id": c.id, "size": c.size, "door": c.door, "parcel": c.parcel, "state": c.state}
            for c in Compartments(store).all()
        ],
    }


def render_text(status: dict[str, Any]) -> str:
    q = status["queue"]
    lines = [
        f"cart {status['cart_id']}: agent {'running' if status['agent_running'] else 'stopped'}"
        + ("  [OUT OF SERVICE]" if status["out_of_service"] else ""),
        f"queue: {q['pending']} pending (oldest {q['oldest_pending_s']:.0f} s), "
        f"{q['synced']} synced; last sync {status['last_sync_at'] or 'never'}",
        f"config: cart v{status['config_version'] or '-'}, "
        f"fleet v{status['fleet_config_version'] or '-'}; "
        f"receipts waiting to print: {status['print_queue']}",
    ]
    for name, dev in status["devices"].items():
        state = "ok" if dev["ok"] else f"FAIL ({dev['error']})"
        if dev.get("configured") is False:
            state = "not configured"
        lines.append(f"{name:8} {state}")
    for c in status["compartments"]:
        lines.append(f"  {c['id']:6} {c['size']}  door {c['door']:7} {c['state']:14} "
                     f"{c['parcel'] or ''}")
    return "\n".join(lines)
