"""The ingest's PostgreSQL schema: versions, forward-only migrations, indexes, COPY batches."""

from __future__ import annotations

import threading

import psycopg
import pytest

from fleet.schema import LATEST, VERSION_TABLE, migrate
from fleet.storage import StorageError, open_storage
from fleet.storage_pg import PostgresStorage

ROW = ("01J0000000000000000000000A", "bc-01", 1, "meal.pickup", "2026-12-02T10:00:00.000Z",
       '{"items": ["米饭", "青菜"], "note": "tab\\there, \\\\ backslash, \\"quote\\""}')
NOW = "2026-12-02T10:00:01.000Z"


def indexes(url: str, table: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])}


def test_fresh_database_gets_every_migration_and_the_indexes(pg):
    url = pg.create_database("fresh")
    storage = open_storage(url)
    try:
        assert isinstance(storage, PostgresStorage)
        with psycopg.connect(url) as conn:
            versions = [r[0] for r in conn.execute(
                f"SELECT version FROM {VERSION_TABLE} WHERE table_name = 'cart_transactions' "
                "ORDER BY version")]
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = "
                "'cart_transactions' ORDER BY ordinal_position")]
        assert versions == list(range(1, LATEST + 1))
        assert columns == ["id", "cart", "seq", "type", "at", "data", "received_at", "clock"]
        assert {"cart_transactions_pkey", "cart_transactions_cart_seq",
                "cart_transactions_type_at", "cart_transactions_at",
                "cart_transactions_received_brin"} <= indexes(url, "cart_transactions")
    finally:
        storage.close()


def test_a_table_from_before_versions_is_adopted_and_its_rows_kept(pg):
    url = pg.create_database("old")
    with psycopg.connect(url) as conn:  # what the ingest created before this schema
        conn.execute("CREATE TABLE cart_transactions (id TEXT PRIMARY KEY, cart TEXT NOT NULL, "
                     "seq BIGINT NOT NULL, type TEXT NOT NULL, at TIMESTAMPTZ NOT NULL, "
                     "data JSONB NOT NULL, received_at TIMESTAMPTZ NOT NULL)")
        conn.execute("INSERT INTO cart_transactions VALUES ('x', 'bc-01', 1, 't', now(), '{}', "
                     "now())")
    storage = PostgresStorage(url)
    try:
        assert storage.count() == 1
        assert "cart_transactions_cart_seq" in indexes(url, "cart_transactions")
    finally:
        storage.close()


def test_a_newer_schema_is_refused(pg):
    url = pg.create_database("newer")
    PostgresStorage(url).close()
    with psycopg.connect(url) as conn:
        conn.execute(f"INSERT INTO {VERSION_TABLE}(table_name, version, description) "
                     f"VALUES ('cart_transactions', {LATEST + 1}, 'from the future')")
    with pytest.raises(StorageError, match="newer than this ingest knows"):
        PostgresStorage(url)


def test_workers_starting_together_migrate_once(pg):
    url = pg.create_database("race")
    errors: list[Exception] = []
    applied: list[list[int]] = []

    def start() -> None:
        try:
            with psycopg.connect(url) as conn:
                applied.append(migrate(conn, "cart_transactions"))
        except Exception as exc:  # noqa: BLE001 - collected: a race shows up as an error here
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert sorted(v for a in applied for v in a) == list(range(1, LATEST + 1))


def test_copy_batches_store_once_and_keep_the_bytes(pg):
    url = pg.create_database("copy")
    storage = PostgresStorage(url)
    try:
        other = ("01J0000000000000000000000B", "bc-01", 2, "ticket.issue",
                 "2026-12-02T10:00:00.500+08:00", "{}", "corrected")
        # The same id twice in one batch (a resend merged into one pull) is stored once.
        assert storage.store([ROW, other, ROW], NOW) == 2
        assert storage.store([ROW], NOW) == 0
        with psycopg.connect(url) as conn:
            data, at, clock = conn.execute(
                "SELECT data, at, clock FROM cart_transactions WHERE id = %s",
                [other[0]]).fetchone()  # type: ignore[misc]
            first = conn.execute("SELECT data, clock FROM cart_transactions WHERE id = %s",
                                 [ROW[0]]).fetchone()
        assert clock == "corrected"  # the cart's trusted clock dated it
        assert first is not None
        assert first[1] is None  # a record dated by the wall clock says nothing
        assert first[0]["items"] == ["米饭", "青菜"]
        assert first[0]["note"] == 'tab\there, \\ backslash, "quote"'
        assert at.isoformat() == "2026-12-02T02:00:00.500000+00:00"
        assert data == {}
        # A bad row fails the whole batch: nothing of it is stored (and so nothing acked).
        bad = ("01J0000000000000000000000C", "bc-01", 3, "t", "not a time", "{}")
        with pytest.raises(StorageError):
            storage.store([("01J0000000000000000000000D", "bc-01", 4, "t", NOW, "{}"), bad],
                          NOW)
        assert storage.count() == 2
        # The connection is usable again after the failed batch.
        assert storage.store([("01J0000000000000000000000D", "bc-01", 4, "t", NOW, "{}")],
                             NOW) == 1
    finally:
        storage.close()


def test_database_restart_is_survived(pg):
    url = pg.create_database("restart")
    storage = PostgresStorage(url)
    try:
        pg.stop()
        with pytest.raises(StorageError):
            storage.store([ROW], NOW)
        pg.start()
        assert storage.store([ROW], NOW) == 1  # reconnected, staging table made again
    finally:
        storage.close()
