"""Usage in headless Chromium: every number the charts, the totals and the CSV show equals a
SQL count of the same rows in the ingest's table (local days and hours, per service, per
reason, per cart), with history sent through the real ingest."""

from __future__ import annotations

import csv
import datetime as dt
import io
import random
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from fleet.desk.i18n import WAIT_BUCKETS
from tests.browser import screenshot_dir
from tests.fleet.desk.conftest import VIEWER, log_in
from tests.fleet.desk.rig import DeskRig, LightCart, http, login_http
from tests.support import wait_for

pytestmark = pytest.mark.browser
TZ = ZoneInfo("Asia/Shanghai")


def history(today: dt.date, rnd: random.Random) -> list[tuple[str, dt.datetime, dict[str, Any]]]:
    """Nine days of a busy light cart, with events on both sides of local midnight."""
    out: list[tuple[str, dt.datetime, dict[str, Any]]] = []
    label = 0
    for day in range(9, 0, -1):
        date = today - dt.timedelta(days=day)
        for minute in sorted(rnd.sample(range(6 * 60, 23 * 60), 14)):
            at = dt.datetime.combine(date, dt.time(minute // 60, minute % 60), TZ)
            kind = rnd.choice(["ticket", "ticket", "meal", "parcel", "refused"])
            if kind == "ticket":
                out.append(("ticket.issue", at, {"service": rnd.choice(["gov", "property",
                                                                         "bills"]),
                                                 "number": minute}))
            elif kind == "meal":
                out.append(("meal.pickup", at, {"order": f"M{minute}", "items": ["米饭"]}))
            elif kind == "refused":
                out.append(("scan.rejected", at, {"reason": rnd.choice(
                    ["expired", "already_used", "bad_signature"]), "detail": "x"}))
            else:
                label += 1
                comp = f"A0{label % 4 + 1}"
                out.append(("parcel.deposit", at, {"label": f"SF{label:08d}",
                                                   "compartment": comp, "courier": "c-1"}))
                if label % 3:  # two in three are collected, after 20 min to 30 h
                    later = at + dt.timedelta(minutes=rnd.choice([20, 90, 300, 1800]))
                    out.append(("parcel.pickup", later, {"label": f"SF{label:08d}",
                                                         "compartment": comp}))
        midnight = dt.datetime.combine(date + dt.timedelta(days=1), dt.time(), TZ)
        out.append(("ticket.issue", midnight - dt.timedelta(seconds=1), {"service": "gov"}))
        out.append(("ticket.issue", midnight, {"service": "gov"}))
    return sorted(out, key=lambda t: t[1])


def sql_counts(rig: DeskRig, start: dt.date, end: dt.date, fmt: str, cart: str | None = None,
               week: bool = False) -> Counter[tuple[str, str, str]]:
    local = "at AT TIME ZONE 'Asia/Shanghai'"
    period = f"date_trunc('week', {local})" if week else local
    rows = rig.sql(
        f"SELECT to_char({period}, %s), type, CASE type "
        "WHEN 'ticket.issue' THEN data->>'service' WHEN 'scan.rejected' THEN data->>'reason' "
        "ELSE '' END, count(*) FROM cart_transactions WHERE at >= %s AND at < %s "
        "AND type IN ('parcel.deposit', 'parcel.pickup', 'meal.pickup', 'ticket.issue', "
        "'scan.rejected') AND (%s::text IS NULL OR cart = %s) GROUP BY 1, 2, 3",
        (fmt, dt.datetime.combine(start, dt.time(), TZ),
         dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), TZ), cart, cart))
    return Counter({(p, t, k): n for p, t, k, n in rows})


def page_bars(page: Any, chart: str) -> Counter[tuple[str, str, str]]:
    bars = page.locator(f"#chart-{chart} rect[data-value]").evaluate_all(
        "els => els.map(e => [e.dataset.period || '', e.dataset.metric || "
        "e.parentNode.dataset.metric, e.dataset.key ?? e.parentNode.dataset.key, "
        "Number(e.dataset.value)])")
    return Counter({(p, m, k): v for p, m, k, v in bars if v})


