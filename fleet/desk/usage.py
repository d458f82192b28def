"""Usage counts: kept by hour from the rows themselves, rolled up by local day, local month,
and local month and hour of day, and read back for the usage page and its CSV.

desk_usage (UTC hour, cart, metric, key) is recounted from the transactions for every hour
that received rows, so it is exact whatever was seen twice. The change of each recount (new
count minus old) is added, in the same statement, to the rollups and to the rows of the
whole fleet (cart `*`, which no cart id can be), so they never disagree with the hours. A
year of the fleet is then 365 day rows per series, and a cart's year 12 month rows (plus the
days of the months the range only partly covers). The rollups are in the desk's time zone;
started with another one, the desk rebuilds them from the hourly counts.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

from fleet.desk.db import Database
from fleet.desk.i18n import WAIT_BUCKETS

USAGE_TYPES = ("parcel.deposit", "parcel.pickup", "meal.pickup", "ticket.issue",
               "scan.rejected")
HOD_METRICS = ["parcel.deposit", "parcel.pickup", "meal.pickup", "ticket.issue"]
# Tickets by counter service, refusals by reason; the others have one series.
USAGE_KEY = ("CASE t.type WHEN 'ticket.issue' THEN left(COALESCE(t.data->>'service', ''), 32) "
             "WHEN 'scan.rejected' THEN left(COALESCE(t.data->>'reason', ''), 32) ELSE '' END")


def _wait_bucket() -> str:
    arms = " ".join(f"WHEN w < {limit} THEN '{key}'" for key, limit, _ in WAIT_BUCKETS
                    if limit != float("inf"))
    return f"CASE {arms} ELSE '{WAIT_BUCKETS[-1][0]}' END"


def recount_sql(table: str) -> str:
    return f"""
WITH d AS (SELECT * FROM unnest(%(carts)s::text[], %(hours)s::timestamptz[]) AS d(cart, hour)),
fresh AS (
    -- LATERAL with OFFSET 0 (which keeps the planner from flattening it): one index range
    -- scan per (cart, hour). Flattened, the planner joined on the cart alone and compared
    -- every row of the cart with every hour: 2.4 million comparisons for 800 hours.
    SELECT d.hour, d.cart, t.type AS metric, {USAGE_KEY} AS key, count(*) AS n,
           0::float8 AS total
    FROM d CROSS JOIN LATERAL (SELECT type, data FROM {table} t WHERE t.cart = d.cart
         AND t.at >= d.hour AND t.at < d.hour + interval '1 hour' OFFSET 0) t
    WHERE t.type = ANY(%(types)s)
    GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT hour, cart, 'parcel.wait', {_wait_bucket()}, count(*), sum(w) FROM (
        SELECT d.hour, d.cart, extract(epoch FROM p.picked_at - p.deposited_at)::float8 AS w
        FROM d CROSS JOIN LATERAL (SELECT picked_at, deposited_at FROM desk_parcels p
             WHERE p.cart = d.cart AND p.picked_at >= d.hour
             AND p.picked_at < d.hour + interval '1 hour' OFFSET 0) p) x
    GROUP BY 1, 2, 3, 4),
old AS (SELECT u.* FROM desk_usage u JOIN fresh f USING (hour, cart, metric, key)),
up AS (INSERT INTO desk_usage (hour, cart, metric, key, n, total) SELECT * FROM fresh
       ON CONFLICT (cart, hour, metric, key) DO UPDATE SET n = excluded.n,
       total = excluded.total RETURNING hour, cart, metric, key, n, total),
changed AS (SELECT up.hour, up.cart, up.metric, up.key, up.n - COALESCE(old.n, 0) AS dn,
                   up.total - COALESCE(old.total, 0) AS dtotal
            FROM up LEFT JOIN old USING (hour, cart, metric, key)
            WHERE up.n <> COALESCE(old.n, 0) OR up.total <> COALESCE(old.total, 0)),
fleet AS (SELECT hour, '*' AS cart, metric, key, sum(dn) AS dn, sum(dtotal) AS dtotal
          FROM changed GROUP BY hour, metric, key),
delta AS (SELECT * FROM changed UNION ALL SELECT * FROM fleet),
fleet_hour AS (INSERT INTO desk_usage (hour, cart, metric, key, n, total)
        SELECT * FROM fleet
        ON CONFLICT (cart, hour, metric, key) DO UPDATE SET n = desk_usage.n + excluded.n,
        total = desk_usage.total + excluded.total),
