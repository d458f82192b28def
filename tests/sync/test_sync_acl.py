"""The fleet's Mosquitto ACL (config/mosquitto/acl) with per-cart passwords, on a real broker."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt_broker import ACL_FILE, MosquittoBroker, make_password_file
from tests.support import wait_for
from tests.sync.synckit import CART

PASSWORDS = {CART: "cart-one-pw", "bc-02": "cart-two-pw", "ingest": "ingest-pw",
             "fleet": "fleet-pw"}


@pytest.fixture
def acl_broker(tmp_path: Path):
    pw = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker = MosquittoBroker(tmp_path / "acl-broker", password_file=pw, acl_file=ACL_FILE)
    broker.start()
    yield broker
    broker.close()


def client_as(port: int, user: str, received: list | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                         client_id=f"{user}-test")
    client.username_pw_set(user, PASSWORDS[user])
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    if received is not None:
        client.on_message = lambda _c, _u, m: received.append((m.topic, m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(5)
    return client


def puback_code(client: mqtt.Client, topic: str) -> int:
    codes: dict[int, int] = {}
    done = threading.Event()

    def on_publish(_c, _u, mid, rc, _p) -> None:
        codes[mid] = rc.value
        done.set()

    client.on_publish = on_publish
    info = client.publish(topic, b'{"cart": "x", "txs": []}', qos=1)
    assert done.wait(5)
    return codes[info.mid]


def cart_credentials(tmp_path: Path, user: str = CART) -> dict:
    secret = tmp_path / "mqtt-password"
    secret.write_text(PASSWORDS[user] + "\n")
    return {"username": user, "password_file": str(secret)}


def test_carts_are_confined_to_their_own_topics(tmp_path, acl_broker, make_cart, make_ingest):
    port = acl_broker.port
    ingest = make_ingest(port, username="ingest", password=PASSWORDS["ingest"])
    cart = make_cart(port, **cart_credentials(tmp_path)).start()
    cart.wait_online()
    cart.record(20)
    wait_for(lambda: cart.pending() == 0, 10, what="the ingest's acks through the ACL")
    assert ingest.count() == 20

    intruder = client_as(port, CART)
    try:
        assert puback_code(intruder, f"carts/{CART}/tx") == 0
        assert puback_code(intruder, "carts/bc-02/tx") == 135
        assert puback_code(intruder, "carts/bc-02/status") == 135
        assert puback_code(intruder, "carts/_all/config/desired") == 135
        assert puback_code(intruder, f"carts/{CART}/cmd") == 135  # commands come from the fleet
    finally:
        intruder.loop_stop()
        intruder.disconnect()

    # bc-02 subscribes to bc-01's commands and acks: the broker delivers it nothing.
    snooped: list = []
    snooper = client_as(port, "bc-02", snooped)
    snooper.subscribe([(f"carts/{CART}/cmd", 1), (f"carts/{CART}/tx/ack", 1)])
    results: list = []
    fleet = client_as(port, "fleet", results)
    fleet.subscribe(f"carts/{CART}/cmd/result", 1)
    time.sleep(0.2)
    try:
        assert puback_code(fleet, f"carts/{CART}/cmd") == 0  # a bad command, answered anyway
        fleet.publish(f"carts/{CART}/cmd", json.dumps({"id": "p1", "name": "ping"}), qos=1)
        cart.record(1)
        wait_for(lambda: any(json.loads(p).get("id") == "p1" for _t, p in results), 5,
                   what="the cart's answer to the fleet")
        wait_for(lambda: cart.pending() == 0, 5, what="the ack")
        # The fleet-wide desired config reaches the cart through its pattern rule.
        fleet.publish("carts/_all/config/desired",
                      json.dumps({"version": 2, "config": {"retention_days": 12}}),
                      qos=1, retain=True)
        wait_for(lambda: cart.applied and cart.applied[-1].retention_days == 12, 5,
                   what="the fleet-wide config")
        time.sleep(0.2)
        assert snooped == []
    finally:
        for c in (snooper, fleet):
            c.loop_stop()
            c.disconnect()


def test_refused_publish_keeps_rows_pending_and_marks_sync_unhealthy(
        tmp_path, acl_broker, make_cart):
    # A cart logged in as bc-01 but configured with another cart's id (a provisioning
    # mistake): MQTT 5 tells it the publishes are refused.
    cart = make_cart(acl_broker.port, extra={"cart_id": "bc-02"}, ack_timeout_s=0.5,
                     **cart_credentials(tmp_path)).start()
    cart.wait_online()
    cart.record(5)
    wait_for(lambda: "refused" in (cart.service.health.error or ""), 5,
               what="sync to report the refusal")
    assert "Not authorized" in cart.service.health.error
    time.sleep(0.8)  # past the ack timeout: tried again, refused again, still pending
    assert cart.pending() == 5
    assert cart.service.online()


def test_wrong_password_is_refused(tmp_path, acl_broker, make_cart):
    secret = tmp_path / "wrong"
    secret.write_text("nope")
    cart = make_cart(acl_broker.port, username=CART, password_file=str(secret)).start()
    wait_for(lambda: "refused" in (cart.service.health.error or ""), 5,
               what="the refusal")
    assert not cart.service.online()
    assert "nope" not in cart.service.health.error
