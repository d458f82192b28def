"""The sync service: one thread owning the MQTT link, the outbox, desired config and commands.

Loop: (re)connect with backoff and jitter, run paho's network loop for up to 0.1 s, handle
what arrived, send pending transactions (woken by a `sync_now` command, by acks freeing the
window, or every POLL_S), telemetry on its interval, and the rollback clock of a pushed
config. All of it happens in the thread that calls `run()`.

A pushed config that passes its checks is handed to the runtime (`hand_over`), which owns the
running config: it rebuilds what changed (a new SyncService when the link settings change),
records the outcome and gives it back through `settle()`; only then is it reported. Sync never
changes its own link settings. Other threads call only `settle()` and `online()`.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.backoff import Backoff
from agent.clock import TrustedClock
from agent.config import AgentConfig
from agent.contract import Topics, rfc3339
from agent.health import Health
from agent.store import Store
from agent.sync.command_ledger import CommandDesk, answer
from agent.sync.desired import Decision, DesiredConfig, Rollback
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

log = logging.getLogger(__name__)

HealthSnapshot = Callable[[], dict[str, dict[str, Any]]]
CommandHandler = Callable[[str, dict[str, Any]], object]
HandOver = Callable[["Decision | Rollback"], None]

POLL_S = 0.25          # how often the store is looked at for new transactions
LOOP_S = 0.1           # paho network loop timeout: bounds the reaction to sync_now()
CONNACK_TIMEOUT_S = 10.0
ROLLBACK_ASK_S = 5.0   # how often to ask the runtime again for a rollback it could not make


@dataclass(frozen=True)
class Settled:
    """The runtime's answer to a hand-over: the config it now runs with, and the report to
    publish (the store's, or one said from memory when the store could not take it)."""

    config: AgentConfig
    report: dict[str, Any]
    taken: threading.Event = field(default_factory=threading.Event, compare=False)


class SyncService:
    name = "sync"

    def __init__(self, cfg: AgentConfig, config_path: str, store: Store,
                 health_snapshot: HealthSnapshot, command_handler: CommandHandler,
                 hand_over: HandOver, started_at: float,
                 clock: TrustedClock | None = None) -> None:
        self.cfg = cfg
        self.link = cfg.mqtt  # what this service connects with, for its whole life
        self.store = store
        self.health = Health("sync")
        self._hand_over = hand_over
        self._settled: queue.Queue[Settled] = queue.Queue()
        self._awaiting = False  # a change is with the runtime; desired documents wait
        self._held: list[tuple[str, bytes]] = []
        self._next_rollback_ask = 0.0
        self._command_handler = command_handler
        self._started_at = started_at
        self._trusted = clock
        self._now: Callable[[], float] = clock or time.time
        self._presence = Presence(store, cfg.data_dir, health_snapshot, started_at,
                                  clock=self._now, trusted=clock)
        self._desired = DesiredConfig(config_path, store, cfg.cart_id, self._now)
        self._desired.on_server_time = self._server_time
        self._desk = CommandDesk(store, cfg.cart_id, self._dispatch,
                                 on_server_time=self._server_time)
        self._since = self._now()  # when the current connection was made
        self._wake = threading.Event()
        self._online = False
        self._rng = random.Random()
        self._link: Link | None = None
        self._outbox = Outbox(store, cfg.cart_id, self.topics.tx, self.link, self._publish_qos,
                              on_server_time=self._server_time)
        self._protocol = MQTT5
        self._attempt = 0
        self._next_try = 0.0
        self._opened_at = 0.0
        self._next_poll = 0.0
        self._next_telemetry = 0.0
        self._announce = False
        self._t = self.topics  # the topics of the current connection (the prefix may change)

    def _server_time(self, at: float, live: bool) -> None:
        """The server's `at` on a downlink: evidence for the trusted clock (contract 6)."""
        if self._trusted is not None:
            self._trusted.server_time(at, live)

    # --- the API the runtime uses ---------------------------------------------------------

    def online(self) -> bool:
        return self._online

    def announce(self) -> None:
        """Publish status and telemetry again soon (any thread): something the fleet reads
        there changed (the software update's state)."""
        self._announce = True

    def settle(self, settled: Settled) -> threading.Event:
        """The runtime's answer to the last hand-over (any thread); the event is set once it
        has been reported on this service's connection (when it has one)."""
        self._settled.put(settled)
        return settled.taken

    def run(self, stop: threading.Event) -> None:
        self._protocol = MQTT311 if self.link.protocol == "3.1.1" else MQTT5
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
        return Topics(self.link.topic_prefix, self.cfg.cart_id)

    def _step(self, stop: threading.Event) -> None:
        now = time.monotonic()
        self._take_settled()
        if not self._online and not self._awaiting and now >= self._next_rollback_ask:
            rollback = self._desired.rollback_due()
            if rollback is not None:
                self._next_rollback_ask = now + ROLLBACK_ASK_S
                self._awaiting = True
                log.warning("pushed config never reached the broker: asking to roll it back")
                self._hand_over(rollback)
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
        if self._announce:
            self._announce = False
            self._publish(self._t.status, self._presence.status("online", self._since), retain=True)
            self._next_telemetry = 0.0
        if now >= self._next_telemetry:
            self._next_telemetry = now + self.link.telemetry_interval_s
            self._publish(self._t.telemetry, self._presence.telemetry(), qos=0)

    def _open(self) -> None:
        self._t = self.topics
        self._since = self._now()
        will = (self._t.status, self._presence.status("offline", self._since))
        try:
            link = Link(self.link, f"cart-{self.cfg.cart_id}", self._protocol, will,
                        max_inflight=self.link.max_inflight_batches + 16)
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
        delay = Backoff(initial_s=self.link.reconnect_min_s,
                        maximum_s=self.link.reconnect_max_s).delay(self._attempt, self._rng)
        self._attempt += 1
        self._next_try = time.monotonic() + delay
        if self.health.set_error(f"offline: {reason}"):
            log.warning("broker %s:%s unreachable: %s (retrying with backoff)",
                        self.link.host, self.link.port, reason)

    def _close(self, reason: str) -> None:
        link, self._link = self._link, None
        if link is None:
            return
        if self._online:
            # A clean DISCONNECT does not fire the will: say offline ourselves.
            link.publish(self._t.status, self._presence.status("offline", self._since), 1,
                         retain=True)
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
        auto = self.link.protocol == "auto"
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
        log.info("connected to %s:%s (MQTT %s)", self.link.host, self.link.port,
                 event.protocol)
        self._link.subscribe(self._t.down())
        self._outbox.reset()
        self._publish(self._t.status, self._presence.status("online", self._since), retain=True)
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
            now = self._now()
            return {"pong": True, "at": rfc3339(now),
                    "uptime_s": round(now - self._started_at, 1)}
        return self._command_handler(name, args)

    # --- desired config -----------------------------------------------------------------

    def _on_desired(self, scope: str, payload: bytes) -> None:
        if self._awaiting:
            self._held.append((scope, payload))  # decided once the runtime has answered
            return
        decision = self._desired.decide(scope, payload, self.cfg)
        if decision.status == "ignored":
            return
        if decision.status == "accepted":
            self._awaiting = True
            self._hand_over(decision)
            return
        self._report(self._desired.report())

    def _take_settled(self) -> None:
        try:
            settled = self._settled.get_nowait()
        except queue.Empty:
            return
        # This service keeps its link settings (`self.link`): when the outcome changes them,
        # the runtime replaces it with a new service once this one has reported.
        self.cfg = settled.config
        self._awaiting = False
        # On this connection, even when new settings follow with a new service: the fleet
        # hears the outcome from where it pushed it (and again after reconnecting).
        self._report(settled.report)
        settled.taken.set()
        held, self._held = self._held, []
        for scope, payload in held:
            self._on_desired(scope, payload)

    def _report(self, report: dict[str, Any]) -> None:
        self._publish(self._t.reported, encode(report), retain=True)
        self._publish(self._t.status, self._presence.status("online", self._since), retain=True)
