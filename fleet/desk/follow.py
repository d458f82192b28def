"""What the desk derives from the ingest's transactions, kept up to date as rows arrive.

New rows are read in (received_at, id) order from a cursor kept in desk_meta. A row can commit
a little after a row with a later received_at (the ingest stamps before it commits), so the
last OVERLAP_S seconds behind the cursor are looked at again for ids not yet seen. Every
effect is idempotent (alarms keyed by transaction id, parcels by their deposit and pickup
ids, out-of-service state by seq, usage buckets recounted from the rows), so seeing a row
twice, after a restart for instance, changes nothing.

Derived here: alarms from transactions (doors forced or left open, locks that did not
release, rejected configs), parcels and how long they waited, compartments known / in use /
out of service, a cart out of service, the results of commands the desk sent, and the hourly
usage counts the usage page and its CSV read (desk_usage).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import OrderedDict
from typing import Any
from zoneinfo import ZoneInfo

from fleet.desk import parcels, usage
from fleet.desk.db import Database
from fleet.desk.live import refresh_alarm_counts
from fleet.desk.schema import TABLE_NAME, ensure_tx_indexes, tx_table_exists
from fleet.desk.usage import USAGE_TYPES

log = logging.getLogger(__name__)

BATCH = 20000
OVERLAP_S = 10.0
TICK_S = 0.5
ALARM_TYPES = {"locker.forced_open": "forced_open", "locker.door_left_open": "left_open",
               "locker.open_failed": "open_failed", "config.rejected": "config_rejected"}


def _hour(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


class Follower:
    def __init__(self, db: Database, table: str = "cart_transactions",
                 tz: ZoneInfo | None = None) -> None:
        if not TABLE_NAME.match(table):
            raise ValueError(f"bad table name {table!r}")
        self.db = db
        self.table = table
        self.tz = tz or ZoneInfo("Asia/Shanghai")
        self.ready = False          # the table exists and the desk's indexes are built
        self.caught_up = threading.Event()
        self._recent: OrderedDict[str, float] = OrderedDict()  # id -> received_at (epoch)
        self.rows_seen = 0

    # --- the cursor -------------------------------------------------------------------

    def _cursor(self) -> tuple[dt.datetime, str]:
        row = self.db.one("SELECT value FROM desk_meta WHERE key = 'follow_cursor'")
        if row is None:
            return dt.datetime(1970, 1, 1, tzinfo=dt.UTC), ""
        value = row["value"]
        return dt.datetime.fromisoformat(value["received_at"]), str(value["id"])

    def prepare(self) -> bool:
        if not self.ready and tx_table_exists(self.db, self.table):
            ensure_tx_indexes(self.db, self.table)
            if usage.ensure_zone(self.db, self.tz):
                log.info("desk: usage by day and hour counted in %s", self.tz.key)
            self.ready = True
        return self.ready

    # --- one round --------------------------------------------------------------------

    def tick(self) -> int:
        """Process what arrived since the last round; returns the rows handled."""
        if not self.prepare():
            return 0
        handled = 0
        while True:
            ra, last_id = self._cursor()
            rows = self.db.query(
                f"SELECT id, cart, seq, type, at, data, received_at FROM {self.table} "
                "WHERE (received_at, id) > (%s, %s) ORDER BY received_at, id LIMIT %s",
                (ra, last_id, BATCH))
            if not rows:
                break
            self._apply(rows, cursor=rows[-1])
            handled += len(rows)
            if len(rows) < BATCH:
                break
        handled += self._late_rows()
        if handled == 0:
            self.caught_up.set()
        return handled

    def _late_rows(self) -> int:
        """Rows committed after rows stamped later than them: within OVERLAP_S of the cursor."""
        ra, _ = self._cursor()
        if ra.year == 1970:
            return 0
        ids = self.db.query(f"SELECT id, received_at FROM {self.table} WHERE received_at "
                            "BETWEEN %s AND %s", (ra - dt.timedelta(seconds=OVERLAP_S), ra))
        missing = [r["id"] for r in ids if r["id"] not in self._recent]
        if not missing:
            return 0
        rows = self.db.query(f"SELECT id, cart, seq, type, at, data, received_at FROM "
                             f"{self.table} WHERE id = ANY(%s)", (missing,))
        self._apply(rows, cursor=None)
        return len(rows)

    def _remember(self, rows: list[dict[str, Any]]) -> None:
        for r in rows:
            self._recent[r["id"]] = r["received_at"].timestamp()
        newest = max(self._recent.values(), default=0.0)
        while self._recent and next(iter(self._recent.values())) < newest - 2 * OVERLAP_S:
            self._recent.popitem(last=False)
        while len(self._recent) > 200_000:  # a burst bigger than the window: keep it bounded
            self._recent.popitem(last=False)

    def _apply(self, rows: list[dict[str, Any]], cursor: dict[str, Any] | None) -> None:
        rows = sorted(rows, key=lambda r: (r["cart"], r["seq"]))
        carts = sorted({r["cart"] for r in rows})
        alarms = []
        buckets: set[tuple[str, dt.datetime]] = set()
        with self.db.connection() as conn:
            conn.execute("INSERT INTO desk_carts (cart) SELECT unnest(%s::text[]) "
                         "ON CONFLICT (cart) DO NOTHING", (carts,))
            for r in rows:
                data = r["data"] if isinstance(r["data"], dict) else {}
                kind = ALARM_TYPES.get(r["type"])
                if kind is not None:
                    alarms.append((r["cart"], kind, f"tx:{r['id']}",
                                   json.dumps(_alarm_facts(data), ensure_ascii=False), r["at"]))
                if r["type"] in USAGE_TYPES:
                    buckets.add((r["cart"], _hour(r["at"])))
                if r["type"] == "command.done" and isinstance(data.get("id"), str):
                    conn.execute(
                        "UPDATE desk_actions SET result = %s, result_at = %s, outcome = CASE "
                        "WHEN %s THEN 'done' ELSE 'failed' END WHERE cmd_id = %s "
                        "AND result IS NULL",
                        (json.dumps({k: data.get(k) for k in ("id", "ok", "result", "error")},
                                    ensure_ascii=False), r["at"], data.get("ok") is True,
                         data["id"]))
                if r["type"] == "cart.out_of_service" and isinstance(data.get("on"), bool):
                    conn.execute("UPDATE desk_carts SET cart_oos = %s, cart_oos_seq = %s "
                                 "WHERE cart = %s AND cart_oos_seq < %s",
                                 (data["on"], r["seq"], r["cart"], r["seq"]))
            if alarms:
                conn.execute("INSERT INTO desk_alarms (cart, kind, source, detail, raised_at) "
                             "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], "
                             "%s::jsonb[], %s::timestamptz[]) ON CONFLICT (source) DO NOTHING",
                             [list(c) for c in zip(*alarms, strict=True)])
                refresh_alarm_counts(conn, sorted({a[0] for a in alarms}))
            comp_carts, late = parcels.apply(conn, rows)
            buckets |= {(cart, _hour(at)) for cart, at in late}
            if buckets:
                usage.recount(conn, self.table, self.tz, sorted(buckets))
            if comp_carts:
                parcels.refresh_summary(conn, sorted(comp_carts))
            if cursor is not None:
                conn.execute(
                    "INSERT INTO desk_meta(key, value) VALUES ('follow_cursor', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps({"received_at": cursor["received_at"].isoformat(),
                                 "id": cursor["id"]}),))
        self._remember(rows)
        self.rows_seen += len(rows)

    def run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                busy = self.tick() > 0
                if failing:
                    log.info("desk: reading transactions again")
                failing = False
            except Exception as exc:  # noqa: BLE001 - the loop's top: log once, retry
                if not failing:
                    log.error("desk: reading transactions failed: %s", exc)
                failing, busy = True, False
            if not busy:
                stop.wait(TICK_S if not failing else 5.0)


def _alarm_facts(data: dict[str, Any]) -> dict[str, Any]:
    names = ("compartment", "parcel", "error", "purpose", "scope", "version", "errors")
    keep: dict[str, Any] = {k: data[k] for k in names if k in data}
    if len(json.dumps(keep, ensure_ascii=False)) > 4000:
        return {"note": "details too long: see the transaction"}
    return keep
