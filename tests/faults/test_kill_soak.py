"""kill -9 of the agent at random moments during a stream of scans and syncs, then accounting
at the ingest: every committed transaction stored exactly once, seq without gaps, no door
opened twice. Short form here; FAULTS_LONG=1 for 500 kills."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fleet.ingest import IngestWorker
from tests.faults.conftest import scale
from tests.faults.harness import FaultCart, drain_and_account, no_door_opened_twice
from tests.faults.lossy_proxy import LossyProxy
from tests.mqtt_broker import MosquittoBroker


class ScanStream:
    """Scans arrive whether or not the agent is alive (a scan while it is dead is lost at the
    scanner, which is fine: nothing was committed for it)."""

    def __init__(self, cart: FaultCart, seed: int) -> None:
        self.cart = cart
        self.rng = random.Random(seed)
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        issuer, sim = self.cart.issuer, self.cart.sim
        while not self.stop.wait(self.rng.uniform(0.005, 0.05)):
            kind = self.rng.random()
            if kind < 0.5:
                code = issuer.token("ticket", service=self.rng.choice(["gov", "bills"]))
            elif kind < 0.8:
                code = issuer.token("meal", order=f"M{self.sent}", items=["饭"],
                                    compartment="B01")
            else:
                code = self.rng.choice(["garbage!", "eyJ.broken.token", "SF0000000001"])
            sim.scanner.scan(code)
            self.sent += 1
            if self.rng.random() < 0.3 and not sim.locker.door_closed(sim.address("B01")):
                sim.close_door("B01")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


@contextmanager
def fleet(tmp_path: Path, proxy_seed: int, stream_seed: int,
          **link: Any) -> Iterator[tuple[MosquittoBroker, LossyProxy, IngestWorker, FaultCart,
                                         ScanStream]]:
    """Broker, a lossy link in front of it, the ingest, a cart process and a scan stream."""
    broker = MosquittoBroker(tmp_path / "broker").start()
    proxy = LossyProxy(broker.port, seed=proxy_seed, **link)
    ingest = IngestWorker(port=broker.port, db_url=str(tmp_path / "ingest.db")).start()
    cart = FaultCart(tmp_path, proxy.port)
    stream = ScanStream(cart, seed=stream_seed)
    try:
        yield broker, proxy, ingest, cart, stream
    finally:
        stream.close()
        cart.close()
        ingest.stop()
        proxy.close()
        broker.close()


@pytest.mark.timeout(scale(240, 3600))
def test_kill_9_soak_with_broker_and_ingest(tmp_path: Path) -> None:
    kills = scale(12, 500)
    rng = random.Random(2026)
    with fleet(tmp_path, 3, 7, delay_ms=(0, 20), drop_per_chunk=0.02) as (
            _broker, proxy, ingest, cart, stream):
        for _ in range(kills):
            cart.start()
            time.sleep(rng.uniform(0.2, 1.2))
            cart.kill9()
        stream.close()
        cart.start()
        totals = drain_and_account(cart, ingest, tmp_path / "ingest.db", "the last restart")
        openings = no_door_opened_twice(cart)
        assert totals["transactions"] > kills  # the stream really produced work between kills
        print(f"\nkill soak: {cart.kills} kills, {stream.sent} scans sent, "
              f"{totals['transactions']} transactions stored once each, {openings} openings, "
              f"{proxy.drops} link drops")


@pytest.mark.timeout(scale(240, 1200))
@pytest.mark.parametrize("fault", ["stop", "kill", "cut_link", "stall_link"])
def test_broker_and_link_faults_mid_stream(tmp_path: Path, fault: str) -> None:
    with fleet(tmp_path, 5, 11, delay_ms=(0, 30)) as (broker, proxy, ingest, cart, stream):
        cart.start()
        for _ in range(scale(2, 10)):
            time.sleep(1.0)
            if fault == "stop":
                broker.stop()
                time.sleep(1.5)
                broker.start()
            elif fault == "kill":
                broker.kill()                # its in-memory queue is lost; the outbox is not
                time.sleep(1.5)
                broker.start()
            elif fault == "cut_link":
                proxy.cut_all()
            else:
                proxy.stalled = True         # packets vanish without a reset
                time.sleep(6.0)
                proxy.stalled = False
        stream.close()
        totals = drain_and_account(cart, ingest, tmp_path / "ingest.db", fault)
        assert totals["transactions"] > 10
        no_door_opened_twice(cart)
