"""Rows from the queries turned into what the templates show (words, figures, chart series)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from fleet.desk import i18n
from fleet.desk.attention import version_of
from fleet.desk.charts import Series, bar_chart, hbar_chart
from fleet.desk.queries import Range


def _ts(value: Any) -> float | None:
    return value.timestamp() if isinstance(value, dt.datetime) else None


def card(row: dict[str, Any], tz: ZoneInfo, now: float, fleet_desired: int | None
         ) -> dict[str, Any]:
    telemetry = row.get("telemetry") or {}
    reported = row.get("reported") or {}
    status = row.get("status") or {}
    reasons = [i18n.reason_text(r, tz, now) for r in row.get("reasons") or []]
    if row.get("alarms_open"):
        n = row["alarms_open"]
        reasons.insert(0, (f"{n} 条警报未确认", f"{n} unacknowledged alarm{'s' * (n > 1)}"))
    if row.get("cart_oos"):
        reasons.append(("整车暂停服务", "cart out of service"))
    if row.get("comp_oos"):
        reasons.append((f"{row['comp_oos']} 个柜格停用", f"{row['comp_oos']} compartment(s) "
                                                      "out of service"))
    queue = telemetry.get("queue") if isinstance(telemetry.get("queue"), dict) else None
    if queue is not None:
        age = i18n.duration(queue.get("oldest_pending_s")) if queue.get("pending") else ("", "")
        backlog = (f"{queue.get('pending')} 条" + (f"，最早 {age[0]}" if age[0] else ""),
                   f"{queue.get('pending')} pending" + (f", oldest {age[1]}" if age[1] else ""))
    else:
        backlog = ("—", "—")
    devices: list[tuple[str, tuple[str, str], bool | None, Any]] = []
    for name, words in i18n.DEVICES.items():
        health = (telemetry.get("devices") or {}).get(name)
        if isinstance(health, dict):
            devices.append((name, words, bool(health.get("ok")), health.get("error")))
        else:
            devices.append((name, words, None, None))
    since = _ts(row.get("state_since"))
    clock = telemetry.get("clock") if isinstance(telemetry.get("clock"), dict) else {}
    offset = row.get("clock_offset_s")
    known, in_use, oos = row.get("comp_known") or 0, row.get("comp_in_use") or 0, \
        row.get("comp_oos") or 0
    return {
        "cart": row["cart"],
        "state": row["state"],
        "state_words": i18n.STATES.get(row["state"], (row["state"], row["state"])),
        "since": i18n.duration(now - since) if since else ("", ""),
        "since_at": i18n.local(since, tz),
        "last_seen": i18n.local(_ts(row.get("last_seen")), tz),
        "attention": (row.get("rank") or 0) > 0,
        "reasons": reasons,
        "backlog": backlog,
        "devices": devices,
        "cart_config": (version_of(row.get("desired")), version_of(reported),
                        reported.get("status")),
        "fleet_config": (fleet_desired, version_of(reported, "fleet_version")),
        "config_errors": [str(e) for e in reported.get("errors") or []][:3],
        "software": status.get("agent_version") or "—",
        "clock": (f"{offset + 0.0:+.1f} s" if isinstance(offset, int | float) else "—"),
        "clock_cart": clock,
        "compartments": {"known": known, "in_use": in_use, "oos": oos,
                         "free": max(0, known - in_use - oos)},
        "alarms_open": row.get("alarms_open") or 0,
    }


# --- usage ---------------------------------------------------------------------------------

SERVICE_SERIES = [("parcel.deposit", "s-deposit"), ("parcel.pickup", "s-pickup")]


def periods(rng: Range, by: str) -> list[str]:
    if by == "hour":
        start = dt.datetime.combine(rng.start, dt.time())
        return [(start + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H:00")
                for h in range(rng.days * 24)]
    if by == "week":
        monday = rng.start - dt.timedelta(days=rng.start.weekday())
        return [(monday + dt.timedelta(weeks=w)).isoformat()
                for w in range((rng.end - monday).days // 7 + 1)]
    return [(rng.start + dt.timedelta(days=d)).isoformat() for d in range(rng.days)]


def _index(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """{(metric, key): {period: n}} in one pass (a year by day is ~6,000 rows)."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        by_period = out.setdefault((r["metric"], r["key"]), {})
        by_period[r["period"]] = by_period.get(r["period"], 0) + int(r["n"])
    return out


