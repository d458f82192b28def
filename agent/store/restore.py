"""`cart-agent restore`: put the store back from a backup, losing nothing that reached the
server and re-opening no door.

1. The daemon must be stopped (the data directory lock says so).
2. The newest backup that passes quick_check and belongs to this cart (and to the store named
   by identity.json, when there is one) is copied to a scratch file.
3. What identity.json kept since that backup is laid over the copy: the transactions
   committed since (pending ones are sent again; the server keeps each id once), tokens used
   and revoked since, what each compartment holds and whether it is out of service, ticket
   numbers, the cart's out-of-service flag. A pending open intent is left for the daemon's
   start-up, which marks it interrupted (never replayed).
4. A `store.restored` transaction takes seq = the highest seq known + 1 (so the server never
   sees a seq twice) and names the seqs the restore could not bring back.
5. The damaged file is kept aside as cart.db.damaged-<time>, the copy takes its place, and
   identity.json is updated.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.clock import TrustedClock
from agent.clock import evidence as clock_evidence
from agent.contract import rfc3339
from agent.ids import new_ulid
from agent.store import backup, identity
from agent.store.errors import StoreError
from agent.store.files import DataDirLock, fsync_dir, private_file
from agent.store.transactions import Store

DEFAULT_SKEW_S = 120  # only the clock's alarm depends on it, and a restore raises none


class RestoreError(Exception):
    """Nothing was changed; the message says why and what to do."""


@dataclass
class RestoreReport:
    backup: Path
    backup_seq: int
    restored_seq: int
    lost: list[int] | None
    applied: dict[str, int] = field(default_factory=dict)
    damaged_kept: Path | None = None


def _candidates(backup_dir: Path, source: Path | None) -> list[Path]:
    if source is not None:
        if not source.is_file():
            raise RestoreError(f"{source}: no such backup file")
        return [source]
    found = backup.listing(backup_dir)
    if not found:
        raise RestoreError(f"no backup in {backup_dir}")
    return found


def _usable(path: Path, cart_id: str, store_id: str | None) -> str | None:
    """None when `path` is a sound backup of this cart's store, else why not."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA quick_check").fetchall() != [("ok",)]:
                return "fails quick_check"
            meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                                     "('cart_id', 'store_id')").fetchall())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"not readable: {exc}"
    if meta.get("cart_id") not in (None, cart_id):
        return f"is cart {meta.get('cart_id')!r}'s"
    if store_id is not None and meta.get("store_id") != store_id:
        return f"is store {meta.get('store_id')}, not {store_id}"
    return None


