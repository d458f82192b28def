"""Fixtures for the sync tests: a real Mosquitto per test on a free port, carts, watchers,
ingest workers; all torn down after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from fleet.ingest import IngestWorker
from tests.mqtt_broker import MosquittoBroker
from tests.support import write_config
from tests.sync.synckit import PREFIX, Cart, Watcher, cart_document


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker").start()
    yield b
    b.close()


@pytest.fixture
def make_cart(tmp_path: Path) -> Iterator[Callable[..., Cart]]:
    carts: list[Cart] = []

    def make(port: int, fail_on_config: bool = False, extra: dict[str, Any] | None = None,
             **mqtt_overrides: Any) -> Cart:
        path = tmp_path / "agent.toml"
        if not path.exists():
            write_config(path, cart_document(tmp_path / "data", port, extra, **mqtt_overrides))
        cart = Cart(path, fail_on_config=fail_on_config)
        carts.append(cart)
        return cart

    yield make
    for cart in carts:
        cart.close()


@pytest.fixture
def make_watcher() -> Iterator[Callable[..., Watcher]]:
    watchers: list[Watcher] = []

    def make(port: int, topics: list[str], protocol: int = mqtt.MQTTv5) -> Watcher:
        w = Watcher(port, topics, protocol)
        watchers.append(w)
        return w

    yield make
    for w in watchers:
        w.close()


@pytest.fixture
def make_ingest(tmp_path: Path) -> Iterator[Callable[..., IngestWorker]]:
    workers: list[IngestWorker] = []

    def make(port: int, db: str | None = None, **kwargs: Any) -> IngestWorker:
        worker = IngestWorker("127.0.0.1", port, PREFIX, db or str(tmp_path / "ingest.db"),
                              **kwargs).start()
        workers.append(worker)
        return worker

    yield make
    for w in workers:
        w.stop()
