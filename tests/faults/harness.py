"""A cart as a separate process (the real daemon) on simulators, a real broker and the
reference ingest: what the fault tests break and then account for."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from agent.config import overlay
from agent.devices.sim.cart import SimulatedCart
from fleet.ingest import IngestWorker
from tests.flows_support import Issuer
from tests.mqtt_broker import MosquittoBroker
from tests.support import offline_config, wait_for, wait_scanner_open, write_config

REPO = Path(__file__).resolve().parents[2]


class FaultCart:
    def __init__(self, tmp: Path, broker_port: int | None, data_dir: Path | None = None,
                 **patch: Any) -> None:
        self.tmp = tmp
        self.sim = SimulatedCart(tmp / "dev")
        self.issuer = Issuer()
        self.data_dir = data_dir or tmp / "data"
        doc = offline_config(tmp, data_dir=str(self.data_dir), **self.sim.device_config(),
                             log_level="WARNING",
                             security={"token_keys": {self.issuer.kid: self.issuer.public}})
        doc = overlay(doc, {"scanner": {"repeat_window_s": 0.0}})
        if broker_port is not None:
            doc = overlay(doc, {"mqtt": {"enabled": True, "host": "127.0.0.1",
                                         "port": broker_port, "reconnect_min_s": 0.2,
                                         "reconnect_max_s": 1.0, "ack_timeout_s": 3.0,
                                         "keepalive": 5}})
        doc = overlay(doc, patch)
        self.config = write_config(tmp / "agent.toml", doc)
        self.db = self.data_dir / "cart.db"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = (tmp / "agent.log").open("ab")
        self.kills = 0

    def start(self) -> None:
        sock = self.data_dir / "control.sock"
        sock.unlink(missing_ok=True)
        self.proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c",
                                      str(self.config)], cwd=REPO, stdout=self.log,
                                     stderr=self.log)
        wait_for(lambda: sock.exists() or self.proc.poll() is not None,  # type: ignore[union-attr]
                 timeout_s=30, what="agent control socket")
        assert self.proc.poll() is None, (self.tmp / "agent.log").read_text()[-3000:]
        wait_scanner_open(self.data_dir)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.kills += 1

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(10)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.db, timeout=10)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def pending(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM transactions WHERE state = 'pending'")[0][0])

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.sim.close()
        self.log.close()


def ingest_rows(path: Path) -> list[tuple[str, int, str]]:
    conn = sqlite3.connect(path, timeout=10)
    try:
        return conn.execute("SELECT id, seq, type FROM transactions").fetchall()
    finally:
        conn.close()


def account(cart: FaultCart, ingest_db: Path) -> dict[str, int]:
    """Every committed transaction at the ingest once, seq gapless, nothing extra."""
    local = cart.query("SELECT id, seq, type, data FROM transactions ORDER BY seq")
    seqs = [row[1] for row in local]
    assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap"
    stored = ingest_rows(ingest_db)
    stored_ids = [row[0] for row in stored]
    assert len(stored_ids) == len(set(stored_ids)), "a transaction stored twice"
    assert set(stored_ids) == {row[0] for row in local}, "ingest and cart disagree"
    assert sorted(row[1] for row in stored) == seqs
    return {"transactions": len(local),
            "types": len({row[2] for row in local})}


def drain_and_account(cart: FaultCart, ingest: IngestWorker, ingest_db: Path,
                      what: str) -> dict[str, int]:
    """Let the last agent drain its backlog, stop it cleanly, then account at the ingest."""
    wait_for(lambda: cart.pending() == 0, timeout_s=120, interval_s=0.2,
             what=f"the backlog to drain after {what}")
    wait_for(lambda: ingest.count() >= len(cart.query("SELECT id FROM transactions")),
             timeout_s=30, what="ingest to store everything")
    assert cart.stop() == 0
    return account(cart, ingest_db)


def no_door_opened_twice(cart: FaultCart) -> int:
    """Each meal token names a compartment: it may open it once at most."""
    meals = [json.loads(row[0]) for row in
             cart.query("SELECT data FROM transactions WHERE type = 'meal.pickup'")]
    opened = cart.sim.opens()
    assert opened <= len(meals), f"{opened} openings for {len(meals)} meal pick-ups"
    done = cart.query("SELECT COUNT(*) FROM open_intents WHERE state IN "
                      "('released', 'done', 'unconfirmed')")[0][0]
    assert opened >= done, "an intent recorded as released with no release on the bus"
    return opened


__all__ = ["FaultCart", "IngestWorker", "MosquittoBroker", "account", "no_door_opened_twice"]
