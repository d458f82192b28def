"""The fleet side's MQTT client: a paho client on its own network thread, for tools.

The cart drives paho from its sync thread; a command-line tool or the reference ingest is its
own composition root and may let paho run its loop thread. Publishing waits for the PUBACK
(and checks MQTT 5 reason codes), since paho's `publish()` returns before anything is sent.

Protocol (`BrokerOptions.protocol`, the `--protocol` flag): `auto` tries MQTT 5 and falls
back to 3.1.1 when the broker refuses the version (CONNACK 1 or 132, as NATS does) and also
when it closes the socket without any CONNACK (RabbitMQ 3.10 does that to an MQTT 5
CONNECT, FACTS.md). `5` and `3.1.1` try only that version.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

Handler = Callable[[str, bytes, bool], None]
PROTOCOLS = ("auto", "5", "3.1.1")


class FleetError(Exception):
    """The broker could not be reached or refused something; the message says which."""


@dataclass(frozen=True)
class BrokerOptions:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: str | None = None
    prefix: str = "carts"
    protocol: str = "auto"  # auto | 5 | 3.1.1


def _rc(value: Any) -> int:
    return int(value.value) if isinstance(value, ReasonCode) else int(value)


def _set_nodelay(sock: Any) -> None:
    # Acks are small packets: without TCP_NODELAY they wait on Nagle (FACTS.md).
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


_NAMES = {mqtt.MQTTv5: "5", mqtt.MQTTv311: "3.1.1"}


class FleetClient:
    def __init__(self, opts: BrokerOptions, client_id: str | None = None,
                 protocol: str | None = None) -> None:
        self.opts = opts
        self.client_id = client_id or f"fleet-{uuid.uuid4().hex[:12]}"
        self.protocol = protocol or opts.protocol
        if self.protocol not in PROTOCOLS:
            raise FleetError(f"unknown MQTT protocol {self.protocol!r}: use 5, 3.1.1 or auto")
        self.handler: Handler | None = None
        self.on_reconnect: Callable[[], None] | None = None
        self._connected = threading.Event()
        self._refusal: str | None = None
        self._unsupported = False
        self._pubacks: dict[int, tuple[threading.Event, list[int]]] = {}
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._first = True
        self._topics: list[tuple[str, int]] = []

    @property
    def mqtt5(self) -> bool:
        return self._client is not None and self._client.protocol == mqtt.MQTTv5

    def _make(self, version: MQTTProtocolVersion) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=version,
                             clean_session=None if version == mqtt.MQTTv5 else True)
        if self.opts.username:
            client.username_pw_set(self.opts.username, self.opts.password)
        if self.opts.tls:
            client.tls_set(ca_certs=self.opts.ca_file or None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_socket_open = lambda _c, _u, sock: _set_nodelay(sock)
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.max_inflight_messages_set(100)
        # paho reconnects by itself in loop_start mode; its default wait grows to 120 s, too
        # long for an ingest that carts are waiting on.
        client.reconnect_delay_set(1, 15)
        return client

    def connect(self, timeout_s: float = 5.0) -> None:
        versions = {"auto": [mqtt.MQTTv5, mqtt.MQTTv311], "5": [mqtt.MQTTv5],
                    "3.1.1": [mqtt.MQTTv311]}[self.protocol]
        for version in versions:
            self._connected.clear()
            self._refusal, self._unsupported = None, False
            client = self._make(version)
            try:
                client.connect(self.opts.host, self.opts.port, keepalive=30)
            except (OSError, ValueError) as exc:
                raise FleetError(f"cannot connect to {self.opts.host}:{self.opts.port}: "
                                 f"{exc}") from None
            client.loop_start()
            self._client = client
            if not self._connected.wait(timeout_s) and self._refusal is None:
                self.close()
                raise FleetError(f"no answer from the broker at {self.opts.host}:"
                                 f"{self.opts.port}")
            if self._refusal is None:
                return
            self.close()
            if not self._unsupported:
                break
            log.info("MQTT %s not accepted by %s:%s (%s)", _NAMES[version], self.opts.host,
                     self.opts.port, self._refusal)
        reason = self._refusal or "connection refused"
        if self._unsupported and self.protocol != "auto":
            reason += f" (MQTT {self.protocol} may not be spoken there: try --protocol auto)"
        raise FleetError(reason)

    def subscribe(self, topics: list[str], handler: Handler, qos: int = 1) -> None:
        """QoS 0 for reading the whole fleet's retained state: Mosquitto queues retained
        messages for a QoS 1 subscriber and drops past `max_queued_messages` (FACTS.md)."""
        assert self._client is not None
        self.handler = handler
        self._topics = [(t, qos) for t in topics]
        result, _mid = self._client.subscribe(self._topics)
        if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise FleetError(f"subscribe failed: {mqtt.error_string(result)}")

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False,
                timeout_s: float = 5.0) -> None:
        """Publish and wait for the broker's PUBACK; raises FleetError if refused or lost."""
        assert self._client is not None
        done = threading.Event()
        codes: list[int] = []
        with self._lock:  # the PUBACK must not beat the registration of its mid
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
            if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise FleetError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
            if qos == 0:
                return
            self._pubacks[info.mid] = (done, codes)
        if not done.wait(timeout_s):
            raise FleetError(f"no PUBACK from the broker for {topic}")
        if codes and codes[0] >= 0x80:
            raise FleetError(f"broker refused the publish to {topic} (reason code {codes[0]})")

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1) -> None:
        """From inside a message callback: queue it (paho sends it after the callback)."""
        assert self._client is not None
        self._client.publish(topic, payload, qos=qos)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.disconnect()
        finally:
            client.loop_stop()

    # --- paho callbacks (paho's thread) -------------------------------------------------

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        code = _rc(rc)
        if code != 0:
            self._refusal = f"broker refused the connection: {rc}"
            self._unsupported = code in (1, 132)
            self._connected.set()
            return
        if not self._first:
            # paho reconnects by itself in loop_start mode; the session is clean, so
            # subscriptions must be made again.
            if self._topics:
                client.subscribe(self._topics)
            if self.on_reconnect:
                self.on_reconnect()
        self._first = False
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if self._connected.is_set():
            return
        # Closed before any CONNACK: a broker that cannot parse this protocol version
        # (RabbitMQ 3.10 with MQTT 5) does exactly that. Worth a try with the older version.
        self._refusal = (f"{self.opts.host}:{self.opts.port} closed the connection without "
                         f"a CONNACK ({rc})")
        self._unsupported = True
        self._connected.set()

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if self.handler is not None:
            self.handler(msg.topic, bytes(msg.payload), bool(msg.retain))

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _p: Any) -> None:
        with self._lock:
            entry = self._pubacks.pop(mid, None)
        if entry is not None:
            entry[1].append(_rc(rc))
            entry[0].set()
