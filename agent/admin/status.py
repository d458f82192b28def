"""`cart-agent status`: what the store knows, readable with or without the daemon running.

The store is opened read-only (WAL lets this process read while the daemon writes): a status
command creates and changes nothing, not even a missing store. Live device health comes from
the running daemon over its control socket; with no daemon running nobody knows it, and the
report says so rather than guessing.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from agent.clock import TrustedClock
from agent.clock import evidence as clock_evidence
from agent.clock.ntp import ntp_synchronized
from agent.config import AgentConfig
from agent.flows.read_model import StoreReadModel
from agent.store import Store, StoreError
from agent.update.report import software_report

DEVICES = ("scanner", "printer", "locker", "audio", "light")
NOT_RUNNING = "unknown: the agent is not running"
CHECK = {"scanner": "scan-test", "printer": "print-test", "locker": "locker status"}


def live_ping(cfg: AgentConfig) -> dict[str, Any] | None:
    """The running daemon's answer to a ping over its control socket (service health, the
    clock); None if no daemon answers. (Asked live: a daemon on a full disk cannot write.)"""
    from agent.admin.control_client import call

    try:
        for reply in call(cfg.data_dir, {"op": "ping"}, 3.0):
            if reply.get("ok"):
                return dict(reply)
    except (ConnectionError, OSError, ValueError):
        return None
    return None


def clock_report(cfg: AgentConfig, store: Store | None,
                 ping: dict[str, Any] | None = None) -> dict[str, Any]:
    """The trusted clock: as the running daemon has it (`from` "agent"), else as the store's
    evidence and this machine's clock say now (`from` "store"). The contract's `source`,
    `offset_s`, `alarm`, and `now`, `wall`, `bound`, `evidence`, `ntp` behind them.
    `cart-agent status --json` prints it as `clock`; other checks (doctor) may call this."""
    if ping is not None and isinstance(ping.get("clock"), dict):
        return {**ping["clock"], "from": "agent"}
    clock = TrustedClock(cfg.clock.max_skew_s)
    if store is not None:
        # A store of an older schema (no clock column) or unreadable gives no evidence.
        with contextlib.suppress(StoreError):
            clock_evidence.load(clock, store)
    clock.set_ntp(ntp_synchronized())
    return {**clock.state().detail(), "from": "store"}


def device_view(services: dict[str, Any], running: bool, cfg: AgentConfig) -> dict[str, Any]:
    """Per device `{"ok", "error"}` as in telemetry; `ok` is null when nobody knows (no agent
    running to hold the device), `configured` false for a device the config leaves out."""
    kinds = {"scanner": cfg.scanner.kind, "printer": cfg.printer.kind,
             "locker": "rs485" if cfg.locker.enabled and cfg.locker.compartments else "none",
             "audio": cfg.audio.kind, "light": cfg.light.kind}
    out: dict[str, Any] = {}
    for name in DEVICES:
        if kinds[name] == "none":
            out[name] = {"ok": True, "error": None, "configured": False}
        elif not running:
            out[name] = {"ok": None, "error": NOT_RUNNING}
        else:
            snap = services.get(name) or {"ok": False, "error": "not started"}
            out[name] = {"ok": bool(snap.get("ok")), "error": snap.get("error")}
    return out


def open_store(cfg: AgentConfig) -> Store | None:
    """The store, read-only; None when there is none yet. Other failures raise StoreError."""
    path = cfg.db_path
    if not path.exists():
        return None
    if not path.is_file():
        raise StoreError("not a file")
    return Store(path, cfg.cart_id, read_only=True)


def collect(cfg: AgentConfig, store: Store | None) -> dict[str, Any]:
    ping = live_ping(cfg)
    running = ping is not None
    services = dict((ping or {}).get("health") or {})
    report: dict[str, Any] = {
        "cart_id": cfg.cart_id,
        "agent_running": running,
        "store": {"path": str(cfg.db_path), "found": store is not None},
        "queue": None,
        "last_sync_at": None,
        "config_version": None,
        "fleet_config_version": None,
        "out_of_service": None,
        "devices": device_view(services, running, cfg),
        "services": services,
        "storage": services.get("storage"),
        "print_queue": None,
        "compartments": [],
        "clock": clock_report(cfg, store, ping),
        # the version the live daemon runs (not this command's), pending update, last outcome
        "software": software_report(cfg.data_dir, running=(ping or {}).get("version")),
    }
    if store is not None:
        report.update(_from_store(store, cfg))
    return report


def _from_store(store: Store, cfg: AgentConfig) -> dict[str, Any]:
    read = StoreReadModel(store, lambda: cfg, time.time)
    versions = read.config_versions()
    return {
        "queue": read.queue_stats(),
        "last_sync_at": read.last_sync_at(),
        "config_version": versions.get("config_version"),
        "fleet_config_version": versions.get("fleet_config_version"),
        "out_of_service": read.out_of_service(),
        "print_queue": read.print_queue(),
        "compartments": [
            {"id": c.id, "size": c.size, "door": c.door, "parcel": c.parcel, "state": c.state}
            for c in read.compartments()
        ],
    }


def safe_collect(cfg: AgentConfig) -> tuple[dict[str, Any], str | None]:
    """The report, and why the store could not be read (None when it was)."""
    store = None
    try:
        store = open_store(cfg)
        if store is None:
            return collect(cfg, None), (f"no store at {cfg.db_path}: the agent has not run "
                                        "with this data_dir yet")
        return collect(cfg, store), None
    except StoreError as exc:
        report = collect(cfg, None)
        report["store"]["found"] = True
        return report, f"cannot read the store {cfg.db_path}: {exc}"
    finally:
        if store is not None:
            store.close()


def _config_line(status: dict[str, Any]) -> str:
    cart, fleet = status["config_version"], status["fleet_config_version"]
    if cart is None and fleet is None:
        return "config: the file only (no pushed config applied)"
    parts = [f"cart push v{cart}" if cart is not None else "no cart push",
             f"fleet-wide push v{fleet}" if fleet is not None else "no fleet-wide push"]
    return "config: the file with " + ", ".join(parts)


def _queue_line(q: dict[str, Any], last_sync: str | None) -> str:
    pending = f"{q['pending']} pending"
    if q["pending"]:
        pending += f" (oldest {q['oldest_pending_s']:.0f} s)"
    return f"queue: {pending}, {q['synced']} synced; last sync {last_sync or 'never'}"


def _device_line(name: str, dev: dict[str, Any]) -> str:
    if dev.get("configured") is False:
        state = "not configured"
    elif dev["ok"] is None:
        state = "unknown (the agent is not running)"
    else:
        state = "ok" if dev["ok"] else f"FAIL ({dev['error']})"
    return f"{name:8} {state}"


def _clock_line(clock: dict[str, Any]) -> str:
    alarm = clock.get("alarm")
    said = {None: "ok", "behind": "ALARM: the wall clock is BEHIND; using the evidence",
            "ahead": "ALARM: the wall clock is AHEAD of the server's time",
            "unknown": "ALARM: time UNKNOWN (no evidence, implausible wall clock): "
                       "codes are refused"}.get(alarm, str(alarm))
    return (f"clock: {said}; now {clock.get('now')} ({clock.get('source')}, offset "
            f"{clock.get('offset_s', 0):+.1f} s), wall {clock.get('wall')}")


def _software_line(software: dict[str, Any]) -> str:
    line = f"software: {software['running'] or 'unknown (the agent is not running)'}"
    if software["pending"]:
        line += f"; update to {software['pending']} {software['step']}"
    outcome = software["outcome"]
    if outcome:
        verdict = "ok" if outcome["ok"] else f"failed ({outcome['reason']})"
        line += f"; last update to {outcome['version']}: {verdict}"
    return line


def render_text(status: dict[str, Any]) -> str:
    running = "running" if status["agent_running"] else "not running"
    lines = [f"cart {status['cart_id']}: agent {running}"
             + ("  [OUT OF SERVICE]" if status["out_of_service"] else "")]
    if status["queue"] is None:
        why = "store unreadable" if status["store"]["found"] else "no store"
        lines.append(f"queue, config versions, compartments: unknown ({why})")
    else:
        lines += [_queue_line(status["queue"], status["last_sync_at"]),
                  _config_line(status),
                  f"receipts waiting to print: {status['print_queue']}"]
    lines.append(_clock_line(status["clock"]))
    lines.append(_software_line(status["software"]))
    lines += [_device_line(name, dev) for name, dev in status["devices"].items()]
    checks = [CHECK[name] for name, dev in status["devices"].items()
              if dev["ok"] is None and name in CHECK]
    if checks:
        lines.append("         (check without the agent: "
                     + "; ".join(f"cart-agent {c}" for c in checks) + ")")
    for c in status["compartments"]:
        lines.append(f"  {c['id']:6} {c['size']}  door {c['door']:7} {c['state']:14} "
                     f"{c['parcel'] or ''}".rstrip())
    return "\n".join(lines)
