"""One owner for every decision, through the real daemon on simulators and a real broker: the
one table of commands (open_compartment takes a reason), the one owner of a pushed config
(applied only once rebuilt; a failure is rolled back, reported, and the daemon runs on; a
pushed log_level takes effect)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sync.desired import effective_config
from tests.flows_support import Rig
from tests.mqtt_broker import MosquittoBroker
from tests.support import Mounted, can_mount, wait_for
from tests.sync.synckit import Watcher

CART = "bc-test"
REPORTED = f"carts/{CART}/config/reported"
DESIRED = f"carts/{CART}/config/desired"
CMD, RESULT = f"carts/{CART}/cmd", f"carts/{CART}/cmd/result"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    b = MosquittoBroker(tmp_path / "broker").start()
    yield b
    b.close()


def online_rig(tmp: Path, port: int, **patch: object) -> Rig:
    rig = Rig(tmp, mqtt={"enabled": True, "port": port, "reconnect_min_s": 0.1,
                         "reconnect_max_s": 0.5, "telemetry_interval_s": 5.0}, **patch)
    wait_for(lambda: rig.daemon.sync is not None and rig.daemon.sync.online(), timeout_s=20,
             what="the cart online")
    return rig


def push(watcher: Watcher, version: int, config: dict[str, object]) -> dict[str, object]:
    """Push one cart config and return the report about that very version (or a rejection
    that names it)."""
    seen = len(watcher.on(REPORTED))
    watcher.publish(DESIRED, json.dumps({"version": version, "config": config}), retain=True)

    def answer() -> dict[str, object] | None:
        for report in watcher.on(REPORTED)[seen:]:
            if report["version"] == version or any(f"v{version}:" in e
                                                   for e in report["errors"]):
                return report
        return None

    return wait_for(answer, timeout_s=20, what=f"the report on v{version}")


def test_open_compartment_takes_a_reason_over_mqtt(tmp_path: Path, broker: MosquittoBroker
                                                   ) -> None:
    rig = online_rig(tmp_path, broker.port)
    watcher = Watcher(broker.port, [RESULT])
    try:
        watcher.publish(CMD, json.dumps({"id": "c-1", "name": "open_compartment", "args": {
            "compartment": "A02", "reason": "courier locked out"}}))
        result = watcher.wait_for(RESULT, lambda d: d["id"] == "c-1")
        assert result["ok"] is True, result
        assert result["result"]["compartment"] == "A02"
        assert result["result"]["opened"] is True
        assert rig.sim.opens("A02") == 1
        record = rig.wait_tx("locker.open")[0]["data"]
        assert record["reason"] == "courier locked out"
        assert record["source"] == "command"
        # Left out, the reason is the documented default; a wrong type is refused by the
        # one table, before anything moves.
        watcher.publish(CMD, json.dumps({"id": "c-2", "name": "open_compartment",
                                         "args": {"compartment": "A03", "reason": 7}}))
        refused = watcher.wait_for(RESULT, lambda d: d["id"] == "c-2")
        assert refused["ok"] is False
        assert "argument 'reason' must be str" in refused["error"]
        assert rig.sim.opens("A03") == 0
    finally:
        watcher.close()
        rig.stop()


def test_a_pushed_log_level_takes_effect(tmp_path: Path, broker: MosquittoBroker) -> None:
    root = logging.getLogger()
    before = root.level
    rig = online_rig(tmp_path, broker.port)
    watcher = Watcher(broker.port, [REPORTED])
    try:
        root.setLevel(logging.WARNING)
        report = push(watcher, 1, {"log_level": "DEBUG"})
        assert report["status"] == "applied"
        assert report["changed"] == ["log_level"]
        assert root.level == logging.DEBUG  # reported applied only once it was
        assert rig.daemon.cfg.log_level == "DEBUG"
    finally:
        root.setLevel(before)
        watcher.close()
        rig.stop()


@pytest.mark.skipif(not can_mount(), reason="a small tmpfs for data_dir needs root to mount")
def test_a_config_that_cannot_be_applied_is_reported_and_the_daemon_runs_on(
        tmp_path: Path, broker: MosquittoBroker) -> None:
    mount = Mounted(tmp_path / "small", size="2m")
    rig = online_rig(tmp_path, broker.port, data_dir=str(mount.path / "data"))
    watcher = Watcher(broker.port, [REPORTED])
    filler = mount.path / "filler"
    try:
        assert push(watcher, 1, {"deposit_timeout_s": 61})["status"] == "applied"
        with filler.open("wb") as fh:  # fill the disk to the last byte
            try:
                while True:
                    fh.write(b"\0" * 65536)
                    fh.flush()
            except OSError:
                pass
        refused = None
        for version in range(2, 30):  # the WAL may still have free pages; then it is full
            report = push(watcher, version, {"deposit_timeout_s": 60 + version})
            if report["status"] == "rejected":
                refused = (version, report)
                break
        assert refused is not None, "every push was applied on a full disk"
        version, report = refused
        assert f"cart config v{version}: not applied:" in report["errors"][0], report
        assert "full" in report["errors"][0]
        # The daemon runs on, with the config it had; the flows serve scans.
        assert rig.thread.is_alive()
        assert rig.daemon.cfg.deposit_timeout_s == 60 + version - 1
        assert rig.daemon.cart is not None
        assert rig.daemon.cart.ctx.cfg.deposit_timeout_s != (
            60 + version)
        filler.unlink()
        report = push(watcher, 40, {"deposit_timeout_s": 99})
        assert report["status"] == "applied"
        assert report["version"] == 40
        wait_for(lambda: rig.daemon.cfg.deposit_timeout_s == 99, what="the next push applied")
        assert effective_config(str(rig.config_path), rig.store).deposit_timeout_s == 99
    finally:
        watcher.close()
        rig.stop()
        mount.close()
