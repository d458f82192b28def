"""The desk under test: a private PostgreSQL filled by the real ingest, a real Mosquitto, real
cart daemons on simulated devices (and light carts that speak the contract over MQTT for
history), and the desk itself on a free port."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from agent.ids import new_ulid
from agent.store.transactions import rfc3339
from fleet.client import BrokerOptions
from fleet.desk.app import Desk, DeskSettings
from fleet.desk.auth import add_user
from fleet.ingest import IngestWorker
from fleet.keys import keygen, read_signing_key
from tests.faults.harness import FaultCart
from tests.mqtt_broker import MosquittoBroker
from tests.postgres_cluster import PostgresCluster
from tests.support import wait_for

MANAGER = ("boss", "correct horse battery")
VIEWER = ("watcher", "viewer password 1")


class LightCart:
    """A cart reduced to its contract: publishes transactions on P/C/tx (gapless seq, ULIDs,
    oldest first) and waits for the ingest's ack. Used to put days of history in PostgreSQL
    through the real ingest."""

    def __init__(self, port: int, cart: str, prefix: str = "carts") -> None:
        self.cart, self.prefix, self.seq = cart, prefix, 0
        self.acked: set[str] = set()
        self._cond = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"light-{cart}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_ack
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{prefix}/{cart}/tx/ack", 1)

    def _on_ack(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.acked.update(json.loads(msg.payload)["ids"])
            self._cond.notify_all()

    def send(self, txs: list[tuple[str, dt.datetime, dict[str, Any]]]) -> list[str]:
        """(type, at, data) in order; returns the ids once the ingest acknowledged them."""
        batch = []
        for type_, at, data in txs:
            self.seq += 1
            batch.append({"id": new_ulid(), "seq": self.seq, "cart": self.cart, "type": type_,
                          "at": rfc3339(at.timestamp()), "data": data})
        for start in range(0, len(batch), 200):
            chunk = batch[start:start + 200]
            payload = json.dumps({"cart": self.cart, "txs": chunk}, ensure_ascii=False)
            self.client.publish(f"{self.prefix}/{self.cart}/tx", payload, qos=1)
        ids = [tx["id"] for tx in batch]
        with self._cond:
            assert self._cond.wait_for(lambda: self.acked.issuperset(ids), 20), "no ack"
        return ids

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class DeskRig:
    def __init__(self, tmp: Path, pg: PostgresCluster, carts: tuple[str, ...] = ("bc-01",),
                 offline_alarm_s: float = 600.0) -> None:
        self.tmp = tmp
        self.db_url = pg.create_database(f"desk_{new_ulid().lower()}")
        self.broker = MosquittoBroker(tmp / "broker").start()
        self.ingest = IngestWorker(port=self.broker.port, db_url=self.db_url).start()
        self.key_pem, pub = keygen(tmp / "keys", "f1")
        self.fleet_public = pub.read_text().strip()
        self.carts: dict[str, FaultCart] = {}
        self.desk: Desk | None = None
        try:
            for cart_id in carts:
                self.start_cart(cart_id)
            self.desk = Desk(DeskSettings(
                db_url=self.db_url, port=0, broker=BrokerOptions(port=self.broker.port),
                signer=(read_signing_key(self.key_pem), "f1"),
                offline_alarm_s=offline_alarm_s)).start()
            add_user(self.desk.db, *MANAGER, role="manager")
            add_user(self.desk.db, *VIEWER, role="viewer")
        except BaseException:
            self.close()
            raise
        self.base = f"http://127.0.0.1:{self.desk.port}"

    def start_cart(self, cart_id: str) -> FaultCart:
        cart = FaultCart(self.tmp / cart_id, self.broker.port, cart_id=cart_id,
                         security={"fleet_keys": {"f1": self.fleet_public}},
                         mqtt={"telemetry_interval_s": 0.5})
        self.carts[cart_id] = cart
        cart.start()
        return cart

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return list(conn.execute(query, params).fetchall())

    def wait_synced(self, cart_id: str) -> None:
        cart = self.carts[cart_id]
        wait_for(lambda: cart.pending() == 0, timeout_s=20, what=f"{cart_id} synced")
        n = len(cart.query("SELECT id FROM transactions"))
        wait_for(lambda: self.sql("SELECT count(*) FROM cart_transactions WHERE cart = %s",
                                  (cart_id,))[0][0] == n, timeout_s=20, what="stored")

    def wait_followed(self) -> None:
        """The desk has derived everything from the rows stored so far."""
        stored = self.sql("SELECT count(*) FROM cart_transactions")[0][0]
        assert self.desk is not None
        follower = self.desk.follower
        wait_for(lambda: follower.rows_seen >= stored and self.sql(
            "SELECT count(*) FROM cart_transactions WHERE (received_at, id) > "
            "(SELECT ((value->>'received_at')::timestamptz), value->>'id' FROM desk_meta "
            "WHERE key = 'follow_cursor')")[0][0] == 0, timeout_s=20, what="the desk caught up")

    def close(self) -> None:
        """Everything is stopped, even when one part fails to (no broker left behind)."""
        try:
            if self.desk is not None:
                self.desk.stop()
        finally:
            try:
                for cart in self.carts.values():
                    cart.close()
            finally:
                try:
                    self.ingest.stop()
                finally:
                    self.broker.close()


class Reply:
    def __init__(self, status: int, headers: Any, body: str) -> None:
        self.status, self.headers, self.body = status, headers, body

    def cookie(self) -> str | None:
        raw = self.headers.get("Set-Cookie")
        return raw.split(";", 1)[0] if raw else None

    def csrf(self) -> str:
        import re

        match = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert match, "no form token on the page"
        return match.group(1)


def http(rig: DeskRig, method: str, path: str, form: dict[str, str] | None = None,
         cookie: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One plain request that follows no redirect."""
    import http.client
    import urllib.parse

    assert rig.desk is not None
    assert rig.desk.port is not None
    conn = http.client.HTTPConnection("127.0.0.1", rig.desk.port, timeout=15)
    try:
        head = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            head["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            head["Cookie"] = cookie
        conn.request(method, path, body=body, headers=head)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read().decode("utf-8"))
    finally:
        conn.close()


def login_http(rig: DeskRig, who: tuple[str, str]) -> tuple[str, str]:
    """(cookie, csrf) of a fresh session over plain HTTP."""
    done = http(rig, "POST", "/login", {"username": who[0], "password": who[1],
                                        "next": "/fleet"})
    assert done.status == 303
    assert done.headers["Location"] == "/fleet", done.body
    cookie = done.cookie()
    assert cookie
    page = http(rig, "GET", "/fleet", cookie=cookie)
    assert page.status == 200
    return cookie, page.csrf()
