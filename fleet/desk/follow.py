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

from fleet.desk.db import Database
from fleet.desk.i18n import WAIT_BUCKETS
from fleet.desk.live import refresh_alarm_counts
from fleet.desk.schema import TABLE_NAME, ensure_tx_indexes, tx_table_exists

log = logging.getLogger(__name__)

BATCH = 5000
OVERLAP_S = 10.0
TICK_S = 0.5
ALARM_TYPES = {"locker.forced_open": "forced_open", "locker.door_left_open": "left_open",
               "locker.open_failed": "open_failed", "config.rejected": "config_rejected"}
USAGE_TYPES = ("parcel.deposit", "parcel.pickup", "meal.pickup", "ticket.issue",
               "scan.rejected")
# Usage keys: tickets by counter service, refusals by reason; the rest have one series.
USAGE_KEY = ("CASE t.type WHEN 'ticket.issue' THEN left(COALESCE(t.data->>'service', ''), 32) "
             "WHEN 'scan.rejected' THEN left(COALESCE(t.data->>'reason', ''), 32) ELSE '' END")


def _wait_bucket_sql() -> str:
    arms = " ".join(f"WHEN w < {limit} THEN '{key}'" for key, limit, _ in WAIT_BUCKETS
                    if limit != float("inf"))
    return f"CASE {arms} ELSE '{WAIT_BUCKETS[-1][0]}' END"