day AS (INSERT INTO desk_usage_day (day, cart, metric, key, n, total)
        SELECT (hour AT TIME ZONE %(tz)s)::date, cart, metric, key, sum(dn), sum(dtotal)
        FROM delta GROUP BY 1, 2, 3, 4
        ON CONFLICT (cart, day, metric, key) DO UPDATE SET n = desk_usage_day.n + excluded.n,
        total = desk_usage_day.total + excluded.total),
month AS (INSERT INTO desk_usage_month (month, cart, metric, key, n, total)
        SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, cart, metric, key, sum(dn),
               sum(dtotal)
        FROM changed GROUP BY 1, 2, 3, 4
        ON CONFLICT (cart, month, metric, key) DO UPDATE SET
        n = desk_usage_month.n + excluded.n, total = desk_usage_month.total + excluded.total)
INSERT INTO desk_usage_month_hod (month, cart, metric, hod, n)
SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, cart, metric,
       extract(hour FROM hour AT TIME ZONE %(tz)s)::smallint, sum(dn)
FROM delta WHERE dn <> 0 AND metric = ANY(%(hod)s) GROUP BY 1, 2, 3, 4
ON CONFLICT (cart, month, metric, hod) DO UPDATE SET n = desk_usage_month_hod.n + excluded.n
"""


def recount(conn: Any, table: str, tz: ZoneInfo,
            buckets: list[tuple[str, dt.datetime]]) -> None:
    conn.execute(recount_sql(table), {"carts": [b[0] for b in buckets],
                                      "hours": [b[1] for b in buckets],
                                      "types": list(USAGE_TYPES), "tz": tz.key,
                                      "hod": HOD_METRICS})


def ensure_zone(db: Database, tz: ZoneInfo) -> bool:
    """Rebuild the rollups when the desk now runs in another time zone (or never did)."""
    with db.connection() as conn:
        row = conn.execute("SELECT value FROM desk_meta WHERE key = 'usage_tz' FOR UPDATE"
                           ).fetchone()
        if row is not None and row["value"] == tz.key:
            return False
        p = {"tz": tz.key, "hod": HOD_METRICS}
        for table in ("desk_usage_day", "desk_usage_month", "desk_usage_month_hod"):
            conn.execute(f"DELETE FROM {table}")
        conn.execute("DELETE FROM desk_usage WHERE cart = '*'")
        conn.execute("INSERT INTO desk_usage (hour, cart, metric, key, n, total) SELECT hour, "
                     "'*', metric, key, sum(n), sum(total) FROM desk_usage GROUP BY 1, 3, 4")
        conn.execute("INSERT INTO desk_usage_day (day, cart, metric, key, n, total) "
                     "SELECT (hour AT TIME ZONE %(tz)s)::date, cart, metric, key, sum(n), "
                     "sum(total) FROM desk_usage GROUP BY 1, 2, 3, 4", p)
        conn.execute("INSERT INTO desk_usage_month (month, cart, metric, key, n, total) "
                     "SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, cart, metric, "
                     "key, sum(n), sum(total) FROM desk_usage WHERE cart <> '*' "
                     "GROUP BY 1, 2, 3, 4", p)
        conn.execute("INSERT INTO desk_usage_month_hod (month, cart, metric, hod, n) "
                     "SELECT date_trunc('month', hour AT TIME ZONE %(tz)s)::date, cart, metric, "
                     "extract(hour FROM hour AT TIME ZONE %(tz)s)::smallint, sum(n) "
                     "FROM desk_usage WHERE metric = ANY(%(hod)s) GROUP BY 1, 2, 3, 4", p)
        conn.execute("INSERT INTO desk_meta (key, value) VALUES ('usage_tz', %s) ON CONFLICT "
                     "(key) DO UPDATE SET value = excluded.value", (json.dumps(tz.key),))
    return True


# --- reading --------------------------------------------------------------------------------

# `*` holds the whole fleet: one row per series instead of one per cart. The cart is passed
# as a value (not a COALESCE in SQL) so that the plan is a range scan of one cart's rows.
WHO = "cart = %(who)s"


def _carts(one: bool) -> str:
    return "cart = %(cart)s" if one else "cart <> '*'"


def series_sql(by: str) -> str:
    """Per period: local day, local week (its Monday) for long ranges, or local hour for
    short ones."""
    if by == "week":
        return ("SELECT to_char(date_trunc('week', day), 'YYYY-MM-DD') AS period, metric, key, "
                "sum(n)::bigint AS n, sum(total) AS total FROM desk_usage_day "
                f"WHERE {WHO} AND day >= %(start)s AND day <= %(end)s GROUP BY 1, 2, 3")
    if by == "hour":
        return ("SELECT to_char(hour AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:00') AS period, "
                "metric, key, n, total FROM desk_usage "
                f"WHERE {WHO} AND hour >= %(start_at)s AND hour < %(end_at)s")
    return ("SELECT to_char(day, 'YYYY-MM-DD') AS period, metric, key, n, total "
            f"FROM desk_usage_day WHERE {WHO} AND day >= %(start)s AND day <= %(end)s")


def per_cart_sql(one: bool) -> str:
    """Whole local months from the month rollup, the days before and after them by day."""
    return f"""
