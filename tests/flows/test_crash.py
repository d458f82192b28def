"""kill -9 between the commit and the door opening, then a restart: the record is kept, the
open is not replayed, and the attendant gets an audit record. Tickets restart each day."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from agent.devices.sim.cart import SimulatedCart
from agent.flows.tickets import local_day, next_number
from agent.store import Store
from tests.flows_support import Clock, Issuer, Rig
from tests.support import offline_config, wait_for, wait_scanner_open, write_config

REPO = Path(__file__).resolve().parents[2]


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db, timeout=5)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def start(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(cfg)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_kill_9_between_commit_and_open(tmp_path: Path) -> None:
    sim = SimulatedCart(tmp_path / "dev")
    issuer = Issuer()
    doc = offline_config(tmp_path, **sim.device_config())
    doc["security"] = {"token_keys": {issuer.kid: issuer.public}}
    cfg = write_config(tmp_path / "agent.toml", doc)
    db = tmp_path / "data" / "cart.db"
    # a parcel already in A01 (as a courier would have left it)
    store = Store(db, "bc-test")
    with store.write() as w:
        w.execute("INSERT INTO compartments(id, board, lock, size, door, out_of_service, parcel,"
                  " courier) VALUES ('A01', 1, 1, 'S', 'closed', 0, 'SF7777777777', 'c-1')")
    store.close()
    proc = start(cfg)
    try:
        wait_for(lambda: (tmp_path / "data" / "control.sock").exists(), timeout_s=30,
                 what="daemon up")
        wait_scanner_open(tmp_path / "data")
        sim.locker.set_absent(1)                      # the open frame goes out, no answer yet
        sim.scanner.scan(issuer.token("parcel", parcel="SF7777777777"))
        wait_for(lambda: rows(db, "SELECT 1 FROM open_intents WHERE state = 'pending'"),
                 what="the committed pick-up and its open intent")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    opens_before = sim.locker.opens_received(sim.address("A01"))
    assert sim.opens("A01") == 0
    pickups = rows(db, "SELECT data FROM transactions WHERE type = 'parcel.pickup'")
    assert len(pickups) == 1
    assert json.loads(pickups[0][0])["label"] == "SF7777777777"

    sim.locker.set_absent(1, False)
    proc = start(cfg)
    try:
        wait_for(lambda: rows(db, "SELECT 1 FROM transactions "
                                  "WHERE type = 'locker.open_interrupted'"),
                 timeout_s=30, what="the interrupted open to be reconciled")
        time.sleep(1.0)                                # several door polls after the restart
        assert sim.locker.opens_received(sim.address("A01")) == opens_before  # not replayed
        assert sim.opens("A01") == 0
        assert rows(db, "SELECT state FROM open_intents") == [("interrupted",)]
        assert rows(db, "SELECT parcel FROM compartments WHERE id = 'A01'") == [
            ("SF7777777777",)]
        assert len(rows(db, "SELECT 1 FROM transactions WHERE type = 'parcel.pickup'")) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        sim.close()


def test_ticket_numbers_restart_each_local_day(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", "bc-01")
    from zoneinfo import ZoneInfo

    tz = ZoneInfo("Asia/Shanghai")
    late = 1_795_000_000.0 - (1_795_000_000 % 86400) + 15 * 3600 + 59 * 60  # 23:59 Shanghai
    days = [local_day(late, tz), local_day(late + 120, tz)]
    assert days[0] != days[1]
    with store.write() as w:
        got = [next_number(w, "gov", days[0]) for _ in range(3)]
        got += [next_number(w, "gov", days[1]), next_number(w, "bills", days[1])]
    assert got == [1, 2, 3, 1, 1]


def test_tickets_through_the_flow_across_midnight(tmp_path: Path) -> None:
    clock = Clock()
    rig = Rig(tmp_path, clock=clock)
    try:
        first = rig.scan(rig.issuer.token("ticket", service="bills"))
        second = rig.scan(rig.issuer.token("ticket", service="bills"))
        assert (first.details["number"], second.details["number"]) == (1, 2)
        clock.advance(86400)
        next_day = rig.scan(rig.issuer.token("ticket", service="bills", now=clock()))
        assert next_day.details["number"] == 1
        days = {r["data"]["number"] for r in rig.txs("ticket.issue")}
        assert days == {1, 2}
    finally:
        rig.stop()
