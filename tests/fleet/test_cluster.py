"""The fleet on a three-node NATS cluster, every test run: two `cart-fleet ingest --transport
nats` workers, a few hundred simulated carts and a real `cart-agent` daemon; one node and one
worker killed with SIGKILL mid-run; then accounting in PostgreSQL. The large run is
`python -m fleetsim --carts 10000 ...` (config/nats/README.md)."""

from __future__ import annotations

import asyncio
import os

from fleetsim.scenario import Plan, rig, run


def test_three_nodes_two_workers_a_node_and_a_worker_killed(tmp_path):
    carts = int(os.environ.get("FLEET_CARTS", "300"))
    plan = Plan(carts=carts, rate=100.0, duration=6.0, workers=2, daemons=1,
                node_down_s=2.0, ack_timeout_s=3.0, drain_timeout_s=60.0)
    with rig(plan, tmp_path) as r:
        report = asyncio.run(run(plan, r, log=lambda _t: None))
    acct = report["account"]
    assert acct["whole"], report
    assert acct["committed"] == acct["stored"] > plan.rate * plan.duration
    real = report["real_daemons"]["real-01"]
    assert real["committed"] > 0
    assert real["pending"] == 0
    storm = report["storm"]
    assert storm["carts_dropped"] > 0  # the killed node's carts went elsewhere
    assert storm["all_online_s"] > 0
    assert storm["all_stored_s"] >= storm["all_online_s"]
    assert report["fleet"]["online"] == carts
