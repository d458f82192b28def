"""The NATS transport of the ingest: competing consumers of one durable JetStream consumer,
PostgreSQL commit first, then the JetStream ack and the cart's `tx/ack`."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.ids import new_ulid
from fleet.ingest_nats import NatsIngest, NatsOptions, parse_servers

CART = "bc-07"


def tx(seq: int) -> dict[str, Any]:
    return {"id": new_ulid(), "seq": seq, "cart": CART, "type": "ticket.issue",
            "at": "2026-12-02T10:00:00.000Z", "data": {"number": seq, "name": "张三"}}


class Cart:
    """A bare MQTT 3.1.1 client publishing batches and collecting acks with their times."""

    def __init__(self, port: int) -> None:
        self.acks: list[tuple[float, list[str]]] = []
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=CART, protocol=mqtt.MQTTv311)
        c.on_message = lambda _c, _u, m: self.acks.append((time.monotonic(),
                                                            json.loads(m.payload)["ids"]))
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        done = c.subscribe(f"carts/{CART}/tx/ack", 1)
        assert done[0] == 0
        time.sleep(0.5)

    def send(self, txs: list[dict[str, Any]]) -> None:
        payload = json.dumps({"cart": CART, "txs": txs}, ensure_ascii=False)
        self.client.publish(f"carts/{CART}/tx", payload, qos=1).wait_for_publish(10)

    def acked(self) -> set[str]:
        return {i for _t, ids in self.acks for i in ids}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _workers(nats: Any, db: str, n: int, batch: int = 500
                   ) -> tuple[list[NatsIngest], asyncio.Event, list[asyncio.Task[None]]]:
    stop = asyncio.Event()
    workers = [NatsIngest(NatsOptions(servers=nats.nats_urls, name=f"w{i}", ack_wait_s=5,
                                      batch=batch), db) for i in range(n)]
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    for w in workers:
        await asyncio.wait_for(w.ready.wait(), 20)
    return workers, stop, tasks


def test_two_workers_compete_and_store_each_tx_once(nats, pg):
    db = pg.create_database("compete")

    def publish_all(cart: Cart) -> set[str]:
        sent: set[str] = set()
        for start in range(0, 400, 4):
            batch = [tx(start + k + 1) for k in range(4)]
            sent |= {t["id"] for t in batch}
            cart.send(batch)
            if start == 200:  # the same batch again: a cart that missed its ack
                cart.send(batch)
            time.sleep(0.005)
        return sent

    async def scenario() -> tuple[list[NatsIngest], set[str], set[str]]:
        # Small pull batches, and the cart publishing from its own thread so the workers'
        # event loop keeps pulling: otherwise one worker's open request can take every
        # message that arrives while the other's has expired.
        workers, stop, tasks = await _workers(nats, db, 2, batch=8)
        cart = await asyncio.to_thread(Cart, nats.mqtt_ports[1])
        try:
            sent = await asyncio.to_thread(publish_all, cart)
            for _ in range(200):
                if cart.acked() >= sent:
                    break
                await asyncio.sleep(0.05)
            return workers, sent, cart.acked()
        finally:
            cart.close()
            stop.set()
            await asyncio.gather(*tasks)

    workers, sent, acked = asyncio.run(scenario())
    assert acked == sent
    assert all(w.stats.messages > 0 for w in workers), [w.stats for w in workers]
    assert sum(w.stats.stored for w in workers) == 400
    assert sum(w.stats.duplicates for w in workers) == 4
    import psycopg

    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT seq, data->>'name' FROM cart_transactions "
                            "WHERE cart = %s ORDER BY seq", [CART]).fetchall()
    assert [r[0] for r in rows] == list(range(1, 401))
    assert rows[0][1] == "张三"


def test_no_ack_before_the_commit(nats, pg):
    """With PostgreSQL down nothing is acknowledged; once it is back the redelivered
    message is stored and only then acked to JetStream and to the cart."""
    db = pg.create_database("down")

    async def scenario() -> None:
        workers, stop, tasks = await _workers(nats, db, 1)
        cart = await asyncio.to_thread(Cart, nats.mqtt_ports[0])
        try:
            first = tx(1)
            await asyncio.to_thread(pg.stop)
            cart.send([first])
            await asyncio.sleep(2.0)
            assert workers[0].stats.failed >= 1
            assert not cart.acks
            await asyncio.to_thread(pg.start)
            for _ in range(200):
                if cart.acks:
                    break
                await asyncio.sleep(0.05)
            assert cart.acked() == {first["id"]}
            import psycopg

            with psycopg.connect(db) as conn:
                stored = conn.execute("SELECT received_at FROM cart_transactions WHERE id = %s",
                                      [first["id"]]).fetchall()
            assert len(stored) == 1
        finally:
            cart.close()
            stop.set()
            await asyncio.gather(*tasks)

    asyncio.run(scenario())


def test_garbage_is_terminated_not_redelivered(nats, pg):
    db = pg.create_database("garbage")

    async def scenario() -> NatsIngest:
        workers, stop, tasks = await _workers(nats, db, 1)
        cart = await asyncio.to_thread(Cart, nats.mqtt_ports[2])
        try:
            for payload in (b"\xff\xfe", b"[]", b'{"cart": "bc-07", "txs": []}',
                            b"[" * 5000 + b"]" * 5000,
                            json.dumps({"cart": "bc-08", "txs": [tx(1)]}).encode()):
                cart.client.publish(f"carts/{CART}/tx", payload, qos=1).wait_for_publish(10)
            good = tx(1)
            cart.send([{**tx(2), "at": "yesterday"}, good])
            for _ in range(100):
                if cart.acks:
                    break
                await asyncio.sleep(0.05)
            assert cart.acked() == {good["id"]}
            await asyncio.sleep(6)  # past ack_wait: terminated messages do not come back
            return workers[0]
        finally:
            cart.close()
            stop.set()
            await asyncio.gather(*tasks)

    worker = asyncio.run(scenario())
    assert worker.stats.bad == 6
    assert worker.stats.messages == 6
    assert worker.stats.stored == 1


def test_parse_servers():
    assert parse_servers("a:4222, nats://b:4222,,") == ["nats://a:4222", "nats://b:4222"]
    with pytest.raises(ValueError, match="--nats needs at least one URL"):
        parse_servers(" , ")


def test_cli_needs_nats_urls(tmp_path):
    from fleet.cli import main

    assert main(["ingest", "--transport", "nats", "--db", str(tmp_path / "x.db")]) == 2
    assert main(["ingest", "--nats", "a:1", "--db", str(tmp_path / "x.db")]) == 2
    assert main(["ingest", "--transport", "nats", "--nats", "127.0.0.1:1",
                 "--db", str(tmp_path / "x.db")]) == 1
