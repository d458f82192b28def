"""The ingest on a NATS cluster: competing consumers of one durable JetStream consumer.

Carts keep speaking MQTT to any node; NATS maps `P/C/tx` to the subject `P.C.tx`. A stream
(`CARTS_TX`, work-queue retention, file storage, replicated on three nodes) captures
`P.*.tx`, and every worker pulls from the same durable consumer, so each message goes to one
worker at a time and is redelivered to another if it is not acknowledged within `ack_wait`.

Messages are pulled (up to `batch` per request, delivered as they arrive) and whatever has
arrived when the worker is free is validated with the same parser as the MQTT ingest and
stored in one database transaction: at low rates a message waits for nobody, under load the
batches grow by themselves; only after the commit are the JetStream messages acked
and each cart's ids published on `P.C.tx.ack` (the cart's `P/C/tx/ack`). A worker killed
between the commit and the acks costs a redelivery, which ON CONFLICT stores once.

A JetStream ack is not the cart's ack: NATS' own MQTT PUBACK only says the message reached
its internal `$MQTT_msgs` stream, and during a leader election of ours some never arrive
(FACTS.md). The cart resends until the `tx/ack`, and that is what makes it whole.

The cart's ack goes out as a plain NATS message, which NATS delivers to the cart's QoS 1
subscription at QoS 0: a lost one only means the cart resends and is acked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import nats
from nats.errors import ConnectionClosedError, NoServersError
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from agent.contract import rfc3339
from fleet.client import FleetError
from fleet.ingest import BadPayload, IngestStats, parse_tx_message
from fleet.storage import Row, StorageError, open_storage

log = logging.getLogger(__name__)

STREAM = "CARTS_TX"
DURABLE = "ingest"
WEEK_S = 7 * 24 * 3600


@dataclass(frozen=True)
class NatsOptions:
    servers: list[str]
    prefix: str = "carts"
    user: str | None = None
    password: str | None = None
    stream: str = STREAM
    durable: str = DURABLE
    replicas: int = 3
    batch: int = 500
    fetch_timeout_s: float = 0.1
    ack_wait_s: float = 30.0
    name: str = "cart-ingest"
    tls: bool = False
    ca_file: str | None = None


def parse_servers(value: str) -> list[str]:
    """`URL[,URL...]`; a bare host:port gets nats://."""
    servers = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        servers.append(part if "://" in part else f"nats://{part}")
    if not servers:
        raise ValueError("--nats needs at least one URL")
    return servers


