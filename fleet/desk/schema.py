"""The desk's own tables (all `desk_*`) and their forward-only migrations.

The ingest owns its transactions table; the desk relies only on its columns id, cart, seq,
type, at, data (JSONB) and received_at. It adds three indexes of its own to that table (named
`desk_*`, built CONCURRENTLY so the ingest keeps writing) once the table exists: the follower
reads new rows by received_at, a cart's page reads its timeline by (cart, at) and
(cart, type, at), and usage buckets are recounted by (cart, at).

Migrations run in order, each in its own transaction, under an advisory lock (two desks
starting together do not race). A database migrated by a newer desk is refused rather than
guessed at.
"""

from __future__ import annotations

import logging
import re

from fleet.desk.db import Database, DeskDbError

log = logging.getLogger(__name__)

LOCK_KEY = 0x6465736B  # "desk"
TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "users, sessions, carts, alarms, actions, follow state", [
        """CREATE TABLE desk_users (
            username text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9._-]{0,31}$'),
            password_hash text NOT NULL,
            role text NOT NULL CHECK (role IN ('manager', 'viewer')),
            created_at timestamptz NOT NULL DEFAULT now(),
            failures int NOT NULL DEFAULT 0,
            locked_until timestamptz)""",
        """CREATE TABLE desk_sessions (
            token_hash text PRIMARY KEY,
            username text NOT NULL REFERENCES desk_users ON DELETE CASCADE,
            csrf text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            last_seen timestamptz NOT NULL DEFAULT now())""",
        """CREATE TABLE desk_meta (key text PRIMARY KEY, value jsonb NOT NULL)""",
        """CREATE TABLE desk_carts (
            cart text PRIMARY KEY,
            state text NOT NULL DEFAULT 'unknown' CHECK (state IN ('online', 'offline',
                                                                    'unknown')),
            state_since timestamptz,
            last_seen timestamptz,
            status jsonb,
            telemetry jsonb,
            telemetry_at timestamptz,
            reported jsonb,
            desired jsonb,
            clock_offset_s double precision,
            attention int NOT NULL DEFAULT 0,
            reasons jsonb NOT NULL DEFAULT '[]',
            alarms_open int NOT NULL DEFAULT 0,
            comp_known int NOT NULL DEFAULT 0,
            comp_in_use int NOT NULL DEFAULT 0,
            comp_oos int NOT NULL DEFAULT 0,
            cart_oos boolean NOT NULL DEFAULT false,
            cart_oos_seq bigint NOT NULL DEFAULT 0,
            rank int GENERATED ALWAYS AS (
                attention + 20 * LEAST(alarms_open, 5) + CASE WHEN comp_oos > 0 THEN 5 ELSE 0 END
                + CASE WHEN cart_oos THEN 15 ELSE 0 END) STORED,
            updated_at timestamptz NOT NULL DEFAULT now())""",
        "CREATE INDEX desk_carts_rank ON desk_carts (rank DESC, cart)",
        """CREATE TABLE desk_alarms (
            id bigserial PRIMARY KEY,
            cart text NOT NULL,
            kind text NOT NULL,
            source text NOT NULL UNIQUE,
            live boolean NOT NULL DEFAULT false,
            detail jsonb NOT NULL DEFAULT '{}',
            raised_at timestamptz NOT NULL,
            cleared_at timestamptz,
            acked_at timestamptz,
            acked_by text,
            ack_note text)""",
        "CREATE INDEX desk_alarms_unacked ON desk_alarms (raised_at DESC) WHERE acked_at IS NULL",
        "CREATE INDEX desk_alarms_cart ON desk_alarms (cart, raised_at DESC)",
        "CREATE INDEX desk_alarms_raised ON desk_alarms (raised_at DESC)",
        # One open condition alarm (offline, paper out, clock) per cart and kind at a time.
        """CREATE UNIQUE INDEX desk_alarms_live_open ON desk_alarms (cart, kind)
            WHERE live AND cleared_at IS NULL""",
        """CREATE TABLE desk_parcels (
            deposit_tx text PRIMARY KEY,
            cart text NOT NULL,
            label text NOT NULL,
            compartment text,
            deposit_seq bigint NOT NULL,
            deposited_at timestamptz NOT NULL,
            pickup_tx text UNIQUE,
            picked_at timestamptz)""",
        "CREATE INDEX desk_parcels_open ON desk_parcels (cart, label) WHERE picked_at IS NULL",
        "CREATE INDEX desk_parcels_picked ON desk_parcels (cart, picked_at)",
        """CREATE TABLE desk_orphan_pickups (
            pickup_tx text PRIMARY KEY,
            cart text NOT NULL,
            label text NOT NULL,
            seq bigint NOT NULL,
            at timestamptz NOT NULL)""",
        "CREATE INDEX desk_orphan_pickups_label ON desk_orphan_pickups (cart, label)",
        """CREATE TABLE desk_compartments (
            cart text NOT NULL,
            compartment text NOT NULL,
            oos boolean NOT NULL DEFAULT false,
            oos_reason text,
            oos_seq bigint NOT NULL DEFAULT 0,
            PRIMARY KEY (cart, compartment))""",
        # Usage tables are keyed cart first: every read is one cart (or `*`, the whole
        # fleet) over a range of time.
        """CREATE TABLE desk_usage (
            hour timestamptz NOT NULL,
            cart text NOT NULL,
            metric text NOT NULL,
            key text NOT NULL DEFAULT '',
            n bigint NOT NULL,
            total double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (cart, hour, metric, key))""",
        """CREATE TABLE desk_usage_day (
            day date NOT NULL,
            cart text NOT NULL,
            metric text NOT NULL,
            key text NOT NULL DEFAULT '',
            n bigint NOT NULL,
            total double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (cart, day, metric, key))""",
        # Every cart's days of a range (the days before and after whole months).
        "CREATE INDEX desk_usage_day_day ON desk_usage_day (day)",
        """CREATE TABLE desk_usage_month (
            month date NOT NULL,
            cart text NOT NULL,
            metric text NOT NULL,
            key text NOT NULL DEFAULT '',
            n bigint NOT NULL,
            total double precision NOT NULL DEFAULT 0,
            PRIMARY KEY (cart, month, metric, key))""",
        """CREATE TABLE desk_usage_month_hod (
            month date NOT NULL,
            cart text NOT NULL,
            metric text NOT NULL,
            hod smallint NOT NULL CHECK (hod BETWEEN 0 AND 23),
            n bigint NOT NULL,
            PRIMARY KEY (cart, month, metric, hod))""",
        """CREATE TABLE desk_actions (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            username text NOT NULL,
            kind text NOT NULL,
            target text NOT NULL,
            detail jsonb NOT NULL DEFAULT '{}',
            outcome text NOT NULL,
            error text,
            cmd_id text UNIQUE,
            result jsonb,
            result_at timestamptz)""",
        "CREATE INDEX desk_actions_target ON desk_actions (target, at DESC)",
        "CREATE INDEX desk_actions_at ON desk_actions (at DESC)",
    ]),
]
LATEST = MIGRATIONS[-1][0]


