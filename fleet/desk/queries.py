"""What the pages read. Each page's data is one or two SQL statements here, so the bench can
time exactly what a page runs and show its plan."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fleet.desk.db import Database

PAGE_SIZE = 48
FILTERS = {"all": "true", "attention": "rank > 0", "offline": "state = 'offline'",
           "online": "state = 'online'", "unknown": "state = 'unknown'"}
CARD_COLUMNS = ("cart, state, state_since, last_seen, status, telemetry, telemetry_at, "
                "reported, desired, clock_offset_s, reasons, alarms_open, comp_known, "
                "comp_in_use, comp_oos, cart_oos, rank")


def fleet_sql(filter_: str, search: bool) -> str:
    where = FILTERS[filter_] + (" AND cart LIKE %(q)s" if search else "")
    return (f"SELECT {CARD_COLUMNS} FROM desk_carts WHERE {where} "
            "ORDER BY rank DESC, cart LIMIT %(limit)s OFFSET %(offset)s")


SUMMARY_SQL = ("SELECT count(*) AS total, count(*) FILTER (WHERE state = 'online') AS online, "
               "count(*) FILTER (WHERE state = 'offline') AS offline, "
               "count(*) FILTER (WHERE state = 'unknown') AS unknown, "
               "count(*) FILTER (WHERE rank > 0) AS attention, "
               "(SELECT count(*) FROM desk_alarms WHERE acked_at IS NULL) AS alarms "
               "FROM desk_carts")


def fleet(db: Database, filter_: str, q: str, page: int) -> tuple[list[dict[str, Any]],
                                                                   dict[str, Any]]:
    params = {"q": q.replace("%", "").replace("_", "\\_") + "%", "limit": PAGE_SIZE + 1,
              "offset": page * PAGE_SIZE}
    cards = db.query(fleet_sql(filter_, bool(q)), params)
    summary = db.one(SUMMARY_SQL) or {}
    fleet_desired = db.one("SELECT value FROM desk_meta WHERE key = 'fleet_desired'")
    summary["fleet_desired"] = (fleet_desired or {}).get("value", {}).get("version")
    return cards, summary


def cart_card(db: Database, cart: str) -> dict[str, Any] | None:
    return db.one(f"SELECT {CARD_COLUMNS} FROM desk_carts WHERE cart = %s", (cart,))


def alarms_sql(show: str, by_cart: bool) -> str:
    where = ["acked_at IS NULL"] if show == "open" else ["true"]
    if by_cart:
        where.append("cart = %(cart)s")
    return ("SELECT id, cart, kind, source, live, detail, raised_at, cleared_at, acked_at, "
            f"acked_by, ack_note FROM desk_alarms WHERE {' AND '.join(where)} "
            "ORDER BY raised_at DESC, id DESC LIMIT %(limit)s")


def alarms(db: Database, show: str, cart: str | None, limit: int = 200) -> list[dict[str, Any]]:
    return db.query(alarms_sql(show, cart is not None), {"cart": cart, "limit": limit})


# --- usage --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Range:
    start: dt.date
    end: dt.date          # inclusive
    tz: ZoneInfo

    @property
    def start_at(self) -> dt.datetime:
        return dt.datetime.combine(self.start, dt.time(), self.tz)

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end + dt.timedelta(days=1), dt.time(), self.tz)

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


def usage_carts(db: Database) -> list[str]:
    return [r["cart"] for r in db.query("SELECT DISTINCT cart FROM desk_usage_month "
                                        "WHERE cart <> '*' ORDER BY cart LIMIT 1000")]


# --- one cart -----------------------------------------------------------------------------


def timeline_sql(table: str, typed: bool, before: bool) -> str:
    where = ["cart = %(cart)s"]
    if typed:
        where.append("type = ANY(%(types)s)")
    if before:
        where.append("(at, seq) < (%(at)s, %(seq)s)")
    return (f"SELECT id, seq, type, at, data, received_at FROM {table} "
            f"WHERE {' AND '.join(where)} ORDER BY at DESC, seq DESC LIMIT %(limit)s")


def timeline(db: Database, table: str, cart: str, types: list[str],
             before: tuple[dt.datetime, int] | None, limit: int = 50) -> list[dict[str, Any]]:
    params = {"cart": cart, "types": types, "limit": limit,
              "at": before[0] if before else None, "seq": before[1] if before else None}
    return db.query(timeline_sql(table, bool(types), before is not None), params)


def compartments(db: Database, cart: str) -> list[dict[str, Any]]:
    return db.query(
        "SELECT c.compartment, c.oos, c.oos_reason, p.label, p.deposited_at FROM "
        "desk_compartments c LEFT JOIN LATERAL (SELECT label, deposited_at FROM desk_parcels "
        "WHERE cart = c.cart AND compartment = c.compartment AND picked_at IS NULL "
        "ORDER BY deposit_seq DESC LIMIT 1) p ON true WHERE c.cart = %s "
        "ORDER BY c.compartment", (cart,))


def config_history(db: Database, table: str, cart: str) -> list[dict[str, Any]]:
    seen = db.query(f"SELECT id, type, at, data FROM {table} WHERE cart = %s AND type = ANY(%s) "
                    "ORDER BY at DESC LIMIT 20", (cart, ["config.applied", "config.rejected"]))
    pushed = db.query("SELECT at, username, target, detail, outcome, error FROM desk_actions "
                      "WHERE kind = 'push_config' AND target IN (%s, '_all') "
                      "ORDER BY at DESC LIMIT 20", (cart,))
    return [{"source": "cart", **r} for r in seen] + [{"source": "desk", **r} for r in pushed]


def commands(db: Database, table: str, cart: str) -> list[dict[str, Any]]:
    sent = db.query("SELECT at, username, detail, outcome, error, cmd_id, result, result_at "
                    "FROM desk_actions WHERE kind = 'command' AND target = %s "
                    "ORDER BY at DESC LIMIT 20", (cart,))
    ids = {r["cmd_id"] for r in sent}
    done = db.query(f"SELECT at, data FROM {table} WHERE cart = %s AND type = 'command.done' "
                    "ORDER BY at DESC LIMIT 20", (cart,))
    # Commands sent by other tools (cart-fleet command) show up through their result only.
    others = [r for r in done if (r["data"] or {}).get("id") not in ids]
    return sent + [{"at": r["at"], "username": None, "detail": {"name": r["data"].get("name")},
                    "outcome": "done" if r["data"].get("ok") else "failed", "error":
                    r["data"].get("error"), "cmd_id": r["data"].get("id"),
                    "result": r["data"], "result_at": r["at"]} for r in others]


def actions(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    return db.query("SELECT id, at, username, kind, target, detail, outcome, error, cmd_id, "
                    "result FROM desk_actions ORDER BY at DESC, id DESC LIMIT %s", (limit,))
