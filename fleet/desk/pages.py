"""The pages that only read: fleet, one cart, alarms, usage (and its CSV), the action log."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any

import bottle
from bottle import Bottle, HTTPResponse, response

from agent.config import CART_ID_PATTERN
from fleet.desk import present, queries, usage
from fleet.desk.web import STATIC_DIR, DeskContext, Refusal, arg, parse_day, render, viewer

_CART = re.compile(CART_ID_PATTERN)
MAX_RANGE_DAYS = 800
MAX_HOURLY_DAYS = 14
MAX_DAILY_DAYS = 92
TX_TYPES = sorted({"parcel.deposit", "parcel.pickup", "meal.pickup", "ticket.issue",
                   "scan.rejected", "locker.open", "locker.open_failed", "locker.forced_open",
                   "locker.door_left_open", "locker.open_unconfirmed", "locker.open_interrupted",
                   "config.applied", "config.rejected", "command.done", "cart.out_of_service",
                   "compartment.out_of_service", "deposit_mode", "token.revoked",
                   "receipt.reprint", "report.printed"})


def _cell(text: str) -> str:
    """Keys come from the carts' records: a spreadsheet must not take one for a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def cart_arg(value: str) -> str:
    if not _CART.match(value):
        raise Refusal(404, "没有这辆服务车", "No such cart")
    return value


def fleet_view(ctx: DeskContext) -> dict[str, Any]:
    filter_ = arg("filter", 16, "all")
    if filter_ not in queries.FILTERS:
        filter_ = "all"
    q = arg("q", 32).strip().lower()
    try:
        page = max(0, min(int(arg("page", 6, "0") or 0), 10_000))
    except ValueError:
        page = 0
    rows, summary = queries.fleet(ctx.db, filter_, q, page)
    now = ctx.clock()
    cards = [present.card(r, ctx.tz, now, summary.get("fleet_desired"))
             for r in rows[:queries.PAGE_SIZE]]
    return {"cards": cards, "summary": summary, "filter": filter_, "q": q, "page": page,
            "more": len(rows) > queries.PAGE_SIZE}


def usage_range(ctx: DeskContext) -> tuple[queries.Range, str | None, str]:
    today = dt.datetime.fromtimestamp(ctx.clock(), ctx.tz).date()
    end = parse_day(arg("to", 10), today)
    start = parse_day(arg("from", 10), end - dt.timedelta(days=29))
    if start > end:
        start, end = end, start
    if (end - start).days >= MAX_RANGE_DAYS:
        raise Refusal(400, "日期范围过长", f"Range too long (at most {MAX_RANGE_DAYS} days)")
    cart = arg("cart", 32).strip() or None
    if cart is not None:
        cart_arg(cart)
    # A year of daily bars is unreadable on a phone: long ranges are drawn by week unless
    # the day is asked for (the CSV follows the same choice, so it has the same numbers).
    by = arg("by", 8, "week" if (end - start).days >= MAX_DAILY_DAYS else "day")
    if by not in ("day", "hour", "week") or (by == "hour"
                                             and (end - start).days >= MAX_HOURLY_DAYS):
        by = "day"
    return queries.Range(start, end, ctx.tz), cart, by


