"""The carts' live topics folded into `desk_carts`, and the alarms that last while a
condition does (offline too long, printer out of paper, clock).

Messages arrive on paho's thread and only update memory (`on_message` must be quick: at
10,000 carts the retained statuses come in one burst). `flush`, on the desk's own thread,
writes the carts that changed in one statement every half second, so a cart that drops off is
on the page within about a second of its last will.

When a cart went offline: a last will is prepared when the cart connects, so its `at` is the
connect time, not the moment of the loss. A state change heard live is dated by the desk's
clock when it arrives; only a retained status (heard when the desk starts) is dated by its
own `since`/`at`, and a state the desk already knew keeps its date.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.config import CART_ID_PATTERN
from agent.contract import FLEET_SCOPE
from agent.store.transactions import parse_rfc3339
from fleet.desk.attention import CartLive, assess, version_of
from fleet.desk.db import Database
from fleet.operations import decode_control
from fleet.status import topic_kind

log = logging.getLogger(__name__)

MAX_PAYLOAD = 64 * 1024
FLUSH_S = 0.5
REASSESS_S = 30.0
_CART = re.compile(CART_ID_PATTERN)

UPSERT = """
INSERT INTO desk_carts (cart, state, state_since, last_seen, status, telemetry, telemetry_at,
                        reported, desired, clock_offset_s, attention, reasons, updated_at)
SELECT u.cart, u.state, u.since, u.seen, u.status::jsonb, u.tel::jsonb, u.tel_at, u.rep::jsonb,
       u.des::jsonb, u.off, u.att, u.rea::jsonb, now()
FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[],
            %s::text[], %s::timestamptz[], %s::text[], %s::text[], %s::float8[], %s::int[],
            %s::text[])
     AS u(cart, state, since, seen, status, tel, tel_at, rep, des, off, att, rea)
ON CONFLICT (cart) DO UPDATE SET
    state = excluded.state, state_since = excluded.state_since, last_seen = excluded.last_seen,
    status = excluded.status, telemetry = excluded.telemetry,
    telemetry_at = excluded.telemetry_at, reported = excluded.reported,
    desired = excluded.desired, clock_offset_s = excluded.clock_offset_s,
    attention = excluded.attention, reasons = excluded.reasons, updated_at = now()
