"""The daemon as a subprocess: READY and watchdog over sd_notify, status with and without it,
SIGTERM/SIGINT stop in time, JSON logs, no devices and no broker needed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.store import Store
from tests.support import offline_config, wait_for, write_config

REPO = Path(__file__).resolve().parents[1]


class NotifySocket:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []

    def receive_until(self, wanted: str, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            if any(wanted in m for m in self.messages):
                return
        raise AssertionError(f"no {wanted!r} from the daemon; got {self.messages}")


def start_daemon(cfg: Path, notify: Path | None = None) -> subprocess.Popen[str]:
    env = {**os.environ}
    if notify is not None:
        env.update(NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="1000000")
    return subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def status(cfg: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c", str(cfg)],
                         cwd=REPO, capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_daemon_serves_offline_and_stops_in_time(tmp_path: Path, sig: signal.Signals) -> None:
    cfg = write_config(tmp_path / "agent.toml", offline_config(tmp_path))
    notify = NotifySocket(tmp_path / "notify.sock")
    proc = start_daemon(cfg, notify.path)
    try:
        notify.receive_until("READY=1")
        notify.receive_until("WATCHDOG=1")
        running = wait_for(lambda: (s := status(cfg))["agent_running"] and s, timeout_s=20,
                           what="status to see the daemon")
        assert running["cart_id"] == "bc-test"
        assert running["queue"] == {"pending": 0, "synced": 0, "oldest_pending_s": 0.0}
        assert running["devices"]["scanner"] == {"ok": True, "error": None, "configured": False}
        assert running["compartments"] == []
        started = time.monotonic()
        proc.send_signal(sig)
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - started < 5
        notify.receive_until("STOPPING=1", timeout_s=2)
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate(timeout=5)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("serving as cart bc-test" in e["msg"] for e in lines), err
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in lines)
    assert "Traceback" not in err

    after = status(cfg)
    assert after["agent_running"] is False
    assert after["devices"]["scanner"]["configured"] is False


def test_status_without_daemon_and_text_form(tmp_path: Path) -> None:
    doc = offline_config(tmp_path, scanner={"kind": "serial", "port": str(tmp_path / "none")},
                         locker={"enabled": True, "compartments": [
                             {"id": "A01", "board": 1, "lock": 1, "size": "S"}]})
    cfg = write_config(tmp_path / "agent.toml", doc)
    Store(tmp_path / "data" / "cart.db", "bc-test").close()  # a cart that ran once
    report = status(cfg)
    assert report["agent_running"] is False
    assert report["devices"]["scanner"] == {"ok": None,
                                            "error": "unknown: the agent is not running"}
    assert report["last_sync_at"] is None
    assert report["config_version"] is None
    out = subprocess.run([sys.executable, "-m", "agent", "status", "-c", str(cfg)], cwd=REPO,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert "agent not running" in out.stdout
    assert "0 pending" in out.stdout


def test_notifier_outside_systemd_is_silent() -> None:
    from agent.runtime.systemd import Notifier

    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert not notifier.ready()
    assert notifier.watchdog_interval_s is None
    other = Notifier(environ={"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "4000000",
                              "WATCHDOG_PID": "1"})
    assert other.watchdog_interval_s is None  # the watchdog is for another process
    assert other.ready() is False             # an unreachable socket is not an error
