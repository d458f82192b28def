"""The broker configuration we ship (config/mosquitto/cart-broker.conf), run as it is but for
paths and ports: a cart's credentials cannot take another cart's client id and kick it off."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.mqtt_broker import (
    ACL_FILE,
    REPO,
    MosquittoBroker,
    free_port,
    make_password_file,
    wait_port,
)
from tests.support import wait_for
from tests.sync.synckit import CART, STATUS
from tests.sync.test_sync_acl import PASSWORDS, cart_credentials
from tests.sync.test_sync_tls import self_signed

SHIPPED = REPO / "config" / "mosquitto" / "cart-broker.conf"


class ShippedBroker(MosquittoBroker):
    """cart-broker.conf with its paths and ports moved into a temp dir; nothing else changed."""

    def __init__(self, workdir: Path, crt: Path, key: Path, passwd: Path) -> None:
        super().__init__(workdir)
        self.loopback_port = free_port()
        self.paths = {"/etc/mosquitto/certs/broker.crt": str(crt),
                      "/etc/mosquitto/certs/broker.key": str(key),
                      "/etc/mosquitto/certs/ca.crt": str(crt),
                      "/etc/mosquitto/cart-passwd": str(passwd),
                      "/etc/mosquitto/cart-acl": str(ACL_FILE),
                      "/var/lib/mosquitto/": f"{workdir}/data/"}

    def _write_conf(self) -> None:
        (self.workdir / "data").mkdir(exist_ok=True)
        text = SHIPPED.read_text()
        for old, new in self.paths.items():
            text = text.replace(old, new)
        text = text.replace("listener 8883", f"listener {self.port} 127.0.0.1")
        text = text.replace("listener 1883 127.0.0.1", f"listener {self.loopback_port} 127.0.0.1")
        text = text.replace("log_dest syslog", f"log_dest file {self.log_path}")
        self.conf_path.write_text("user root\n" + text)


    def start(self) -> ShippedBroker:
        super().start()
        wait_port(self.host, self.loopback_port)  # opened after the TLS listener
        return self


def client_as(port: int, crt: Path | None, user: str, client_id: str,
              seen: list[dict] | None = None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id=client_id)
    client.username_pw_set(user, PASSWORDS[user])
    if crt is not None:
        client.tls_set(ca_certs=str(crt))
    connected = threading.Event()
    client.on_connect = lambda *_a: connected.set()
    if seen is not None:
        client.on_message = lambda _c, _u, m: seen.append(json.loads(m.payload))
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(5)
    return client


def test_another_carts_credentials_cannot_kick_a_cart_off(tmp_path, make_cart):
    crt, key = self_signed(tmp_path, "broker")
    passwd = make_password_file(tmp_path / "passwd", PASSWORDS)
    broker = ShippedBroker(tmp_path / "shipped", crt, key, passwd).start()
    statuses: list[dict] = []
    clients = []
    try:
        fleet = client_as(broker.loopback_port, None, "fleet", "fleet-watch", statuses)
        clients.append(fleet)
        fleet.subscribe(STATUS, 1)
        cart = make_cart(broker.port, tls=True, ca_file=str(crt),
                         **cart_credentials(tmp_path)).start()
        cart.wait_online()
        wait_for(lambda: any(s["state"] == "online" for s in statuses), 10,
                   what="the cart's retained status")
        seen = len(statuses)
        # bc-02's credentials, asking for bc-01's client id (and near misses)
        clients += [client_as(broker.port, crt, "bc-02", cid)
                    for cid in (f"cart-{CART}", CART, f"cart-{CART}-x")]
        time.sleep(1.5)
        assert cart.service.online()
        assert [s["state"] for s in statuses[seen:]] in ([], ["online"] * len(statuses[seen:]))
        # (the three intruders, all bc-02, do replace one another: that is theirs to lose)
        assert f"Client {CART} already connected" not in broker.log_path.read_text()
    finally:
        for c in clients:
            c.loop_stop()
            c.disconnect()
        broker.close()
