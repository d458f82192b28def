"""The reference central ingest: store every transaction once, then acknowledge it.

Several workers may share the load through a shared subscription (`$share/ingest/P/+/tx`,
MQTT 5; Mosquitto also honours it in 3.1.1). Each message is validated, its transactions are
inserted with ON CONFLICT DO NOTHING and committed, and only then are their ids acked on
`P/C/tx/ack`: ids that were already stored are acked again, since a cart resends exactly
what it never heard an ack for. Bad payloads are logged and dropped; the worker keeps going.

Some brokers grant `$share/...` and then never deliver a message through it (RabbitMQ 3.10,
NATS 2.9: FACTS.md), which would leave every cart pending with nothing logged. So the worker
proves its subscription at start: it publishes a probe on `P/_probe/tx` (matched by the same
filter; `_probe` can never be a cart id) and waits for it to come back. Whichever worker of
the group the broker hands the probe to answers it on `P/_probe/tx/ack`, which every worker
subscribes to plainly. No answer within `probe_timeout_s`: a clear error, nothing started.
(The NATS transport, `fleet.ingest_nats`, consumes JetStream directly and needs no probe.)
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from agent.contract import CART_ID_PATTERN, is_ulid, parse_rfc3339, rfc3339
from fleet.client import BrokerOptions, FleetClient, FleetError
from fleet.storage import Row, StorageError, open_storage

log = logging.getLogger(__name__)

MAX_PAYLOAD = 4 * 1024 * 1024
MAX_TXS = 1000
TX_KEYS = {"id", "seq", "cart", "type", "at", "data"}
TX_OPTIONAL = {"clock"}  # which clock dated `at` when not the wall clock (contract section 6)
CLOCKS = ("wall", "corrected", "unknown")
_CART = re.compile(CART_ID_PATTERN)
_TYPE = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
PROBE_CART = "_probe"  # not a cart id ([a-z0-9-]): cannot collide with a cart's topics


class BadPayload(ValueError):
    pass


def _check_tx(tx: Any, cart: str) -> Row:
    if not isinstance(tx, dict) or not TX_KEYS <= set(tx) <= TX_KEYS | TX_OPTIONAL:
        raise BadPayload("a transaction must have exactly id, seq, cart, type, at, data "
                         "(and optionally clock)")
    if tx.get("clock", "wall") not in CLOCKS:
        raise BadPayload(f"{tx.get('id')}: clock must be one of {', '.join(CLOCKS)}")
    if not isinstance(tx["id"], str) or not is_ulid(tx["id"]):
        raise BadPayload("id: not a ULID")
    seq = tx["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < 2**63:
        raise BadPayload(f"{tx['id']}: seq must be a positive integer")
    if tx["cart"] != cart:
        raise BadPayload(f"{tx['id']}: cart {tx['cart']!r} does not match the topic")
    if not isinstance(tx["type"], str) or not _TYPE.match(tx["type"]):
        raise BadPayload(f"{tx['id']}: bad type")
    try:
        if not isinstance(tx["at"], str):
            raise ValueError
        parse_rfc3339(tx["at"])
    except ValueError:
        raise BadPayload(f"{tx['id']}: at is not an RFC 3339 time") from None
    if not isinstance(tx["data"], dict):
        raise BadPayload(f"{tx['id']}: data must be an object")
    data = json.dumps(tx["data"], ensure_ascii=False, separators=(",", ":"))
    return (tx["id"], cart, seq, tx["type"], tx["at"], data, tx.get("clock"))


def parse_tx_message(prefix: str, topic: str, payload: bytes) -> tuple[str, list[Row], int]:
    """The cart, its valid transactions, and how many invalid ones were dropped."""
    parts = topic.split("/")
    cart = parts[-2] if len(parts) >= 3 else ""
    if topic != f"{prefix}/{cart}/tx" or not _CART.match(cart):
        raise BadPayload(f"unexpected topic {topic!r}")
    if len(payload) > MAX_PAYLOAD:
        raise BadPayload(f"payload of {len(payload)} bytes is too large")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadPayload(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"cart", "txs"}:
        raise BadPayload('payload must be {"cart", "txs"}')
    if doc["cart"] != cart:
        raise BadPayload(f"cart {doc['cart']!r} does not match the topic")
    txs = doc["txs"]
    if not isinstance(txs, list) or not 0 < len(txs) <= MAX_TXS:
        raise BadPayload(f"txs must be a list of 1..{MAX_TXS} transactions")
    rows: list[Row] = []
    bad = 0
    for tx in txs:
        try:
            rows.append(_check_tx(tx, cart))
        except BadPayload as exc:
            bad += 1
            log.warning("cart %s: dropped a transaction: %s", cart, exc)
    return cart, rows, bad


@dataclass
class IngestStats:
    messages: int = 0
    stored: int = 0
    duplicates: int = 0
    bad: int = 0
    failed: int = 0
    acked: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class IngestWorker:
    """One ingest worker; start several with the same `group` to share the load."""

    def __init__(self, host: str = "127.0.0.1", port: int = 1883, prefix: str = "carts",
                 db_url: str = "ingest.db", username: str | None = None,
                 password: str | None = None, tls: bool = False, ca_file: str | None = None,
                 shared: bool = True, group: str = "ingest", table: str | None = None,
                 protocol: str = "auto", client_id: str | None = None,
                 probe_timeout_s: float = 5.0) -> None:
        self.opts = BrokerOptions(host=host, port=port, username=username, password=password,
                                  tls=tls, ca_file=ca_file, prefix=prefix, protocol=protocol)
        self.prefix = prefix
        self.db_url = db_url
        self.table = table
        self.shared = shared
        self.group = group
        self.protocol = protocol
        self.client_id = client_id
        self.stats = IngestStats()
        self.storage: Any = None
        self.client: FleetClient | None = None
        self.probe_timeout_s = probe_timeout_s
        self._write_lock = threading.Lock()
        self._probe_id = ""
        self._probe_back = threading.Event()

    @property
    def topic(self) -> str:
        topic = f"{self.prefix}/+/tx"
        return f"$share/{self.group}/{topic}" if self.shared else topic

    def start(self) -> IngestWorker:
        self.storage = open_storage(self.db_url, self.table)
        self.client = FleetClient(self.opts, client_id=self.client_id, protocol=self.protocol)
        try:
            self.client.connect()
            self.client.subscribe([self.topic, self._probe_ack_topic], self._on_message)
            self._prove()
        except Exception:
            self.stop()
            raise
        log.info("ingest subscribed to %s, storing in %s", self.topic,
                 "postgresql" if self.db_url.startswith("postgres") else self.db_url)
        return self

    @property
    def _probe_topic(self) -> str:
        return f"{self.prefix}/{PROBE_CART}/tx"

    @property
    def _probe_ack_topic(self) -> str:
        return f"{self.prefix}/{PROBE_CART}/tx/ack"

    def _prove(self) -> None:
        """Send a probe through the subscription; raise FleetError if it never arrives."""
        assert self.client is not None
        self._probe_id = f"{self.client.client_id}-{uuid.uuid4().hex}"
        payload = json.dumps({"probe": self._probe_id}).encode()
        deadline = time.monotonic() + self.probe_timeout_s
        # Resent now and then: the broker may deliver before the SUBACK is processed.
        while not self._probe_back.is_set():
            self.client.publish(self._probe_topic, payload, qos=1)
            left = deadline - time.monotonic()
            if left <= 0 or self._probe_back.wait(min(1.0, left)):
                break
        if not self._probe_back.is_set():
            raise FleetError(
                f"the broker granted the subscription {self.topic} but delivered nothing "
                f"through it within {self.probe_timeout_s:g} s: it does not serve "
                f"{'shared subscriptions' if self.shared else 'this subscription'} (as "
                "RabbitMQ 3.10 and NATS 2.9 do with $share). Use --transport nats for a NATS "
                "cluster, or --no-shared with a single worker.")
        log.info("subscription %s proven by a probe", self.topic)

    def _on_probe(self, topic: str, payload: bytes) -> None:
        try:
            probe = json.loads(payload).get("probe")
        except (ValueError, AttributeError, RecursionError):
            return
        if not isinstance(probe, str) or len(probe) > 200:
            return
        if topic == self._probe_topic:
            # Another worker's (or our own) probe came to us through the shared group.
            if self.client is not None:
                self.client.publish_nowait(self._probe_ack_topic, payload, qos=1)
        elif probe == self._probe_id:
            self._probe_back.set()

    def stop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.storage is not None:
            with self._write_lock:
                self.storage.close()
            self.storage = None

    def count(self) -> int:
        with self._write_lock:
            return int(self.storage.count())

    def _on_message(self, topic: str, payload: bytes, _retain: bool) -> None:
        if topic in (self._probe_topic, self._probe_ack_topic):
            self._on_probe(topic, payload)
            return
        self.stats.add(messages=1)
        try:
            cart, rows, bad = parse_tx_message(self.prefix, topic, payload)
        except BadPayload as exc:
            self.stats.add(bad=1)
            log.warning("dropped a message on %s: %s", topic, exc)
            return
        self.stats.add(bad=bad)
        if not rows:
            return
        try:
            with self._write_lock:
                added = self.storage.store(rows, rfc3339(time.time()))
        except StorageError as exc:
            # Not acked: the cart sends it again after its ack timeout.
            self.stats.add(failed=len(rows))
            log.error("could not store %d transaction(s) from %s: %s", len(rows), cart, exc)
            return
        self.stats.add(stored=added, duplicates=len(rows) - added, acked=len(rows))
        # `at`: the ingest's clock, evidence of the time for a cart offline for days.
        ack = json.dumps({"ids": [row[0] for row in rows], "at": rfc3339(time.time())}).encode()
        if self.client is not None:
            self.client.publish_nowait(f"{self.prefix}/{cart}/tx/ack", ack, qos=1)
