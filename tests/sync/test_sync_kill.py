"""kill -9 of the cart: its last will says offline; killed at random points while writing and
sending, again and again, it still delivers every transaction exactly once in effect."""

from __future__ import annotations

import json
import random
import select
import subprocess
import sys
import time
from pathlib import Path

from agent.store import Store
from tests.support import wait_for, write_config
from tests.sync.synckit import CART, PREFIX, cart_document

CHILD = Path(__file__).with_name("cart_child.py")


def spawn(config: Path, write: bool = False) -> subprocess.Popen[str]:
    args = [sys.executable, str(CHILD), str(config)] + (["--write"] if write else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def wait_line(proc: subprocess.Popen[str], timeout_s: float) -> str | None:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline().strip() if ready else None


def test_last_will_says_offline_when_the_cart_dies(tmp_path, broker, make_watcher):
    config = write_config(tmp_path / "agent.toml", cart_document(tmp_path / "data", broker.port))
    status = f"{PREFIX}/{CART}/status"
    watcher = make_watcher(broker.port, [status])
    proc = spawn(config)
    try:
        assert wait_line(proc, 10) == "online"
        online = watcher.wait_for(status, lambda d: d["state"] == "online")
        assert set(online) == {"state", "since", "at", "agent_version", "config_version",
                               "fleet_config_version", "software", "clock"}
        assert set(online["clock"]) == {"source", "offset_s", "alarm"}
        proc.kill()
        proc.wait(5)
        offline = watcher.wait_for(status, lambda d: d["state"] == "offline", timeout_s=10)
        assert offline["agent_version"] == online["agent_version"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    # Retained: someone who looks later sees it too.
    late = make_watcher(broker.port, [status])
    assert late.wait_for(status)["state"] == "offline"


def test_killed_at_random_points_every_transaction_arrives_once(tmp_path, broker, make_ingest):
    rng = random.Random(20240611)
    config = write_config(tmp_path / "agent.toml", cart_document(
        tmp_path / "data", broker.port, ack_timeout_s=1.0, batch_max_count=50))
    ingest = make_ingest(broker.port)
    kills = 0
    onlines = 0
    # No overall time budget: each step has its own timeout, and a loaded machine is slow,
    # not wrong.
    while kills < 50:
        proc = spawn(config, write=True)
        try:
            if rng.random() < 0.25:
                time.sleep(rng.uniform(0.05, 0.35))  # during start-up: opening the store
            else:
                if wait_line(proc, 10) == "online":
                    onlines += 1
                time.sleep(rng.uniform(0.0, 0.4))  # writing and sending
        finally:
            proc.kill()
            proc.wait(5)
        kills += 1
    assert onlines >= 30

    # One last clean run without writing drains what is left.
    proc = spawn(config)
    try:
        assert wait_line(proc, 10) == "online"
        store = Store(tmp_path / "data" / "cart.db", CART)
        try:
            wait_for(lambda: store.queue_stats()["pending"] == 0, 30, what="the drain")
            rows = store.query("SELECT id, seq FROM transactions ORDER BY seq")
        finally:
            store.close()
    finally:
        proc.terminate()
        proc.wait(10)
    ids = [r["id"] for r in rows]
    assert len(ids) > 200
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1)), "seq has gaps"
    stored = ingest.storage.ids()
    assert len(stored) == len(set(stored))
    assert set(stored) == set(ids)
    assert ingest.stats.stored == len(ids), json.dumps(ingest.stats.__dict__, default=str)
