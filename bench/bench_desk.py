"""The desk's page loads with 10,000 carts and a year of transactions for 10 carts.

Rows are generated with COPY into the ingest's own table (created by its storage class) and
into desk_carts; the desk then derives its tables from the rows as it would in service (the
catch-up rate is a figure of its own). Each page is fetched over HTTP through waitress with a
logged-in session; its baseline is the raw SQL of the same page (the same statements, the
same parameters, through psycopg) timed in the same run, so the ratio is what rendering, the
session check and HTTP add. The plan of the slowest page's slowest statement is printed
(EXPLAIN ANALYZE, BUFFERS).
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from agent.ids import new_ulid
from fleet.client import BrokerOptions
from fleet.desk import queries, usage
from fleet.desk.app import Desk, DeskSettings
from fleet.desk.auth import add_user
from fleet.storage_pg import PostgresStorage
from tests.postgres_cluster import PostgresCluster

TZ = ZoneInfo("Asia/Shanghai")
SERVICES = ["gov", "property", "bills"]
REASONS = ["expired", "already_used", "bad_signature", "not_a_label", "unknown_parcel"]


def _tx_rows(carts: int, days: int, per_day: int, end: dt.datetime, rnd: random.Random
             ) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for c in range(carts):
        cart = f"bc-{c + 1:02d}"
        seq = 0
        open_parcels: list[tuple[str, str]] = []
        start = end - dt.timedelta(days=days)
        for day in range(days):
            base = start + dt.timedelta(days=day)
            for minute in sorted(rnd.randrange(6 * 60, 22 * 60) for _ in range(per_day)):
                at = base + dt.timedelta(minutes=minute, seconds=rnd.randrange(60))
                roll = rnd.random()
                if roll < 0.40:
                    type_, data = "ticket.issue", {"service": rnd.choice(SERVICES),
                                                   "number": minute}
                elif roll < 0.60:
                    type_, data = "meal.pickup", {"order": f"M{minute}", "items": ["米饭"]}
                elif roll < 0.75 or not open_parcels:
                    label = f"SF{rnd.randrange(10**10):010d}"
                    comp = f"A{rnd.randrange(1, 13):02d}"
                    open_parcels.append((label, comp))
                    type_, data = "parcel.deposit", {"label": label, "compartment": comp}
                elif roll < 0.90:
                    label, comp = open_parcels.pop(rnd.randrange(len(open_parcels)))
                    type_, data = "parcel.pickup", {"label": label, "compartment": comp}
                elif roll < 0.98:
                    type_, data = "scan.rejected", {"reason": rnd.choice(REASONS)}
                else:
                    type_, data = "locker.door_left_open", {"compartment": "A01"}
                seq += 1
                received = at + dt.timedelta(seconds=rnd.randrange(1, 30))
                rows.append((new_ulid(), cart, seq, type_, at, json.dumps(data), received))
    rows.sort(key=lambda r: r[6])
    return rows


def _cart_rows(n: int, rnd: random.Random, now: dt.datetime) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(n):
        online = rnd.random() > 0.05
        telemetry = {"at": now.isoformat(), "queue": {"pending": rnd.randrange(0, 40),
                                                      "oldest_pending_s": rnd.random() * 90},
                     "devices": {d: {"ok": rnd.random() > 0.01, "error": None}
                                 for d in ("scanner", "printer", "locker")},
                     "uptime_s": 1000.0, "disk_free_mb": 3000}
        reasons = [] if online else [{"code": "offline", "since": now.timestamp() - 3600}]
        rows.append((f"bc-{i + 1:05d}" if i >= 10 else f"bc-{i + 1:02d}",
                     "online" if online else "offline", now - dt.timedelta(hours=3), now,
                     json.dumps({"state": "online", "agent_version": "0.1.0"}),
                     json.dumps(telemetry), now, json.dumps({"version": 3, "status": "applied",
                                                             "fleet_version": 2}),
                     0 if online else 60, json.dumps(reasons)))
    return rows


class Client:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie = ""

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes,
                                                                                   Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            head = {"Cookie": self.cookie} if self.cookie else {}
            if body is not None:
                head["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=head)
            resp = conn.getresponse()
            return resp.status, resp.read(), resp.headers
        finally:
            conn.close()


def _time(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run(quick: bool = False) -> list[dict[str, Any]]:
    rnd = random.Random(2026)
    carts, days, per_day = (1000, 30, 100) if quick else (10_000, 365, 300)
    rounds = 5 if quick else 20
    cluster = PostgresCluster(durable=True).start()
    desk: Desk | None = None
    try:
        url = cluster.create_database("desk_bench")
        PostgresStorage(url).close()  # the ingest's table, made by the ingest's own code
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        tx = _tx_rows(10, days, per_day, now, rnd)
        with psycopg.connect(url) as conn, conn.cursor().copy(
                "COPY cart_transactions (id, cart, seq, type, at, data, received_at) "
                "FROM STDIN") as copy:
            for row in tx:
                copy.write_row(row)
        desk = Desk(DeskSettings(db_url=url, port=0, broker=BrokerOptions(port=1))).start()
        with psycopg.connect(url) as conn:
            with conn.cursor().copy("COPY desk_carts (cart, state, state_since, last_seen, "
                                    "status, telemetry, telemetry_at, reported, attention, "
                                    "reasons) FROM STDIN") as copy:
                for row in _cart_rows(carts, rnd, now):
                    copy.write_row(row)
            conn.execute("INSERT INTO desk_carts (cart) VALUES ('bc-01') ON CONFLICT DO NOTHING")
        started = time.perf_counter()
        while True:  # the follower catches up with the year of rows
            with psycopg.connect(url) as conn:
                cursor = conn.execute("SELECT value->>'id' FROM desk_meta WHERE key = "
                                      "'follow_cursor'").fetchone()
            if cursor and cursor[0] == tx[-1][0] and desk.follower.caught_up.is_set():
                break
            time.sleep(0.2)
        catch_up_s = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            raw_started = time.perf_counter()
            conn.execute("SELECT id, cart, seq, type, at, data, received_at FROM "
                         "cart_transactions ORDER BY received_at, id").fetchall()
            raw_s = time.perf_counter() - raw_started
            conn.execute("ANALYZE")
        add_user(desk.db, "bench", "bench password", "viewer")
        assert desk.port is not None
        client = Client(desk.port)
        status, _body, headers = client.request(
            "POST", "/login", b"username=bench&password=bench+password&next=%2Ffleet")
        assert status == 303, status
        client.cookie = headers["Set-Cookie"].split(";", 1)[0]
        return [_catch_up_row(len(tx), catch_up_s, raw_s),
                *_pages(client, url, now, rounds, carts, len(tx))]
    finally:
        if desk is not None:
            desk.stop()
        cluster.cleanup()


def _catch_up_row(rows: int, seconds: float, raw_s: float) -> dict[str, Any]:
    return {"name": f"desk follower catch-up ({rows:,} rows)", "value": round(rows / seconds),
            "unit": "rows/s", "baseline": "raw SELECT of the same rows in received_at order",
            "baseline_value": round(rows / raw_s), "ratio": round(raw_s / seconds, 3)}


def _pages(client: Client, url: str, now: dt.datetime, rounds: int, carts: int, txs: int
           ) -> list[dict[str, Any]]:
    today = now.astimezone(TZ).date()
    year = today - dt.timedelta(days=364)
    month = today - dt.timedelta(days=29)
    r30, r365 = queries.Range(month, today, TZ), queries.Range(year, today, TZ)

    def usage_sql(rng: queries.Range, cart: str | None, by: str = "day"
                  ) -> list[tuple[str, dict[str, Any]]]:
        params = usage.params(rng.start, rng.end, TZ, cart)
        return [(usage.series_sql(by), params), (usage.per_cart_sql(cart is not None), params),
                (usage.HOD_SQL, params)]

    fleet_params = {"q": "%", "limit": queries.PAGE_SIZE + 1, "offset": 0}
    pages: dict[str, tuple[str, list[tuple[str, Any]]]] = {
        "fleet view": ("/fleet", [(queries.fleet_sql("all", False), fleet_params),
                                  (queries.SUMMARY_SQL, None)]),
        "fleet view, attention": ("/fleet?filter=attention", [
            (queries.fleet_sql("attention", False), fleet_params), (queries.SUMMARY_SQL, None)]),
        "fleet view, search": ("/fleet?q=bc-099", [
            (queries.fleet_sql("all", True), {**fleet_params, "q": "bc-099%"}),
            (queries.SUMMARY_SQL, None)]),
        "alarms": ("/alarms", [(queries.alarms_sql("open", False), {"cart": None,
                                                                     "limit": 200})]),
        "usage, 30 days": (f"/usage?from={month}&to={today}", usage_sql(r30, None)),
        "usage, 365 days (by week)": (f"/usage?from={year}&to={today}",
                                      usage_sql(r365, None, "week")),
        "usage, 365 days by day": (f"/usage?from={year}&to={today}&by=day",
                                   usage_sql(r365, None)),
        "usage CSV export per cart, 365 days by day": (
            f"/usage.csv?from={year}&to={today}&per=cart&by=day",
                                         [(usage.csv_sql(True, False, "day"),
                                           usage.params(year, today, TZ, None))]),
        "one cart (a year of rows)": ("/carts/bc-01", [
            (queries.timeline_sql("cart_transactions", False, False),
             {"cart": "bc-01", "limit": 50}),
            ("SELECT * FROM desk_compartments WHERE cart = %s", ("bc-01",)),
            (queries.alarms_sql("all", True), {"cart": "bc-01", "limit": 20}),
            ("SELECT id, type, at, data FROM cart_transactions WHERE cart = %s AND type = "
             "ANY(%s) ORDER BY at DESC LIMIT 20", ("bc-01", ["config.applied",
                                                             "config.rejected"])),
            ("SELECT at, data FROM cart_transactions WHERE cart = %s AND type = "
             "'command.done' ORDER BY at DESC LIMIT 20", ("bc-01",))]),
        "one cart, timeline of one type": ("/carts/bc-01?type=locker.door_left_open", [
            (queries.timeline_sql("cart_transactions", True, False),
             {"cart": "bc-01", "types": ["locker.door_left_open"], "limit": 50})]),
    }
    rows: list[dict[str, Any]] = []
    # The statement to show the plan of: the one with the highest median time on the page
    # with the highest median time (one spike on a shared machine must not pick it).
    slowest: tuple[float, str, str, Any] = (0.0, "", "", None)
    slowest_page = 0.0
    with psycopg.connect(url, options="-c TimeZone=UTC") as conn:
        for name, (path, statements) in pages.items():
            status, body, _ = client.request("GET", path)
            assert status == 200, (path, status, body[:300])
            page_ms = _time(lambda p=path: client.request("GET", p), rounds)
            sql_ms: list[float] = []
            each: list[list[float]] = [[] for _ in statements]
            for _ in range(rounds):
                total = 0.0
                for i, (sql, params) in enumerate(statements):
                    t = time.perf_counter()
                    conn.execute(sql, params).fetchall()
                    spent = (time.perf_counter() - t) * 1000
                    each[i].append(spent)
                    total += spent
                sql_ms.append(total)
            page, raw = statistics.median(page_ms), statistics.median(sql_ms)
            if page > slowest_page and "export" not in name:
                slowest_page = page
                i = max(range(len(statements)), key=lambda k: statistics.median(each[k]))
                slowest = (statistics.median(each[i]), name, *statements[i])
            rows.append({"name": f"desk page: {name}", "p50_ms": round(page, 1),
                         "p99_ms": round(_p(page_ms, 0.99), 1),
                         "baseline": "raw SQL of the page", "baseline_ms": round(raw, 2),
                         "ratio": round(page / raw, 1) if raw else None,
                         "target": "< 200 ms" if "export" not in name else "a download",
                         "carts": carts, "transactions": txs,
                         "bytes": len(body)})
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + slowest[2], slowest[3]).fetchall()
    text = "\n".join(r[0] for r in plan)
    print(f"\nslowest page ({slowest[1]}), its slowest statement ({slowest[0]:.1f} ms median):"
          f"\n{slowest[2]}\n{text}\n", file=sys.stderr)
    rows.append({"name": f"desk slowest page's slowest statement ({slowest[1]})",
                 "value": round(slowest[0], 1), "unit": "ms (median)", "plan": text,
                 "sql": slowest[2]})
    return rows


if __name__ == "__main__":
    tmp = Path(tempfile.gettempdir())
    for result in run(quick="--quick" in sys.argv):
        print({k: v for k, v in result.items() if k != "plan"})
