"""The outbox against a real Mosquitto and the reference ingest: nothing lost, nothing resent
once acknowledged, broker restarts and kill -9 survived."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from tests.support import wait_for
from tests.sync.synckit import CART, PREFIX

TX_TOPIC = f"{PREFIX}/{CART}/tx"


def tx_ids_seen(watcher) -> Counter[str]:
    seen: Counter[str] = Counter()
    for doc in watcher.on(TX_TOPIC):
        seen.update(tx["id"] for tx in doc["txs"])
    return seen


def test_backlog_recorded_offline_arrives_after_the_broker_comes_back(
        broker, make_cart, make_watcher, make_ingest):
    broker.stop()
    cart = make_cart(broker.port).start()
    ids = cart.record(300)
    time.sleep(0.3)
    assert cart.pending() == 300
    assert not cart.service.online()
    assert cart.service.health.ok is False
    assert "offline" in (cart.service.health.error or "")

    broker.start()
    watcher = make_watcher(broker.port, [TX_TOPIC])
    ingest = make_ingest(broker.port)
    wait_for(lambda: cart.pending() == 0, 15, what="the backlog to drain")
    assert ingest.count() == 300
    seen = tx_ids_seen(watcher)
    assert set(seen) == set(ids)
    # Batches go oldest first, and each carries consecutive seqs. (The watcher subscribes
    # while the cart reconnects, so it may miss the first batches: compare what it saw.)
    batches = [[tx["seq"] for tx in doc["txs"]] for doc in watcher.on(TX_TOPIC)]
    for seqs in batches:
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    firsts = [seqs[0] for seqs in batches]
    unique = firsts[:next((i for i in range(1, len(firsts)) if firsts[i] <= firsts[i - 1]),
                          len(firsts))]  # up to the first resend
    assert unique == sorted(unique)
    assert cart.service.health.ok


def test_nothing_acknowledged_is_sent_again(broker, make_cart, make_watcher, make_ingest):
    watcher = make_watcher(broker.port, [TX_TOPIC])
    ingest = make_ingest(broker.port)
    cart = make_cart(broker.port, ack_timeout_s=0.5).start()
    cart.wait_online()
    ids = cart.record(120)
    wait_for(lambda: cart.pending() == 0, 10, what="acks")
    # Past the ack timeout, and across a restart of the service (a new connection resends
    # everything pending): acknowledged rows never go up again.
    time.sleep(1.0)
    cart.stop()
    cart.start()
    cart.wait_online()
    more = cart.record(5)
    wait_for(lambda: cart.pending() == 0, 10, what="acks for the new rows")
    time.sleep(0.7)
    seen = tx_ids_seen(watcher)
    assert set(seen) == set(ids + more)
    assert max(seen.values()) == 1, "an acknowledged transaction was sent again"
    assert ingest.stats.duplicates == 0
    assert cart.store.get_meta("last_sync_at")


def test_a_new_transaction_goes_up_promptly(broker, make_cart, make_watcher, make_ingest):
    make_ingest(broker.port)
    watcher = make_watcher(broker.port, [TX_TOPIC])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    time.sleep(0.3)
    started = time.monotonic()
    tx_id = cart.record(1)[0]
    wait_for(lambda: tx_id in tx_ids_seen(watcher), 5, interval_s=0.005, what="the tx")
    assert time.monotonic() - started < 1.5  # polled every 0.25 s; generous for a busy CI
    wait_for(lambda: cart.pending() == 0, 5, what="the ack")


def _write_while(cart, total: int, stop_at: threading.Event) -> list[str]:
    ids: list[str] = []
    for i in range(total):
        ids.append(cart.store.record("ticket.issue", {"n": i}).id)
        if i % 50 == 0:
            time.sleep(0.02)
    stop_at.set()
    return ids


def _mid_stream(broker, make_cart, make_ingest, kill: bool) -> None:
    ingest = make_ingest(broker.port)
    cart = make_cart(broker.port, ack_timeout_s=1.0).start()
    cart.wait_online()
    done = threading.Event()
    result: list[list[str]] = []
    writer = threading.Thread(target=lambda: result.append(_write_while(cart, 1500, done)))
    writer.start()
    wait_for(lambda: cart.store.queue_stats()["synced"] > 100, 10, what="some progress")
    if kill:
        broker.kill()
    else:
        broker.stop()
    time.sleep(0.3)
    broker.start()
    writer.join(20)
    wait_for(lambda: cart.pending() == 0, 30, what="everything acknowledged")
    ids = result[0]
    stored = set(ingest.storage.ids())
    assert stored == set(ids)
    assert ingest.count() == len(ids) == 1500


def test_broker_restart_mid_stream_loses_nothing(broker, make_cart, make_ingest):
    _mid_stream(broker, make_cart, make_ingest, kill=False)


def test_broker_kill9_mid_stream_loses_nothing(broker, make_cart, make_ingest):
    _mid_stream(broker, make_cart, make_ingest, kill=True)


def test_unknown_and_bad_acks_are_ignored(broker, make_cart, make_watcher):
    cart = make_cart(broker.port).start()
    cart.wait_online()
    ids = cart.record(3)
    watcher = make_watcher(broker.port, [])
    ack_topic = f"{PREFIX}/{CART}/tx/ack"
    for bad in [b"not json", b"[]", b'{"ids": "x"}', b'{"ids": [1, 2]}', b"\xff\xfe",
                b'{"ids": ["' + b"A" * 100 + b'"]}']:
        watcher.publish(ack_topic, bad)
    watcher.publish(ack_topic, json.dumps({"ids": ["01UNKNOWN0000000000000000", ids[1]]}))
    wait_for(lambda: cart.pending() == 2, 5, what="the one good id to be marked synced")
    assert cart.service.online()
    assert cart.store.get_tx(ids[1]).state == "synced"
    assert cart.store.get_tx(ids[0]).state == "pending"
