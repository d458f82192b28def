"""One MQTT connection of the cart, driven from the sync thread (no paho network thread).

A fresh paho client is made for every connection attempt. paho keeps unacknowledged QoS 1
messages in memory and resends them itself after a reconnect; the outbox already resends
everything the server has not acknowledged (SQLite is the source of truth), so reusing the
client would only double the traffic and blur which packet id belongs to which batch.

The session is clean: commands sent while the cart was offline are not queued by the broker
for hours (an `open_compartment` must not fire long after the operator gave up); desired
configs are retained, so nothing else is lost by it.

paho's callbacks only append events to a list; the service handles them after `poll()`
returns. So nothing is published from inside a callback (paho would defer the write) and the
whole sync side is one thread: no locks around the outbox.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import ConfigError, MqttConfig, mqtt_password

log = logging.getLogger(__name__)

MQTT5 = mqtt.MQTTv5
MQTT311 = mqtt.MQTTv311
PROTOCOL_NAMES: dict[MQTTProtocolVersion, str] = {MQTT5: "5", MQTT311: "3.1.1"}
# CONNACK "unsupported protocol version": 132 in MQTT 5, 1 in 3.1.1 (what a 3.1.1-only broker
# answers a v5 CONNECT with; paho reports it either way).
_UNSUPPORTED_PROTOCOL = {132, 1}


class LinkError(Exception):
    """The connection could not be opened; the message says why (never a secret)."""


@dataclass(frozen=True)
class Connected:
    protocol: str


@dataclass(frozen=True)
class Refused:
    reason: str
    unsupported_protocol: bool
    answered: bool = True  # False: closed before any CONNACK (see service: protocol "auto")


@dataclass(frozen=True)
class Lost:
    reason: str


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True)
class PubAck:
    mid: int
    ok: bool
    reason: str


Event = Connected | Refused | Lost | Message | PubAck


def _reason_value(rc: Any) -> int:
    return int(rc.value) if isinstance(rc, ReasonCode) else int(rc)


def _set_nodelay(sock: Any) -> None:
    # Without TCP_NODELAY a batch followed by a small packet waits for the previous ack
    # (Nagle + delayed ack): measured 2.5x slower drains on loopback (FACTS.md).
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Link:
    """A single connection attempt and, when it succeeds, the session it carries."""

    def __init__(self, cfg: MqttConfig, client_id: str, protocol: MQTTProtocolVersion,
                 will: tuple[str, bytes] | None, max_inflight: int) -> None:
        self.cfg = cfg
        self.protocol = protocol
        self.connected = False
        self.closed = False
        self._events: list[Event] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                             protocol=protocol, clean_session=None if protocol == MQTT5 else True)
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        # Bounds a blocking connect (a black-holed host) so a stop request is not held up long.
        client.connect_timeout = 4.0
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = lambda _c, _u, sock: _set_nodelay(sock)
        if cfg.username:
            try:
                password = mqtt_password(cfg)
            except ConfigError as exc:
                raise LinkError(str(exc)) from None
            client.username_pw_set(cfg.username, password)
        if cfg.tls:
            try:
                client.tls_set(ca_certs=cfg.ca_file or None, certfile=cfg.cert_file or None,
                               keyfile=cfg.key_file or None)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise LinkError(f"TLS setup failed: {exc}") from None
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        self.client = client

    @property
    def protocol_name(self) -> str:
        return PROTOCOL_NAMES.get(self.protocol, str(self.protocol))

    def open(self) -> None:
        """TCP (and TLS) connect and send CONNECT; the CONNACK arrives through `poll()`."""
        try:
            if self.protocol == MQTT5:
                self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive,
                                    clean_start=True)
            else:
                self.client.connect(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive)
        except (OSError, ValueError) as exc:
            self.closed = True
            raise LinkError(f"cannot connect to {self.cfg.host}:{self.cfg.port}: "
                            f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
                            ) from None

    def poll(self, timeout_s: float) -> list[Event]:
        """Run paho's network loop once; returns what happened."""
        if not self.closed:
            try:
                rc = self.client.loop(timeout=timeout_s)
            except (OSError, ValueError) as exc:  # e.g. a TLS record error mid-stream
                rc = MQTTErrorCode.MQTT_ERR_CONN_LOST
                log.debug("network loop failed: %s", exc)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not self.closed:
                # loop() reports the loss itself through on_disconnect in most cases; this
                # covers the rest (e.g. a protocol error before CONNACK).
                self._lose(f"connection lost ({mqtt.error_string(rc)})")
        events, self._events = self._events, []
        return events

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> int | None:
        """Queue a publish; returns its packet id (QoS 1) or None when not connected."""
        if not self.connected:
            return None
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            if info.rc in (MQTTErrorCode.MQTT_ERR_NO_CONN, MQTTErrorCode.MQTT_ERR_CONN_LOST):
                self._lose("connection lost while publishing")
                return None
            log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))
            return None
        return int(info.mid)

    def subscribe(self, topics: list[str]) -> None:
        if self.connected:
            self.client.subscribe([(t, 1) for t in topics])

    def close(self) -> None:
        """Clean DISCONNECT (the broker then does not publish the will)."""
        if self.closed:
            return
        if self.connected:
            self.client.disconnect()
            # Let the DISCONNECT (and anything queued before it) reach the socket.
            for _ in range(5):
                if self.client.loop(timeout=0.05) != MQTTErrorCode.MQTT_ERR_SUCCESS:
                    break
        self._drop()

    def _drop(self) -> None:
        self.closed = True
        self.connected = False
        sock = self.client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _lose(self, reason: str) -> None:
        if self.closed:
            return  # already reported (paho may say it twice: callback and return code)
        was = self.connected
        self._drop()
        if was:
            self._events.append(Lost(reason))
        else:
            self._events.append(Refused(reason, unsupported_protocol=False, answered=False))

    # --- paho callbacks (run inside poll(), in this thread) ---------------------------

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, rc: Any, _props: Any) -> None:
        value = _reason_value(rc)
        if value == 0:
            self.connected = True
            self._events.append(Connected(self.protocol_name))
        else:
            self._events.append(Refused(f"broker refused the connection: {rc}",
                                        unsupported_protocol=value in _UNSUPPORTED_PROTOCOL))
            self._drop()

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, rc: Any, _props: Any) -> None:
        if self.closed:
            return
        self._lose(f"disconnected: {rc}")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._events.append(Message(msg.topic, bytes(msg.payload), bool(msg.retain)))

    def _on_publish(self, _c: Any, _u: Any, mid: int, rc: Any, _props: Any) -> None:
        value = _reason_value(rc)
        # MQTT 5 PUBACK reason codes >= 0x80 are failures (135: not authorized). 3.1.1 has none:
        # there a publish the ACL denies is acknowledged as success (FACTS.md).
        self._events.append(PubAck(mid, ok=value < 0x80, reason=str(rc)))