def _lay_over(conn: sqlite3.Connection, since: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    # identity.json files from before the clock column hold 7 members per row
    rows = [[*r, None][:8] for r in since.get("transactions") or []]
    cur = conn.executemany("INSERT OR IGNORE INTO transactions(id, seq, type, at, data, state, "
                           "synced_at, clock) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    counts["transactions"] = cur.rowcount
    cur = conn.executemany("INSERT OR IGNORE INTO used_tokens(jti, used_at, tx_id, svc) "
                           "VALUES (?, ?, ?, ?)", since.get("used_tokens") or [])
    counts["used_tokens"] = cur.rowcount
    cur = conn.executemany("INSERT OR IGNORE INTO revoked_tokens(jti, revoked_at, source) "
                           "VALUES (?, ?, ?)", since.get("revoked_tokens") or [])
    counts["revoked_tokens"] = cur.rowcount
    changed = 0
    for row in since.get("compartments") or []:
        before = conn.execute("SELECT parcel, out_of_service FROM compartments WHERE id = ?",
                              (row[0],)).fetchone()
        # the door is not known after a restore: the boards tell the daemon at start
        conn.execute(
            "INSERT INTO compartments(id, board, lock, size, parcel, courier, parcel_since, "
            "out_of_service, oos_reason, door) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'unknown') "
            "ON CONFLICT(id) DO UPDATE SET parcel = excluded.parcel, courier = excluded.courier, "
            "parcel_since = excluded.parcel_since, out_of_service = excluded.out_of_service, "
            "oos_reason = excluded.oos_reason", row)
        changed += before is None or tuple(before) != (row[4], row[7])
    counts["compartments"] = changed
    for service, day, last in since.get("tickets") or []:
        conn.execute("INSERT INTO ticket_counters(service, day, last) VALUES (?, ?, ?) "
                     "ON CONFLICT(service, day) DO UPDATE SET last = MAX(last, excluded.last)",
                     (service, day, last))
    if since.get("out_of_service") is not None:
        conn.execute("INSERT INTO meta(key, value) VALUES ('out_of_service', ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                     (since["out_of_service"],))
    return counts


def restore(cart_id: str, db_path: Path, backup_dir: Path, source: Path | None = None,
            any_store: bool = False) -> RestoreReport:
    data_dir = db_path.parent
    lock = DataDirLock(data_dir)
    if not lock.acquire():
        raise RestoreError(f"the daemon (or another restore) is using {data_dir}: stop it "
                           "first (systemctl stop cart-agent)")
    try:
        try:
            ident = identity.read(data_dir)
        except StoreError:  # identity.json itself damaged: the copy beside the backups
            ident = None
        ident = ident or _identity_beside(backup_dir, cart_id)
        store_id = None if any_store or ident is None else ident.get("store_id")
        reasons = []
        chosen = None
        for path in _candidates(backup_dir, source):
            why = _usable(path, cart_id, store_id)
            if why is None:
                chosen = path
                break
            reasons.append(f"{path.name} {why}")
        if chosen is None:
            raise RestoreError("no usable backup: " + "; ".join(reasons))
        return _restore_from(chosen, cart_id, db_path, ident)
    finally:
        lock.release()


def _identity_beside(backup_dir: Path, cart_id: str) -> dict[str, Any] | None:
    """The copy of identity.json kept with the backups (when data_dir itself was lost)."""
    try:
        ident = identity.read(backup_dir)
    except StoreError:
        return None
    return ident if ident is not None and ident.get("cart_id") == cart_id else None


def _restore_from(chosen: Path, cart_id: str, db_path: Path,
                  ident: dict[str, Any] | None) -> RestoreReport:
    data_dir = db_path.parent
    scratch = db_path.with_name(db_path.name + ".restoring")
    for leftover in (scratch, scratch.with_name(scratch.name + "-wal"),
                     scratch.with_name(scratch.name + "-shm")):
        leftover.unlink(missing_ok=True)
    private_file(scratch)
    src = sqlite3.connect(f"file:{chosen}?mode=ro", uri=True)
    dst = sqlite3.connect(scratch)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    store = Store(scratch, cart_id, guard=False)  # migrates an older schema too
    try:
        backup_seq = store.last_seq()
        known = max(backup_seq, int((ident or {}).get("last_seq") or 0))
        kept_seq = backup_seq
        since = (ident or {}).get("since_backup") or {}
        applied: dict[str, int] = {}
        with store.write() as w:
            # identity.json's state (compartments, tickets, tokens used since the backup it
            # knew of) is as of its last_seq: newer than this backup unless the backup is newer
            gap = None
            if since and int((ident or {}).get("last_seq") or 0) >= backup_seq:
                applied = _lay_over(w.conn, since)
                kept_seq = int(w.execute("SELECT COALESCE(MAX(seq), 0) FROM transactions")
                               .fetchone()[0])
                if int(since.get("seq") or 0) > backup_seq:
                    # an older backup than the one identity.json tracks: tokens used between
                    # the two are not known here (the server has them)
                    gap = [backup_seq + 1, int(since["seq"])]
            lost = [kept_seq + 1, known] if known > kept_seq else None
            # Dated like every record: never below what the restored records say.
            trusted = TrustedClock(DEFAULT_SKEW_S)
            clock_evidence.load(trusted, store)
            at, source = trusted.stamp()
            data = {"backup": chosen.name, "backup_seq": backup_seq, "lost_seqs": lost,
                    "applied": applied, "unknown_token_use_seqs": gap}
            w.execute("INSERT INTO transactions(id, seq, type, at, data, state, clock) VALUES "
                      "(?, ?, 'store.restored', ?, ?, 'pending', ?)",
                      (new_ulid(), known + 1, rfc3339(at),
                       json.dumps(data, separators=(",", ":")), source))
            w.execute("INSERT INTO meta(key, value) VALUES ('restored_at', ?) "
                      "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      (rfc3339(at),))
        store_id = store.store_id
        if store.quick_check():
            raise RestoreError(f"the restored copy of {chosen.name} failed quick_check")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except StoreError as exc:
        raise RestoreError(f"could not restore from {chosen.name}: {exc}") from None
    finally:
        store.close()
    kept = None
    if db_path.exists():
        kept = db_path.with_name(f"{db_path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(db_path, kept)
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
        scratch.with_name(scratch.name + suffix).unlink(missing_ok=True)
    os.replace(scratch, db_path)
    fsync_dir(data_dir)
    doc = identity.new(cart_id, store_id, (ident or {}).get("created_at") or rfc3339(
        time.time()), db_path.name)
    doc.update({"last_seq": known + 1,
                "backup": {"file": chosen.name, "seq": backup_seq, "at": rfc3339(time.time())},
                "since_backup": None})
    identity.write(data_dir, doc)
    return RestoreReport(chosen, backup_seq, known + 1, lost, applied, kept)