def test_the_charts_numbers_equal_sql_counts_of_the_same_rows(
        rig: DeskRig, laptop: Any, tmp_path: Path) -> None:
    today = dt.datetime.now(TZ).date()
    light = LightCart(rig.broker.port, "bc-90")
    try:
        light.send(history(today, random.Random(17)))
    finally:
        light.close()
    cart = rig.carts["bc-01"]
    issuer = cart.issuer
    for token in (issuer.token("ticket", service="gov"), issuer.token("ticket", service="bills"),
                  issuer.token("meal", order="A-1", items=["米饭", "青菜"], name="张三"),
                  issuer.token("ticket", ttl=-600, service="gov")):  # expired: refused
        cart.sim.scanner.scan(token)
    wait_for(lambda: len(cart.query("SELECT id FROM transactions WHERE type IN "
                                    "('ticket.issue', 'meal.pickup', 'scan.rejected')")) == 4,
             timeout_s=15, what="the scans recorded")
    rig.wait_synced("bc-01")
    rig.wait_followed()

    start = today - dt.timedelta(days=10)
    page = laptop
    log_in(page, rig.base, VIEWER, path=f"/usage?from={start}&to={today}")
    expected = sql_counts(rig, start, today, "YYYY-MM-DD")
    assert sum(expected.values()) > 100
    shown = page_bars(page, "parcels") + page_bars(page, "meals") + page_bars(page, "tickets")
    assert shown == Counter({k: v for k, v in expected.items() if k[1] != "scan.rejected"})

    by_hour = sql_counts(rig, start, today, "HH24")
    assert page_bars(page, "hours") == _sum_keys(by_hour)
    refusals = page_bars(page, "refusals")
    assert refusals == Counter({("", "scan.rejected", k): n for (_d, t, k), n in
                                _totals(expected).items() if t == "scan.rejected"})
    totals = page.locator("#totals td[data-metric]").evaluate_all(
        "els => els.filter(e => e.dataset.metric !== 'parcel.wait.avg')"
        ".map(e => [e.dataset.metric, e.dataset.key, Number(e.textContent)])")
    assert {(m, k): v for m, k, v in totals if v} == {
        (t, k): n for (_d, t, k), n in _totals(expected).items()}

    # How long parcels waited: the same pairs as a SQL join of deposits and pickups.
    waits = rig.sql(
        "SELECT extract(epoch FROM p.at - d.at) FROM cart_transactions p JOIN "
        "cart_transactions d ON d.cart = p.cart AND d.type = 'parcel.deposit' AND "
        "d.data->>'label' = p.data->>'label' WHERE p.type = 'parcel.pickup' AND p.at >= %s",
        (dt.datetime.combine(start, dt.time(), TZ),))
    buckets = Counter(next(f"{zh} {en}" for _k, limit, (zh, en) in WAIT_BUCKETS if w < limit)
                      for (w,) in waits)
    assert page_bars(page, "waits") == Counter({(b, "parcel.wait", ""): n
                                                for b, n in buckets.items()})
    page.screenshot(path=str(screenshot_dir(tmp_path) / "desk-usage.png"), full_page=True)

    # The CSV holds the same numbers, per day and per cart.
    cookie, _ = login_http(rig, VIEWER)
    reply = http(rig, "GET", f"/usage.csv?from={start}&to={today}&per=cart", cookie=cookie)
    assert reply.status == 200
    assert reply.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(reply.body.lstrip("\ufeff"))))
    per_cart = Counter()
    for r in rows:
        if r["metric"] != "parcel.wait":
            per_cart[(r["day"], r["metric"], r["key"])] += int(r["count"])
    assert per_cart == expected
    assert {r["cart"] for r in rows} == {"bc-01", "bc-90"}

    # One cart, one day by the hour.
    day = today - dt.timedelta(days=3)
    page.goto(rig.base + f"/usage?from={day}&to={day}&cart=bc-90&by=hour")
    expect(page.locator(".range-note")).to_contain_text("bc-90")
    hourly = sql_counts(rig, day, day, "YYYY-MM-DD HH24:00", cart="bc-90")
    shown = page_bars(page, "parcels") + page_bars(page, "meals") + page_bars(page, "tickets")
    assert shown == Counter({k: v for k, v in hourly.items() if k[1] != "scan.rejected"})

    # By week (what a long range gets by default): weeks start on Monday, local time.
    page.goto(rig.base + f"/usage?from={start}&to={today}&by=week")
    weekly = sql_counts(rig, start, today, "YYYY-MM-DD", week=True)
    shown = page_bars(page, "parcels") + page_bars(page, "meals") + page_bars(page, "tickets")
    assert shown == Counter({k: v for k, v in weekly.items() if k[1] != "scan.rejected"})
    year = http(rig, "GET", f"/usage?from={today - dt.timedelta(days=364)}&to={today}",
                cookie=cookie)
    assert '<option value="week" selected>' in year.body


def _totals(counts: Counter[tuple[str, str, str]]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for (_p, t, k), n in counts.items():
        out[("", t, k)] += n
    return out


def _sum_keys(counts: Counter[tuple[str, str, str]]) -> Counter[tuple[str, str, str]]:
    out: Counter[tuple[str, str, str]] = Counter()
    for (p, t, _k), n in counts.items():
        if t != "scan.rejected":
            out[(p, t, "")] += n
    return out
