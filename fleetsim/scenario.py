"""A whole fleet run on loopback: a 3-node NATS cluster, PostgreSQL, ingest workers, carts.

The same run serves the cluster test (a few hundred carts), the benchmark and the documented
large run (10,000 carts): `python -m fleetsim --carts 10000`. Steps:

1. the cluster, a private PostgreSQL and `cart-fleet ingest --transport nats` workers (real
   processes, so one can be killed with SIGKILL);
2. every simulated cart connects (time, memory per cart on the nodes and in the simulator),
   a few real `cart-agent` daemons start on simulated devices;
3. load at `rate` tx/s for `duration` s; a third of the way in one node is killed with
   SIGKILL (the reconnect storm: time until every cart is online again and until everything
   pending when they were is stored), half way in one ingest worker is killed too; the node
   comes back `node_down_s` later, the worker is restarted;
4. drain, then accounting in PostgreSQL against what every cart committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetsim.accounting import account, stored_rows
from fleetsim.cart import CartSettings
from fleetsim.daemons import RealCart
from fleetsim.fleet import Fleet, percentiles, rss_bytes
from tests.nats_cluster import NatsCluster, write_open_accounts
from tests.postgres_cluster import PostgresCluster

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Plan:
    carts: int = 300
    rate: float = 100.0           # tx/s across the fleet
    duration: float = 8.0         # seconds of load
    workers: int = 2
    daemons: int = 1              # real cart-agent daemons
    daemon_scan_interval_s: float = 0.5
    kill_node: bool = True
    kill_worker: bool = True
    node_down_s: float = 3.0
    connect_concurrency: int = 200
    ack_timeout_s: float = 5.0
    durable_db: bool = False
    drain_timeout_s: float = 120.0
    keepalive: int = 30
    sub_qos: int = 1


@dataclass
class Rig:
    workdir: Path
    nats: NatsCluster
    pg: PostgresCluster
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)

    def start_worker(self, i: int) -> None:
        path = self.workdir / f"ingest-{i}.log"
        offset = path.stat().st_size if path.exists() else 0  # a restart appends
        log = path.open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleet.cli", "ingest", "--transport", "nats", "--nats",
             self.nats.nats_url, "--db", self.pg.url], cwd=REPO, stdout=log, stderr=log)
        log.close()
        while len(self.workers) <= i:
            self.workers.append(None)
        self.workers[i] = proc
        deadline = time.monotonic() + 60
        while "ingest consuming" not in path.read_bytes()[offset:].decode(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingest worker {i} did not start: "
                                   + path.read_text(errors="replace")[-2000:])
            time.sleep(0.05)

    def kill_worker(self, i: int) -> None:
        proc = self.workers[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        self.workers[i] = None

    def close(self) -> None:
        for i in range(len(self.workers)):
            proc = self.workers[i]
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            self.workers[i] = None
        self.nats.close()
        self.pg.cleanup()


@contextlib.contextmanager
def rig(plan: Plan, workdir: Path | None = None) -> Any:
    root = workdir or Path(tempfile.mkdtemp(prefix="fleetsim-"))
    root.mkdir(parents=True, exist_ok=True)
    nats = NatsCluster(workdir=root / "nats",
                       accounts_conf=write_open_accounts(root / "open-accounts.conf"))
    pg = PostgresCluster(durable=plan.durable_db)
    r = Rig(root, nats, pg)
    # SIGTERM (a CI timeout, a `kill`) must still stop the nodes, workers and database.
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        nats.start()
        nats.wait_ready()
        nats.wait_mqtt()
        pg.start()
        for i in range(plan.workers):
            r.start_worker(i)
        yield r
    finally:
        r.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(_sig: int, _frame: Any) -> None:
    raise SystemExit(143)


async def _later(delay: float, action: Any) -> None:
    await asyncio.sleep(delay)
    await asyncio.to_thread(action)


async def run(plan: Plan, r: Rig, log: Any = print) -> dict[str, Any]:
    report: dict[str, Any] = {"plan": plan.__dict__.copy()}
    nodes = r.nats
    endpoints = [(nodes.host, p) for p in nodes.mqtt_ports]
    settings = CartSettings(ack_timeout_s=plan.ack_timeout_s, keepalive=plan.keepalive,
                            sub_qos=plan.sub_qos)
    fleet = Fleet(endpoints, plan.carts, settings, protocol="auto",
                  connect_concurrency=plan.connect_concurrency)
    node_rss0 = sum(nodes.rss_bytes(i) for i in range(nodes.size))
    sim_rss0 = rss_bytes()
    connect_s = await fleet.connect_all(timeout_s=max(60.0, plan.carts / 10))
    await asyncio.sleep(1.0)  # let the nodes settle the sessions they just made
    node_rss = sum(nodes.rss_bytes(i) for i in range(nodes.size))
    report["connect"] = {
        "carts": plan.carts, "seconds": round(connect_s, 2),
        "per_s": round(plan.carts / connect_s, 1),
        "broker_kib_per_cart": round((node_rss - node_rss0) / plan.carts / 1024, 1),
        "sim_kib_per_cart": round((rss_bytes() - sim_rss0) / plan.carts / 1024, 1),
        "broker_rss_mib": round(node_rss / 2**20, 1)}
    log(f"connected {plan.carts} carts in {connect_s:.1f} s")

    # Real daemons on the last node: the killed one is node 0.
    def start_real(i: int) -> RealCart:
        return RealCart(r.workdir / "carts", f"real-{i + 1:02d}", nodes.host,
                        nodes.mqtt_ports[-1]).start()

    reals: list[RealCart] = []
    stop_scans = threading.Event()
    actions: list[asyncio.Task[None]] = []
    watch: asyncio.Task[None] | None = None
    try:
        for i in range(plan.daemons):
            reals.append(await asyncio.to_thread(start_real, i))
        def scan_loop() -> None:
            while not stop_scans.wait(plan.daemon_scan_interval_s):
                for real in reals:
                    real.scan_ticket()

        scanner = threading.Thread(target=scan_loop, daemon=True)
        scanner.start()
        storm: dict[str, Any] = {}
        killed_at: list[float] = []

        lat_at_kill: list[int] = []

        def kill_node() -> None:
            killed_at.append(time.monotonic())
            lat_at_kill.append(len(fleet.latencies))
            nodes.kill(0)

        if plan.kill_node:
            actions.append(asyncio.create_task(_later(plan.duration / 3, kill_node)))
            actions.append(asyncio.create_task(_later(plan.duration / 3 + plan.node_down_s,
                                                      lambda: nodes.start(0))))
            watch = asyncio.create_task(_watch_storm(fleet, killed_at, storm))
        if plan.kill_worker and plan.workers > 1:
            actions.append(asyncio.create_task(_later(plan.duration / 2,
                                                      lambda: r.kill_worker(0))))
            actions.append(asyncio.create_task(_later(plan.duration / 2 + 1.0,
                                                      lambda: r.start_worker(0))))
        lat_start = len(fleet.latencies)
        made = await fleet.load(plan.rate, plan.duration)
        await asyncio.gather(*actions)
        stop_scans.set()
        scanner.join(5)
        log(f"load done: {made} tx from the simulated carts, "
            f"{sum(x.scans for x in reals)} scans on real daemons")
        drain_started = time.monotonic()
        await fleet.wait(lambda: fleet.pending() == 0 and fleet.online_count == plan.carts,
                         plan.drain_timeout_s, "the simulated carts to drain")
        deadline = time.monotonic() + plan.drain_timeout_s
        while any(x.pending() for x in reals) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        report["drain_s"] = round(time.monotonic() - drain_started, 2)
        log(f"drained in {report['drain_s']} s")
        if watch is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(watch, 30)
        report["storm"] = storm
        lat = percentiles(fleet.latencies[lat_start:])
        # Before the first kill: the steady state under this load.
        steady = percentiles(fleet.latencies[lat_start:lat_at_kill[0] if lat_at_kill else None])
        report["load"] = {"tx": made, "rate": plan.rate, "ack_p50_ms": lat.p50_ms,
                          "ack_p99_ms": lat.p99_ms, "ack_max_ms": lat.max_ms,
                          "steady_p50_ms": steady.p50_ms, "steady_p99_ms": steady.p99_ms,
                          "steady_count": steady.count,
                          "resent_txs": fleet.counters["resent_txs"],
                          "disconnects": fleet.counters["disconnects"]}
        fleet.check_ledger()
        ledger = dict(fleet.ledger)
        for real in reals:
            real.stop()
            ledger[real.cart_id] = real.ledger()
        report["real_daemons"] = {x.cart_id: {"committed": len(ledger[x.cart_id]),
                                              "pending": x.pending()} for x in reals}
        log("accounting")
        acct = account(await asyncio.to_thread(stored_rows, r.pg.url), ledger)
        report["account"] = acct.as_dict()
        report["fleet"] = fleet.summary()
        return report
    finally:
        # Whatever happened, no daemon, socket or task outlives the run.
        stop_scans.set()
        for task in [*actions, *([watch] if watch else [])]:
            task.cancel()
        for real in reals:
            real.close()
        await fleet.close()


async def _watch_storm(fleet: Fleet, killed_at: list[float], out: dict[str, Any]) -> None:
    """From the kill: time until every cart is online again, then until everything that
    was pending at that moment is acknowledged (stored: the ack follows the commit)."""
    while not killed_at:
        await asyncio.sleep(0.01)
    t0 = killed_at[0]
    await asyncio.sleep(0.05)
    while fleet.online_count == len(fleet.carts):
        await asyncio.sleep(0.01)  # the node's carts have not noticed yet
    out["carts_dropped"] = len(fleet.carts) - fleet.online_count
    while fleet.online_count < len(fleet.carts):
        await asyncio.sleep(0.02)
    out["all_online_s"] = round(time.monotonic() - t0, 2)
    waiting = {(c.cart_id, i) for c in fleet.carts for i in c.pending}
    out["pending_then"] = len(waiting)
    while any(i in fleet.by_id[c].pending for c, i in waiting):
        await asyncio.sleep(0.05)
    out["all_stored_s"] = round(time.monotonic() - t0, 2)
