"""The MQTT ingest proves its subscription at start: a broker that grants `$share/...` and
never serves it (NATS 2.9's MQTT front end, like RabbitMQ 3.10) makes it exit with a clear
error instead of leaving every cart pending with nothing logged."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fleet.client import FleetError
from fleet.ingest import IngestWorker
from tests.mqtt_broker import MosquittoBroker
from tests.support import wait_for
from tests.sync.synckit import Watcher

REPO = Path(__file__).resolve().parents[2]


def test_ingest_exits_when_the_shared_subscription_is_never_served(nats, tmp_path):
    db = tmp_path / "ingest.db"
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "fleet.cli", "ingest", "--port",
                          str(nats.mqtt_ports[0]), "--db", str(db), "--probe-timeout", "2"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1, out.stderr
    assert "delivered nothing" in out.stderr
    assert "$share/ingest/carts/+/tx" in out.stderr
    assert "--transport nats" in out.stderr
    assert "Traceback" not in out.stderr
    assert time.monotonic() - started < 30


def test_a_plain_subscription_on_nats_passes_the_probe(nats, tmp_path):
    # Without $share, NATS serves the subscription: the probe comes back.
    worker = IngestWorker(port=nats.mqtt_ports[1], db_url=str(tmp_path / "i.db"),
                          shared=False, probe_timeout_s=10).start()
    worker.stop()


def test_probe_is_answered_by_whichever_worker_gets_it(tmp_path):
    with MosquittoBroker(tmp_path / "broker") as broker:
        watcher = Watcher(broker.port, ["carts/_probe/tx", "carts/_probe/tx/ack"])
        workers = [IngestWorker(port=broker.port, db_url=str(tmp_path / "i.db"),
                                client_id=f"w{i}").start() for i in range(3)]
        try:
            def seen(topic: str) -> set[str]:
                return {json.loads(p)["probe"] for t, p, _r in list(watcher.messages)
                        if t == topic}

            # Each worker saw its answer; the watcher hears it through the broker a moment later.
            wait_for(lambda: len(seen("carts/_probe/tx")) == 3
                     and seen("carts/_probe/tx") <= seen("carts/_probe/tx/ack"),
                     what="every probe and its answer at the watcher")
            # Nothing of the probe reaches the database or the stats.
            assert all(w.count() == 0 and w.stats.messages == 0 for w in workers)
            # A forged probe with garbage is ignored, not stored, not fatal.
            watcher.publish("carts/_probe/tx", b"\xff not json")
            watcher.publish("carts/_probe/tx", json.dumps({"probe": ["x"] * 5}))
            time.sleep(0.3)
            assert all(w.stats.bad == 0 for w in workers)
        finally:
            for w in workers:
                w.stop()
            watcher.close()


def test_probe_timeout_raises_fleet_error(nats, tmp_path):
    worker = IngestWorker(port=nats.mqtt_ports[2], db_url=str(tmp_path / "i.db"),
                          probe_timeout_s=1.0)
    with pytest.raises(FleetError, match="does not serve shared subscriptions"):
        worker.start()
    assert worker.client is None
    assert worker.storage is None
