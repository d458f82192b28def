"""The transaction log and outbox.

A transaction is committed (WAL, synchronous=FULL: one fsync, durable across power loss)
before any door opens, any receipt prints or anything is published. `seq` comes from a counter
row updated in the same SQLite transaction as the insert, so it has no gaps across restarts,
threads and processes (the CLI writes beside the daemon; BEGIN IMMEDIATE serialises them).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from agent.contract import parse_rfc3339, rfc3339
from agent.ids import new_ulid
from agent.store import identity
from agent.store.errors import StoreError, StoreRefused, translate
from agent.store.files import private_dir, private_file, tighten
from agent.store.schema import migrate
from agent.store.text import clean, clean_params

Clock = Callable[[], float]


class StampingClock(Protocol):
    """A clock that also says which clock stands behind a record's time (agent/clock)."""

    def __call__(self) -> float: ...

    def stamp(self) -> tuple[float, str]: ...


@dataclass(frozen=True)
class Tx:
    id: str
    seq: int
    cart: str
    type: str
    at: str
    data: dict[str, Any]
    state: str = "pending"
    clock: str | None = None  # which clock dated `at`; None: a record from before it was said

    def wire(self) -> dict[str, Any]:
        # `clock` only when the wall clock did not date it ("corrected", "unknown"): an ingest
        # that does not know the member still takes every ordinary record (and records from
        # before the column were dated by the wall clock too).
        doc = {"id": self.id, "seq": self.seq, "cart": self.cart, "type": self.type,
               "at": self.at, "data": self.data}
        if self.clock not in (None, "wall"):
            doc["clock"] = self.clock
        return doc


def connect(path: Path, timeout_s: float = 10.0) -> sqlite3.Connection:
    # 0700 / 0600 made here, whatever the umask: SQLite gives the -wal and -shm files the
    # mode of the database file, so creating that one private covers all three.
    private_dir(path.parent)
    private_file(path)
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA busy_timeout={int(timeout_s * 1000)}")
    for suffix in ("-wal", "-shm"):
        tighten(path.with_name(path.name + suffix))
    return conn


