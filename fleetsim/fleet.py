"""Many simulated carts in one asyncio loop: connecting, load, reconnect storms, accounting.

Carts are spread over the broker endpoints (the nodes of a cluster, as a DNS name or a TCP
load balancer in front of it would spread them). When a cart loses its connection it waits
a jittered, growing backoff and tries the next endpoint, as a cart behind such a name
would reach another node. At most `connect_concurrency` handshakes are in progress at once:
the cluster's limit is the connect rate (FACTS.md), and unbounded storms only add refusals.

Protocol: `auto` starts with MQTT 5 and falls back to 3.1.1 on a refusal of the version or a
close without CONNACK, and remembers per endpoint what it learnt (ten thousand carts need
not each be refused once).
"""

from __future__ import annotations

import asyncio
import logging
import random
import resource
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetsim.cart import CartSettings, SimCart

log = logging.getLogger(__name__)

LEVELS = {"5": [5], "3.1.1": [4], "auto": [5, 4]}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Percentiles:
    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None


def percentiles(samples: list[float]) -> Percentiles:
    if not samples:
        return Percentiles(0, None, None, None)
    data = sorted(samples)

    def at(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))] * 1000, 2)

    return Percentiles(len(data), at(0.5), at(0.99), round(data[-1] * 1000, 2))


class Fleet:
    def __init__(self, endpoints: list[tuple[str, int]], count: int, settings: CartSettings,
                 protocol: str = "auto", id_format: str = "sim-{:05d}",
                 connect_concurrency: int = 200, seed: int = 1) -> None:
        if not endpoints:
            raise ValueError("at least one broker endpoint")
        self.endpoints = endpoints
        self.settings = settings
        self.protocol = protocol
        self.rng = random.Random(seed)
        self.carts = [SimCart(self, id_format.format(i + 1), settings, endpoint=i)
                      for i in range(count)]
        self.by_id = {c.cart_id: c for c in self.carts}
        self.counters: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.ledger: dict[str, list[tuple[int, str]]] = {}
        self.online_count = 0
        self._levels: dict[int, list[int]] = {}
        self._gate = asyncio.Semaphore(connect_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self.on_change: Callable[[], None] | None = None

    # --- callbacks from carts ------------------------------------------------------------

    def ledger_add(self, cart: str, seq: int, tx_id: str) -> None:
        self.ledger.setdefault(cart, []).append((seq, tx_id))

    def latency(self, seconds: float) -> None:
        self.latencies.append(seconds)

    def on_online(self, _cart: SimCart) -> None:
        self.online_count += 1

    def on_offline(self, cart: SimCart) -> None:
        self.online_count -= 1
        self.counters["disconnects"] += 1
        if not self._stopping:
            self._spawn(self._keep_connected(cart, lost=True))

    # --- connecting ----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _attempt(self, cart: SimCart) -> bool:
        index = cart.endpoint % len(self.endpoints)
        async with self._gate:
            # Read inside the gate: what an earlier attempt learnt applies to those waiting.
            levels = self._levels.get(index, LEVELS[self.protocol])
            for n, level in enumerate(levels):
                code = await cart.connect(level)
                if code == 0:
                    if len(levels) > 1:
                        self._levels[index] = [level]
                    return True
                # 1 / 132: this version refused; -1: closed without a CONNACK (RabbitMQ).
                if code in (1, 132) and n + 1 < len(levels):
                    self._levels[index] = levels[n + 1:]  # the others need not ask again
                    continue
                if code != -1:
                    self.counters[f"connack_{code}"] += 1
                    return False
        return False

    async def _keep_connected(self, cart: SimCart, lost: bool = False) -> None:
        delay = self.settings.reconnect_min_s
        if lost:
            cart.endpoint += 1  # the node we were on is gone or sick: try the next one
            await asyncio.sleep(self.rng.uniform(0, delay))
        while not self._stopping and not cart.online:
            if await self._attempt(cart):
                return
            self.counters["connect_failures"] += 1
            cart.endpoint += 1
            await asyncio.sleep(self.rng.uniform(delay / 2, delay))
            delay = min(self.settings.reconnect_max_s, delay * 2)

    async def connect_all(self, timeout_s: float = 600.0) -> float:
        """Connect every cart; returns seconds until all were online."""
        started = time.monotonic()
        for cart in self.carts:
            self._spawn(self._keep_connected(cart))
        await self.wait(lambda: self.online_count >= len(self.carts), timeout_s,
                        "every cart online")
        return time.monotonic() - started

    async def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}: "
                                   f"{self.summary()}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    # --- load ----------------------------------------------------------------------------

    async def load(self, rate_tx_s: float, duration_s: float,
                   types: tuple[str, ...] = ("ticket.issue", "parcel.pickup", "meal.pickup",
                                             "parcel.deposit")) -> int:
        """Transactions at `rate_tx_s` across the fleet (random carts) for `duration_s`."""
        total = int(rate_tx_s * duration_s)
        made = 0
        started = time.monotonic()
        while made < total:
            elapsed = time.monotonic() - started
            due = min(total, int(elapsed * rate_tx_s)) - made
            for _ in range(due):
                cart = self.carts[self.rng.randrange(len(self.carts))]
                cart.record(self.rng.choice(types), {"n": made})
                made += 1
            await asyncio.sleep(0.01)
        return made

    # --- figures -------------------------------------------------------------------------

    def pending(self) -> int:
        return sum(len(c.pending) for c in self.carts)

    def created(self) -> int:
        return sum(len(v) for v in self.ledger.values())

    def summary(self) -> dict[str, Any]:
        lat = percentiles(self.latencies)
        return {"carts": len(self.carts), "online": self.online_count,
                "created": self.created(), "pending": self.pending(),
                "ack_p50_ms": lat.p50_ms, "ack_p99_ms": lat.p99_ms, "ack_max_ms": lat.max_ms,
                **dict(self.counters)}

    def check_ledger(self) -> None:
        """Each simulated cart's own record: seq 1..N without a gap, ids unique."""
        for cart, entries in self.ledger.items():
            seqs = [s for s, _ in entries]
            if seqs != list(range(1, len(seqs) + 1)):
                raise AssertionError(f"{cart}: seq has a gap")
            if len({i for _, i in entries}) != len(entries):
                raise AssertionError(f"{cart}: an id used twice")

    async def close(self, clean: bool = True) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for cart in self.carts:
            if clean:
                await cart.disconnect()
            elif cart.transport is not None:
                cart.transport.abort()
        await asyncio.sleep(0.2)

