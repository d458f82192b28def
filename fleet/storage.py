"""Where the reference ingest keeps transactions: SQLite (a path) or PostgreSQL (a URL).

Both store each transaction once, keyed by its id (INSERT ... ON CONFLICT DO NOTHING), and
commit before `store()` returns: the ingest acknowledges only what is durable. PostgreSQL
(the fleet's database at volume) is in `fleet.storage_pg`, its schema in `fleet.schema`.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Protocol

# id, cart, seq, type, at, data (JSON text)[, clock: which clock dated `at`, None = the wall's]
Row = tuple[str, str, int, str, str, str] | tuple[str, str, int, str, str, str, str | None]
TABLE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def with_clock(row: Row) -> tuple[str, str, int, str, str, str, str | None]:
    return row if len(row) == 7 else (*row, None)


class StorageError(Exception):
    """The database refused the batch; nothing of it is acknowledged."""


class IngestStorage(Protocol):
    def store(self, rows: list[Row], received_at: str) -> int: ...
    def count(self) -> int: ...
    def close(self) -> None: ...


class SqliteStorage:
    def __init__(self, path: str, table: str = "transactions") -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.table = table
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None,
                                    check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, cart TEXT NOT NULL, "
            "seq INTEGER NOT NULL, type TEXT NOT NULL, at TEXT NOT NULL, data TEXT NOT NULL, "
            "received_at TEXT NOT NULL, clock TEXT)")
        self.conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_cart_seq ON {table} (cart, seq)")
        columns = {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}
        if "clock" not in columns:  # a file from before the column
            self.conn.execute(f"ALTER TABLE {table} ADD COLUMN clock TEXT")

    def store(self, rows: list[Row], received_at: str) -> int:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            before = self.conn.total_changes
            self.conn.executemany(
                f"INSERT INTO {self.table}(id, cart, seq, type, at, data, clock, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING",
                [(*with_clock(row), received_at) for row in rows])
            added = self.conn.total_changes - before
            self.conn.execute("COMMIT")
            return added
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise StorageError(f"sqlite: {exc}") from exc

    def count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table}").fetchone()[0])

    def ids(self) -> list[str]:
        return [r[0] for r in self.conn.execute(f"SELECT id FROM {self.table}")]

    def close(self) -> None:
        self.conn.close()


def open_storage(url: str, table: str | None = None) -> IngestStorage:
    """`postgresql://...` (or `postgres://`) for PostgreSQL, anything else is a SQLite path."""
    if table is not None and not TABLE_PATTERN.match(table):
        raise ValueError(f"bad table name {table!r}")
    if url.startswith(("postgresql://", "postgres://")):
        from fleet.storage_pg import PostgresStorage

        return PostgresStorage(url, table or "cart_transactions")
    path = url.removeprefix("sqlite:///").removeprefix("sqlite://")
    return SqliteStorage(path, table or "transactions")
