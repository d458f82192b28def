"""What the screens show, shaped from the daemon's state: plain dicts of display strings.

Everything here picks fields by name. Transactions and feedback carry token ids (`jti`) and
details meant for logs; a page gets only what a person at the cart should see.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from agent.flows.compartments import Compartments
from agent.flows.feedback import Feedback
from agent.store.transactions import parse_rfc3339

if TYPE_CHECKING:
    from agent.daemon import Daemon

RECEIPT_TYPES = {"parcel.pickup": ("取件", "Parcel pick-up"),
                 "meal.pickup": ("助餐", "Meal"),
                 "ticket.issue": ("排队", "Queue ticket")}
STATES = {"free": ("空闲", "Free"), "holding": ("有包裹", "Parcel"),
          "open": ("门开着", "Open"), "reserved": ("投递中", "Deposit"),
          "out_of_service": ("停用", "Off")}
DOORS = {"open": ("开", "open"), "closed": ("关", "closed"), "unknown": ("未知", "unknown")}
DEVICES = {"scanner": ("扫码器", "Scanner"), "printer": ("打印机", "Printer"),
           "locker": ("柜锁板", "Locker")}
# Feedback the resident screen leaves out: a forced door is for staff, not an alarm in public.
NOT_FOR_RESIDENTS = {"forced_open"}


def local_time(daemon: Daemon, value: str | float | None, fmt: str = "%m-%d %H:%M") -> str:
    if value is None or value == "":
        return ""
    try:
        ts = parse_rfc3339(value) if isinstance(value, str) else float(value)
    except ValueError:
        return ""
    return datetime.fromtimestamp(ts, daemon.cfg.tz).strftime(fmt)


def age_text(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def resident_event(event: Feedback) -> dict[str, Any] | None:
    """The public part of one answer; None when the resident screen should not show it."""
    if event.kind not in ("accepted", "refused", "deposit", "info"):
        return None
    if event.reason in NOT_FOR_RESIDENTS:
        return None
    details = event.details
    big = ""
    if event.kind in ("accepted", "deposit", "info") and isinstance(details.get("compartment"),
                                                                      str):
        big = details["compartment"][:8]
    if isinstance(details.get("number"), int):
        big = str(details["number"])
    return {"id": event.id, "kind": event.kind, "zh": event.zh, "en": event.en,
            "reason": event.reason or "", "big": big}


def online(daemon: Daemon) -> bool:
    sync = daemon.sync
    return bool(sync is not None and sync.online())


def resident_status(daemon: Daemon) -> dict[str, Any]:
    return {"online": online(daemon),
            "out_of_service": daemon.store.get_meta("out_of_service") == "1"}


def devices(daemon: Daemon) -> list[dict[str, Any]]:
    out = []
    for name, health in daemon.device_health().items():
        zh, en = DEVICES.get(name, (name, name))
        out.append({"name": name, "zh": zh, "en": en, "ok": bool(health.get("ok")),
                    "error": str(health.get("error") or "")[:200]})
    return out


def sync_state(daemon: Daemon) -> dict[str, Any]:
    stats = daemon.store.queue_stats()
    state: dict[str, Any] = {
        "enabled": daemon.sync is not None,
        "online": online(daemon),
        "pending": stats["pending"],
        "oldest": age_text(stats["oldest_pending_s"]) if stats["pending"] else "",
        "last_sync": local_time(daemon, daemon.store.get_meta("last_sync_at"), "%m-%d %H:%M:%S"),
        "since": "", "error": "",
    }
    if daemon.sync is not None:
        snap = daemon.sync.health.snapshot()
        state["since"] = local_time(daemon, snap.get("since"), "%m-%d %H:%M:%S")
        state["error"] = "" if snap.get("ok") else str(snap.get("error") or "")[:200]
    return state


def grid(daemon: Daemon) -> list[dict[str, Any]]:
    out = []
    for comp in Compartments(daemon.store).all():
        view = comp.view()
        zh, en = STATES.get(view["state"], (view["state"], view["state"]))
        door_zh, door_en = DOORS.get(view["door"], DOORS["unknown"])
        out.append({"id": comp.id, "size": comp.size, "state": view["state"],
                    "state_zh": zh, "state_en": en, "door": view["door"],
                    "door_zh": door_zh, "door_en": door_en, "parcel": comp.parcel or "",
                    "since": local_time(daemon, view["since"]),
                    "out_of_service": comp.out_of_service, "oos_reason": comp.oos_reason or ""})
    return out


def compartment_ids(daemon: Daemon) -> set[str]:
    return {c.id for c in Compartments(daemon.store).all()}


def deposit_active(daemon: Daemon) -> bool:
    cart = daemon.cart
    return bool(cart is not None and cart.scans.deposit.active)


def cart_out_of_service(daemon: Daemon) -> bool:
    return daemon.store.get_meta("out_of_service") == "1"


def receipts(daemon: Daemon, limit: int = 20) -> list[dict[str, str]]:
    marks = ",".join("?" * len(RECEIPT_TYPES))
    rows = daemon.store.query(
        f"SELECT id, type, at, data FROM transactions WHERE type IN ({marks}) "
        "ORDER BY seq DESC LIMIT ?", (*RECEIPT_TYPES, limit))
    out = []
    for row in rows:
        data = json.loads(row["data"])
        zh, en = RECEIPT_TYPES[row["type"]]
        out.append({"id": row["id"], "zh": zh, "en": en, "at": local_time(daemon, row["at"]),
                    "summary": _summary(daemon, row["type"], data)})
    return out


def _summary(daemon: Daemon, type_: str, data: dict[str, Any]) -> str:
    if type_ == "parcel.pickup":
        return f"{data.get('label', '')} · {data.get('compartment', '')}"
    if type_ == "meal.pickup":
        return " ".join(str(x) for x in (data.get("order"), data.get("name")) if x)
    service = daemon.cfg.ticket_services.get(str(data.get("service")))
    name = service.zh if service else str(data.get("service", ""))
    return f"{name} {data.get('number', '')} 号"


TX_NAMES = {
    "parcel.deposit": "包裹存入 Parcel deposited", "parcel.pickup": "包裹取出 Parcel picked up",
    "meal.pickup": "助餐取餐 Meal", "ticket.issue": "排队取号 Queue ticket",
    "scan.rejected": "扫码被拒 Scan refused", "locker.open": "人工开柜 Opened by staff",
    "receipt.reprint": "补打凭条 Receipt reprinted", "deposit_mode": "投递模式 Deposit mode",
    "compartment.out_of_service": "柜格停用/启用 Compartment service",
    "cart.out_of_service": "整车停用/启用 Cart service",
    "report.printed": "打印日报 Report printed",
}


def report(daemon: Daemon, raw: dict[str, Any]) -> dict[str, Any]:
    services = daemon.cfg.ticket_services
    return {
        "day": raw["day"],
        "transactions": [(TX_NAMES.get(t, t), n) for t, n in raw["transactions"].items()],
        "tickets": [(f"{services[s].zh} {services[s].en}" if s in services else s, n)
                    for s, n in raw["tickets"].items()],
        "parcels": raw["parcels"],
        "waiting": [{"compartment": w["compartment"], "parcel": w["parcel"],
                     "since": local_time(daemon, w["since"])} for w in raw["waiting"]],
        "meals": raw["meals"], "refused": raw["refused"],
    }
