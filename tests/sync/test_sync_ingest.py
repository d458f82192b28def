"""The reference ingest: shared subscription across workers, PostgreSQL, bad input, duplicates;
and the cart against another broker (amqtt, MQTT 3.1.1 only)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import pytest

from agent.contract import parse_rfc3339
from fleet.ingest import IngestWorker
from tests.mqtt_broker import AmqttBroker
from tests.postgres_cluster import PostgresCluster, postgres_cluster
from tests.support import wait_for
from tests.sync.synckit import CART, PREFIX

ACK = f"{PREFIX}/{CART}/tx/ack"


def test_two_workers_share_the_load_and_store_each_tx_once(
        tmp_path, broker, make_cart, make_ingest):
    db = str(tmp_path / "shared.db")
    first = make_ingest(broker.port, db=db, client_id="ingest-a")
    second = make_ingest(broker.port, db=db, client_id="ingest-b")
    cart = make_cart(broker.port, batch_max_count=10).start()
    cart.wait_online()
    ids = cart.record(1000)
    wait_for(lambda: cart.pending() == 0, 30, what="all acks")
    assert first.count() == 1000
    assert set(first.storage.ids()) == set(ids)
    assert first.stats.messages > 0, (first.stats, second.stats)
    assert second.stats.messages > 0, (first.stats, second.stats)
    assert first.stats.stored + second.stats.stored == 1000


def test_ingest_drops_bad_payloads_and_keeps_going(broker, make_ingest, make_watcher):
    ingest = make_ingest(broker.port)
    watcher = make_watcher(broker.port, [ACK])
    good = {"id": "01J0000000000000000000000A", "seq": 1, "cart": CART, "type": "ticket.issue",
            "at": "2024-06-11T08:00:00.000Z", "data": {"number": 1}}
    topic = f"{PREFIX}/{CART}/tx"
    bad_messages = [
        b"not json", b"[]", b'{"cart": "bc-01"}', json.dumps({"cart": "bc-02", "txs": [good]}),
        json.dumps({"cart": CART, "txs": []}), json.dumps({"cart": CART, "txs": "x"}),
        b"[" * 10_000 + b"]" * 10_000,
    ]
    for payload in bad_messages:
        watcher.publish(topic, payload)
    bad_txs = [{**good, "id": "nope"}, {**good, "seq": 0}, {**good, "seq": True},
               {**good, "at": "yesterday"}, {**good, "data": []}, {**good, "extra": 1},
               {**good, "cart": "bc-02"}]
    watcher.publish(topic, json.dumps({"cart": CART, "txs": [*bad_txs, good]}))
    ack = watcher.wait_for(ACK)
    assert ack["ids"] == [good["id"]]
    # The ingest's clock rides on every ack: evidence of the time for the cart.
    assert abs(parse_rfc3339(ack["at"]) - time.time()) < 60
    assert ingest.stats.bad == len(bad_messages) + len(bad_txs)
    assert ingest.count() == 1
    # A duplicate is stored once and acknowledged again.
    watcher.publish(topic, json.dumps({"cart": CART, "txs": [good]}))
    wait_for(lambda: len(watcher.on(ACK)) == 2, 5, what="the second ack")
    assert ingest.count() == 1
    assert ingest.stats.duplicates == 1


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


def test_postgresql_ingest(pg, broker, make_cart, make_watcher):
    table = f"cart_tx_{uuid.uuid4().hex[:10]}"
    worker = IngestWorker("127.0.0.1", broker.port, PREFIX, pg.url, table=table).start()
    try:
        watcher = make_watcher(broker.port, [ACK])
        cart = make_cart(broker.port, batch_max_count=50).start()
        cart.wait_online()
        ids = cart.record(300)
        wait_for(lambda: cart.pending() == 0, 20, what="acks from the PostgreSQL ingest")
        assert worker.count() == 300
        acked = {i for doc in watcher.on(ACK) for i in doc["ids"]}
        assert acked == set(ids)
        with worker.storage.conn.cursor() as cur:
            cur.execute(f"SELECT data->>'number', seq FROM {table} ORDER BY seq LIMIT 1")
            assert cur.fetchone() == ("0", 1)
        worker.storage.conn.commit()
    finally:
        worker.storage.drop()
        worker.stop()


def test_outbox_and_acks_over_mqtt311_with_amqtt(tmp_path, make_cart):
    amqtt = AmqttBroker(tmp_path).start()
    try:
        worker = IngestWorker("127.0.0.1", amqtt.port, PREFIX, str(tmp_path / "a.db"),
                              shared=False, protocol="auto").start()
        try:
            assert not worker.client.mqtt5  # amqtt refused MQTT 5; 3.1.1 it is
            cart = make_cart(amqtt.port, batch_max_count=20).start()
            ids = cart.record(100)
            cart.wait_online(15)
            wait_for(lambda: cart.pending() == 0, 20, what="acks through amqtt")
            assert cart.service.health.snapshot()["protocol"] == "3.1.1"
            assert set(worker.storage.ids()) == set(ids)
        finally:
            worker.stop()
    finally:
        amqtt.close()


def test_shared_subscription_over_mqtt311_on_mosquitto(tmp_path, broker, make_cart):
    # Mosquitto honours $share in 3.1.1 too: the probe proves it and the load is shared.
    db = str(tmp_path / "311.db")
    workers = [IngestWorker("127.0.0.1", broker.port, PREFIX, db, protocol="3.1.1",
                            client_id=f"old-{i}").start() for i in range(2)]
    try:
        assert not any(w.client.mqtt5 for w in workers)
        cart = make_cart(broker.port, batch_max_count=5).start()
        cart.wait_online()
        ids = cart.record(200)
        wait_for(lambda: cart.pending() == 0, 30, what="acks over 3.1.1")
        assert set(workers[0].storage.ids()) == set(ids)
        assert all(w.stats.messages > 0 for w in workers)
    finally:
        for w in workers:
            w.stop()
