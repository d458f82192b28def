"""The ingest's PostgreSQL storage: batches go in with COPY, each transaction stored once.

A batch (one message, or everything a NATS worker fetched at once) is one database
transaction: COPY into a session-local staging table, then one `INSERT ... SELECT ... ON
CONFLICT (id) DO NOTHING` into the real table, then COMMIT. COPY moves rows several times
faster than parameterised INSERTs; the staging table keeps the id check (a resent batch is
stored once) in the one statement PostgreSQL can do it in. `store()` returns only after the
commit, so the ingest acknowledges only what is durable. Schema and migrations:
`fleet.schema`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fleet.schema import SchemaError, migrate
from fleet.storage import Row, StorageError, with_clock

_STAGE = "incoming_tx"


class PostgresStorage:
    def __init__(self, url: str, table: str = "cart_transactions") -> None:
        try:
            import psycopg
        except ImportError:
            raise StorageError("PostgreSQL needs psycopg 3: install cart-fleet[postgres]"
                               ) from None
        self._psycopg = psycopg
        self.url = url
        self.table = table
        self.conn: Any = None
        self._connect()

    def _connect(self) -> None:
        psycopg = self._psycopg
        try:
            self.conn = psycopg.connect(self.url, connect_timeout=5)
            migrate(self.conn, self.table)
            with self.conn.cursor() as cur:
                # Session-local, emptied at each commit: nothing of it outlives a batch.
                cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (id TEXT, cart TEXT, "
                            "seq BIGINT, type TEXT, at TIMESTAMPTZ, data JSONB, clock TEXT) "
                            "ON COMMIT DELETE ROWS")
            self.conn.commit()
        except psycopg.Error as exc:
            self._discard()
            raise StorageError(f"postgresql: {exc}") from exc
        except SchemaError as exc:
            self._discard()
            raise StorageError(str(exc)) from exc

    def _discard(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(self._psycopg.Error):
                self.conn.close()
        self.conn = None

    def store(self, rows: list[Row], received_at: str) -> int:
        """Insert the rows not yet stored and commit; returns how many were new."""
        psycopg = self._psycopg
        try:
            if self.conn is None or self.conn.closed:
                self._connect()
            with self.conn.cursor() as cur:
                with cur.copy(f"COPY {_STAGE} (id, cart, seq, type, at, data, clock) "
                              "FROM STDIN") as cp:
                    for row in rows:
                        cp.write_row(with_clock(row))
                # DISTINCT ON: one batch may carry the same id twice (a cart's resend merged
                # with the original in one fetch); ON CONFLICT cannot touch a row twice.
                cur.execute(
                    f"INSERT INTO {self.table}(id, cart, seq, type, at, data, clock, received_at) "
                    f"SELECT DISTINCT ON (id) id, cart, seq, type, at, data, clock, "
                    f"%s::timestamptz "
                    f"FROM {_STAGE} ON CONFLICT (id) DO NOTHING", [received_at])
                added = int(cur.rowcount)
            self.conn.commit()
            return added
        except psycopg.Error as exc:
            try:
                self.conn.rollback()
            except (psycopg.Error, AttributeError):
                self._discard()
            raise StorageError(f"postgresql: {exc}") from exc

    def count(self) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {self.table}")
            n = int(cur.fetchone()[0])
        self.conn.commit()
        return n

    def ids(self) -> list[str]:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT id FROM {self.table}")
            found = [r[0] for r in cur.fetchall()]
        self.conn.commit()
        return found

    def drop(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS {self.table}")
            cur.execute("DELETE FROM cart_schema_version WHERE table_name = %s", [self.table])
        self.conn.commit()

    def close(self) -> None:
        self._discard()
