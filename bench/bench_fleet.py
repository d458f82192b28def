"""The fleet on a three-node NATS cluster, each figure against a baseline from the same run.

    python -m bench --only fleet [--quick]         (FLEET_BENCH_CARTS=N to change 1,000)

One rig (fleetsim.scenario): three `nats-server` nodes (config/nats/node.conf), a private
PostgreSQL with fsync on, two `cart-fleet ingest --transport nats` workers.

1. The fault run (fleetsim.scenario.run): N simulated carts and a real `cart-agent` connect;
   load at a fixed rate; one node and one worker are killed with SIGKILL; accounting in
   PostgreSQL. Rows: cart-to-ack p50/p99 under that load (baseline: the same carts' PUBACK
   round trip to the broker alone, same run), reconnect storm (baseline: the cold connect of
   as many carts as were dropped), lost / twice / gaps, memory per connected cart on the
   nodes and in the simulator (baseline: one Mosquitto holding the same carts).
2. Throughput: fresh carts, each with a backlog, drain through broker, workers and database
   until every transaction is acknowledged: stored tx/s. Baselines: raw PostgreSQL (COPY of
   the same rows into a table with the same indexes, same batch size, a commit per batch)
   and raw broker publishing (the same messages, QoS 1, to a subject nothing consumes, until
   every PUBACK).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fleetsim.cart import CartSettings  # noqa: E402
from fleetsim.fleet import Fleet, percentiles, rss_bytes  # noqa: E402
from fleetsim.scenario import Plan, Rig, rig  # noqa: E402
from fleetsim.scenario import run as fault_run  # noqa: E402
from tests.mqtt_broker import MosquittoBroker  # noqa: E402

BATCH = 50  # transactions per message (the simulated cart's batch_max)


def _endpoints(r: Rig) -> list[tuple[str, int]]:
    return [(r.nats.host, p) for p in r.nats.mqtt_ports]


async def puback_latency(r: Rig, carts: int, rate: float, samples: int) -> dict[str, Any]:
    """Publish -> PUBACK round trips of simulated carts to a subject nothing consumes, at
    `rate` per second, measured on the healthy cluster before anything is killed."""
    fleet = Fleet(_endpoints(r), carts, CartSettings(prefix="rawbench"), id_format="lat-{:05d}")
    await fleet.connect_all()
    await asyncio.sleep(1.0)
    times: list[float] = []
    payload = json.dumps({"cart": "x", "txs": []}).encode()
    started = time.monotonic()
    for n in range(samples):
        cart = fleet.carts[n % carts]
        before = fleet.counters["pubacks"]
        sent = time.perf_counter()
        cart.publish_raw(f"rawbench/{cart.cart_id}/tx", payload)
        while fleet.counters["pubacks"] == before and time.perf_counter() - sent < 10:
            await asyncio.sleep(0.0005)
        times.append(time.perf_counter() - sent)
        await asyncio.sleep(max(0.0, (n + 1) / rate - (time.monotonic() - started)))
    await fleet.close()
    p = percentiles(times)
    return {"p50_ms": p.p50_ms, "p99_ms": p.p99_ms, "count": p.count}


async def drain(r: Rig, carts: int, per_cart: int) -> tuple[float, int, list[bytes]]:
    """Every cart records `per_cart` transactions offline, then all drain at once."""
    fleet = Fleet(_endpoints(r), carts, CartSettings(batch_max=BATCH, max_inflight=8,
                                                     ack_timeout_s=30.0),
                  id_format="tp-{:05d}")
    for cart in fleet.carts:  # recorded while offline: the backlog of a day without a link
        for i in range(per_cart):
            cart.record("meal.pickup", {"order": f"A-{i}", "items": ["米饭", "青菜"],
                                        "name": "张三"})
    payloads = [json.dumps({"cart": c.cart_id, "txs": list(c.pending.values())[:BATCH]},
                           ensure_ascii=False, separators=(",", ":")).encode()
                for c in fleet.carts]
    started = time.monotonic()
    await fleet.connect_all()
    await fleet.wait(lambda: fleet.pending() == 0, 1200, "the backlog to drain")
    elapsed = time.monotonic() - started
    await fleet.close()
    return elapsed, carts * per_cart, payloads


async def raw_broker(r: Rig, carts: int, messages: int, payloads: list[bytes]) -> float:
    fleet = Fleet(_endpoints(r), carts, CartSettings(prefix="rawbench"), id_format="raw-{:05d}")
    await fleet.connect_all()
    base = fleet.counters["pubacks"]
    started = time.monotonic()
    window = 8  # in flight per cart, as the drain's max_inflight
    sent = 0
    while sent < messages or fleet.counters["pubacks"] - base < messages:
        while sent < messages and sent - (fleet.counters["pubacks"] - base) < window * carts:
            cart = fleet.carts[sent % carts]
            cart.publish_raw(f"rawbench/{cart.cart_id}/tx", payloads[sent % len(payloads)])
            sent += 1
        await asyncio.sleep(0.001)
    elapsed = time.monotonic() - started
    await fleet.close()
    return elapsed


def raw_postgres(url: str, rows_total: int, payloads: list[bytes]) -> float:
    """COPY the same rows into a table with the same columns and indexes, BATCH per commit."""
    import psycopg

    rows = []
    for payload in payloads:
        for tx in json.loads(payload)["txs"]:
            rows.append((tx["id"], tx["cart"], tx["seq"], tx["type"], tx["at"],
                         json.dumps(tx["data"], ensure_ascii=False, separators=(",", ":"))))
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_tx (LIKE cart_transactions INCLUDING ALL)")
        conn.commit()
        started = time.monotonic()
        done = 0
        while done < rows_total:
            with conn.cursor() as cur, cur.copy(
                    "COPY raw_tx (id, cart, seq, type, at, data, received_at) FROM STDIN") as cp:
                for k in range(BATCH):
                    row = rows[(done + k) % len(rows)]
                    cp.write_row((f"{row[0][:20]}{done + k:06d}", *row[1:],
                                  "2026-12-02T10:00:00Z"))
            conn.commit()
            done += BATCH
        return time.monotonic() - started


async def mosquitto_per_cart(carts: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-mosq-") as tmp:
        broker = MosquittoBroker(Path(tmp) / "b").start()
        try:
            assert broker.proc is not None
            before = _rss(broker.proc.pid)
            fleet = Fleet([(broker.host, broker.port)], carts, CartSettings(),
                          id_format="mq-{:05d}")
            await fleet.connect_all()
            await asyncio.sleep(1.0)
            per = (_rss(broker.proc.pid) - before) / carts / 1024
            await fleet.close()
            return per
        finally:
            broker.close()


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run(quick: bool = False) -> list[dict[str, Any]]:
    carts = int(os.environ.get("FLEET_BENCH_CARTS", "100" if quick else "1000"))
    plan = Plan(carts=carts, rate=100.0 if quick else 200.0, duration=4.0 if quick else 30.0,
                workers=2, daemons=1, node_down_s=2.0 if quick else 5.0, ack_timeout_s=3.0,
                durable_db=True, drain_timeout_s=max(120.0, carts / 20))
    # Throughput from a few carts with deep backlogs: on NATS every new MQTT session costs
    # JetStream consumers, and session churn (not messages) is what this cluster chokes on.
    tp_carts, per_cart = (20, 50) if quick else (100, 500)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as name, \
            rig(plan, Path(name)) as r:
        puback = asyncio.run(puback_latency(r, min(carts, 50), plan.rate,
                                            100 if quick else 1000))
        report = asyncio.run(fault_run(plan, r, log=lambda _t: None))
        cold = asyncio.run(_cold_connect(r, max(1, report["storm"].get("carts_dropped", 1))))
        drain_s, drained, payloads = asyncio.run(drain(r, tp_carts, per_cart))
        raw_pg_s = raw_postgres(r.pg.url, drained, payloads)
        row_bytes = bytes_per_row(r.pg.url)
        raw_mq_s = asyncio.run(raw_broker(r, tp_carts, drained // BATCH, payloads))
    mosq_kib = asyncio.run(mosquitto_per_cart(carts))
    rows = _rows(plan, report, puback, cold, drain_s, drained, raw_pg_s, raw_mq_s, mosq_kib,
                 sim_rss=rss_bytes())
    rows.append({"name": "database bytes per stored tx (table + indexes)", "value": row_bytes,
                 "unit": "B", "note": "meal.pickup rows as the simulator makes them"})
    return rows


def bytes_per_row(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE cart_transactions")
        size, count = conn.execute(  # type: ignore[misc]
            "SELECT pg_total_relation_size('cart_transactions'), COUNT(*) "
            "FROM cart_transactions").fetchone()
    return round(size / max(1, count))


async def _cold_connect(r: Rig, carts: int) -> float:
    fleet = Fleet(_endpoints(r), carts, CartSettings(), id_format="cold-{:05d}")
    seconds = await fleet.connect_all()
    await fleet.close()
    return seconds


def _rows(plan: Plan, report: dict[str, Any], puback: dict[str, Any], cold_s: float,
          drain_s: float, drained: int, raw_pg_s: float, raw_mq_s: float, mosq_kib: float,
          sim_rss: int) -> list[dict[str, Any]]:
    stored, raw_pg, raw_mq = drained / drain_s, drained / raw_pg_s, drained / raw_mq_s
    load, storm, acct, conn = (report["load"], report["storm"], report["account"],
                               report["connect"])
    rows: list[dict[str, Any]] = [
        {"name": "fleet tx stored/s (backlogs, NATS R3 -> 2 workers -> PG fsync)",
         "value": round(stored), "unit": "tx/s", "baseline": "raw PG COPY, same rows",
         "baseline_value": round(raw_pg), "ratio": round(stored / raw_pg, 3),
         "transactions": drained, "seconds": round(drain_s, 2)},
        {"name": "fleet tx stored/s vs raw broker publish",
         "value": round(stored), "unit": "tx/s",
         "baseline": f"QoS 1 publish, {BATCH} tx/msg, no consumer",
         "baseline_value": round(raw_mq), "ratio": round(stored / raw_mq, 3)},
        {"name": f"cart-to-ack at {plan.rate:g} tx/s, steady",
         "p50_ms": load["steady_p50_ms"], "p99_ms": load["steady_p99_ms"],
         "baseline": "PUBACK p99 alone", "baseline_value": puback["p99_ms"],
         "ratio": round(load["steady_p99_ms"] / puback["p99_ms"], 1)
         if load["steady_p99_ms"] and puback["p99_ms"] else None},
        {"name": f"cart-to-ack at {plan.rate:g} tx/s, whole run (node+worker killed)",
         "p50_ms": load["ack_p50_ms"], "p99_ms": load["ack_p99_ms"]},
        {"name": "broker PUBACK round trip (baseline)", "p50_ms": puback["p50_ms"],
         "p99_ms": puback["p99_ms"]},
        {"name": f"reconnect storm: {storm.get('carts_dropped')} carts of a killed node online",
         "value": storm.get("all_online_s"), "unit": "s",
         "baseline": "cold connect of as many", "baseline_value": round(cold_s, 2),
         "ratio": round(storm["all_online_s"] / cold_s, 2) if storm.get("all_online_s")
         else None},
        {"name": f"reconnect storm: {storm.get('pending_then')} pending then, all stored",
         "value": storm.get("all_stored_s"), "unit": "s"},
        {"name": "faults: kill -9 node + worker, accounting in PG",
         "value": f"{acct['lost']} lost / {acct['twice']} twice / {acct['gaps']} gaps",
         "unit": f"of {acct['committed']} tx", "baseline": "whole", "ok": acct["whole"]},
        {"name": f"connect {plan.carts} carts to the cluster", "value": conn["seconds"],
         "unit": "s", "per_s": conn["per_s"]},
        {"name": "broker memory per connected cart (3 nodes)",
         "value": conn["broker_kib_per_cart"], "unit": "KiB",
         "baseline": "one Mosquitto, same carts", "baseline_value": round(mosq_kib, 1),
         "ratio": round(conn["broker_kib_per_cart"] / mosq_kib, 1) if mosq_kib > 0 else None},
        {"name": "simulator memory per cart", "value": conn["sim_kib_per_cart"],
         "unit": "KiB", "sim_rss_mib": round(sim_rss / 2**20, 1)},
    ]
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        print(json.dumps(row, ensure_ascii=False))