"""


def _ts(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else dt.datetime.fromtimestamp(epoch, dt.UTC)


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, str):
        try:
            return parse_rfc3339(value)
        except ValueError:
            return None
    return None


def _json(doc: dict[str, Any] | None) -> str | None:
    return None if doc is None else json.dumps(doc, ensure_ascii=False)


class LiveFleet:
    def __init__(self, db: Database, offline_alarm_s: float, prefix: str = "carts",
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.prefix = prefix
        self.offline_alarm_s = offline_alarm_s
        self.clock = clock
        self.carts: dict[str, CartLive] = {}
        self.fleet_doc: dict[str, Any] | None = None  # P/_all/config/desired, decoded
        self._written: dict[str, tuple[int, str]] = {}
        self._open_live: dict[str, set[str]] = {}
        self._dirty: set[str] = set()
        self._results: list[tuple[str, dict[str, Any]]] = []
        self._fleet_dirty = False
        self._lock = threading.Lock()
        self.messages = 0

    # --- start-up ---------------------------------------------------------------------

    def load(self) -> None:
        """What the desk knew before it (re)started, so telemetry is not forgotten."""
        rows = self.db.query("SELECT cart, state, state_since, last_seen, status, telemetry, "
                             "telemetry_at, reported, desired, clock_offset_s, attention, "
                             "reasons FROM desk_carts")
        fleet = self.db.one("SELECT value FROM desk_meta WHERE key = 'fleet_desired'")
        open_live = self.db.query("SELECT cart, kind FROM desk_alarms "
                                  "WHERE live AND cleared_at IS NULL")
        with self._lock:
            for r in rows:
                self.carts[r["cart"]] = CartLive(
                    r["cart"], r["state"], _epoch(r["state_since"]), _epoch(r["last_seen"]),
                    r["status"], r["telemetry"], _epoch(r["telemetry_at"]), r["reported"],
                    r["desired"], r["clock_offset_s"])
                self._written[r["cart"]] = (r["attention"], json.dumps(r["reasons"]))
            self.fleet_doc = fleet["value"] if fleet else None
            for a in open_live:
                self._open_live.setdefault(a["cart"], set()).add(a["kind"])

    # --- paho's thread ----------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes, retain: bool) -> None:
        found = topic_kind(self.prefix, topic)
        if found is None or len(payload) > MAX_PAYLOAD:
            return
        cart, kind = found
        if kind == "config/desired":
            doc = decode_control(payload) if payload else None
            if cart == FLEET_SCOPE:
                with self._lock:
                    self.fleet_doc = doc
                    self._fleet_dirty = True
                    self._dirty.update(self.carts)  # every cart's "pending" may change
                return
        elif not payload:
            return
        else:
            try:
                doc = json.loads(payload)
            except (UnicodeDecodeError, ValueError, RecursionError):
                return
        if cart == FLEET_SCOPE or not _CART.match(cart) or not isinstance(doc, dict | None):
            return
        now = self.clock()
        with self._lock:
            self.messages += 1
            if kind == "cmd/result":
                if isinstance(doc, dict) and isinstance(doc.get("id"), str):
                    self._results.append((doc["id"], doc))
                return
            c = self.carts.get(cart)
            if c is None:
                c = self.carts[cart] = CartLive(cart)
            if kind == "status" and doc is not None:
                self._status(c, doc, retain, now)
            elif kind == "telemetry" and doc is not None:
                c.telemetry, c.telemetry_at, c.last_seen = doc, now, now
                at = _epoch(doc.get("at"))
                c.clock_offset_s = None if at is None else round(at - now, 3)
            elif kind == "config/reported":
                c.reported = doc
            elif kind == "config/desired":
                c.desired = doc
            self._dirty.add(cart)

    def _status(self, c: CartLive, doc: dict[str, Any], retain: bool, now: float) -> None:
        state = doc.get("state")
        if state not in ("online", "offline"):
            return
        c.status = doc
        if state != c.state:
            own = _epoch(doc.get("since")) or _epoch(doc.get("at"))
            c.state_since = (own or now) if retain else now
            c.state = state
        if state == "online":
            heard = _epoch(doc.get("at")) if retain else now
            if heard is not None:
                c.last_seen = max(c.last_seen or heard, heard)

    # --- the desk's thread ------------------------------------------------------------

    def flush(self) -> int:
        """Write what changed; raise and clear condition alarms. Returns the carts written."""
        now = self.clock()
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            results, self._results = self._results, []
            fleet_dirty, self._fleet_dirty = self._fleet_dirty, False
            fleet = version_of(self.fleet_doc)
            fleet_doc = self.fleet_doc
            snapshot = [(self.carts[c], assess(self.carts[c], fleet, now)) for c in sorted(dirty)]
            rows = [(c.cart, c.state, _ts(c.state_since), _ts(c.last_seen), _json(c.status),
                     _json(c.telemetry), _ts(c.telemetry_at), _json(c.reported),
                     _json(c.desired), c.clock_offset_s, a.score, json.dumps(a.reasons))
                    for c, a in snapshot]
        raised, cleared = self._condition_changes(snapshot, now)
        if not rows and not results and not fleet_dirty and not raised and not cleared:
            return 0
        try:
            with self.db.connection() as conn:
                if rows:
                    conn.execute(UPSERT, [list(col) for col in zip(*rows, strict=True)])
                if fleet_dirty:
                    conn.execute("INSERT INTO desk_meta(key, value) VALUES ('fleet_desired', "
                                 "%s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                 (json.dumps(fleet_doc or {}, ensure_ascii=False),))
                self._write_alarms(conn, raised, cleared, now)
                for cmd_id, doc in results:
                    conn.execute("UPDATE desk_actions SET result = %s, result_at = now(), "
                                 "outcome = CASE WHEN %s THEN 'done' ELSE 'failed' END "
                                 "WHERE cmd_id = %s AND result IS NULL",
                                 (json.dumps(doc, ensure_ascii=False), doc.get("ok") is True,
                                  cmd_id))
        except Exception:
            with self._lock:  # written next time, nothing forgotten
                self._dirty |= dirty
                self._results = results + self._results
                self._fleet_dirty = self._fleet_dirty or fleet_dirty
            raise
        for cart, kind, _detail in raised:
            self._open_live.setdefault(cart, set()).add(kind)
        for cart, kind in cleared:
            self._open_live.get(cart, set()).discard(kind)
        with self._lock:
            for (c, a), row in zip(snapshot, rows, strict=True):
                self._written[c.cart] = (a.score, row[-1])
        return len(rows)

    def _condition_changes(self, snapshot: list[tuple[CartLive, Any]], now: float
                           ) -> tuple[list[tuple[str, str, dict[str, Any]]],
                                      list[tuple[str, str]]]:
        raised: list[tuple[str, str, dict[str, Any]]] = []
        cleared: list[tuple[str, str]] = []
        for c, a in snapshot:
            open_kinds = self._open_live.setdefault(c.cart, set())
            if c.state == "online":
                if "offline" in open_kinds:
                    cleared.append((c.cart, "offline"))
                # Only an online cart's telemetry says a condition is over; an offline
                # cart's last word stands until it speaks again.
                for kind in ("paper_out", "clock"):
                    if kind in a.conditions and kind not in open_kinds:
                        raised.append((c.cart, kind, a.conditions[kind]))
                    elif kind not in a.conditions and kind in open_kinds:
                        cleared.append((c.cart, kind))
        for c in list(self.carts.values()):
            if (c.state == "offline" and c.state_since is not None
                    and now - c.state_since >= self.offline_alarm_s
                    and "offline" not in self._open_live.get(c.cart, set())):
                raised.append((c.cart, "offline", {"since": c.state_since}))
        return raised, cleared

    def _write_alarms(self, conn: Any, raised: list[tuple[str, str, dict[str, Any]]],
                      cleared: list[tuple[str, str]], now: float) -> None:
        touched = set()
        for cart, kind, detail in raised:
            conn.execute("INSERT INTO desk_alarms (cart, kind, source, live, detail, raised_at) "
                         "VALUES (%s, %s, %s, true, %s, %s) ON CONFLICT DO NOTHING",
                         (cart, kind, f"live:{kind}:{cart}:{int(now * 1000)}",
                          json.dumps(detail), _ts(now)))
            touched.add(cart)
        for cart, kind in cleared:
            conn.execute("UPDATE desk_alarms SET cleared_at = %s WHERE cart = %s AND kind = %s "
                         "AND live AND cleared_at IS NULL", (_ts(now), cart, kind))
            touched.add(cart)
        if touched:
            refresh_alarm_counts(conn, sorted(touched))

    def reassess(self) -> None:
        """Time moves reasons on (offline for longer, telemetry gone quiet): re-mark the carts
        whose words changed."""
        now = self.clock()
        with self._lock:
            for cart, c in self.carts.items():
                a = assess(c, version_of(self.fleet_doc), now)
                if self._written.get(cart) != (a.score, json.dumps(a.reasons)):
                    self._dirty.add(cart)

    def run(self, stop: threading.Event) -> None:
        last_reassess = self.clock()
        while not stop.wait(FLUSH_S):
            try:
                if self.clock() - last_reassess >= REASSESS_S:
                    self.reassess()
                    last_reassess = self.clock()
                self.flush()
            except Exception:  # the loop's top: log and go on, the next flush retries
                log.exception("desk: writing the live state failed")


def refresh_alarm_counts(conn: Any, carts: list[str]) -> None:
    conn.execute("INSERT INTO desk_carts (cart) SELECT unnest(%s::text[]) "
                 "ON CONFLICT (cart) DO NOTHING", (carts,))
    conn.execute("UPDATE desk_carts c SET alarms_open = (SELECT count(*) FROM desk_alarms a "
                 "WHERE a.cart = c.cart AND a.acked_at IS NULL) WHERE c.cart = ANY(%s)",
                 (carts,))
