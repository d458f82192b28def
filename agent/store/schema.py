"""Schema migrations, versioned with PRAGMA user_version; each step runs in one transaction.

Forward only: there are no down-migrations. An agent refuses a store whose schema is newer
than its own (written by a newer release, e.g. before a rollback) rather than touch it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlite_utils
import sqlite_utils.db

from agent.store.errors import StoreRefused


def _table(db: sqlite_utils.Database, name: str) -> sqlite_utils.db.Table:
    return sqlite_utils.db.Table(db, name)


def _v1(db: sqlite_utils.Database) -> None:
    # The transaction log is also the outbox: `state` is 'pending' until the server acks.
    _table(db, "transactions").create(
        {"id": str, "seq": int, "type": str, "at": str, "data": str, "state": str,
         "synced_at": str},
        pk="id", not_null={"seq", "type", "at", "data", "state"},
    )
    db.execute("CREATE UNIQUE INDEX tx_seq ON transactions(seq)")
    # Partial index: finding the next pending batch stays O(batch) with a million synced rows.
    db.execute("CREATE INDEX tx_pending ON transactions(seq) WHERE state = 'pending'")
    db.execute("CREATE INDEX tx_synced_at ON transactions(synced_at) WHERE state = 'synced'")
    _table(db, "counters").create({"name": str, "value": int}, pk="name")
    db.execute("INSERT INTO counters(name, value) VALUES ('seq', 0)")
    _table(db, "meta").create({"key": str, "value": str}, pk="key")

    _table(db, "used_tokens").create({"jti": str, "used_at": str, "tx_id": str, "svc": str},
                                     pk="jti")
    _table(db, "revoked_tokens").create({"jti": str, "revoked_at": str, "source": str}, pk="jti")
    _table(db, "compartments").create(
        {"id": str, "board": int, "lock": int, "size": str, "parcel": str, "courier": str,
         "parcel_since": str, "door": str, "door_since": str, "out_of_service": int,
         "oos_reason": str},
        pk="id", not_null={"board", "lock", "size"}, defaults={"out_of_service": 0},
    )
    db.execute("CREATE UNIQUE INDEX comp_parcel ON compartments(parcel) WHERE parcel IS NOT NULL")
    # An open we decided on but have not confirmed: reconciled from door state after a crash,
    # never replayed.
    _table(db, "open_intents").create(
        {"id": str, "compartment": str, "purpose": str, "tx_id": str, "created_at": str,
         "state": str, "label": str, "courier": str},
        pk="id", not_null={"compartment", "purpose", "state"},
    )
    db.execute("CREATE INDEX intents_open ON open_intents(state) WHERE state = 'pending'")
    _table(db, "ticket_counters").create({"service": str, "day": str, "last": int},
                                 pk=("service", "day"))
    _table(db, "print_jobs").create(
        {"id": int, "tx_id": str, "kind": str, "created_at": str, "state": str,
         "attempts": int, "last_error": str, "printed_at": str},
        pk="id", not_null={"tx_id", "kind", "state"},
    )
    db.execute("CREATE INDEX print_queued ON print_jobs(state) WHERE state = 'queued'")
    _table(db, "config_versions").create(
        {"scope": str, "version": int, "document": str, "state": str, "received_at": str,
         "errors": str},
        pk=("scope", "version"),
    )
    _table(db, "commands").create(
        {"id": str, "name": str, "received_at": str, "state": str, "result": str},
        pk="id",
    )


def _v2(db: sqlite_utils.Database) -> None:
    # Which clock dated each record: 'wall', 'corrected' (the trusted clock's evidence, the
    # wall clock being behind) or 'unknown' (no evidence; the server should re-date it).
    # NULL: a record from before this column, dated by the wall clock.
    db.execute("ALTER TABLE transactions ADD COLUMN clock TEXT")


MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [_v1, _v2]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it was at."""
    db = sqlite_utils.Database(conn)
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found == SCHEMA_VERSION:
        return SCHEMA_VERSION  # nothing to write: works on a full disk too (status, reads)
    if found > SCHEMA_VERSION:
        raise StoreRefused(
            f"cart-agent: the store has schema {found}, newer than this version of the agent "
            f"knows ({SCHEMA_VERSION}): a newer release wrote it. Refusing to start rather "
            "than change it; run that release again (data_dir/releases/), or restore a "
            "backup this version made (`cart-agent restore`).")
    conn.execute("BEGIN IMMEDIATE")
    try:
        start = conn.execute("PRAGMA user_version").fetchone()[0]
        for version in range(start, SCHEMA_VERSION):
            MIGRATIONS[version](db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return int(start)
