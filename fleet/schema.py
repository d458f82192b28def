"""The ingest's PostgreSQL schema and its forward-only migrations.

What readers (the fleet dashboard, reports) may rely on, for the transactions table
(`cart_transactions` unless `--table` says otherwise; called T below):

| column        | type        | meaning                                                        |
|---------------|-------------|----------------------------------------------------------------|
| `id`          | text PK     | the transaction's ULID (CONTRACT.md section 4): stored once    |
| `cart`        | text        | cart id                                                        |
| `seq`         | bigint      | the cart's gapless counter, 1, 2, 3, ...                       |
| `type`        | text        | `parcel.pickup`, `ticket.issue`, ...                           |
| `at`          | timestamptz | when the cart committed it (the cart's clock)                  |
| `data`        | jsonb       | the transaction's `data` object                                |
| `received_at` | timestamptz | when the ingest committed it (the ingest's clock)              |
| `clock`       | text, null  | (v3) which clock dated `at`: NULL/`wall`, `corrected` (the     |
|               |             | cart's evidence: trust it), `unknown` (re-date it)             |

Indexes (v2): `T_cart_seq` on (cart, seq) for per-cart state and gap checks
(`SELECT max(seq) ... WHERE cart = $1`, latest per cart with a LATERAL join); `T_type_at` on
(type, at) for reports of one kind over a period; `T_at` on (at) for a day's activity across
kinds; `T_received_brin` (BRIN on received_at: tiny, rows arrive in that order) for "what
came in since". (cart, seq) is deliberately not unique: a cart whose disk was replaced starts
again at seq 1 with new ids, and refusing those rows would lose them.

Versions live in `cart_schema_version(table_name, version, description, applied_at)`, one
row per applied migration per table. Migrations only go forward: an ingest that finds a
version newer than it knows refuses to start rather than write into a schema it does not
understand. Every migration runs under a transaction-scoped advisory lock, so workers that
start together apply each one exactly once; DDL in PostgreSQL is transactional, so a
migration that fails leaves nothing half done. A table created before versioning (the v1
columns, no version rows) is adopted as v1 and migrated on.
"""

from __future__ import annotations

import zlib
from typing import Any

VERSION_TABLE = "cart_schema_version"

# Each entry: (version, description, SQL with {t} for the table name). Append only.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "transactions table",
     "CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, cart TEXT NOT NULL, "
     "seq BIGINT NOT NULL, type TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, data JSONB NOT NULL, "
     "received_at TIMESTAMPTZ NOT NULL)"),
    (2, "indexes for fleet status and reports",
     "CREATE INDEX IF NOT EXISTS {t}_cart_seq ON {t} (cart, seq);"
     "CREATE INDEX IF NOT EXISTS {t}_type_at ON {t} (type, at);"
     "CREATE INDEX IF NOT EXISTS {t}_at ON {t} (at);"
     "CREATE INDEX IF NOT EXISTS {t}_received_brin ON {t} USING brin (received_at)"),
    (3, "which clock dated each transaction",
     "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS clock TEXT"),
]
LATEST = MIGRATIONS[-1][0]


class SchemaError(Exception):
    """The database's schema cannot be used by this ingest (e.g. newer than it knows)."""


def _lock_key(table: str) -> int:
    # A stable 32-bit key per table for pg_advisory_xact_lock.
    return zlib.crc32(f"cart-ingest:{table}".encode())


def current_version(cur: Any, table: str) -> int:
    cur.execute(f"SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE} WHERE table_name = %s",
                [table])
    return int(cur.fetchone()[0])


def migrate(conn: Any, table: str, target: int = LATEST) -> list[int]:
    """Bring `table` up to `target`; returns the versions applied now (maybe none).

    `conn` is a psycopg connection outside a transaction; it is committed per migration.
    """
    applied: list[int] = []
    with conn.cursor() as cur:
        # Two workers starting together would race on CREATE TABLE IF NOT EXISTS.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(VERSION_TABLE)])
        cur.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (table_name TEXT NOT NULL, "
                    "version INTEGER NOT NULL, description TEXT NOT NULL, "
                    "applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                    "PRIMARY KEY (table_name, version))")
    conn.commit()
    for version, description, sql in MIGRATIONS:
        if version > target:
            break
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(table)])
            if current_version(cur, table) >= version:
                conn.commit()
                continue
            for statement in sql.format(t=table).split(";"):
                cur.execute(statement)
            cur.execute(f"INSERT INTO {VERSION_TABLE}(table_name, version, description) "
                        "VALUES (%s, %s, %s)", [table, version, description])
        conn.commit()
        applied.append(version)
    with conn.cursor() as cur:
        found = current_version(cur, table)
    conn.commit()
    if found > LATEST:
        raise SchemaError(f"table {table} is at schema version {found}, newer than this "
                          f"ingest knows ({LATEST}): upgrade cart-fleet")
    return applied
