"""A cart as systemd runs it: before every start the boot guard (from the factory install,
here this .venv), then releases/current/bin/cart-agent; restarted whenever it exits or is
killed, as `Restart=always` does."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from agent.config import overlay
from agent.devices.sim.cart import SimulatedCart
from agent.update import slots, state
from tests.flows_support import Issuer
from tests.support import offline_config, wait_for, write_config

RESTART_S = 0.3


class SupervisedCart:
    def __init__(self, tmp: Path, broker_port: int, release_pub: str, fleet_pub: str) -> None:
        self.tmp = tmp
        self.sim = SimulatedCart(tmp / "dev")
        self.issuer = Issuer()
        self.data_dir = tmp / "data"
        doc = offline_config(tmp, data_dir=str(self.data_dir), **self.sim.device_config(),
                             log_level="INFO")
        doc = overlay(doc, {
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": broker_port,
                     "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, "keepalive": 5,
                     "telemetry_interval_s": 2.0},
            "security": {"token_keys": {self.issuer.kid: self.issuer.public},
                         "fleet_keys": {"f1": fleet_pub},
                         "release_keys": {"rel1": release_pub}}})
        self.config = write_config(tmp / "agent.toml", doc)
        self.db = self.data_dir / "cart.db"
        self.env = dict(os.environ)
        self.log_path = tmp / "agent.log"
        self.starts: list[str] = []  # what `current` pointed at, per start
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._supervise, daemon=True)

    # --- the service manager -----------------------------------------------------------

    def start(self) -> SupervisedCart:
        self._thread.start()
        return self

    def _supervise(self) -> None:
        with self.log_path.open("ab") as log:
            while not self._stop.is_set():
                subprocess.run([sys.executable, "-m", "agent.update.guard", "-c",
                                str(self.config), "--factory", sys.prefix],
                               stdout=log, stderr=log, check=False, cwd=self.tmp)
                current = slots.current_link(self.data_dir)
                self.starts.append(os.readlink(current))
                (self.data_dir / "control.sock").unlink(missing_ok=True)
                self.proc = subprocess.Popen([str(current / "bin" / "cart-agent"), "run", "-c",
                                              str(self.config)], cwd=self.tmp, env=self.env,
                                             stdout=log, stderr=log)
                self.proc.wait()
                self._stop.wait(RESTART_S)

    def restart(self) -> None:
        """SIGTERM the agent (it stops cleanly; the supervisor starts it again, with `env` as
        it is now) and wait until it serves."""
        old = self.proc
        assert old is not None
        old.send_signal(signal.SIGTERM)
        old.wait(15)
        wait_for(lambda: self.proc is not old, timeout_s=10, what="the restart")
        self.wait_serving()

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._thread.join(15)
        self.sim.close()

    # --- what the tests look at ----------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return state.load(self.data_dir)

    def outcome(self) -> dict[str, Any] | None:
        outcome = self.state().get("outcome")
        return outcome if isinstance(outcome, dict) and outcome.get("reported") else None

    def running_version(self) -> str | None:
        """The version the live daemon says it is (`cart-agent status --json`)."""
        current = slots.current_link(self.data_dir) / "bin" / "cart-agent"
        done = subprocess.run([str(current), "status", "--json", "-c", str(self.config)],
                              capture_output=True, text=True, cwd=self.tmp, check=False,
                              timeout=30)
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            return None
        software = doc.get("software") or {}
        return software.get("running") if doc.get("agent_running") else None

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def wait_serving(self, timeout_s: float = 60) -> None:
        wait_for(lambda: (self.data_dir / "control.sock").exists()
                 and self.proc is not None and self.proc.poll() is None,
                 timeout_s=timeout_s, interval_s=0.1, what="the agent serving")

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait(self, predicate: Any, timeout_s: float, what: str) -> Any:
        try:
            return wait_for(predicate, timeout_s=timeout_s, interval_s=0.1, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- agent log ---\n{self.log_tail()}") from None

    def since(self, t0: float) -> float:
        return time.monotonic() - t0
