"""The transaction store on real SQLite files: gapless seq, durability, retention, full disk."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agent.store import Store, StoreFullError
from tests.support import Mounted, can_mount

REPO = Path(__file__).resolve().parents[1]


def seqs(store: Store) -> list[int]:
    return [r["seq"] for r in store.query("SELECT seq FROM transactions ORDER BY seq")]


def test_pragmas_and_schema(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", "bc-01")
    assert store.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    assert store.query("PRAGMA synchronous")[0]["synchronous"] == 2  # FULL
    assert store.query("PRAGMA user_version")[0]["user_version"] >= 1
    tx = store.record("ticket.issue", {"service": "gov", "number": 1, "名": "张三"})
    assert tx.seq == 1
    assert len(tx.id) == 26
    assert tx.at.endswith("Z")
    assert store.get_tx(tx.id) == tx
    wire = tx.wire()
    assert wire == {"id": tx.id, "seq": 1, "cart": "bc-01", "type": "ticket.issue",
                    "at": tx.at, "data": {"service": "gov", "number": 1, "名": "张三"}}


def test_seq_gapless_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    for _round in range(3):
        store = Store(path, "bc-01")
        for i in range(5):
            store.record("x", {"i": i})
        store.close()
    assert seqs(Store(path, "bc-01")) == list(range(1, 16))


def test_failed_transaction_consumes_no_seq(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", "bc-01")
    store.record("x", {})
    def changed_its_mind() -> None:
        with store.write() as w:
            w.append("x", {})
            raise RuntimeError("the flow changed its mind")

    with pytest.raises(RuntimeError, match="changed its mind"):
        changed_its_mind()
    store.record("x", {})
    assert seqs(store) == [1, 2]


WRITER = """
import sys
from agent.store import Store
store = Store(sys.argv[1], "bc-01")
for i in range(int(sys.argv[2])):
    tx = store.record("x", {"writer": sys.argv[3], "i": i})
    print(tx.seq, flush=True)
