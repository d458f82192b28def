"""Real `cart-agent` daemons among the simulated carts: the real outbox, the real link.

Each is `python -m agent run` on its own simulated devices (pty scanner, printer, RS485 lock
bus: `agent.devices.sim`), pointed at one broker endpoint. Transactions come from QR codes
scanned on the simulated scanner: queue tickets signed by an issuer key made for the run, so
they go through token checks, the flow, the printer and SQLite like a resident's scan.
What each daemon committed is read back from its own SQLite file for the accounting.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.devices.sim.cart import SimulatedCart
from tests.support import write_config

REPO = Path(__file__).resolve().parents[1]


class RealCart:
    def __init__(self, workdir: Path, cart_id: str, host: str, port: int,
                 prefix: str = "carts") -> None:
        self.dir = workdir / cart_id
        self.cart_id = cart_id
        self.sim = SimulatedCart(self.dir / "dev")
        self.key = Ed25519PrivateKey.generate()
        self.kid = "sim1"
        self.data_dir = self.dir / "data"
        doc: dict[str, Any] = {
            "cart_id": cart_id, "data_dir": str(self.data_dir), "log_level": "WARNING",
            **self.sim.device_config(),
            "web": {"enabled": False},
            "security": {"token_keys": {self.kid: jws.encode_public_key(
                self.key.public_key())}},
            "mqtt": {"enabled": True, "host": host, "port": port, "topic_prefix": prefix,
                     "keepalive": 10, "reconnect_min_s": 0.2, "reconnect_max_s": 2.0,
                     "ack_timeout_s": 5.0, "telemetry_interval_s": 30.0},
        }
        self.config = write_config(self.dir / "agent.toml", doc)
        self.proc: subprocess.Popen[bytes] | None = None
        self.scans = 0
        self._closed = False

    def start(self) -> RealCart:
        sock = self.data_dir / "control.sock"
        sock.unlink(missing_ok=True)
        log = (self.dir / "agent.log").open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c",
                                      str(self.config)], cwd=REPO, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + 30
        while not sock.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"cart-agent {self.cart_id} did not start: "
                                   + (self.dir / "agent.log").read_text()[-2000:])
            time.sleep(0.05)
        return self

    def scan_ticket(self) -> None:
        now = int(time.time())
        token = jws.sign({"svc": "ticket", "service": "gov", "jti": uuid.uuid4().hex,
                          "nbf": now - 5, "exp": now + 3600}, self.key, self.kid)
        self.sim.scanner.scan(token)
        self.scans += 1

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        db = self.data_dir / "cart.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(db, timeout=10)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def ledger(self) -> list[tuple[int, str]]:
        return [(int(s), str(i)) for s, i in
                self._query("SELECT seq, id FROM transactions ORDER BY seq")]

    def pending(self) -> int:
        rows = self._query("SELECT COUNT(*) FROM transactions WHERE state = 'pending'")
        return int(rows[0][0]) if rows else 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None

    def close(self) -> None:
        self.stop()
        if not self._closed:
            self._closed = True
            self.sim.close()