def connect_read_only(path: Path, timeout_s: float = 10.0) -> sqlite3.Connection:
    """An existing database, for reading only; creates no file. With no -wal file beside it
    (no daemon running, none crashed) it is read as immutable, so SQLite does not create -wal
    and -shm files either; with one, those are read as they are (they hold committed data)."""
    if not path.is_file():
        raise StoreError(f"no store at {path}")
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    conn = sqlite3.connect(f"file:{quote(str(path.resolve()))}?{mode}", uri=True,
                           timeout=timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA query_only=ON")
    return conn


class Writer:
    """Handle to one open write transaction: append records and touch the flows' tables."""

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        self._store = store
        self.conn = conn

    def append(self, type_: str, data: dict[str, Any], at: float | None = None) -> Tx:
        # seq = MAX(seq) + 1 inside this write transaction (BEGIN IMMEDIATE holds the write
        # lock), read from the unique index; prune() never deletes the newest row, so the
        # count never restarts.
        tx_id = new_ulid()
        stamp, source = self._store.stamp() if at is None else (at, "wall")
        when = rfc3339(stamp)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # rare: escape lone surrogates, keep the rest as it was
            data = clean(data)
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        type_ = clean(type_)
        seq = self.conn.execute(
            "INSERT INTO transactions(id, seq, type, at, data, state, clock) VALUES "
            "(?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM transactions), ?, ?, ?, 'pending', ?) "
            "RETURNING seq",
            (tx_id, type_, when, text, source),
        ).fetchone()[0]
        tx = Tx(id=tx_id, seq=seq, cart=self._store.cart_id, type=type_, at=when, data=data,
                clock=source)
        return tx

    def execute(self, sql: str, params: tuple[Any, ...] | dict[str, Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, clean_params(params))


class Store:
    """One SQLite connection guarded by a lock; safe to share between the daemon's threads."""

    def __init__(self, path: str | Path, cart_id: str, clock: Clock = time.time,
                 guard: bool = True, *, read_only: bool = False) -> None:
        """Open (or, in a data directory that never held one, create) the store. With `guard`
        (everything but a restore's scratch copy) the data directory's identity is checked
        first: a missing, empty or foreign database is refused (StoreRefused).
        read_only: an existing store, read as it is (status commands): nothing is created,
        migrated or written; a missing store raises StoreError."""
        self.path = Path(path)
        self.cart_id = cart_id
        self.clock: Clock = clock
        self.stamp: Callable[[], tuple[float, str]] = lambda: (self.clock(), "wall")
        self._lock = threading.RLock()
        ident = identity.read(self.path.parent) if guard else None
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        if ident is not None and fresh:
            why = "is missing" if not self.path.exists() else "is empty (0 bytes)"
            raise StoreRefused(identity.missing_message(self.path, ident, why))
        try:
            if read_only:
                self.conn = connect_read_only(self.path)
                row = self.conn.execute(
                    "SELECT value FROM meta WHERE key = 'store_id'").fetchone()
                self.store_id = str(row[0]) if row else ""
            else:
                self.conn = connect(self.path)
                try:
                    migrate(self.conn)
                except StoreError:
                    self.conn.close()  # a schema from a newer release: leave it as it is
                    raise
                self.store_id = self._own_identity()
        except sqlite3.Error as exc:
            raise translate(exc) from exc
        if guard and not read_only:
            self._check_identity(ident)

    def _own_identity(self) -> str:
        rows = dict(self.conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('store_id', 'cart_id')").fetchall())
        owner = rows.get("cart_id")
        if owner is not None and owner != self.cart_id:
            self.conn.close()
            raise StoreRefused(f"cart-agent: {self.path} is the store of cart {owner!r}, but "
                               f"the config says cart_id = {self.cart_id!r}: refusing to mix "
                               "two carts' records.")
        if "store_id" in rows and owner is not None:
            return str(rows["store_id"])  # nothing to write: opens on a full disk too
        store_id = rows.get("store_id") or new_ulid()
        with self.write() as w:
            for key, value in (("store_id", store_id), ("cart_id", self.cart_id),
                               ("created_at", rfc3339(self.clock()))):
                w.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO NOTHING", (key, value))
        return store_id

    def _check_identity(self, ident: dict[str, Any] | None) -> None:
        data_dir = self.path.parent
        last = self.last_seq()
        if ident is None:
            doc = identity.new(self.cart_id, self.store_id, rfc3339(self.clock()),
                               self.path.name)
            doc["last_seq"] = last
            try:
                identity.write(data_dir, doc)
            except OSError as exc:
                self.conn.close()
                raise StoreError(f"cannot write {identity.path_for(data_dir)}: "
                                 f"{exc.strerror}") from None
            return
        problem = None
        if ident.get("store_id") != self.store_id:
            problem = (f"{self.path} is store {self.store_id}, but this data directory holds "
                       f"store {ident.get('store_id')} of cart {ident.get('cart_id')!r}: "
                       "another database was put here")
        elif isinstance(ident.get("last_seq"), int) and ident["last_seq"] > last:
            problem = (f"{self.path} ends at seq {last}, but this store had reached seq "
                       f"{ident['last_seq']}: it is an older copy or lost its last writes")
        if problem:
            self.conn.close()
            raise StoreRefused(f"cart-agent: {problem}. Refusing to start on it. Restore the "
                               "store with `cart-agent restore` (see README, 'When the store "
                               "is lost').")

    def use_clock(self, clock: StampingClock) -> None:
        """Date everything from now on with the trusted clock (the daemon's, once it has read
        its evidence from this store)."""
        self.clock = clock
        self.stamp = clock.stamp

    def last_seq(self) -> int:
        return int(self.query("SELECT COALESCE(MAX(seq), 0) AS n FROM transactions")[0]["n"])

    def quick_check(self) -> list[str]:
        """PRAGMA quick_check: [] when the database is sound, else SQLite's findings."""
        try:
            rows = self.query("PRAGMA quick_check(20)")
        except StoreError as exc:
            return [str(exc)]
        found = [str(next(iter(r.values()))) for r in rows]
        return [] if found == ["ok"] else found

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """BEGIN IMMEDIATE … COMMIT; any error rolls back everything the block did."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc) from exc
            writer = Writer(self, self.conn)
            try:
                yield writer
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    with suppress(sqlite3.Error):
                        self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc) from exc
                raise

    def record(self, type_: str, data: dict[str, Any]) -> Tx:
        """One transaction in its own commit (the common case, kept lean: it is the hot path)."""
        with self._lock:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    tx = Writer(self, self.conn).append(type_, data)
                    self.conn.execute("COMMIT")
                except BaseException:
                    if self.conn.in_transaction:
                        self.conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise translate(exc) from exc
        return tx

    def query(self, sql: str,
              params: tuple[Any, ...] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            try:
                cur = self.conn.execute(sql, clean_params(params))
                cols = [c[0] for c in cur.description or ()]
                return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
            except sqlite3.Error as exc:
                raise translate(exc) from exc

    # --- the outbox -------------------------------------------------------------------

    def pending_batch(self, max_count: int, max_bytes: int, after_seq: int = 0) -> list[Tx]:
        """Oldest pending transactions with seq > after_seq, bounded in count and bytes."""
        rows = self.query(
            "SELECT id, seq, type, at, data, clock FROM transactions "
            "WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
            (after_seq, max_count),
        )
        batch: list[Tx] = []
        size = 0
        for row in rows:
            size += len(row["data"]) + 120
            if batch and size > max_bytes:
                break
            batch.append(Tx(id=row["id"], seq=row["seq"], cart=self.cart_id, type=row["type"],
                            at=row["at"], data=json.loads(row["data"]), clock=row["clock"]))
        return batch

    def mark_synced(self, ids: list[str]) -> int:
        """Mark acked ids synced; unknown or already-synced ids are ignored. Returns the count."""
        if not ids:
            return 0
        now = rfc3339(self.clock())
        changed = 0
        with self.write() as w:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                cur = w.execute(
                    f"UPDATE transactions SET state = 'synced', synced_at = ? "
                    f"WHERE state = 'pending' AND id IN ({marks})",
                    (now, *chunk),
                )
                changed += cur.rowcount
            if changed:
                w.execute("INSERT INTO meta(key, value) VALUES ('last_sync_at', ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (now,))
        return changed

    def queue_stats(self) -> dict[str, Any]:
        row = self.query(
            "SELECT (SELECT COUNT(*) FROM transactions WHERE state = 'pending') AS pending, "
            "(SELECT COUNT(*) FROM transactions WHERE state = 'synced') AS synced, "
            "(SELECT at FROM transactions WHERE state = 'pending' ORDER BY seq LIMIT 1) AS oldest"
        )[0]
        oldest = row["oldest"]
        age = max(0.0, self.clock() - parse_rfc3339(oldest)) if oldest else 0.0
        return {"pending": row["pending"], "synced": row["synced"],
                "oldest_pending_s": round(age, 1)}

    def get_tx(self, tx_id: str) -> Tx | None:
        rows = self.query("SELECT id, seq, type, at, data, state, clock FROM transactions "
                          "WHERE id = ?", (tx_id,))
        if not rows:
            return None
        r = rows[0]
        return Tx(id=r["id"], seq=r["seq"], cart=self.cart_id, type=r["type"], at=r["at"],
                  data=json.loads(r["data"]), state=r["state"], clock=r["clock"])

    def prune(self, retention_days: int) -> int:
        """Delete synced rows older than the retention; pending rows are never pruned."""
        cutoff = rfc3339(self.clock() - retention_days * 86_400)
        with self.write() as w:
            return w.execute(
                "DELETE FROM transactions WHERE state = 'synced' AND synced_at < ? "
                "AND seq < (SELECT MAX(seq) FROM transactions)", (cutoff,)
            ).rowcount

    # --- small key/value facts (last sync, deposit session, ...) ----------------------

    def get_meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str | None) -> None:
        with self.write() as w:
            if value is None:
                w.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                w.execute("INSERT INTO meta(key, value) VALUES (?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


__all__ = ["Store", "StoreError", "Tx", "Writer"]
