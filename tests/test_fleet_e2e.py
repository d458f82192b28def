"""The whole cart as the fleet sees it: the real daemon on simulators, a real broker, the
reference ingest and `cart-fleet` commands from another process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from fleet.ingest import IngestWorker
from tests.flows_support import Rig
from tests.mqtt_broker import MosquittoBroker
from tests.support import wait_for

REPO = Path(__file__).resolve().parents[1]


def fleet(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args, "--port", str(port)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_fleet_commands_config_and_sync_through_the_daemon(tmp_path: Path) -> None:
    broker = MosquittoBroker(tmp_path / "broker").start()
    ingest = IngestWorker(port=broker.port, db_url=str(tmp_path / "ingest.db")).start()
    rig = Rig(tmp_path, mqtt={"enabled": True, "port": broker.port, "reconnect_min_s": 0.2,
                              "reconnect_max_s": 1.0, "telemetry_interval_s": 1.0})
    try:
        wait_for(lambda: rig.daemon.sync is not None and rig.daemon.sync.online(),
                 timeout_s=20, what="the cart online")
        ticket = rig.scan(rig.issuer.token("ticket", service="gov"))
        assert ticket.kind == "accepted"
        wait_for(lambda: rig.store.queue_stats()["pending"] == 0, timeout_s=20,
                 what="the ticket synced")
        assert ingest.count() == len(rig.txs())

        out = fleet(broker.port, "command", "bc-test", "open_compartment", "compartment=B02")
        assert out.returncode == 0, out.stdout + out.stderr
        assert json.loads(out.stdout)["ok"] is True
        assert rig.sim.opens("B02") == 1
        assert rig.txs("locker.open")[0]["data"]["source"] == "command"
        out = fleet(broker.port, "command", "bc-test", "open_compartment", "compartment=Z9")
        assert out.returncode == 1
        assert rig.sim.opens() == 1

        out = fleet(broker.port, "command", "bc-test", "set_out_of_service", "on=true")
        assert out.returncode == 0, out.stdout + out.stderr
        refused = rig.scan(rig.issuer.token("ticket", service="gov"))
        assert refused.reason == "cart_out_of_service"
        fleet(broker.port, "command", "bc-test", "set_out_of_service", "on=false")

        change = tmp_path / "change.toml"
        change.write_text('[ticket_services.water]\nzh = "水费"\nen = "Water bills"\n')
        out = fleet(broker.port, "push-config", "--cart", "bc-test", "--version", "2",
                    str(change))
        assert out.returncode == 0, out.stderr
        wait_for(lambda: "water" in rig.daemon.cfg.ticket_services, timeout_s=20,
                 what="the pushed config applied")
        wait_for(lambda: rig.daemon.cart is not None and rig.daemon.cart.health.ok
                 and "water" in rig.daemon.cart.ctx.cfg.ticket_services, timeout_s=20,
                 what="the flows rebuilt with it")
        rig.wait_ready(20)  # the rebuilt locker read, the rebuilt scanner's port open
        water = rig.scan(rig.issuer.token("ticket", service="water"))
        assert water.kind == "accepted"
        assert "水费" in water.zh

        status = fleet(broker.port, "status", "--json")
        assert status.returncode == 0, status.stderr
        carts = json.loads(status.stdout)
        cart = carts[0] if isinstance(carts, list) else carts["bc-test"]
        assert "online" in json.dumps(cart)
        wait_for(lambda: rig.store.queue_stats()["pending"] == 0, timeout_s=20,
                 what="everything synced")
        assert ingest.count() == len(rig.txs())
    finally:
        rig.stop()
        ingest.stop()
        broker.close()
