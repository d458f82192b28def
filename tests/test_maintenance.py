"""Maintenance commands against the simulators: through a running daemon (its control socket)
and straight to the devices when no daemon runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from agent.devices.sim.cart import SimulatedCart
from agent.devices.sim.escpos_decode import decode_escpos
from agent.store import Store
from tests.flows_support import Rig
from tests.support import offline_config, wait_for, write_config

REPO = Path(__file__).resolve().parents[1]


def cli(cfg: Path, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args, "-c", str(cfg)], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout)


def _wait_opened(proc: subprocess.Popen[str], device: str) -> None:
    """Until `proc` holds the device open (a fixed sleep loses the race on a busy machine)."""
    target = os.path.realpath(device)

    def opened() -> bool:
        fds = Path(f"/proc/{proc.pid}/fd")
        return any(os.path.realpath(fd) == target for fd in fds.iterdir())

    wait_for(opened, timeout_s=30, what=f"scan-test to open {device}")


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
        assert sim.opens("A03") == 1
        assert sim.opens() == 1
        store = Store(tmp_path / "data" / "cart.db", "bc-test")
        audit = store.query("SELECT id, type, data FROM transactions")
        assert audit
        assert audit[0]["type"] == "locker.open"
        assert "cleaning" in audit[0]["data"]
        # The same path as every other opening: its intent was committed with the record
        # before the frame went out, and the board's answer settled it.
        intents = store.query("SELECT compartment, purpose, tx_id, state FROM open_intents")
        assert intents == [{"compartment": "A03", "purpose": "manual", "tx_id": audit[0]["id"],
                            "state": "released"}]
        store.close()
        assert "A03    board   1 lock  3  M  door OPEN" in cli(cfg, "locker", "status").stdout
        assert cli(cfg, "locker", "status", "B02").stdout.startswith("B02")
        assert cli(cfg, "locker", "open", "Z99").returncode == 2

        out = cli(cfg, "print-test")
        assert out.returncode == 0, out.stderr
        text = decode_escpos(sim.printer.receipts()[-1]).text
        assert "打印测试" in text
        assert "￥12.50" in text
        assert "[QR: " in text

        proc = subprocess.Popen([sys.executable, "-m", "agent", "scan-test", "--count", "2",
                                 "-c", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        _wait_opened(proc, sim.scanner.path)
        sim.scanner.scan("HELLO-1")
        sim.scanner.scan("你好".encode("gb18030"))
        out_text, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert out_text.splitlines() == ["HELLO-1", "你好"]

        sim.locker.set_absent(1)
        sim.locker.set_absent(2)
        out = cli(cfg, "locker", "status")
        assert out.returncode == 1
        assert "unknown" in out.stdout
        sim.printer.set_paper_out(True)
        out = cli(cfg, "print-test")
        assert out.returncode == 1
        assert "paper" in out.stderr.lower()
    finally:
        sim.close()


def test_with_the_daemon_running_commands_go_through_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        cfg = rig.config_path
        out = cli(cfg, "locker", "status", "A02")
        assert out.returncode == 0, out.stderr
        assert "door closed" in out.stdout, out.stderr
        out = cli(cfg, "locker", "open", "A02", "--reason", "stuck parcel")
        assert out.returncode == 0, out.stderr
        assert rig.sim.opens("A02") == 1
        tx = rig.wait_tx("locker.open")[0]
        assert tx["data"]["reason"] == "stuck parcel"
        assert tx["data"]["source"] == "cli"
        out = cli(cfg, "print-test")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: rig.sim.printer.receipts(), what="the test receipt")
        proc = subprocess.Popen([sys.executable, "-m", "agent", "scan-test", "--count", "1",
                                 "-c", str(cfg)], cwd=REPO, stdout=subprocess.PIPE, text=True)
        # Scan until scan-test, once subscribed to the daemon's scans, prints one and ends
        # (a fixed sleep loses the race on a busy machine).
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            rig.sim.scanner.scan("SCAN-WHILE-RUNNING")
            time.sleep(0.3)
        out_text, _ = proc.communicate(timeout=20)
        assert out_text.strip() == "SCAN-WHILE-RUNNING"
        status = cli(cfg, "status")
        assert "agent running" in status.stdout
        assert "A02" in status.stdout
    finally:
        rig.stop()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(root.rglob("*"))}


def _device_doc(tmp: Path) -> dict[str, object]:
    """Devices configured at paths where nothing is plugged in."""
    return offline_config(tmp, scanner={"kind": "serial", "port": str(tmp / "no-scanner")},
                          printer={"kind": "serial", "port": str(tmp / "no-printer")},
                          locker={"enabled": True, "port": str(tmp / "no-locker"),
                                  "compartments": [{"id": "A01", "board": 1, "lock": 1}]})


def test_status_without_the_daemon_creates_nothing_and_says_what_it_does_not_know(
        tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agent.toml", _device_doc(tmp_path))
    before = _tree(tmp_path)
    out = cli(cfg, "status")
    assert _tree(tmp_path) == before                          # no data_dir, no cart.db
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"cart-agent: no store at {tmp_path / 'data' / 'cart.db'}: "
        "the agent has not run with this data_dir yet"]
    assert "agent not running" in out.stdout
    assert "queue, config versions, compartments: unknown (no store)" in out.stdout
    for device in ("scanner", "printer", "locker"):
        assert f"{device:8} unknown (the agent is not running)" in out.stdout
    assert "FAIL" not in out.stdout
    assert "v-" not in out.stdout
    report = json.loads(cli(cfg, "status", "--json").stdout)
    assert report["store"] == {"path": str(tmp_path / "data" / "cart.db"), "found": False}
    assert report["queue"] is None
    assert report["compartments"] == []
    assert {name: dev["ok"] for name, dev in report["devices"].items()} == {
        "scanner": None, "printer": None, "locker": None,
        "audio": True, "light": True}                          # not configured: nothing to know


def test_status_reads_a_store_without_changing_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agent.toml", _device_doc(tmp_path))
    store = Store(tmp_path / "data" / "cart.db", "bc-test")
    store.record("ticket.issue", {"service": "gov", "number": 1})
    store.close()                                 # a clean stop: no -wal or -shm left
    before = _tree(tmp_path)
    out = cli(cfg, "status")
    assert out.returncode == 0, out.stderr
    assert _tree(tmp_path) == before              # not one byte, not one new file
    assert "queue: 1 pending (oldest" in out.stdout
    assert "last sync never" in out.stdout
    assert "config: the file only (no pushed config applied)" in out.stdout
    assert "printer  unknown (the agent is not running)" in out.stdout

    # A daemon that died leaves its committed records in the -wal file: they count too.
    writer = Store(tmp_path / "data" / "cart.db", "bc-test")
    try:
        writer.record("ticket.issue", {"service": "gov", "number": 2})
        files = sorted(p.name for p in (tmp_path / "data").iterdir())
        out = cli(cfg, "status", "--json")
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["queue"]["pending"] == 2
        assert sorted(p.name for p in (tmp_path / "data").iterdir()) == files
    finally:
        writer.close()


def test_print_test_reports_its_error_once(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agent.toml", _device_doc(tmp_path))
    out = cli(cfg, "print-test")
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("cart-agent: print-test: "), out.stderr
    assert str(tmp_path / "no-printer") in lines[0]


def test_status_on_a_damaged_store_says_so_and_leaves_it(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agent.toml", _device_doc(tmp_path))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cart.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    before = _tree(tmp_path)
    out = cli(cfg, "status")
    assert out.returncode == 1
    assert _tree(tmp_path) == before
    assert "unknown (store unreadable)" in out.stdout
    assert out.stderr.startswith(f"cart-agent: cannot read the store {tmp_path}/data/cart.db: ")
