"""The cart's identity, kept where losing cart.db does not lose it: data_dir/identity.json.

It says which store this data directory holds (cart id, a random store id made when the store
was created), the highest `seq` the store reached, and what must survive between two backups
for a restore to re-open no door: the tokens used and revoked since the last backup, what each
compartment holds, ticket numbers and the cart's out-of-service flag. The daemon rewrites it
(atomically) within a second of each new transaction, and a copy goes beside every backup.

With it, a missing, empty or foreign cart.db is refused instead of silently becoming a new
cart: seq restarting at 1, used tickets accepted again, a full compartment opened for a deposit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from agent.store.errors import StoreRefused
from agent.store.files import read_json, write_json

NAME = "identity.json"
VERSION = 1


def path_for(data_dir: Path) -> Path:
    return data_dir / NAME


def read(data_dir: Path) -> dict[str, Any] | None:
    try:
        return read_json(path_for(data_dir))
    except ValueError as exc:
        raise StoreRefused(f"{exc}: this data directory held a store; refusing to start a "
                           "new one. Restore it with `cart-agent restore`.") from None


def write(data_dir: Path, doc: dict[str, Any]) -> None:
    write_json(path_for(data_dir), {**doc, "version": VERSION})


def new(cart_id: str, store_id: str, created_at: str, db_name: str) -> dict[str, Any]:
    return {"cart_id": cart_id, "store_id": store_id, "created_at": created_at, "db": db_name,
            "last_seq": 0, "backup": None, "since_backup": None}


def missing_message(db: Path, ident: dict[str, Any], why: str) -> str:
    return (f"cart-agent: {db} {why}, but this data directory has held the store of cart "
            f"{ident.get('cart_id')!r} (store {ident.get('store_id')}, last seq "
            f"{ident.get('last_seq')}): refusing to start a new, empty one (its used tokens, "
            "stored parcels and seq would be forgotten). Restore it: `cart-agent restore` "
            "(see README, 'When the store is lost').")


def snapshot(conn: sqlite3.Connection, since_seq: int) -> dict[str, Any]:
    """What a restore from a backup taken at `since_seq` needs on top of that backup. Read in
    one transaction, so the parts agree with each other."""
    conn.execute("BEGIN")
    try:
        last = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM transactions").fetchone()[0]
        txs = conn.execute("SELECT id, seq, type, at, data, state, synced_at, clock "
                           "FROM transactions "
                           "WHERE seq > ? ORDER BY seq", (since_seq,)).fetchall()
        used = conn.execute(
            "SELECT u.jti, u.used_at, u.tx_id, u.svc FROM used_tokens u JOIN transactions t "
            "ON t.id = u.tx_id WHERE t.seq > ?", (since_seq,)).fetchall()
        since_at = conn.execute("SELECT at FROM transactions WHERE seq = ?",
                                (since_seq,)).fetchone()
        revoked = conn.execute(
            "SELECT jti, revoked_at, source FROM revoked_tokens WHERE revoked_at >= ?",
            (since_at[0] if since_at else "",)).fetchall()
        compartments = conn.execute(
            "SELECT id, board, lock, size, parcel, courier, parcel_since, out_of_service, "
            "oos_reason FROM compartments").fetchall()
        tickets = conn.execute("SELECT service, day, last FROM ticket_counters "
                               "ORDER BY day DESC LIMIT 64").fetchall()
        oos = conn.execute("SELECT value FROM meta WHERE key = 'out_of_service'").fetchone()
    finally:
        conn.execute("COMMIT")
    return {"last_seq": int(last), "since_backup": {
        "seq": since_seq,
        "transactions": [list(r) for r in txs],
        "used_tokens": [list(r) for r in used],
        "revoked_tokens": [list(r) for r in revoked],
        "compartments": [list(r) for r in compartments],
        "tickets": [list(r) for r in tickets],
        "out_of_service": oos[0] if oos else None,
    }}
