"""The desk's words, Chinese first and English second (as on the cart's screens), and how
times and durations read."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from agent.flows.refusals import REASONS as REFUSALS

Text = tuple[str, str]

ALARM_KINDS: dict[str, Text] = {
    "forced_open": ("柜门被非正常打开", "Door forced open"),
    "left_open": ("柜门未关", "Door left open"),
    "open_failed": ("柜锁未能打开", "Lock failed to release"),
    "paper_out": ("打印机缺纸", "Printer out of paper"),
    "offline": ("服务车离线过久", "Cart offline too long"),
    "config_rejected": ("配置被拒绝", "Config push rejected"),
    "clock": ("时钟异常", "Clock alarm"),
}

METRICS: dict[str, Text] = {
    "parcel.deposit": ("包裹存入", "Parcels deposited"),
    "parcel.pickup": ("包裹取出", "Parcels collected"),
    "meal.pickup": ("餐食领取", "Meals handed out"),
    "ticket.issue": ("排队号", "Tickets issued"),
    "scan.rejected": ("拒绝", "Refusals"),
    "parcel.wait": ("包裹等待时间", "Parcel waiting time"),
}

WAIT_BUCKETS: list[tuple[str, float, Text]] = [
    ("a<1h", 3600, ("1小时内", "< 1 h")),
    ("b1-4h", 4 * 3600, ("1–4小时", "1–4 h")),
    ("c4-24h", 86_400, ("4–24小时", "4–24 h")),
    ("d1-3d", 3 * 86_400, ("1–3天", "1–3 days")),
    ("e>3d", float("inf"), ("3天以上", "> 3 days")),
]

STATES: dict[str, Text] = {"online": ("在线", "Online"), "offline": ("离线", "Offline"),
                           "unknown": ("未知", "Unknown")}
DEVICES: dict[str, Text] = {"scanner": ("扫码器", "Scanner"), "printer": ("打印机", "Printer"),
                            "locker": ("柜锁", "Locks"), "audio": ("语音播报", "Speaker"),
                            "light": ("指示灯", "Signal light")}


def refusal(reason: str) -> Text:
    """A refusal reason: the resident's Chinese words and the stable code managers search by."""
    return (REFUSALS[reason][0] if reason in REFUSALS else reason), reason


def duration(seconds: float | None) -> Text:
    if seconds is None:
        return "—", "—"
    s = max(0, int(seconds))
    if s < 90:
        return f"{s}秒", f"{s} s"
    if s < 90 * 60:
        return f"{s // 60}分钟", f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600}小时{s % 3600 // 60}分", f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86_400}天", f"{s // 86_400} days"


def local(when: dt.datetime | float | None, tz: ZoneInfo, fmt: str = "%m-%d %H:%M") -> str:
    if when is None:
        return "—"
    if not isinstance(when, dt.datetime):
        when = dt.datetime.fromtimestamp(when, dt.UTC)
    return when.astimezone(tz).strftime(fmt)


def reason_text(r: dict[str, Any], tz: ZoneInfo, now: float) -> Text:
    """One attention reason in words."""
    code = r.get("code")
    if code == "offline":
        since = r.get("since")
        zh, en = duration(now - since) if isinstance(since, int | float) else ("?", "?")
        return f"离线 {zh}", f"offline for {en}"
    if code == "never_seen":
        return "从未收到状态", "no status ever received"
    if code == "paper_out":
        return "打印机缺纸", "printer out of paper"
    if code == "device":
        name = DEVICES.get(str(r.get("device")), (r.get("device"), r.get("device")))
        return f"{name[0]}故障：{r.get('error')}", f"{name[1]}: {r.get('error')}"
    if code == "backlog":
        zh, en = duration(r.get("oldest_s"))
        return (f"积压 {r.get('pending')} 条，最早 {zh}",
                f"backlog of {r.get('pending')}, oldest {en}")
    if code == "telemetry_stale":
        last = r.get("last")
        zh, en = duration(now - last) if isinstance(last, int | float) else ("?", "?")
        return f"{zh}未收到遥测", f"no telemetry for {en}"
    if code == "disk_low":
        return f"存储空间不足（{r.get('free_mb'):.0f} MB）", f"disk low ({r.get('free_mb'):.0f} MB)"
    if code == "config_rejected":
        first = (r.get("errors") or ["?"])[0]
        return f"配置被拒绝：{first}", f"config rejected: {first}"
    if code == "config_pending":
        scope = "车队" if r.get("scope") == "fleet" else "本车"
        return (f"{scope}配置 v{r.get('desired')} 尚未生效（当前 v{r.get('reported') or '-'}）",
                f"{r.get('scope')} config v{r.get('desired')} not applied yet "
                f"(reports v{r.get('reported') or '-'})")
    if code == "clock":
        offset = r.get("offset_s")
        off = f"{offset:+.0f} s" if isinstance(offset, int | float) else "?"
        what = r.get("alarm") or "offset"
        return f"时钟异常（{what}，偏差 {off}）", f"clock alarm ({what}, offset {off})"
    return str(code), str(code)


def alarm_detail(kind: str, detail: dict[str, Any]) -> str:
    """The facts of an alarm, short, language-neutral (ids, errors)."""
    parts = []
    for key in ("compartment", "parcel", "error", "errors", "version", "alarm", "offset_s",
                "since"):
        value = detail.get(key)
        if value is None or value == []:
            continue
        if isinstance(value, list):
            value = "; ".join(str(v) for v in value[:3])
        if isinstance(value, float):
            value = f"{value:+.0f}" if key == "offset_s" else f"{value:.0f}"
        parts.append(f"{key}: {value}")
    return ", ".join(parts)[:300]