def install(app: Bottle, ctx: DeskContext) -> None:
    @app.get("/")
    def home() -> Any:
        raise HTTPResponse(status=303, headers={"Location": "/fleet"})

    @app.get("/fleet")
    def fleet() -> str:
        session = viewer(ctx)
        return render("fleet", ctx, session, title="车队 Fleet", nav="fleet", **fleet_view(ctx))

    @app.get("/fleet/cards")
    def fleet_cards() -> str:
        """The cards and the summary alone: what the page's script swaps in every few s."""
        session = viewer(ctx)
        return render("cards", ctx, session, **fleet_view(ctx))

    @app.get("/carts/<cart>")
    def cart_page(cart: str) -> str:
        session = viewer(ctx)
        cart = cart_arg(cart)
        row = queries.cart_card(ctx.db, cart)
        if row is None:
            raise Refusal(404, "没有这辆服务车", f"No cart {cart} seen by the desk")
        types = [t for t in bottle.request.query.getall("type") if t in TX_TYPES]
        before = None
        cursor = arg("before", 64)
        if cursor:
            try:
                at, seq = cursor.rsplit("~", 1)
                before = (dt.datetime.fromisoformat(at), int(seq))
            except ValueError:
                raise Refusal(400, "翻页参数错误", "Bad page cursor") from None
        fleet_row = ctx.db.one("SELECT value FROM desk_meta WHERE key = 'fleet_desired'")
        fleet_desired = ((fleet_row or {}).get("value") or {}).get("version")
        timeline = queries.timeline(ctx.db, ctx.table, cart, types, before)
        action_id = arg("action", 12)
        action = ctx.db.one("SELECT * FROM desk_actions WHERE id = %s",
                            (int(action_id),)) if action_id.isdigit() else None
        return render(
            "cart", ctx, session, title=f"{cart}", nav="fleet",
            card=present.card(row, ctx.tz, ctx.clock(), fleet_desired),
            compartments=queries.compartments(ctx.db, cart),
            alarms=queries.alarms(ctx.db, "all", cart, limit=20),
            history=sorted(queries.config_history(ctx.db, ctx.table, cart),
                           key=lambda r: r["at"], reverse=True)[:20],
            commands=sorted(queries.commands(ctx.db, ctx.table, cart),
                            key=lambda r: r["at"], reverse=True)[:20],
            timeline=timeline, types=types, all_types=TX_TYPES, action=action,
            next_cursor=(f"{timeline[-1]['at'].isoformat()}~{timeline[-1]['seq']}"
                         if len(timeline) == 50 else None))

    @app.get("/alarms")
    def alarms() -> str:
        session = viewer(ctx)
        show = "all" if arg("show", 8) == "all" else "open"
        cart = arg("cart", 32).strip() or None
        if cart is not None:
            cart_arg(cart)
        return render("alarms", ctx, session, title="警报 Alarms", nav="alarms", show=show,
                      cart=cart or "", alarms=queries.alarms(ctx.db, show, cart))

    @app.get("/usage")
    def usage_page() -> str:
        session = viewer(ctx)
        rng, cart, by = usage_range(ctx)
        series, carts, hod = usage.read(ctx.db, rng.start, rng.end, ctx.tz, cart, by)
        total_rows = [{**r, "period": ""} for r in carts]
        return render("usage", ctx, session, title="使用统计 Usage", nav="usage", rng=rng,
                      cart=cart or "", by=by, charts=present.usage_charts(
                          series, hod, total_rows, rng, by),
                      totals=present.totals(total_rows), per_cart=present.per_cart(carts),
                      known_carts=queries.usage_carts(ctx.db))

    @app.get("/usage.csv")
    def usage_csv() -> str:
        viewer(ctx)
        rng, cart, by = usage_range(ctx)
        per_cart = arg("per", 8) == "cart"
        rows = usage.read_csv(ctx.db, rng.start, rng.end, ctx.tz, cart, per_cart, by)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["week" if by == "week" else "hour" if by == "hour" else "day", "cart",
                         "metric", "key", "count", "wait_total_s"])
        for r in rows:
            writer.writerow([r["period"], r["cart"] if per_cart else (cart or "*"), r["metric"],
                             _cell(r["key"]), r["n"], f"{float(r['total'] or 0):.0f}"])
        response.content_type = "text/csv; charset=utf-8"
        name = f"usage-{rng.start}-{rng.end}{'-' + cart if cart else ''}.csv"
        response.set_header("Content-Disposition", f'attachment; filename="{name}"')
        return "\ufeff" + out.getvalue()  # the BOM lets spreadsheet programs read UTF-8

    @app.get("/actions")
    def action_log() -> str:
        session = viewer(ctx)
        return render("actions", ctx, session, title="操作记录 Actions", nav="actions",
                      actions=queries.actions(ctx.db))

    @app.get("/static/<path:path>")
    def static(path: str) -> Any:
        return bottle.static_file(path, root=STATIC_DIR)
