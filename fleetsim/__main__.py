"""`python -m fleetsim`: a whole fleet run on loopback, printed as JSON.

    python -m fleetsim                                   # 300 carts, 8 s, one node killed
    python -m fleetsim --carts 10000 --rate 100 --duration 30 --daemons 0 \
        --no-kill-node --no-kill-worker --sub-qos 0      # the large run (config/nats/README)

Everything is started here and torn down at the end: three `nats-server` nodes, a private
PostgreSQL, two `cart-fleet ingest --transport nats` workers, the simulated carts and the
real daemons. Exit status 0 only when the accounting is whole (0 lost, 0 twice, no gaps).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
from pathlib import Path

from fleetsim.scenario import Plan, rig, run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fleetsim", description=__doc__.splitlines()[0])
    p.add_argument("--carts", type=int, default=300)
    p.add_argument("--rate", type=float, default=100.0, help="tx/s across the fleet")
    p.add_argument("--duration", type=float, default=8.0, help="seconds of load")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--daemons", type=int, default=1, help="real cart-agent daemons")
    p.add_argument("--no-kill-node", action="store_true")
    p.add_argument("--no-kill-worker", action="store_true")
    p.add_argument("--node-down", type=float, default=3.0, help="seconds a killed node stays down")
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--durable-db", action="store_true", help="PostgreSQL with fsync on")
    p.add_argument("--sub-qos", type=int, choices=(0, 1), default=1,
                   help="QoS of the carts' subscriptions (the cart uses 1)")
    p.add_argument("--workdir", type=Path)
    p.add_argument("--json", type=Path, help="also write the report here")
    args = p.parse_args(argv)
    if args.carts < 1 or args.rate <= 0 or args.duration <= 0:
        p.error("--carts, --rate and --duration must be positive")
    # Each cart is a socket here and on a node: raise the soft limit as far as allowed.
    # The nodes started from here inherit it (FACTS.md: 10,000 carts need > 20,000 fds).
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (max(hard, 65536), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            break
        except (ValueError, OSError):
            continue
    plan = Plan(carts=args.carts, rate=args.rate, duration=args.duration,
                workers=args.workers, daemons=args.daemons, kill_node=not args.no_kill_node,
                kill_worker=not args.no_kill_worker, node_down_s=args.node_down,
                connect_concurrency=args.connect_concurrency, durable_db=args.durable_db,
                sub_qos=args.sub_qos,
                drain_timeout_s=max(120.0, args.carts / 20))

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    with rig(plan, args.workdir) as r:
        report = asyncio.run(run(plan, r, say))
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0 if report["account"]["whole"] else 1


if __name__ == "__main__":
    sys.exit(main())
