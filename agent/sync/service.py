"""The sync service: one thread owning the MQTT link, the outbox, desired config and commands.

Loop: (re)connect with backoff and jitter, run paho's network loop for up to 0.1 s, handle
what arrived, send pending transactions (woken by `sync_now()`, by acks freeing the window, or
every POLL_S), telemetry on its interval, and the rollback clock of a pushed config. All of it
happens in the thread that calls `run()`; other threads only call `sync_now()` and `online()`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from agent.config import AgentConfig
from agent.health import Health
from agent.store import Store
from agent.store.transactions import rfc3339
from agent.supervisor import Backoff
from agent.sync.commands import CommandDesk, answer
from agent.sync.desired import Decision, DesiredConfig
from agent.sync.link import (
    MQTT5,
    MQTT311,
    Connected,
    Event,
    Link,
    LinkError,
    Lost,
    Message,
    PubAck,
    Refused,
)
from agent.sync.outbox import Outbox
from agent.sync.presence import Presence, encode
from agent.sync.topics import Topics

log = logging.getLogger(__name__)

POLL_S = 0.25          # how often the store is looked at for new transactions
LOOP_S = 0.1           # paho network loop timeout: bounds the reaction to sync_now()
CONNACK_TIMEOUT_S = 10.0


class SyncService:
    name = "sync"

    def __init__(self, cfg: AgentConfig, config_path: str, store: Store,
                 health_snapshot: Callable[[], dict[str, dict[str, Any]]],
                 command_handler: Callable[[str, dict[str, Any]], object],
                 on_config: Callable[[AgentConfig], None],
                 started_at: float) -> None:
        self.cfg = cfg
        self.store = store
        self.health = Health("sync")
        self._on_config = on_config
        self._command_handler = command_handler
        self._started_at = started_at
        self._presence = Presence(store, cfg.data_dir, health_snapshot, started_at)
        self._desired = DesiredConfig(config_path, store, cfg.cart_id)
        self._desk = CommandDesk(store, cfg.cart_id, self._dispatch)
        self._wake = threading.Event()
        self._online = False
        self._rng = random.Random()
        self._link: Link | None = None
        self._outbox = self._new_outbox()
        self._protocol = MQTT5
        self._attempt = 0
        self._next_try = 0.0
        self._opened_at = 0.0
        self._next_poll = 0.0
        self._next_telemetry = 0.0
        self._relink = False
        self._t = self.topics  # the topics of the current connection (the prefix may change)

    # --- the API the daemon uses ----------------------------------------------------------

    def sync_now(self) -> None:
        self._wake.set()

    def online(self) -> bool:
        return self._online

    def run(self, stop: threading.Event) -> None:
        self._protocol = MQTT311 if self.cfg.mqtt.protocol == "3.1.1" else MQTT5
        self._attempt, self._next_try = 0, 0.0
        self.health.set_error("connecting")
        try:
            while not stop.is_set():
                self._step(stop)
        finally:
            self._close("stopped")

    # --- the loop -----------------------------------------------------------------------

    @property
    def topics(self) -> Topics:
        return Topics(self.cfg.mqtt.topic_prefix, self.cfg.cart_id)

    def _new_outbox(self) -> Outbox:
        return Outbox(self.store, self.cfg.cart_id, self.topics.tx, self.cfg.mqtt,
                      self._publish_qos)

    def _step(self, stop: threading.Event) -> None:
        now = time.monotonic()
        if not self._online and self._desired.rollback_due():
            self._roll_back()
        if self._link is None:
            if self._wake.is_set():
                self._wake.clear()
                self._next_try = now  # someone asked to sync now: skip the backoff wait once
            if now < self._next_try:
                stop.wait(min(0.2, self._next_try - now))
            else:
                self._open()
            return
        link = self._link
        events = link.poll(LOOP_S)
        acks: list[bytes] = []
        for event in events:
            self._on_event(event, acks)
        if acks:
            self._outbox.on_acks(acks)
            if self.health.error and self._online and self.health.set_ok():
                log.info("server acknowledges transactions again")
        if self._relink:
            self._relink = False
            self._close("reconnecting with pushed settings")
            self._next_try = 0.0
            return
        connecting = self._link is not None and not self._online
        if connecting and now - self._opened_at > CONNACK_TIMEOUT_S:
            self._refused(Refused("no CONNACK from the broker", False, answered=False))
        if not self._online:
            return
        if (self._wake.is_set() or acks or now >= self._next_poll
                or (self._outbox.backlog and self._outbox.has_room)):
            self._wake.clear()
            self._outbox.pump()
            self._next_poll = now + POLL_S
        if now >= self._next_telemetry:
            self._next_telemetry = now + self.cfg.mqtt.telemetry_interval_s
            self._publish(self._t.telemetry, self._presence.telemetry(), qos=0)

    def _open(self) -> None:
        self._t = self.topics
        will = (self._t.status, self._presence.status("offline"))
        try:
            link = Link(self.cfg.mqtt, f"cart-{self.cfg.cart_id}", self._protocol, will,
                        max_inflight=self.cfg.mqtt.max_inflight_batches + 16)
            link.open()
        except LinkError as exc:
            self._failed(str(exc))
            return
        self._link = link
        self._opened_at = time.monotonic()

    def _failed(self, reason: str) -> None:
        if self._link is not None:
            self._link.close()
        self._link = None
        self._online = False
        delay = Backoff(initial_s=self.cfg.mqtt.reconnect_min_s,
                        maximum_s=self.cfg.mqtt.reconnect_max_s).delay(self._attempt, self._rng)
        self._attempt += 1
        self._next_try = time.monotonic() + delay
        if self.health.set_error(f"offline: {reason}"):
            log.warning("broker %s:%s unreachable: %s (retrying with backoff)",
                        self.cfg.mqtt.host, self.cfg.mqtt.port, reason)

    def _close(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if self._online:
            # A clean DISCONNECT does not fire the will: say offline ourselves.
            link.publish(self._t.status, self._presence.status("offline"), 1, retain=True)
        link.close()
        self._online = False
        self.health.set_error(f"offline: {reason}")

    def _on_event(self, event: Event, acks: list[bytes]) -> None:
        if isinstance(event, Message):
            self._on_message(event, acks)
        elif isinstance(event, PubAck):
            refusal = self._outbox.on_puback(event)
            if refusal and self.health.set_error(refusal):
                log.error("%s; the rows stay pending", refusal)
        elif isinstance(event, Connected):
            self._on_connected(event)
        elif isinstance(event, Refused):
            self._refused(event)
        elif isinstance(event, Lost):
            self._failed(event.reason)

    def _refused(self, event: Refused) -> None:
        auto = self.cfg.mqtt.protocol == "auto"
        if auto and event.unsupported_protocol and self._protocol == MQTT5:
            log.info("broker does not speak MQTT 5; using 3.1.1")
            self._protocol = MQTT311
            self._link = None
            self._next_try = 0.0
            return
        if auto and not event.answered:
            # Some 3.1.1-only brokers cannot even parse a v5 CONNECT (amqtt chokes on the
            # will properties) and hang up without a CONNACK: try the other version next.
            self._protocol = MQTT311 if self._protocol == MQTT5 else MQTT5
        self._failed(event.reason)

    def _on_connected(self, event: Connected) -> None:
        assert self._link is not None
        self._online = True
        self._attempt = 0
        self.health.set_ok(protocol=event.protocol)
        log.info("connected to %s:%s (MQTT %s)", self.cfg.mqtt.host, self.cfg.mqtt.port,
                 event.protocol)
        self._link.subscribe(self._t.down())
        self._outbox.reset()
        self._publish(self._t.status, self._presence.status("online"), retain=True)
        self._publish(self._t.reported, encode(self._desired.report()), retain=True)
        self._next_telemetry = 0.0
        self._next_poll = 0.0
        self._desired.pass_probation()

    def _on_message(self, msg: Message, acks: list[bytes]) -> None:
        topics = self._t
        if msg.topic == topics.ack:
            acks.append(msg.payload)
        elif msg.topic == topics.cmd:
            if msg.retain:
                # A stored command would fire at every reconnect, maybe hours after it was
                # sent (an open door nobody is waiting at): commands must be live.
                log.warning("retained command refused")
                self._publish(topics.result, encode(answer(
                    None, False, error="retained commands are refused; publish without retain")))
                return
            self._publish(topics.result, encode(self._run_command(msg.payload)))
        elif msg.topic == topics.desired:
            self._on_desired("cart", msg.payload)
        elif msg.topic == topics.fleet_desired:
            self._on_desired("fleet", msg.payload)
        else:
            log.debug("message on unexpected topic %s ignored", msg.topic)

    def _publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        if self._link is not None:
            self._link.publish(topic, payload, qos, retain)

    def _publish_qos(self, topic: str, payload: bytes, qos: int) -> int | None:
        return self._link.publish(topic, payload, qos) if self._link is not None else None

    # --- commands -----------------------------------------------------------------------

    def _run_command(self, payload: bytes) -> dict[str, Any]:
        try:
            return self._desk.handle(payload, self.cfg.security.fleet_keys)
        except Exception as exc:  # a store failure here must not take the link down
            log.exception("command handling failed")
            return answer(None, False, error=f"failed: {type(exc).__name__}")

    def _dispatch(self, name: str, args: dict[str, Any]) -> object:
        if name == "sync_now":
            self._wake.set()
            return {"pending": self.store.queue_stats()["pending"]}
        if name == "ping":
            return {"pong": True, "at": rfc3339(time.time()),
                    "uptime_s": round(time.time() - self._started_at, 1)}
        return self._command_handler(name, args)

    # --- desired config -----------------------------------------------------------------

    def _on_desired(self, scope: str, payload: bytes) -> None:
        decision = self._desired.handle(scope, payload, self.cfg)
        if decision.status == "ignored":
            return
        if decision.status == "applied":
            self._take(decision)
        # On this connection, even when new settings make us reconnect: the fleet hears that
        # it was applied from where it pushed it (and again after reconnecting).
        self._publish(self._t.reported, encode(self._desired.report()), retain=True)
        self._publish(self._t.status, self._presence.status("online"), retain=True)

    def _take(self, decision: Decision) -> None:
        assert decision.config is not None
        try:
            self._on_config(decision.config)
        except Exception as exc:  # the daemon could not rebuild with it: undo, keep going
            log.error("pushed config could not be taken: %s", exc)
            restored = self._desired.undo(decision, f"not applied: {exc}")
            self._adopt(restored, notify=True)
            return
        self._adopt(decision.config, notify=False)

    def _adopt(self, cfg: AgentConfig, notify: bool) -> None:
        if notify:
            try:
                self._on_config(cfg)
            except Exception:  # nothing better to go back to; the log says what failed
                log.exception("restoring the previous config failed")
        mqtt_changed = cfg.mqtt != self.cfg.mqtt
        self.cfg = cfg
        if mqtt_changed:
            # New settings mean a new connection; the outbox is rebuilt with the new limits.
            self._outbox = self._new_outbox()
            self._relink = True
            self._protocol = MQTT311 if cfg.mqtt.protocol == "3.1.1" else MQTT5

    def _roll_back(self) -> None:
        restored = self._desired.rollback()
        self._close("rolled back the pushed config")
        self._adopt(restored, notify=True)
        self._relink = False
        self._attempt, self._next_try = 0, 0.0