"""


def test_seq_gapless_with_concurrent_threads_and_processes(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    store = Store(path, "bc-01")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), "150", f"p{n}"],
                              cwd=REPO, stdout=subprocess.DEVNULL) for n in range(2)]

    def writer() -> None:
        for i in range(150):
            store.record("x", {"writer": threading.current_thread().name, "i": i})

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for p in procs:
        assert p.wait(timeout=60) == 0
    assert seqs(store) == list(range(1, 751))


def test_commit_survives_kill_9_of_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    rng = random.Random(7)
    acknowledged: list[int] = []
    for _kill in range(5):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "100000", "k"],
                                cwd=REPO, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for _ in range(rng.randint(5, 200)):
            acknowledged.append(int(proc.stdout.readline()))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    found = seqs(Store(path, "bc-01"))
    assert set(acknowledged) <= set(found)        # everything reported committed is there
    assert found == list(range(1, len(found) + 1))  # and no gap, whatever was cut off


def test_outbox_batches_and_acks(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", "bc-01")
    txs = [store.record("x", {"pad": "y" * 100, "i": i}) for i in range(50)]
    batch = store.pending_batch(max_count=20, max_bytes=1_000_000)
    assert [t.seq for t in batch] == list(range(1, 21))
    small = store.pending_batch(max_count=100, max_bytes=1500)
    assert 1 <= len(small) < 20
    assert store.pending_batch(10, 10**6, after_seq=45)[0].seq == 46
    assert store.mark_synced([t.id for t in txs[:10]] + ["01UNKNOWN", txs[0].id]) == 10
    assert store.mark_synced([t.id for t in txs[:10]]) == 0  # a repeated ack changes nothing
    stats = store.queue_stats()
    assert stats["pending"] == 40
    assert stats["synced"] == 10
    assert store.pending_batch(5, 10**6)[0].seq == 11
    assert store.get_meta("last_sync_at") is not None


def test_retention_prunes_only_old_synced_rows(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    store = Store(tmp_path / "c.db", "bc-01", clock=lambda: now[0])
    old = [store.record("x", {"i": i}) for i in range(10)]
    store.mark_synced([t.id for t in old[:5]])
    now[0] += 40 * 86400
    recent = store.record("x", {})
    store.mark_synced([recent.id])
    assert store.prune(retention_days=30) == 5
    left = seqs(store)
    assert left == [6, 7, 8, 9, 10, 11]          # pending old rows stay, the recent synced too
    assert store.record("x", {}).seq == 12       # seq keeps counting after a prune


@pytest.mark.skipif(not can_mount(), reason="a small tmpfs needs root to mount")
def test_full_disk_refuses_cleanly_and_keeps_committed(tmp_path: Path) -> None:
    mount = Mounted(tmp_path / "small", size="600k")
    try:
        store = Store(mount.path / "c.db", "bc-01")
        committed: list[int] = []

        def fill() -> None:
            for i in range(100_000):
                committed.append(store.record("x", {"pad": "z" * 500, "i": i}).seq)

        with pytest.raises(StoreFullError):
            fill()
        assert len(committed) > 10
        # the store is still usable for reads, and everything committed is intact
        assert seqs(store)[: len(committed)] == committed
        assert store.query("PRAGMA integrity_check")[0]["integrity_check"] == "ok"
        mount.remount("8m")
        tx = store.record("x", {"after": "space returned"})
        assert tx.seq == committed[-1] + 1
        store.close()
    finally:
        mount.close()


def test_ulids_sort_by_time_and_stay_monotonic() -> None:
    from agent.contract import is_ulid
    from agent.ids import new_ulid

    same_ms = [new_ulid(now_ms=1_800_000_000_000) for _ in range(200)]
    assert same_ms == sorted(same_ms)
    assert len(set(same_ms)) == 200
    later = new_ulid(now_ms=1_800_000_000_001)
    assert later > same_ms[-1]
    assert all(is_ulid(u) for u in [*same_ms, later])
    assert new_ulid(now_ms=5) >= later  # a clock stepping back never breaks the order


def test_lone_surrogates_are_stored_as_valid_utf8_and_can_be_published(tmp_path: Path) -> None:
    from agent.sync.outbox import encode_batch

    store = Store(tmp_path / "c.db", "bc-01")
    hostile = {"text": "a\ud800b", "\udfff": ["\ud83d", "ok 中文"], "pair": "😀"}
    tx = store.record("scan.rejected", hostile)
    store.set_meta("note", "x\udc80")
    with store.write() as w:
        w.execute("INSERT INTO used_tokens(jti, used_at, tx_id, svc) VALUES (?, ?, ?, ?)",
                  ("j\ud800", tx.at, tx.id, "ticket"))
    for table, column in (("transactions", "data"), ("meta", "value"), ("used_tokens", "jti")):
        for (blob,) in store.conn.execute(f"SELECT CAST({column} AS BLOB) FROM {table}"):
            blob.decode("utf-8")
    # the same escaped text finds the row again: a lookup of the hostile jti still matches
    assert store.query("SELECT 1 FROM used_tokens WHERE jti = ?", ("j\ud800",))
    batch = store.pending_batch(10, 65536)
    payload, count = encode_batch("bc-01", batch, 65536)
    assert count == 1
    data = json.loads(payload.decode("utf-8"))["txs"][0]["data"]
    assert data == {"text": "a\\ud800b", "\\udfff": ["\\ud83d", "ok 中文"], "pair": "😀"}


def test_a_store_from_a_newer_release_is_refused_untouched(tmp_path: Path) -> None:
    """Forward-only migrations: an older agent (a rollback) refuses a newer schema, clearly,
    and changes nothing in the file."""
    import sqlite3

    from agent.store.errors import StoreRefused
    from agent.store.schema import SCHEMA_VERSION

    path = tmp_path / "cart.db"
    Store(path, "bc-test", guard=False).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreRefused, match=rf"schema {SCHEMA_VERSION + 1}, newer"):
        Store(path, "bc-test", guard=False)
    assert path.read_bytes() == before
