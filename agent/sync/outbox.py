"""The sender: pending transactions go up in batches until the server acknowledges them.

A PUBACK only says the broker has the message (and a 3.1.1 broker acknowledges even what its
ACL drops); a row is marked synced only when the server's `tx/ack` names it. Until then it
stays 'pending' in SQLite: batches not acknowledged within `ack_timeout_s` are sent again,
and after a reconnect everything pending is sent again from the oldest. Several batches are
in flight at once (`max_inflight_batches`) so the round trip to the server and its commit do
not set the pace.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.config import MqttConfig
from agent.store import Store, Tx
from agent.sync.downlink import ControlError, parse_json_object, server_time
from agent.sync.link import PubAck

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes, int], "int | None"]
MAX_ACK_IDS = 10_000
MAX_ACK_BYTES = 1024 * 1024


@dataclass
class Batch:
    txs: list[Tx]
    waiting: set[str]
    sent_at: float
    mid: int | None = None
    refused: bool = False
    sends: int = 0


def encode_batch(cart: str, txs: list[Tx], max_bytes: int) -> tuple[bytes, int]:
    """The payload for the longest prefix of `txs` within `max_bytes` (at least one tx)."""
    head = b'{"cart":' + json.dumps(cart).encode() + b',"txs":['
    parts: list[bytes] = []
    size = len(head) + 2
    for tx in txs:
        part = json.dumps(tx.wire(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        extra = len(part) + (1 if parts else 0)
        if parts and size + extra > max_bytes:
            break
        parts.append(part)
        size += extra
    return head + b",".join(parts) + b"]}", len(parts)


def parse_ack(payload: bytes) -> list[str]:
    return read_ack(payload)[0]


def read_ack(payload: bytes) -> tuple[list[str], float | None]:
    """The acked ids and the server's time on the ack (None when it sent none)."""
    if len(payload) > MAX_ACK_BYTES:
        raise ControlError(f"ack of {len(payload)} bytes is too large")
    doc: dict[str, Any] = parse_json_object(payload, "ack")
    ids = doc.get("ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids):
        raise ControlError("ack: ids must be a list of transaction ids")
    if len(ids) > MAX_ACK_IDS:
        raise ControlError(f"ack: more than {MAX_ACK_IDS} ids")
    return ids, server_time(doc, "ack")


@dataclass
class Outbox:
    store: Store
    cart: str
    topic: str
    cfg: MqttConfig
    publish: Publish
    clock: Callable[[], float] = time.monotonic
    on_server_time: Callable[[float, bool], None] | None = None
    backlog: bool = True  # the last look at the store found rows: look again soon
    _batches: list[Batch] = field(default_factory=list)
    _by_mid: dict[int, Batch] = field(default_factory=dict)
    _by_id: dict[str, Batch] = field(default_factory=dict)
    _cursor: int = 0  # highest seq sent on this connection

    def reset(self) -> None:
        """New connection: forget what was in flight; all pending rows go again, oldest first."""
        self._batches.clear()
        self._by_mid.clear()
        self._by_id.clear()
        self._cursor = 0
        self.backlog = True

    @property
    def has_room(self) -> bool:
        return len(self._batches) < self.cfg.max_inflight_batches

    def pump(self) -> int:
        """Resend what timed out, then fill the window. Returns how many txs were published."""
        sent = 0
        now = self.clock()
        for batch in self._batches:
            if now - batch.sent_at >= self.cfg.ack_timeout_s:
                if not self._send(batch, now):
                    return sent
                sent += len(batch.waiting)
        while self.has_room:
            txs = self.store.pending_batch(self.cfg.batch_max_count, self.cfg.batch_max_bytes,
                                           after_seq=self._cursor)
            self.backlog = bool(txs)
            if not txs:
                break
            batch = Batch(txs=txs, waiting={tx.id for tx in txs}, sent_at=now)
            if not self._send(batch, now):
                break
            self._batches.append(batch)
            for tx in batch.txs:
                self._by_id[tx.id] = batch
            self._cursor = batch.txs[-1].seq
            sent += len(batch.txs)
        return sent

    def _send(self, batch: Batch, now: float) -> bool:
        txs = [tx for tx in batch.txs if tx.id in batch.waiting]
        payload, count = encode_batch(self.cart, txs, self.cfg.batch_max_bytes)
        if count < len(txs):
            # pending_batch estimates sizes; the exact encoding decides. The rest waits for
            # the next batch (the cursor stops at what was really sent).
            dropped = {tx.id for tx in txs[count:]}
            txs = txs[:count]
            batch.txs = [tx for tx in batch.txs if tx.id not in dropped]
            batch.waiting -= dropped
        mid = self.publish(self.topic, payload, 1)
        if mid is None:
            return False
        if batch.mid is not None:
            self._by_mid.pop(batch.mid, None)
        if batch.sends:
            log.info("resending %d transaction(s) not acknowledged within %.0f s",
                     len(txs), self.cfg.ack_timeout_s)
        batch.mid, batch.sent_at, batch.refused = mid, now, False
        batch.sends += 1
        self._by_mid[mid] = batch
        return True

    def on_puback(self, ack: PubAck) -> str | None:
        """The broker's answer to a batch; returns the refusal reason if it refused it."""
        batch = self._by_mid.pop(ack.mid, None)
        if batch is None or ack.ok:
            return None
        # MQTT 5 only (e.g. 135, not authorized): the rows stay pending and go again after
        # ack_timeout_s; nothing is marked synced on a broker's word.
        batch.refused = True
        return f"broker refused {len(batch.waiting)} transaction(s): {ack.reason}"

    def on_acks(self, payloads: list[bytes]) -> int:
        """Mark acknowledged ids synced (one SQLite commit for all); returns how many changed."""
        ids: list[str] = []
        for payload in payloads:
            try:
                acked, at = read_ack(payload)
            except ControlError as exc:
                log.warning("ignored a bad ack: %s", exc)
                continue
            ids.extend(acked)
            if at is not None and self.on_server_time is not None:
                self.on_server_time(at, True)  # acks are live: the session is clean
        if not ids:
            return 0
        changed = self.store.mark_synced(ids)
        if changed < len(ids):
            log.debug("%d acked id(s) were unknown or already synced", len(ids) - changed)
        for tx_id in ids:
            batch = self._by_id.pop(tx_id, None)
            if batch is None:
                continue
            batch.waiting.discard(tx_id)
            if not batch.waiting:
                self._batches.remove(batch)
                if batch.mid is not None:
                    self._by_mid.pop(batch.mid, None)
        return changed
