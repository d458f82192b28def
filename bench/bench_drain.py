"""Drain a backlog through the real outbox, broker and ingest, against raw QoS 1 publishing.

    python bench/bench_drain.py [--quick]

1. durable drain: N pending transactions in a real Store (WAL, synchronous=FULL) go through
   SyncService -> Mosquitto -> `cart-fleet ingest` (a separate process, SQLite, commit before
   ack) -> tx/ack -> Store.mark_synced, until every row is synced.
2. raw publish: the same N transactions, one QoS 1 message each, from a bare paho client with
   no database at all, until every PUBACK is in.

The target is drain >= raw: batching must pay for durability (FACTS.md: ~22k msg/s raw).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from agent.config import AgentConfig  # noqa: E402
from agent.store import Store  # noqa: E402
from agent.sync.service import SyncService  # noqa: E402
from tests.mqtt_broker import MosquittoBroker  # noqa: E402


def _no_delay(_client: object, _userdata: object, sock: object) -> None:
    if isinstance(sock, socket.socket):  # a websocket or TLS wrapper keeps its own setting
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

CART = "bench-01"


def fill(store: Store, n: int) -> None:
    for start in range(0, n, 2000):
        with store.write() as w:
            for i in range(start, min(n, start + 2000)):
                w.append("meal.pickup", {"order": f"A-{i}", "items": ["米饭", "青菜"],
                                         "name": "张三", "compartment": "A01"})


def start_ingest(port: int, db: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fleet.cli", "ingest", "--port", str(port), "--db",
         str(db)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "subscribed" in line:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep it drained
            return proc
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("ingest did not start")


def durable_drain(tmp: Path, port: int, n: int) -> float:
    cfg = AgentConfig.model_validate({
        "cart_id": CART, "data_dir": str(tmp / "cart"),
        "mqtt": {"host": "127.0.0.1", "port": port, "telemetry_interval_s": 3600}})
    store = Store(cfg.db_path, CART)
    fill(store, n)
    ingest = start_ingest(port, tmp / "ingest.db")
    stop = threading.Event()
    service = SyncService(cfg, str(tmp / "unused.toml"), store, health_snapshot=dict,
                          command_handler=lambda _n, _a: None, hand_over=lambda _c: None,
                          started_at=time.time())
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    try:
        started = time.perf_counter()
        thread.start()
        while store.queue_stats()["pending"]:
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join(10)
        store.close()
        ingest.terminate()
        ingest.wait(10)
    return elapsed


def raw_publish(port: int, n: int, payloads: list[bytes]) -> float:
    done = threading.Event()
    acked = [0]
    # paho queues every publish() under a 16-bit packet id: with more than 65,535 queued at
    # once ids collide and messages vanish (measured: stuck at 65,635 of 100,000). Keep a
    # bounded backlog, far above the in-flight window so paho never waits for us.
    room = threading.Semaphore(2000)

    def on_publish(*_a: Any) -> None:
        acked[0] += 1
        room.release()
        if acked[0] >= n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_publish = on_publish
    client.max_inflight_messages_set(100)  # the best window measured (FACTS.md)
    client.on_socket_open = _no_delay
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        started = time.perf_counter()
        for i in range(n):
            room.acquire()
            client.publish("bench/raw", payloads[i % len(payloads)], qos=1)
        if not done.wait(300):
            raise RuntimeError(f"only {acked[0]} of {n} PUBACKs")
        return time.perf_counter() - started
    finally:
        client.disconnect()
        client.loop_stop()


def run(quick: bool = False) -> list[dict[str, Any]]:
    n = 5_000 if quick else 100_000
    logging.getLogger("agent").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-drain-") as name:
        tmp = Path(name)
        with MosquittoBroker(tmp / "broker") as broker:
            drain_s = durable_drain(tmp, broker.port, n)
            # The same transactions, one per message (they are all synced by now).
            sample = Store(tmp / "cart" / "cart.db", CART)
            rows = sample.query("SELECT id, seq, type, at, data FROM transactions LIMIT 100")
            sample.close()
            payloads = [json.dumps({"cart": CART, "txs": [{**r, "cart": CART,
                                                          "data": json.loads(r["data"])}]},
                                   ensure_ascii=False).encode() for r in rows]
            raw_s = raw_publish(broker.port, n, payloads)
    drain_rate, raw_rate = n / drain_s, n / raw_s
    return [
        {"name": "drain_durable", "value": round(drain_rate), "unit": "rows/s", "rows": n,
         "seconds": round(drain_s, 3), "baseline": "raw QoS 1, 1 msg/tx",
         "baseline_value": round(raw_rate), "ratio": round(drain_rate / raw_rate, 2),
         "target": "ratio >= 1", "ok": drain_rate >= raw_rate,
         "path": "Store -> SyncService -> mosquitto -> ingest (SQLite, commit) -> ack -> "
                 "mark_synced"},
        {"name": "raw_qos1_publish", "value": round(raw_rate), "unit": "rows/s", "rows": n,
         "seconds": round(raw_s, 3), "path": "paho QoS 1, one message per tx, no database"},
    ]

if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