def migrate(db: Database) -> int:
    """Bring the desk's tables up to LATEST; returns the version now in the database."""
    with db.connection() as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute("CREATE TABLE IF NOT EXISTS desk_schema (version int PRIMARY KEY, "
                     "note text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        row = conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM desk_schema").fetchone()
        current = int(row["v"])
        if current > LATEST:
            raise DeskDbError(f"the desk's tables are at version {current}, newer than this "
                              f"desk knows ({LATEST}): run the newer desk")
        for version, note, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO desk_schema(version, note) VALUES (%s, %s)",
                         (version, note))
            log.info("desk tables migrated to version %d: %s", version, note)
            current = version
    return current


def tx_table_exists(db: Database, table: str) -> bool:
    row = db.one("SELECT to_regclass(%s) IS NOT NULL AS found", (table,))
    return bool(row and row["found"])


TX_INDEXES = [
    ("desk_{t}_received", "(received_at, id)"),
    ("desk_{t}_cart_at", "(cart, at)"),
    ("desk_{t}_cart_type_at", "(cart, type, at)"),
]


def ensure_tx_indexes(db: Database, table: str) -> None:
    """The desk's indexes on the ingest's table; CONCURRENTLY, so ingest is never blocked."""
    if not TABLE_NAME.match(table):
        raise DeskDbError(f"bad table name {table!r}")
    conn = db.autocommit()
    try:
        for name, columns in TX_INDEXES:
            index = name.format(t=table)[:63]
            row = conn.execute("SELECT indisvalid FROM pg_index i JOIN pg_class c ON "
                               "c.oid = i.indexrelid WHERE c.relname = %s", (index,)).fetchone()
            if row is not None and not row["indisvalid"]:
                # A build interrupted earlier leaves an invalid index behind: start again.
                conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index}")
            conn.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index} ON {table} {columns}")
    finally:
        conn.close()
