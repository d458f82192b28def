"""Parcels and compartments from a batch of transactions, set by set (one statement per kind
of change, whatever the batch size).

A parcel is its deposit (keyed by the deposit's transaction id); a pickup closes the latest
open deposit of the same label at the same cart with a lower seq. A pickup that finds none
(its deposit was stored later: a batch resent after a failure) waits in desk_orphan_pickups
until the deposit arrives. Out of service goes by seq, so the order rows arrive in does not
matter.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

MAX_LABEL, MAX_COMPARTMENT = 64, 16

CLOSE_PICKUPS = """
WITH p AS (
    SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::timestamptz[])
        AS p(pickup_tx, cart, label, seq, at)
    WHERE NOT EXISTS (SELECT 1 FROM desk_parcels d WHERE d.pickup_tx = p.pickup_tx)),
m AS (
    SELECT DISTINCT ON (d.deposit_tx) d.deposit_tx, p.pickup_tx, p.at
    FROM p JOIN LATERAL (SELECT deposit_tx FROM desk_parcels d WHERE d.cart = p.cart
                         AND d.label = p.label AND d.picked_at IS NULL AND d.deposit_seq < p.seq
                         ORDER BY d.deposit_seq DESC LIMIT 1) d ON true
    ORDER BY d.deposit_tx, p.seq)
UPDATE desk_parcels d SET pickup_tx = m.pickup_tx, picked_at = m.at FROM m
WHERE d.deposit_tx = m.deposit_tx
RETURNING m.pickup_tx
"""


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def apply(conn: Any, rows: list[dict[str, Any]]) -> tuple[set[str],
                                                          set[tuple[str, dt.datetime]]]:
    """Returns the carts whose compartments changed and the (cart, pickup time) of parcels
    closed late (their wait must be counted again)."""
    known: set[tuple[str, str]] = set()
    deposits: list[tuple[Any, ...]] = []
    pickups: list[tuple[Any, ...]] = []
    for r in rows:
        data = r["data"] if isinstance(r["data"], dict) else {}
        comp = _text(data.get("compartment"), MAX_COMPARTMENT)
        if comp is None:
            continue
        cart, seq, kind = r["cart"], r["seq"], r["type"]
        known.add((cart, comp))
        if kind in ("compartment.out_of_service", "locker.open_failed"):
            # Rare: one statement each. The cart takes a compartment whose lock did not
            # release out of service itself.
            on = data.get("on") if kind == "compartment.out_of_service" else True
            reason = (str(data.get("reason") or "")[:120] if kind != "locker.open_failed"
                      else "lock did not release")
            if isinstance(on, bool):
                _ensure(conn, {(cart, comp)})
                conn.execute("UPDATE desk_compartments SET oos = %s, oos_reason = %s, "
                             "oos_seq = %s WHERE cart = %s AND compartment = %s "
                             "AND oos_seq < %s", (on, reason, seq, cart, comp, seq))
        label = _text(data.get("label"), MAX_LABEL)
        if label and kind == "parcel.deposit":
            deposits.append((r["id"], cart, label, comp, seq, r["at"]))
        elif label and kind == "parcel.pickup":
            pickups.append((r["id"], cart, label, seq, r["at"]))
    _ensure(conn, known)
    late: set[tuple[str, dt.datetime]] = set()
    if deposits:
        conn.execute("INSERT INTO desk_parcels (deposit_tx, cart, label, compartment, "
                     "deposit_seq, deposited_at) SELECT * FROM unnest(%s::text[], %s::text[], "
                     "%s::text[], %s::text[], %s::bigint[], %s::timestamptz[]) "
                     "ON CONFLICT (deposit_tx) DO NOTHING",
                     [list(c) for c in zip(*deposits, strict=True)])
        late = _adopt_orphans(conn, deposits)
    if pickups:
        columns = [list(c) for c in zip(*pickups, strict=True)]
        closed = {r["pickup_tx"] for r in conn.execute(CLOSE_PICKUPS, columns).fetchall()}
        done = {r["pickup_tx"] for r in conn.execute(
            "SELECT pickup_tx FROM desk_parcels WHERE pickup_tx = ANY(%s)", (columns[0],))}
        orphans = [p for p in pickups if p[0] not in closed and p[0] not in done]
        if orphans:
            conn.execute("INSERT INTO desk_orphan_pickups (pickup_tx, cart, label, seq, at) "
                         "SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], "
                         "%s::bigint[], %s::timestamptz[]) ON CONFLICT DO NOTHING",
                         [list(c) for c in zip(*orphans, strict=True)])
    return {cart for cart, _ in known}, late


def _ensure(conn: Any, known: set[tuple[str, str]]) -> None:
    """Every compartment named exists as a row."""
    if known:
        carts, comps = zip(*sorted(known), strict=True)
        conn.execute("INSERT INTO desk_compartments (cart, compartment) SELECT * FROM "
                     "unnest(%s::text[], %s::text[]) ON CONFLICT DO NOTHING",
                     (list(carts), list(comps)))


def _adopt_orphans(conn: Any, deposits: list[tuple[Any, ...]]) -> set[tuple[str, dt.datetime]]:
    """Pickups that arrived before their deposit close it now."""
    if conn.execute("SELECT 1 FROM desk_orphan_pickups LIMIT 1").fetchone() is None:
        return set()
    late: set[tuple[str, dt.datetime]] = set()
    for _id, cart, label, _comp, seq, _at in deposits:
        orphan = conn.execute(
            "DELETE FROM desk_orphan_pickups WHERE pickup_tx = (SELECT pickup_tx FROM "
            "desk_orphan_pickups WHERE cart = %s AND label = %s AND seq > %s ORDER BY seq "
            "LIMIT 1) RETURNING *", (cart, label, seq)).fetchone()
        if orphan is None:
            continue
        conn.execute(CLOSE_PICKUPS, ([orphan["pickup_tx"]], [cart], [label], [orphan["seq"]],
                                     [orphan["at"]]))
        late.add((cart, orphan["at"]))
    return late


def refresh_summary(conn: Any, carts: list[str]) -> None:
    """Compartments known / in use / out of service on each cart's card."""
    conn.execute(
        "UPDATE desk_carts c SET comp_known = k.known, comp_oos = k.oos, "
        "comp_in_use = (SELECT count(DISTINCT compartment) FROM desk_parcels p "
        "WHERE p.cart = c.cart AND p.picked_at IS NULL) FROM (SELECT cart, "
        "count(*) AS known, count(*) FILTER (WHERE oos) AS oos FROM "
        "desk_compartments WHERE cart = ANY(%s) GROUP BY cart) k "
        "WHERE c.cart = k.cart", (carts,))
