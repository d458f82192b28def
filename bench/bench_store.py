"""Durable single-transaction commits: the store against raw sqlite3 with the same pragmas.

Both sides do the same work per commit (one row, WAL, synchronous=FULL, BEGIN IMMEDIATE), so
the ratio shows what the store's own code costs (seq counter, ULID, JSON, lock).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from agent.store import Store


def _raw(path: Path, n: int) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id TEXT PRIMARY KEY, seq INTEGER UNIQUE, type TEXT, at TEXT, "
                 "data TEXT, state TEXT)")
    conn.execute("CREATE INDEX t_pending ON t(seq) WHERE state = 'pending'")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (?, ?, 'ticket.issue', '2026-01-01T00:00:00Z', ?, "
                     "'pending')", (f"{i:026d}", i, json.dumps({"service": "gov", "number": i})))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def _store(path: Path, n: int) -> float:
    store = Store(path, "bench")
    start = time.perf_counter()
    for i in range(n):
        store.record("ticket.issue", {"service": "gov", "number": i})
    elapsed = time.perf_counter() - start
    store.close()
    return n / elapsed


def run(quick: bool = False) -> list[dict[str, object]]:
    n = 500 if quick else 5000
    rounds = 1 if quick else 3
    raw_rates, store_rates = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):  # interleaved, so disk noise hits both sides alike
            raw_rates.append(_raw(Path(tmp) / f"raw{r}.db", n))
            store_rates.append(_store(Path(tmp) / f"store{r}.db", n))
    raw, ours = sorted(raw_rates)[len(raw_rates) // 2], sorted(store_rates)[len(store_rates) // 2]
    return [{
        "name": "durable commits (1 tx each, WAL+FULL)",
        "value": round(ours), "unit": "commits/s",
        "baseline": "raw sqlite3, same pragmas and row", "baseline_value": round(raw),
        "ratio": round(ours / raw, 2), "target": ">= 0.8",
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
