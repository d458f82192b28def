"""Maintenance commands against the simulators: through a running daemon (its control socket)
and straight to the devices when no daemon runs."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent.devices.escpos_decode import decode_escpos
from agent.devices.sim.cart import SimulatedCart
from agent.store import Store
from tests.flows_support import Rig
from tests.support import offline_config, wait_for, write_config

REPO = Path(__file__).resolve().parents[1]


def cli(cfg: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args, "-c", str(cfg)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def test_without_daemon_the_commands_drive_the_devices(tmp_path: Path) -> None:
    sim = SimulatedCart(tmp_path / "dev")
    try:
        cfg = write_config(tmp_path / "agent.toml",
                           offline_config(tmp_path, **sim.device_config()))
        out = cli(cfg, "locker", "status")
        assert out.returncode == 0, out.stderr
        assert "A01    board   1 lock  1  S  door closed" in out.stdout

        out = cli(cfg, "locker", "open", "A03", "--reason", "cleaning")
        assert out.returncode == 0, out.stderr
        assert sim.opens("A03") == 1 and sim.opens() == 1
        store = Store(tmp_path / "data" / "cart.db", "bc-test")
        audit = store.query("SELECT type, data FROM transactions")
        assert audit and audit[0]["type"] == "locker.open" and "cleaning" in audit[0]["data"]
        store.close()
        assert "A03    board   1 lock  3  M  door OPEN" in cli(cfg, "locker", "status").stdout
        assert cli(cfg, "locker", "status", "B02").stdout.startswith("B02")
        assert cli(cfg, "locker", "open", "Z99").returncode == 2

        out = cli(cfg, "print-test")
        assert out.returncode == 0, out.stderr
        text = decode_escpos(sim.printer.receipts()[-1]).text
        assert "打印测试" in text and "￥12.50" in text and "[QR: " in text

        proc = subprocess.Popen([sys.executable, "-m", "agent", "scan-test", "--count", "2",
                                 "-c", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        sim.scanner.scan("HELLO-1")
        sim.scanner.scan("你好".encode("gb18030"))
        out_text, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert out_text.splitlines() == ["HELLO-1", "你好"]

        sim.locker.set_absent(1)
        sim.locker.set_absent(2)
        out = cli(cfg, "locker", "status")
        assert out.returncode == 1 and "unknown" in out.stdout
        sim.printer.set_paper_out(True)
        out = cli(cfg, "print-test")
        assert out.returncode == 1 and "paper" in out.stderr.lower()
    finally:
        sim.close()


def test_with_the_daemon_running_commands_go_through_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        cfg = rig.config_path
        out = cli(cfg, "locker", "status", "A02")
        assert out.returncode == 0 and "door closed" in out.stdout, out.stderr
        out = cli(cfg, "locker", "open", "A02", "--reason", "stuck parcel")
        assert out.returncode == 0, out.stderr
        assert rig.sim.opens("A02") == 1
        tx = rig.wait_tx("locker.open")[0]
        assert tx["data"]["reason"] == "stuck parcel" and tx["data"]["source"] == "cli"
        out = cli(cfg, "print-test")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: rig.sim.printer.receipts(), what="the test receipt")
        proc = subprocess.Popen([sys.executable, "-m", "agent", "scan-test", "--count", "1",
                                 "-c", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        time.sleep(1.5)
        rig.sim.scanner.scan("SCAN-WHILE-RUNNING")
        out_text, _ = proc.communicate(timeout=20)
        assert out_text.strip() == "SCAN-WHILE-RUNNING"
        status = cli(cfg, "status")
        assert "agent running" in status.stdout and "A02" in status.stdout
    finally:
        rig.stop()
