"""Fleet-wide reading of the carts' topics at QoS 0, with a marker that says "caught up".

Mosquitto hands the retained messages of a new subscription to the client's queue: at QoS 1
a `carts/+/status` subscriber saw only 1,020 of 10,000 retained statuses (max_queued_messages
plus the in-flight window; the rest were dropped silently, FACTS.md). At QoS 0 it sees all of
them, so everything that reads the whole fleet's state subscribes at QoS 0.

Retained messages follow the SUBACK of their subscription. A second SUBSCRIBE (to a topic
nothing is published on) sent right after is answered after them, so its SUBACK marks the
moment every retained message of the first has arrived: no guessing with a sleep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from fleet.client import BrokerOptions, FleetClient, FleetError, Handler


class FleetWatcher(FleetClient):
    """Subscribes at QoS 0 to `topics`; `synced` is set once the retained ones are in.

    The handler runs on paho's network thread and must be quick. After a reconnect the
    subscriptions are made again (the session is clean) and `on_resync` is called when the
    retained messages have been delivered again.
    """

    def __init__(self, opts: BrokerOptions, topics: list[str], handler: Handler,
                 client_id: str | None = None, protocol: str | None = None) -> None:
        super().__init__(opts, client_id=client_id, protocol=protocol)
        self.watch_topics = list(topics)
        self.handler = handler
        self.synced = threading.Event()
        self.on_resync: Callable[[], None] | None = None
        self._marker_mids: set[int] = set()
        self._sub_lock = threading.Lock()
        self.on_reconnect = self._subscribe_all

    @property
    def marker_topic(self) -> str:
        # `_fleet` cannot be a cart id (ids are [a-z0-9-]), so no cart ever publishes here.
        return f"{self.opts.prefix}/_fleet/marker"

    def _make(self, version: MQTTProtocolVersion) -> mqtt.Client:
        client = super()._make(version)
        client.on_subscribe = self._on_subscribe
        return client

    def start(self, timeout_s: float = 10.0) -> FleetWatcher:
        self.connect(min(timeout_s, 5.0))
        self._subscribe_all()
        if not self.synced.wait(timeout_s):
            self.close()
            raise FleetError(f"no answer to the subscription from {self.opts.host}:"
                             f"{self.opts.port}")
        return self

    def _subscribe_all(self) -> None:
        client = self._client
        if client is None:
            return
        with self._sub_lock:  # the SUBACK must not beat the registration of its mid
            result, _ = client.subscribe([(t, 0) for t in self.watch_topics])
            if result != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise FleetError(f"subscribe failed: {mqtt.error_string(result)}")
            result, mid = client.subscribe([(self.marker_topic, 0)])
            if result == MQTTErrorCode.MQTT_ERR_SUCCESS and mid is not None:
                self._marker_mids.add(mid)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, _codes: Any, _p: Any) -> None:
        with self._sub_lock:
            marker = mid in self._marker_mids
            self._marker_mids.discard(mid)
        if not marker:
            return
        first = not self.synced.is_set()
        self.synced.set()
        if not first and self.on_resync is not None:
            self.on_resync()


def read_retained(opts: BrokerOptions, topics: list[str], timeout_s: float = 10.0,
                  protocol: str | None = None) -> dict[str, bytes]:
    """The retained message of each topic (wildcards allowed) that has one, by topic."""
    found: dict[str, bytes] = {}
    lock = threading.Lock()

    def keep(topic: str, payload: bytes, retain: bool) -> None:
        if retain and payload:
            with lock:
                found[topic] = payload

    watcher = FleetWatcher(opts, topics, keep, protocol=protocol)
    watcher.start(timeout_s)
    watcher.close()
    with lock:
        return dict(found)
