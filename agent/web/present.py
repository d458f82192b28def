"""What the screens show, shaped from the cart's read model and health: plain dicts of display
strings.

Everything here picks fields by name. Transactions and feedback carry token ids (`jti`) and
details meant for logs; a page gets only what a person at the cart should see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from agent.config import AgentConfig
from agent.contract import parse_rfc3339
from agent.flows.feedback import Feedback
from agent.ports import HealthView, ReadModel

RECEIPT_TYPES = {"parcel.pickup": ("取件", "Parcel pick-up"),
                 "meal.pickup": ("助餐", "Meal"),
                 "ticket.issue": ("排队", "Queue ticket")}
STATES = {"free": ("空闲", "Free"), "holding": ("有包裹", "Parcel"),
          "open": ("门开着", "Open"), "reserved": ("投递中", "Deposit"),
          "out_of_service": ("停用", "Off")}
DOORS = {"open": ("开", "open"), "closed": ("关", "closed"), "unknown": ("未知", "unknown")}
DEVICES = {"scanner": ("扫码器", "Scanner"), "printer": ("打印机", "Printer"),
           "locker": ("柜锁板", "Locker"), "audio": ("扬声器", "Speaker"),
           "light": ("指示灯", "Light")}
# Feedback the resident screen leaves out: a forced door is for staff, not an alarm in public.
NOT_FOR_RESIDENTS = {"forced_open"}


def local_time(tz: ZoneInfo, value: str | float | None, fmt: str = "%m-%d %H:%M") -> str:
    if value is None or value == "":
        return ""
    try:
        ts = parse_rfc3339(value) if isinstance(value, str) else float(value)
    except ValueError:
        return ""
    return datetime.fromtimestamp(ts, tz).strftime(fmt)


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


def resident_status(read: ReadModel, health: HealthView) -> dict[str, Any]:
    return {"online": health.online(), "out_of_service": read.out_of_service()}


def devices(health: HealthView) -> list[dict[str, Any]]:
    out = []
    for name, state in health.devices().items():
        zh, en = DEVICES.get(name, (name, name))
        out.append({"name": name, "zh": zh, "en": en, "ok": bool(state.get("ok")),
                    "error": str(state.get("error") or "")[:200]})
    return out


def sync_state(read: ReadModel, health: HealthView, tz: ZoneInfo) -> dict[str, Any]:
    stats = read.queue_stats()
    snap = health.sync()
    state: dict[str, Any] = {
        "enabled": snap is not None,
        "online": health.online(),
        "pending": stats["pending"],
        "oldest": age_text(stats["oldest_pending_s"]) if stats["pending"] else "",
        "last_sync": local_time(tz, read.last_sync_at(), "%m-%d %H:%M:%S"),
        "since": "", "error": "",
    }
    if snap is not None:
        since = snap.get("since")
        state["since"] = local_time(tz, since if isinstance(since, float | str) else None,
                                    "%m-%d %H:%M:%S")
        state["error"] = "" if snap.get("ok") else str(snap.get("error") or "")[:200]
    state["clock"] = clock_state(health)
    return state


CLOCK_ALARMS = {
    None: ("正常", "OK"),
    "behind": ("系统时钟落后，已按记录校正", "Wall clock behind: corrected from the records"),
    "ahead": ("系统时钟超前于服务器", "Wall clock ahead of the server"),
    "unknown": ("时间未知，暂停验码", "Time unknown: codes refused"),
}


def clock_state(health: HealthView) -> dict[str, Any]:
    clock = health.clock()
    alarm = clock.get("alarm")
    zh, en = CLOCK_ALARMS.get(alarm, (str(alarm), str(alarm)))
    return {"alarm": alarm, "zh": zh, "en": en, "offset": f"{clock.get('offset_s', 0):+.0f} s",
            "source": clock.get("source")}


def grid(read: ReadModel, tz: ZoneInfo) -> list[dict[str, Any]]:
    out = []
    for comp in read.compartments():
        view = comp.view()
        zh, en = STATES.get(view["state"], (view["state"], view["state"]))
        door_zh, door_en = DOORS.get(view["door"], DOORS["unknown"])
        out.append({"id": comp.id, "size": comp.size, "state": view["state"],
                    "state_zh": zh, "state_en": en, "door": view["door"],
                    "door_zh": door_zh, "door_en": door_en, "parcel": comp.parcel or "",
                    "since": local_time(tz, view["since"]),
                    "out_of_service": comp.out_of_service, "oos_reason": comp.oos_reason or ""})
    return out


def compartment_ids(read: ReadModel) -> set[str]:
    return {c.id for c in read.compartments()}


def receipts(read: ReadModel, cfg: AgentConfig, limit: int = 20) -> list[dict[str, str]]:
    out = []
    for tx in read.recent(RECEIPT_TYPES, limit):
        zh, en = RECEIPT_TYPES[tx.type]
        out.append({"id": tx.id, "zh": zh, "en": en, "at": local_time(cfg.tz, tx.at),
                    "summary": _summary(cfg, tx.type, tx.data)})
    return out


def _summary(cfg: AgentConfig, type_: str, data: dict[str, Any]) -> str:
    if type_ == "parcel.pickup":
        return f"{data.get('label', '')} · {data.get('compartment', '')}"
    if type_ == "meal.pickup":
        return " ".join(str(x) for x in (data.get("order"), data.get("name")) if x)
    service = cfg.ticket_services.get(str(data.get("service")))
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
    "clock.behind": "时钟落后 Clock behind", "clock.ahead": "时钟超前 Clock ahead",
    "clock.unknown": "时间未知 Clock unknown", "clock.ok": "时钟恢复 Clock OK",
}


def _two_names(name: str) -> tuple[str, str]:
    zh, _, en = name.partition(" ")
    return zh, en


def report(cfg: AgentConfig, raw: dict[str, Any]) -> dict[str, Any]:
    services = cfg.ticket_services
    return {
        "day": raw["day"],
        # (zh, en, count): the English half is marked lang="en" on the page.
        "transactions": [(*_two_names(TX_NAMES.get(t, t)), n)
                         for t, n in raw["transactions"].items()],
        "tickets": [((services[s].zh, services[s].en) if s in services else (s, ""))
                    + (n,) for s, n in raw["tickets"].items()],
        "parcels": raw["parcels"],
        "waiting": [{"compartment": w["compartment"], "parcel": w["parcel"],
                     "since": local_time(cfg.tz, w["since"])} for w in raw["waiting"]],
        "meals": raw["meals"], "refused": raw["refused"],
    }