SELECT cart, metric, key, sum(n)::bigint AS n, sum(total) AS total FROM (
    SELECT cart, metric, key, n, total FROM desk_usage_month
    WHERE {_carts(one)} AND month >= %(full_start)s AND month < %(full_end)s
    UNION ALL
    SELECT cart, metric, key, n, total FROM desk_usage_day
    WHERE {_carts(one)} AND ((day >= %(start)s AND day < %(full_start)s)
                             OR (day >= %(full_end)s AND day <= %(end)s))) x
GROUP BY 1, 2, 3
"""


HOD_SQL = f"""
SELECT to_char(hod, 'FM00') AS period, metric, sum(n)::bigint AS n FROM (
    SELECT hod, metric, n FROM desk_usage_month_hod
    WHERE {WHO} AND month >= %(full_start)s AND month < %(full_end)s
    UNION ALL
    SELECT extract(hour FROM hour AT TIME ZONE %(tz)s)::int, metric, n FROM desk_usage
    WHERE {WHO} AND metric = ANY(%(hod)s)
      AND ((hour >= %(start_at)s AND hour < %(full_start_at)s)
           OR (hour >= %(full_end_at)s AND hour < %(end_at)s))) x
GROUP BY 1, 2
"""


def csv_sql(per_cart: bool, one: bool, by: str = "day") -> str:
    """The rows of the CSV: per period (as the charts), for the fleet or per cart."""
    if by == "hour":
        period, table, when = ("to_char(hour AT TIME ZONE %(tz)s, 'YYYY-MM-DD HH24:00')",
                               "desk_usage", "hour >= %(start_at)s AND hour < %(end_at)s")
    else:
        period = ("to_char(date_trunc('week', day), 'YYYY-MM-DD')" if by == "week"
                  else "to_char(day, 'YYYY-MM-DD')")
        table, when = "desk_usage_day", "day >= %(start)s AND day <= %(end)s"
    who = _carts(one) if per_cart else WHO
    cart = "cart" if per_cart else "''"
    return (f"SELECT {period} AS period, {cart} AS cart, metric, key, sum(n)::bigint AS n, "
            f"sum(total) AS total FROM {table} WHERE {who} AND {when} "
            "GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4")


def params(start: dt.date, end: dt.date, tz: ZoneInfo, cart: str | None) -> dict[str, Any]:
    """The range's bounds, and the whole local months inside it (read from the month rollup;
    the days before and after them from the hourly counts)."""
    def at(day: dt.date) -> dt.datetime:
        return dt.datetime.combine(day, dt.time(), tz)

    after = end + dt.timedelta(days=1)
    full_start = start if start.day == 1 else (start.replace(day=1) + dt.timedelta(days=32)
                                               ).replace(day=1)
    full_end = after.replace(day=1)
    if full_end <= full_start:  # no whole month inside: everything from the hourly counts
        full_start = full_end = after
    return {"start": start, "end": end, "start_at": at(start), "end_at": at(after),
            "full_start": full_start, "full_end": full_end, "full_start_at": at(full_start),
            "full_end_at": at(full_end), "tz": tz.key, "cart": cart, "who": cart or "*",
            "hod": HOD_METRICS}


def read(db: Database, start: dt.date, end: dt.date, tz: ZoneInfo, cart: str | None, by: str
         ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(per period, per cart over the range, per hour of day)."""
    p = params(start, end, tz, cart)
    series = db.query(series_sql(by), p)
    per_cart = db.query(per_cart_sql(cart is not None), p)
    hod = [{**r, "key": ""} for r in db.query(HOD_SQL, p)]
    return series, per_cart, hod


def read_csv(db: Database, start: dt.date, end: dt.date, tz: ZoneInfo, cart: str | None,
             per_cart: bool, by: str = "day") -> list[dict[str, Any]]:
    return db.query(csv_sql(per_cart, cart is not None, by), params(start, end, tz, cart))