def _values(index: dict[tuple[str, str], dict[str, float]], metric: str,
            key: str | None = None) -> dict[str, float]:
    if key is not None:
        return index.get((metric, key), {})
    out: dict[str, float] = {}
    for (m, _k), by_period in index.items():
        if m == metric:
            for period, n in by_period.items():
                out[period] = out.get(period, 0) + n
    return out


def totals(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    out: dict[tuple[str, str], dict[str, float]] = {}
    for r in rows:
        entry = out.setdefault((r["metric"], r["key"]), {"n": 0, "total": 0.0})
        entry["n"] += int(r["n"])
        entry["total"] += float(r["total"] or 0)
    return out


def usage_charts(series_rows: list[dict[str, Any]], hod_rows: list[dict[str, Any]],
                 total_rows: list[dict[str, Any]], rng: Range, by: str
                 ) -> dict[str, dict[str, str]]:
    cats = periods(rng, by)
    tick = max(1, len(cats) // 12)
    series_index, hod_index = _index(series_rows), _index(hod_rows)
    label = {m: f"{zh} {en}" for m, (zh, en) in i18n.METRICS.items()}
    parcels = [Series(m, "", label[m], css, _values(series_index, m))
               for m, css in SERVICE_SERIES]
    meals = [Series("meal.pickup", "", label["meal.pickup"], "s-meal",
                    _values(series_index, "meal.pickup"))]
    services = sorted({r["key"] for r in total_rows if r["metric"] == "ticket.issue"})
    tickets = [Series("ticket.issue", k, k or "—", f"s-ticket-{i % 6}",
                      _values(series_index, "ticket.issue", k)) for i, k in enumerate(services)]
    hod_cats = [f"{h:02d}" for h in range(24)]
    hod = [Series(m, "", label[m], css, _values(hod_index, m)) for m, css in
           [*SERVICE_SERIES, ("meal.pickup", "s-meal"), ("ticket.issue", "s-ticket-0")]]
    refusals = [(f"{i18n.refusal(k)[0]} ({k})", k, float(v["n"]))
                for (m, k), v in totals(total_rows).items() if m == "scan.rejected"]
    waits = totals(total_rows)
    wait_series = Series("parcel.wait", "", label["parcel.wait"], "s-wait",
                         {f"{zh} {en}": waits.get(("parcel.wait", key), {"n": 0})["n"]
                          for key, _limit, (zh, en) in i18n.WAIT_BUCKETS})
    wait_labels = {f"{zh} {en}": en for _key, _limit, (zh, en) in i18n.WAIT_BUCKETS}
    charts = [
        ("parcels", "包裹存入与取出 Parcels in and out",
         bar_chart("包裹 Parcels", cats, parcels, tick_every=tick)),
        ("meals", "餐食 Meals", bar_chart("餐食 Meals", cats, meals, tick_every=tick)),
        ("tickets", "排队号（按服务）Tickets by service",
         bar_chart("排队号 Tickets", cats, tickets, stacked=True, tick_every=tick)),
        ("hours", "一天中的时段 Hour of the day",
         bar_chart("按小时 By hour of day", hod_cats, hod, stacked=True, tick_every=2)),
        ("refusals", "拒绝原因 Refusals by reason",
         hbar_chart("拒绝原因 Refusals by reason", refusals, "scan.rejected")),
        ("waits", "包裹等待时间 How long parcels wait",
         bar_chart("包裹等待时间 How long parcels wait", list(wait_series.values),
                   [wait_series], labels=wait_labels)),
    ]
    return {name: {"title": title, "svg": svg} for name, title, svg in charts}


def per_cart(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    carts: dict[str, dict[str, Any]] = {}
    for r in rows:
        entry = carts.setdefault(r["cart"], {"cart": r["cart"], "parcel.deposit": 0,
                                             "parcel.pickup": 0, "meal.pickup": 0,
                                             "ticket.issue": 0, "scan.rejected": 0,
                                             "wait_n": 0, "wait_total": 0.0})
        if r["metric"] == "parcel.wait":
            entry["wait_n"] += int(r["n"])
            entry["wait_total"] += float(r["total"] or 0)
        elif r["metric"] in entry:
            entry[r["metric"]] += int(r["n"])
    for entry in carts.values():
        entry["wait_avg"] = i18n.duration(entry["wait_total"] / entry["wait_n"]) \
            if entry["wait_n"] else ("—", "—")
    return sorted(carts.values(), key=lambda e: e["cart"])
