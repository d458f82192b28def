"""One simulated cart: an asyncio protocol speaking the cart's MQTT contract (section 4).

What it does is what `agent.sync` does, in miniature and in memory:
- connects with a retained `offline` last will and publishes a retained `online` status
  (with `since`), subscribes to its acks, desired configs (its own and `_all`) and commands;
- records transactions with a gapless `seq` and a ULID, sends them oldest first in batches
  `{"cart", "txs"}` at QoS 1, several batches in flight, and forgets a transaction only when
  the ingest's `tx/ack` names it; a batch not acknowledged within `ack_timeout_s` goes again,
  and after a reconnect everything unacknowledged goes again from the oldest;
- answers desired configs with a retained `config/reported` (versions only go forward),
  answers `ping` commands, sends telemetry now and then.
Every batch it sends is first read back with the ingest's own parser
(`fleet.ingest.parse_tx_message`), and every ack with the cart's (`agent.sync.outbox.
parse_ack`): a simulator that drifted from the contract fails loudly instead of measuring
something else.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.contract import rfc3339
from agent.ids import new_ulid
from agent.sync.downlink import ControlError
from agent.sync.outbox import parse_ack
from fleet.ingest import BadPayload, parse_tx_message
from fleetsim import wire

log = logging.getLogger(__name__)


class ContractViolation(AssertionError):
    """The simulator was about to send something the ingest would not accept."""


@dataclass
class CartSettings:
    prefix: str = "carts"
    keepalive: int = 60
    batch_max: int = 50
    max_inflight: int = 4
    ack_timeout_s: float = 10.0
    telemetry_interval_s: float = 0.0  # 0: none
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 8.0
    username: str | None = None
    password: str | None = None  # the same for all; per-cart: password_for
    password_for: Callable[[str], str] | None = None
    # The cart subscribes at QoS 1. On NATS every QoS 1 subscription is a JetStream
    # consumer (four per cart); 0 measures what the same fleet costs without them.
    sub_qos: int = 1


@dataclass
class Batch:
    ids: list[str]
    sent_at: float
    waiting: set[str] = field(default_factory=set)


class _Link(asyncio.Protocol):
    """One TCP connection of a cart. A cart outlives its connections: the loss of an old one
    (reported late) must not touch the new one, so only the current link speaks."""

    def __init__(self, cart: SimCart) -> None:
        self.cart = cart

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.cart._link is self:
            self.cart.connection_made(transport)
        else:
            transport.close()

    def data_received(self, data: bytes) -> None:
        if self.cart._link is self:
            self.cart.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.cart._link is self:
            self.cart.connection_lost(exc)


class SimCart(asyncio.Protocol):
    def __init__(self, fleet: Any, cart_id: str, settings: CartSettings,
                 endpoint: int = 0) -> None:
        self.fleet = fleet  # fleetsim.fleet.Fleet: endpoints, counters, connect gate
        self.cart_id = cart_id
        self.s = settings
        self.endpoint = endpoint
        self.level = 4
        self.transport: asyncio.Transport | None = None
        self.reader = wire.Reader()
        self.online = False
        self.since: str | None = None
        self.seq = 0
        self.pending: dict[str, dict[str, Any]] = {}  # id -> tx, oldest first
        self.created: dict[str, float] = {}
        self.unsent: list[str] = []
        self.batches: list[Batch] = []
        self.where: dict[str, Batch] = {}
        self.packet_id = 0
        self.versions: dict[str, int | None] = {"cart": None, "fleet": None}
        self.resends = 0
        self.connects = 0
        self.connected_once = asyncio.Event()
        self._connack: asyncio.Future[int] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self._last_in = 0.0
        self._next_telemetry = 0.0
        self._subscribing: dict[int, list[str]] = {}
        self._link: _Link | None = None

    # --- topics --------------------------------------------------------------------------

    def topic(self, suffix: str, cart: str | None = None) -> str:
        return f"{self.s.prefix}/{cart or self.cart_id}/{suffix}"

    # --- transactions --------------------------------------------------------------------

    def record(self, type_: str = "ticket.issue", data: dict[str, Any] | None = None) -> str:
        """Commit a transaction (in memory: the simulator's 'SQLite') and send it soon."""
        self.seq += 1
        tx_id = new_ulid()
        self.pending[tx_id] = {"id": tx_id, "seq": self.seq, "cart": self.cart_id,
                               "type": type_, "at": rfc3339(time.time()),
                               "data": data or {"number": self.seq}}
        self.created[tx_id] = time.monotonic()
        self.fleet.ledger_add(self.cart_id, self.seq, tx_id)
        self.unsent.append(tx_id)
        self.pump()
        return tx_id

    def pump(self) -> None:
        if not self.online or self.transport is None or self.transport.is_closing():
            return
        while self.unsent and len(self.batches) < self.s.max_inflight:
            ids = [i for i in self.unsent[:self.s.batch_max] if i in self.pending]
            del self.unsent[:self.s.batch_max]
            if ids:
                batch = Batch(ids, time.monotonic(), set(ids))
                self.batches.append(batch)
                for tx_id in ids:
                    self.where[tx_id] = batch
                self._send(batch)

    def _send(self, batch: Batch) -> None:
        txs = [self.pending[i] for i in batch.ids if i in batch.waiting]
        topic = self.topic("tx")
        payload = json.dumps({"cart": self.cart_id, "txs": txs}, ensure_ascii=False,
                             separators=(",", ":")).encode("utf-8")
        try:
            cart, rows, bad = parse_tx_message(self.s.prefix, topic, payload)
        except BadPayload as exc:
            raise ContractViolation(f"{self.cart_id}: the ingest would drop this: {exc}"
                                    ) from None
        if cart != self.cart_id or bad or len(rows) != len(txs):
            raise ContractViolation(f"{self.cart_id}: {bad} transaction(s) the ingest drops")
        batch.sent_at = time.monotonic()
        self._publish(topic, payload, qos=1)
        self.fleet.counters["published_txs"] += len(txs)

    def _publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        if self.transport is None or self.transport.is_closing():
            return  # lost: what matters is resent from `pending` after the reconnect
        pid = 0
        if qos:
            self.packet_id = self.packet_id % 65535 + 1
            pid = self.packet_id
        self.transport.write(wire.publish(topic, payload, qos, retain, pid, self.level))

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """A QoS 1 publish outside the outbox (for baselines: PUBACKs are counted)."""
        self._publish(topic, payload, qos=1)

    def _on_ack(self, payload: bytes) -> None:
        try:
            ids = parse_ack(payload)
        except ControlError as exc:
            log.warning("%s: ignored a bad ack: %s", self.cart_id, exc)
            return
        now = time.monotonic()
        for tx_id in ids:
            if self.pending.pop(tx_id, None) is None:
                continue
            self.fleet.latency(now - self.created.pop(tx_id))
            batch = self.where.pop(tx_id, None)
            if batch is not None:
                batch.waiting.discard(tx_id)
                if not batch.waiting:
                    self.batches.remove(batch)
        self.fleet.counters["acked_txs"] += len(ids)
        self.pump()

    # --- desired config, commands, telemetry --------------------------------------------

    def _on_desired(self, scope: str, payload: bytes) -> None:
        errors: list[str] = []
        try:
            doc = json.loads(payload)
            version = doc["version"]
            if not isinstance(doc.get("config"), dict) or isinstance(version, bool) or \
                    not isinstance(version, int) or version < 1:
                raise ValueError("need {version, config}")
        except (ValueError, KeyError, TypeError) as exc:
            errors.append(f"{scope} config: unreadable: {exc}")
            version = None
        current = self.versions[scope]
        if version is not None and current is not None and version <= current:
            return  # versions only go forward; a retained message comes back on reconnect
        if version is not None:
            self.versions[scope] = version
        report = {"version": self.versions["cart"], "fleet_version": self.versions["fleet"],
                  "status": "rejected" if errors else "applied", "errors": errors,
                  "at": rfc3339(time.time())}
        self._publish(self.topic("config/reported"), json.dumps(report).encode(), 1, True)
        self.fleet.counters["config_reports"] += 1

    def _on_command(self, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
            cmd_id, name = doc["id"], doc["name"]
        except (ValueError, KeyError, TypeError):
            return
        ok = name == "ping"
        result = {"id": cmd_id, "ok": ok, "result": "pong" if ok else None,
                  "error": None if ok else f"{name}: not simulated"}
        self._publish(self.topic("cmd/result"), json.dumps(result).encode(), 1)

    def _telemetry(self) -> bytes:
        oldest = min(self.created.values(), default=None)
        return json.dumps({
            "at": rfc3339(time.time()),
            "queue": {"pending": len(self.pending),
                      "oldest_pending_s": None if oldest is None
                      else round(time.monotonic() - oldest, 1)},
            "devices": {d: {"ok": True, "error": None} for d in ("scanner", "printer",
                                                                   "locker")},
            "uptime_s": 0.0, "disk_free_mb": 1024}).encode()

    def status(self, state: str) -> bytes:
        return json.dumps({"state": state, "at": rfc3339(time.time()), "since": self.since,
                           "agent_version": "fleetsim",
                           "config_version": self.versions["cart"],
                           "fleet_config_version": self.versions["fleet"]}).encode()

    # --- connection ----------------------------------------------------------------------

    async def connect(self, level: int) -> int:
        """One attempt at `level`; returns the CONNACK code (-1: closed without one)."""
        host, port = self.fleet.endpoints[self.endpoint % len(self.fleet.endpoints)]
        self.level = level
        self._connack = asyncio.get_running_loop().create_future()
        link = _Link(self)
        self._link = link
        try:
            await asyncio.get_running_loop().create_connection(lambda: link, host, port)
        except OSError:
            return -2
        username: str | None
        password: str | None
        if self.s.password_for is not None:  # per-cart credentials: user name = cart id
            username, password = self.cart_id, self.s.password_for(self.cart_id)
        else:
            username, password = self.s.username, self.s.password
        assert self.transport is not None
        self.transport.write(wire.connect(
            self.cart_id, self.s.keepalive, level, True, username, password,
            will=(self.topic("status"), self.status("offline"))))
        try:
            return await asyncio.wait_for(self._connack, 15)
        except TimeoutError:
            self._drop()
            return -1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.reader = wire.Reader()
        self._last_in = time.monotonic()

    def data_received(self, data: bytes) -> None:
        self._last_in = time.monotonic()
        try:
            packets = self.reader.feed(data)
            for packet in packets:
                self._handle(packet)
        except wire.ProtocolError as exc:
            log.warning("%s: %s", self.cart_id, exc)
            self._drop()

    def _handle(self, packet: wire.Packet) -> None:
        if packet.kind == wire.PUBLISH:
            msg = wire.parse_publish(packet, self.level)
            if msg.qos == 1:
                assert self.transport is not None
                self.transport.write(wire.puback(msg.packet_id))
            if msg.topic == self.topic("tx/ack"):
                self._on_ack(msg.payload)
            elif msg.topic == self.topic("config/desired"):
                self._on_desired("cart", msg.payload)
            elif msg.topic == self.topic("config/desired", "_all"):
                self._on_desired("fleet", msg.payload)
            elif msg.topic == self.topic("cmd"):
                self._on_command(msg.payload)
        elif packet.kind == wire.PUBACK:
            _pid, reason = wire.parse_ack(packet.body)
            self.fleet.counters["pubacks"] += 1
            if reason >= 0x80:
                self.fleet.counters["refused_publishes"] += 1
        elif packet.kind == wire.CONNACK:
            code = wire.parse_connack(packet.body)
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(code)
            if code == 0:
                self._on_online()
            else:
                self._drop()
        elif packet.kind == wire.SUBACK:
            pid, codes = wire.parse_suback(packet.body, self.level)
            asked = self._subscribing.pop(pid, [])
            refused = [t for t, c in zip(asked, codes, strict=False) if c >= 0x80]
            if refused:
                # NATS refuses some while JetStream is busy (a node lost, a connect storm).
                # Without its tx/ack subscription the cart would resend forever and never
                # hear an ack: ask again a little later (a reconnect would add churn).
                self.fleet.counters["refused_subscriptions"] += len(refused)
                asyncio.get_running_loop().call_later(random.uniform(1.0, 4.0),
                                                      self._subscribe, refused)

    def _on_online(self) -> None:
        self.online = True
        self.connects += 1
        self.since = rfc3339(time.time())
        assert self.transport is not None
        self._subscribing.clear()
        self._subscribe([self.topic("tx/ack"), self.topic("config/desired"),
                         self.topic("config/desired", "_all"), self.topic("cmd")])
        self._publish(self.topic("status"), self.status("online"), 1, True)
        # Everything unacknowledged goes again, oldest first (as the real outbox does).
        self.batches.clear()
        self.where.clear()
        self.unsent = list(self.pending)
        if self.connects > 1 and self.unsent:
            self.resends += len(self.unsent)
        self.fleet.on_online(self)
        self.connected_once.set()
        self._next_telemetry = time.monotonic() + random.uniform(0, self.s.telemetry_interval_s
                                                                 or 1)
        self._schedule()
        self.pump()

    def _subscribe(self, topics: list[str]) -> None:
        if not self.online or self.transport is None or self.transport.is_closing():
            return  # a new connection subscribes to everything anyway
        self.packet_id = self.packet_id % 65535 + 1
        self._subscribing[self.packet_id] = topics
        self.transport.write(wire.subscribe(self.packet_id, [(t, self.s.sub_qos)
                                                             for t in topics], self.level))

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        every = min(self.s.ack_timeout_s, self.s.keepalive / 2,
                    self.s.telemetry_interval_s or self.s.ack_timeout_s)
        self._timer = loop.call_later(every * random.uniform(0.9, 1.0), self._tick)

    def _tick(self) -> None:
        """Keepalive, ack timeouts, telemetry: one timer per cart, not one per batch."""
        if not self.online or self.transport is None or self.transport.is_closing():
            return
        now = time.monotonic()
        if now - self._last_in > self.s.keepalive * 1.5:
            self._drop()  # the broker went silent: half-open connection
            return
        self.transport.write(wire.PINGREQ_BYTES)
        for batch in self.batches:
            if now - batch.sent_at >= self.s.ack_timeout_s:
                self.resends += len(batch.waiting)
                self.fleet.counters["resent_txs"] += len(batch.waiting)
                self._send(batch)
        if self.s.telemetry_interval_s and now >= self._next_telemetry:
            self._publish(self.topic("telemetry"), self._telemetry())
            self._next_telemetry = now + self.s.telemetry_interval_s
        self._schedule()

    def _drop(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        was_online = self.online
        self.online = False
        self.transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(-1)
        if was_online and not self._closing:
            self.fleet.on_offline(self)

    def power_off(self) -> None:
        """The connection dies with no DISCONNECT and no reconnect: the broker sends the will."""
        self._closing = True
        self._drop()

    async def disconnect(self) -> None:
        """A clean DISCONNECT: the broker does not publish the will."""
        self._closing = True
        if self.transport is not None:
            self._publish(self.topic("status"), self.status("offline"), 1, True)
            self.transport.write(wire.DISCONNECT_BYTES)
            self.transport.close()