class NatsIngest:
    def __init__(self, opts: NatsOptions, db_url: str, table: str | None = None) -> None:
        self.opts = opts
        self.db_url = db_url
        self.table = table
        self.stats = IngestStats()
        self.storage: Any = None
        self.nc: Any = None
        self.ready = asyncio.Event()
        self._inbox = ""
        self._buffer: list[Any] = []
        self._arrived = asyncio.Event()
        self._credit = 0
        self._request_until = 0.0

    @property
    def subject(self) -> str:
        return f"{self.opts.prefix}.*.tx"

    async def _connect(self) -> None:
        async def on_error(exc: Exception) -> None:
            log.debug("nats: %s", exc)

        async def on_disconnect() -> None:
            log.warning("nats: disconnected, reconnecting")

        async def on_reconnect() -> None:
            self._credit = 0  # the pull request died with the old connection
            log.info("nats: reconnected to %s", self.nc.connected_url.netloc
                     if self.nc and self.nc.connected_url else "?")

        tls = None
        if self.opts.tls or any(u.startswith("tls://") for u in self.opts.servers):
            try:
                tls = ssl.create_default_context(cafile=self.opts.ca_file or None)
            except (OSError, ssl.SSLError) as exc:
                raise FleetError(f"TLS setup failed: {exc}") from None
        try:
            self.nc = await nats.connect(
                servers=self.opts.servers, name=self.opts.name, user=self.opts.user, tls=tls,
                password=self.opts.password, connect_timeout=2, reconnect_time_wait=0.5,
                max_reconnect_attempts=2, allow_reconnect=True, error_cb=on_error,
                disconnected_cb=on_disconnect, reconnected_cb=on_reconnect)
            # Bounded tries at start (a wrong URL is an error to report), endless ones
            # once running (a node restarting must not end the worker).
            self.nc.options["max_reconnect_attempts"] = -1
        except (TimeoutError, NoServersError, OSError) as exc:
            raise FleetError(f"cannot connect to NATS at {','.join(self.opts.servers)}: "
                             f"{exc or type(exc).__name__}") from None

    async def _ensure_stream(self, js: Any) -> None:
        try:
            await js.stream_info(self.opts.stream)
            return
        except NotFoundError:
            pass
        for replicas in sorted({self.opts.replicas, 1}, reverse=True):
            config = StreamConfig(
                name=self.opts.stream, subjects=[self.subject],
                retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE,
                num_replicas=replicas, max_age=WEEK_S, duplicate_window=120)
            try:
                await js.add_stream(config)
                log.info("created stream %s on %s (%d replicas)", self.opts.stream,
                         self.subject, replicas)
                return
            except APIError as exc:
                if replicas == 1:
                    raise FleetError(f"cannot create stream {self.opts.stream}: {exc}"
                                     ) from None
                log.warning("stream with %d replicas refused (%s); trying 1", replicas, exc)

    async def start(self) -> None:
        """Connect, make sure stream and durable consumer exist, subscribe the inbox."""
        self.storage = await asyncio.to_thread(open_storage, self.db_url, self.table)
        await self._connect()
        js = self.nc.jetstream(timeout=10)
        config = ConsumerConfig(durable_name=self.opts.durable, ack_policy=AckPolicy.EXPLICIT,
                                ack_wait=self.opts.ack_wait_s, max_deliver=-1,
                                max_ack_pending=20_000, max_waiting=512,
                                filter_subject=self.subject)
        delay = 0.5
        while True:
            # A cluster busy with a connect storm answers its API late ("timeout"); a worker
            # (re)started then waits for it instead of dying.
            try:
                await self._ensure_stream(js)
                await js.add_consumer(self.opts.stream, config)
                break
            except NatsTimeout:
                log.warning("JetStream did not answer; trying again in %.1f s", delay)
            except APIError as exc:
                if exc.code is not None and exc.code < 500:
                    raise FleetError(f"cannot create consumer {self.opts.durable}: {exc}"
                                     ) from None
                log.warning("JetStream: %s; trying again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(10.0, delay * 2)
        self._inbox = self.nc.new_inbox()
        await self.nc.subscribe(self._inbox, cb=self._on_delivery)
        log.info("ingest consuming %s (stream %s, consumer %s), storing in %s", self.subject,
                 self.opts.stream, self.opts.durable,
                 "postgresql" if self.db_url.startswith("postgres") else self.db_url)
        self.ready.set()

    async def _on_delivery(self, msg: Any) -> None:
        # Status messages (404 no messages, 408 request expired, 409 leadership change...)
        # end a pull request; anything else is a message of the stream.
        if msg.headers and msg.headers.get("Status"):
            self._credit = 0
        else:
            self._buffer.append(msg)
        self._arrived.set()

    async def _request(self) -> None:
        """Ask the consumer for up to `batch` messages, pushed as they arrive."""
        expires_s = max(self.opts.fetch_timeout_s, 1.0)
        body = json.dumps({"batch": self.opts.batch, "expires": int(expires_s * 1e9)})
        await self.nc.publish(f"$JS.API.CONSUMER.MSG.NEXT.{self.opts.stream}."
                              f"{self.opts.durable}", body.encode(), reply=self._inbox)
        self._credit = self.opts.batch
        self._request_until = time.monotonic() + expires_s

    async def run(self, stop: asyncio.Event) -> None:
        """Pull, store, ack, until `stop`.

        nats-py's `fetch()` waits with `asyncio.wait_for(queue.get(), t)`, which on Python
        3.11 can drop an item that arrives as the timeout fires: with short fetch timeouts
        ~2 % of messages sat unacknowledged until `ack_wait` (measured). So the pull requests
        are made here and deliveries land in a list through a callback: a wake-up may be
        late, a message is never lost in the client.
        """
        await self.start()
        try:
            while not stop.is_set():
                if self._credit <= 0 or time.monotonic() >= self._request_until:
                    try:
                        await self._request()
                    except (ConnectionClosedError, OSError) as exc:
                        log.debug("pull request failed: %s", exc)
                        await asyncio.sleep(0.2)
                        continue
                if not self._buffer:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(),
                                               self.opts.fetch_timeout_s)
                self._arrived.clear()
                if self._buffer:
                    msgs, self._buffer = self._buffer, []
                    self._credit -= len(msgs)
                    try:
                        await self.handle(msgs)
                    except (NatsError, OSError) as exc:
                        # Unacked messages come back after ack_wait; the cart resends anyway.
                        log.warning("lost the connection while acknowledging: %s", exc)
        finally:
            await self.close()

    async def handle(self, msgs: list[Any]) -> None:
        prefix = self.opts.prefix
        rows: list[Row] = []
        by_cart: dict[str, list[str]] = defaultdict(list)
        good: list[Any] = []
        for msg in msgs:
            self.stats.add(messages=1)
            try:
                cart, parsed, bad = parse_tx_message(prefix, msg.subject.replace(".", "/"),
                                                     msg.data)
            except BadPayload as exc:
                self.stats.add(bad=1)
                log.warning("dropped a message on %s: %s", msg.subject, exc)
                await msg.term()  # never redeliver garbage
                continue
            self.stats.add(bad=bad)
            rows.extend(parsed)
            by_cart[cart].extend(row[0] for row in parsed)
            good.append(msg)
        if rows:
            try:
                added = await asyncio.to_thread(self.storage.store, rows, rfc3339(time.time()))
            except StorageError as exc:
                self.stats.add(failed=len(rows))
                log.error("could not store %d transaction(s): %s", len(rows), exc)
                for msg in good:
                    await msg.nak(delay=1.0)
                return
            self.stats.add(stored=added, duplicates=len(rows) - added, acked=len(rows))
        for msg in good:
            await msg.ack()
        for cart, ids in by_cart.items():
            if ids:
                await self.nc.publish(f"{prefix}.{cart}.tx.ack",
                                      json.dumps({"ids": ids,
                                                  "at": rfc3339(time.time())}).encode())

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await self.nc.drain()
            except (TimeoutError, ConnectionClosedError, OSError):
                await self.nc.close()
        if self.storage is not None:
            self.storage.close()
            self.storage = None


def run_forever(opts: NatsOptions, db_url: str, table: str | None = None,
                log_every_s: float = 60.0) -> int:
    """The `cart-fleet ingest --transport nats` process: until SIGINT/SIGTERM."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        worker = NatsIngest(opts, db_url, table)

        async def report() -> None:
            while not stop.is_set():
                await asyncio.sleep(log_every_s)
                log.info("ingest: %s", worker.stats)

        reporter = asyncio.create_task(report())
        try:
            await worker.run(stop)
        finally:
            reporter.cancel()

    asyncio.run(main())
    return 0
