"""A small pool of PostgreSQL connections (psycopg 3) for the desk's threads.

Every connection talks UTC (`date_trunc('hour', ...)` buckets must not depend on the server's
time zone) and has a statement timeout, so one bad query cannot pin a page thread forever.
A connection that failed (server restarted, network cut) is thrown away, not returned.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

try:
    import psycopg
    from psycopg.rows import dict_row
except ImportError:  # pragma: no cover - the desk needs the postgres extra
    psycopg = None  # type: ignore[assignment]

Params = Sequence[Any] | dict[str, Any] | None


class DeskDbError(Exception):
    """The database is unreachable or refused; the message says why (never a password)."""


class Database:
    def __init__(self, url: str, size: int = 6, statement_timeout_ms: int = 30_000) -> None:
        if psycopg is None:
            raise DeskDbError("the desk needs psycopg 3: pip install 'cart-fleet[postgres]'")
        if not url.startswith(("postgresql://", "postgres://")):
            raise DeskDbError("the desk reads PostgreSQL: --db postgresql://USER@HOST/DB")
        self.url = url
        self.size = size
        self.statement_timeout_ms = statement_timeout_ms
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)

    def _connect(self) -> Any:
        try:
            conn = psycopg.connect(self.url, connect_timeout=5, row_factory=dict_row,
                                   options=f"-c TimeZone=UTC -c statement_timeout="
                                           f"{self.statement_timeout_ms}")
        except psycopg.Error as exc:
            raise DeskDbError(f"cannot reach the database: {_first_line(exc)}") from None
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection in a transaction: committed when the block ends, rolled back on error."""
        if not self._slots.acquire(timeout=30):
            raise DeskDbError("all database connections are busy")
        conn = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                yield conn
                conn.commit()
            except BaseException:
                with contextlib.suppress(Exception):
                    conn.rollback()
                raise
        except psycopg.OperationalError as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
                conn = None
            raise DeskDbError(f"database error: {_first_line(exc)}") from exc
        finally:
            if conn is not None:
                if conn.closed or conn.broken:
                    conn = None
                else:
                    self._idle.put(conn)
            self._slots.release()

    def query(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        with self.connection() as conn:
            return list(conn.execute(sql, params).fetchall())

    def one(self, sql: str, params: Params = None) -> dict[str, Any] | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: Params = None) -> int:
        with self.connection() as conn:
            return int(conn.execute(sql, params).rowcount)

    def autocommit(self) -> Any:
        """A separate connection outside any transaction (CREATE INDEX CONCURRENTLY)."""
        conn = self._connect()
        conn.autocommit = True
        return conn

    def close(self) -> None:
        while True:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                return
            with contextlib.suppress(Exception):
                conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
