"""Broker portability of the fleet tools: MQTT 5 -> 3.1.1 negotiation and `--protocol`.

Two real refusals of MQTT 5: NATS answers CONNACK 1 (unacceptable protocol version), and
RabbitMQ 3.10 closes the socket without any CONNACK (FACTS.md). RabbitMQ is not installed
here, so its behaviour is reproduced by a TCP relay in front of a real Mosquitto that drops
a connection whose CONNECT says protocol level 5 and passes every other byte through.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.client import BrokerOptions, FleetClient, FleetError
from tests.mqtt_broker import MosquittoBroker

REPO = Path(__file__).resolve().parents[2]


class DropsMqtt5:
    """Closes any connection whose first packet is an MQTT 5 CONNECT; relays the rest."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.dropped = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        first = conn.recv(65536)
        # Fixed header, remaining length (1 byte for a small CONNECT), "\x00\x04MQTT", level.
        if len(first) > 8 and first[0] == 0x10 and first[8] == 5:
            self.dropped += 1
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target))
        upstream.sendall(first)

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)

        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()
        pipe(conn, upstream)

    def close(self) -> None:
        self._stop = True
        self.server.close()


@pytest.fixture
def rabbit_like(tmp_path: Path) -> Iterator[DropsMqtt5]:
    with MosquittoBroker(tmp_path / "broker") as broker:
        relay = DropsMqtt5(broker.port)
        yield relay
        relay.close()


def fleet_cli(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args, "--port", str(port)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_auto_falls_back_when_mqtt5_is_closed_without_connack(rabbit_like):
    client = FleetClient(BrokerOptions(port=rabbit_like.port))
    client.connect()
    try:
        assert not client.mqtt5
        assert rabbit_like.dropped == 1
        client.publish("carts/bc-01/cmd", b"{}", qos=1)  # a PUBACK came back through it
    finally:
        client.close()
    out = fleet_cli(rabbit_like.port, "status", "--json", "--wait", "0.3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_protocol_5_alone_fails_with_the_reason(rabbit_like):
    out = fleet_cli(rabbit_like.port, "status", "--protocol", "5", "--wait", "0.3")
    assert out.returncode == 1
    assert "closed the connection without a CONNACK" in out.stderr
    assert "--protocol auto" in out.stderr
    assert "Traceback" not in out.stderr
    out = fleet_cli(rabbit_like.port, "status", "--protocol", "3.1.1", "--wait", "0.3")
    assert out.returncode == 0, out.stderr
    with pytest.raises(FleetError):
        FleetClient(BrokerOptions(port=rabbit_like.port), protocol="4")


def test_nats_refuses_mqtt5_and_auto_speaks_311(nats):
    port = nats.mqtt_ports[0]
    client = FleetClient(BrokerOptions(port=port))
    client.connect()
    try:
        assert not client.mqtt5
    finally:
        client.close()
    out = fleet_cli(port, "push-config", "--cart", "bc-01", "--version", "3",
                    str(REPO / "config" / "example.toml"), "--protocol", "5")
    assert out.returncode == 1, out.stderr
    assert "refused" in out.stderr, out.stderr
    doc = Path(nats.workdir) / "change.json"
    doc.write_text('{"log_level": "DEBUG"}')
    out = fleet_cli(port, "push-config", "--cart", "bc-01", "--version", "3", str(doc))
    assert out.returncode == 0, out.stderr


def test_unknown_protocol_is_bad_usage():
    out = fleet_cli(1883, "status", "--protocol", "6")
    assert out.returncode == 2