class Follower:
    def __init__(self, db: Database, table: str = "cart_transactions") -> None:
        if not TABLE_NAME.match(table):
            raise ValueError(f"bad table name {table!r}")
        self.db = db
        self.table = table
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
        buckets: set[tuple[str, dt.datetime]] = set()
        alarm_carts: set[str] = set()
        comp_carts: set[str] = set()
        with self.db.connection() as conn:
            conn.execute("INSERT INTO desk_carts (cart) SELECT unnest(%s::text[]) "
                         "ON CONFLICT (cart) DO NOTHING", (carts,))
            for r in rows:
                data = r["data"] if isinstance(r["data"], dict) else {}
                kind = ALARM_TYPES.get(r["type"])
                if kind is not None:
                    conn.execute(
                        "INSERT INTO desk_alarms (cart, kind, source, detail, raised_at) VALUES "
                        "(%s, %s, %s, %s, %s) ON CONFLICT (source) DO NOTHING",
                        (r["cart"], kind, f"tx:{r['id']}", json.dumps(_alarm_facts(data)),
                         r["at"]))
                    alarm_carts.add(r["cart"])
                if self._compartments(conn, r, data, buckets):
                    comp_carts.add(r["cart"])
                if r["type"] in USAGE_TYPES:
                    buckets.add((r["cart"], r["at"].replace(minute=0, second=0,
                                                            microsecond=0)))
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
            if buckets:
                self._recount(conn, sorted(buckets))
            if comp_carts:
                conn.execute(
                    "UPDATE desk_carts c SET comp_known = k.known, comp_oos = k.oos, "
                    "comp_in_use = (SELECT count(DISTINCT compartment) FROM desk_parcels p "
                    "WHERE p.cart = c.cart AND p.picked_at IS NULL) FROM (SELECT cart, "
                    "count(*) AS known, count(*) FILTER (WHERE oos) AS oos FROM "
                    "desk_compartments WHERE cart = ANY(%s) GROUP BY cart) k "
                    "WHERE c.cart = k.cart", (sorted(comp_carts),))
            if alarm_carts:
                refresh_alarm_counts(conn, sorted(alarm_carts))
            if cursor is not None:
                conn.execute(
                    "INSERT INTO desk_meta(key, value) VALUES ('follow_cursor', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (json.dumps({"received_at": cursor["received_at"].isoformat(),
                                 "id": cursor["id"]}),))
        self._remember(rows)
        self.rows_seen += len(rows)

    def _compartments(self, conn: Any, r: dict[str, Any], data: dict[str, Any],
                      buckets: set[tuple[str, dt.datetime]]) -> bool:
        comp = data.get("compartment")
        if not isinstance(comp, str) or not comp or len(comp) > 16:
            return False
        cart, seq, kind = r["cart"], r["seq"], r["type"]
        conn.execute("INSERT INTO desk_compartments (cart, compartment) VALUES (%s, %s) "
                     "ON CONFLICT DO NOTHING", (cart, comp))
        if kind == "compartment.out_of_service" and isinstance(data.get("on"), bool):
            conn.execute("UPDATE desk_compartments SET oos = %s, oos_reason = %s, oos_seq = %s "
                         "WHERE cart = %s AND compartment = %s AND oos_seq < %s",
                         (data["on"], str(data.get("reason") or "")[:120], seq, cart, comp, seq))
        elif kind == "locker.open_failed":
            # The cart takes a compartment whose lock did not release out of service.
            conn.execute("UPDATE desk_compartments SET oos = true, oos_reason = %s, "
                         "oos_seq = %s WHERE cart = %s AND compartment = %s AND oos_seq < %s",
                         ("lock did not release", seq, cart, comp, seq))
        label = data.get("label")
        if isinstance(label, str) and label and kind == "parcel.deposit":
            conn.execute("INSERT INTO desk_parcels (deposit_tx, cart, label, compartment, "
                         "deposit_seq, deposited_at) VALUES (%s, %s, %s, %s, %s, %s) "
                         "ON CONFLICT (deposit_tx) DO NOTHING",
                         (r["id"], cart, label[:64], comp, seq, r["at"]))
            # A pickup stored before its deposit (a batch resent late) closes it now.
            orphan = conn.execute("DELETE FROM desk_orphan_pickups WHERE pickup_tx = (SELECT "
                                  "pickup_tx FROM desk_orphan_pickups WHERE cart = %s AND "
                                  "label = %s AND seq > %s ORDER BY seq LIMIT 1) RETURNING *",
                                  (cart, label[:64], seq)).fetchone()
            if orphan is not None:
                self._close_parcel(conn, cart, label[:64], orphan["pickup_tx"], orphan["seq"],
                                   orphan["at"])
                # Its wait counts in the hour of the pickup: count that hour again too.
                buckets.add((cart, orphan["at"].astimezone(dt.UTC).replace(
                    minute=0, second=0, microsecond=0)))
        elif (isinstance(label, str) and label and kind == "parcel.pickup"
              and not self._close_parcel(conn, cart, label[:64], r["id"], seq, r["at"])):
            conn.execute("INSERT INTO desk_orphan_pickups (pickup_tx, cart, label, seq, at) "
                             "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING "
                             , (r["id"], cart, label[:64], seq, r["at"]))
        return True

    @staticmethod
    def _close_parcel(conn: Any, cart: str, label: str, pickup_tx: str, seq: int,
                      at: dt.datetime) -> bool:
        done = conn.execute("SELECT 1 FROM desk_parcels WHERE pickup_tx = %s",
                            (pickup_tx,)).fetchone()
        if done is not None:
            return True
        cur = conn.execute(
            "UPDATE desk_parcels SET pickup_tx = %s, picked_at = %s WHERE deposit_tx = (SELECT "
            "deposit_tx FROM desk_parcels WHERE cart = %s AND label = %s AND picked_at IS NULL "
            "AND deposit_seq < %s ORDER BY deposit_seq DESC LIMIT 1)",
            (pickup_tx, at, cart, label, seq))
        return bool(cur.rowcount)

    def _recount(self, conn: Any, buckets: list[tuple[str, dt.datetime]]) -> None:
        """Count the buckets again from the rows themselves: exact, whatever was seen twice."""
        carts = [b[0] for b in buckets]
        hours = [b[1] for b in buckets]
        conn.execute(
            f"INSERT INTO desk_usage (hour, cart, metric, key, n) "
            f"SELECT d.hour, d.cart, t.type, {USAGE_KEY}, count(*) "
            f"FROM unnest(%s::text[], %s::timestamptz[]) AS d(cart, hour) "
            f"JOIN {self.table} t ON t.cart = d.cart AND t.at >= d.hour "
            f"AND t.at < d.hour + interval '1 hour' AND t.type = ANY(%s) "
            f"GROUP BY 1, 2, 3, 4 "
            f"ON CONFLICT (hour, cart, metric, key) DO UPDATE SET n = excluded.n",
            (carts, hours, list(USAGE_TYPES)))
        conn.execute(
            f"INSERT INTO desk_usage (hour, cart, metric, key, n, total) "
            f"SELECT hour, cart, 'parcel.wait', {_wait_bucket_sql()}, count(*), sum(w) FROM ("
            f"SELECT d.hour, d.cart, extract(epoch FROM p.picked_at - p.deposited_at) AS w "
            f"FROM unnest(%s::text[], %s::timestamptz[]) AS d(cart, hour) "
            f"JOIN desk_parcels p ON p.cart = d.cart AND p.picked_at >= d.hour "
            f"AND p.picked_at < d.hour + interval '1 hour') x GROUP BY 1, 2, 3, 4 "
            f"ON CONFLICT (hour, cart, metric, key) DO UPDATE SET n = excluded.n, "
            f"total = excluded.total", (carts, hours))

    def run(self, stop: threading.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                busy = self.tick() > 0
                if failing:
                    log.info("desk: reading transactions again")
                failing = False
            except Exception as exc:  # the loop's top: log once, retry
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
