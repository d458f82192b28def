"""Status and telemetry as the contract spells them; protocol choice."""

from __future__ import annotations

import time

from agent import __version__
from agent.contract import parse_rfc3339
from tests.sync.synckit import CART, PREFIX, STATUS

TELEMETRY = f"{PREFIX}/{CART}/telemetry"


def test_status_and_telemetry(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [STATUS, TELEMETRY])
    cart = make_cart(broker.port, telemetry_interval_s=0.2)
    cart.record(3)
    cart.start()
    cart.wait_online()
    status = watcher.wait_for(STATUS, lambda d: d["state"] == "online")
    assert status["config_version"] is None
    assert status["fleet_config_version"] is None
    parse_rfc3339(status["at"])
    assert cart.service.health.snapshot()["protocol"] == "5"

    telemetry = watcher.wait_for(TELEMETRY)
    assert set(telemetry) == {"at", "queue", "devices", "uptime_s", "disk_free_mb", "clock",
                              "software"}
    assert set(telemetry["clock"]) == {"source", "offset_s", "alarm"}
    assert telemetry["software"] == {"running": __version__, "pending": None, "step": None,
                                     "outcome": None}
    assert status["software"]["running"] == __version__
    assert set(telemetry["queue"]) == {"pending", "oldest_pending_s"}
    assert telemetry["devices"] == {"scanner": {"ok": True, "error": None},
                                    "printer": {"ok": False, "error": "paper out"},
                                    "locker": {"ok": True, "error": None}}
    assert isinstance(telemetry["disk_free_mb"], int)
    assert telemetry["disk_free_mb"] > 0
    assert telemetry["uptime_s"] >= 0
    # Telemetry is QoS 0 and not retained; it keeps coming on its interval.
    count = len(watcher.on(TELEMETRY))
    watcher.wait_for(TELEMETRY, lambda _d: len(watcher.on(TELEMETRY)) >= count + 2, 5)
    assert not any(r for t, _p, r in watcher.messages if t == TELEMETRY)

    # A clean stop says offline itself (a clean DISCONNECT fires no will).
    cart.stop()
    watcher.wait_for(STATUS, lambda d: d["state"] == "offline")
    late = make_watcher(broker.port, [STATUS])  # retained: seen by who comes later
    assert late.wait_for(STATUS)["state"] == "offline"


def test_forced_mqtt311(broker, make_cart):
    cart = make_cart(broker.port, protocol="3.1.1").start()
    cart.wait_online()
    assert cart.service.health.snapshot()["protocol"] == "3.1.1"
    cart.record(2)
    # No ingest here: the rows stay pending (a PUBACK is not an ack; they go out within a
    # poll, every 0.25 s).
    time.sleep(0.5)
    assert cart.pending() == 2
