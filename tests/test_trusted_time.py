"""The real daemon under a shifted clock (libfaketime, Debian package `faketime`): a clock set
back two days (or to 1970) after a restart decides from its evidence, a new cart with a 1970
clock refuses codes, and a clock an hour ahead of the server's time is reported."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent.contract import parse_rfc3339, rfc3339
from agent.devices.sim.scanner import ScannerSimulator
from tests.flows_support import Issuer
from tests.mqtt_broker import MosquittoBroker
from tests.support import offline_config, wait_for, wait_scanner_open, write_config

REPO = Path(__file__).resolve().parents[1]
LIBFAKETIME = next(iter(sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))), None)
pytestmark = pytest.mark.skipif(LIBFAKETIME is None,
                                reason="libfaketime missing (Debian package faketime)")
SET_BACK = ["-2d", "@1970-01-02 00:00:00"]


class Cart:
    def __init__(self, tmp: Path, **patch: Any) -> None:
        self.tmp = tmp
        (tmp / "dev").mkdir(parents=True, exist_ok=True)
        self.scanner = ScannerSimulator(tmp / "dev" / "cart-scanner")
        self.issuer = Issuer()
        doc = offline_config(
            tmp, scanner={"kind": "serial", "port": self.scanner.path, "repeat_window_s": 0.0},
            security={"token_keys": {self.issuer.kid: self.issuer.public}}, **patch)
        self.cfg = write_config(tmp / "agent.toml", doc)
        self.db = tmp / "data" / "cart.db"

    @contextlib.contextmanager
    def running(self, faketime: str | None = None) -> Iterator[subprocess.Popen[bytes]]:
        env = {**os.environ}
        if faketime is not None:
            assert LIBFAKETIME is not None
            # Only the wall clock is shifted: the boot clock runs on as on a real cart.
            env.update(LD_PRELOAD=LIBFAKETIME, FAKETIME=faketime,
                       FAKETIME_DONT_FAKE_MONOTONIC="1")
        log = open(self.tmp / f"daemon-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "-c", str(self.cfg)],
                                cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: (self.status(check=False) or {}).get("agent_running"),
                     timeout_s=60, what="the daemon to answer")
            wait_scanner_open(self.tmp / "data")
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()

    def status(self, check: bool = True) -> dict[str, Any] | None:
        out = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c",
                              str(self.cfg)], cwd=REPO, capture_output=True, text=True,
                             timeout=30)
        if not check and out.returncode != 0:
            return None  # e.g. no store yet: the daemon is still starting
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    def clock(self) -> dict[str, Any]:
        status = self.status()
        assert status is not None
        return dict(status["clock"])

    def txs(self, type_: str) -> list[dict[str, Any]]:
        import sqlite3

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT seq, at, clock, data FROM transactions WHERE type = ? "
                                "ORDER BY seq", (type_,)).fetchall()
        finally:
            conn.close()
        return [{"seq": r[0], "at": r[1], "clock": r[2], "data": json.loads(r[3])} for r in rows]

    def wait_txs(self, type_: str, count: int = 1) -> list[dict[str, Any]]:
        return wait_for(lambda: (rows := self.txs(type_)) and len(rows) >= count and rows,
                        timeout_s=20, what=f"{count} {type_} record(s)")

    def ticket(self, now: float | None = None, ttl: float = 3600) -> str:
        return self.issuer.token("ticket", ttl=ttl, now=now, service="gov")


@pytest.fixture
def make_cart(tmp_path: Path) -> Iterator[Callable[..., Cart]]:
    carts: list[Cart] = []

    def make(**patch: Any) -> Cart:
        carts.append(Cart(tmp_path, **patch))
        return carts[-1]

    yield make
    for cart in carts:
        cart.scanner.close()


def _local_day(at: str) -> str:
    """The cart's local day (config default: Asia/Shanghai) of a record's time."""
    return datetime.fromtimestamp(parse_rfc3339(at), ZoneInfo("Asia/Shanghai")).date().isoformat()


@pytest.mark.parametrize("shift", SET_BACK)
def test_clock_set_back_after_restart_decides_from_the_evidence(make_cart: Callable[..., Cart],
                                                                 shift: str) -> None:
    cart = make_cart()
    with cart.running():
        cart.scanner.scan(cart.ticket())
        first = cart.wait_txs("ticket.issue")[0]
    assert first["clock"] == "wall"
    assert first["data"]["number"] == 1

    real = time.time()
    with cart.running(faketime=shift):
        clock = cart.clock()
        assert clock["from"] == "agent"
        assert (clock["source"], clock["alarm"]) == ("corrected", "behind")
        assert clock["offset_s"] > 86_400
        assert parse_rfc3339(clock["now"]) >= parse_rfc3339(first["at"])
        assert parse_rfc3339(clock["wall"]) < real - 86_400  # the daemon's wall clock lies

        # A code that expired an hour ago: a wall clock two days back would take it.
        cart.scanner.scan(cart.ticket(now=real - 3600 - 600, ttl=600))
        rejected = cart.wait_txs("scan.rejected")[0]
        assert rejected["data"]["reason"] == "expired"
        assert rejected["clock"] == "corrected"

        # A valid code works, and its ticket is numbered in today's series, not in the
        # series of the day the wall clock shows.
        cart.scanner.scan(cart.ticket())
        second = cart.wait_txs("ticket.issue", 2)[1]
        assert second["data"]["number"] == 2
        assert second["clock"] == "corrected"
        assert parse_rfc3339(second["at"]) >= parse_rfc3339(first["at"])
        assert _local_day(second["at"]) == _local_day(first["at"])
        alarm = cart.wait_txs("clock.behind")[0]
        assert alarm["data"]["alarm"] == "behind"

    text = subprocess.run([sys.executable, "-m", "agent", "status", "-c", str(cart.cfg)],
                          cwd=REPO, capture_output=True, text=True, timeout=30).stdout
    assert "clock: ok" in text  # this machine's clock is right, and the evidence agrees


def test_new_cart_with_a_1970_clock_refuses_codes(make_cart: Callable[..., Cart]) -> None:
    cart = make_cart()
    with cart.running(faketime="@1970-01-02 00:00:00"):
        clock = cart.clock()
        assert clock["alarm"] == "unknown"
        cart.scanner.scan(cart.ticket())
        rejected = cart.wait_txs("scan.rejected")[0]
        assert rejected["data"]["reason"] == "clock_unknown"
        assert rejected["clock"] == "unknown"  # the server should re-date it
        cart.scanner.scan(cart.ticket())  # the same again: still refused, nothing issued
        assert cart.wait_txs("scan.rejected", 2)[1]["data"]["reason"] == "clock_unknown"
        assert cart.txs("ticket.issue") == []
        assert cart.wait_txs("clock.unknown")[0]["data"]["alarm"] == "unknown"


class Listener:
    def __init__(self, broker: MosquittoBroker, topics: list[str]) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        for topic in topics:
            self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        if msg.payload:
            self.got.setdefault(msg.topic, []).append(json.loads(msg.payload))

    def publish(self, topic: str, doc: dict[str, Any]) -> None:
        self.client.publish(topic, json.dumps(doc), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_clock_an_hour_ahead_is_reported(tmp_path: Path,
                                         make_cart: Callable[..., Cart]) -> None:
    broker = MosquittoBroker(tmp_path / "broker").start()
    cart = make_cart(mqtt={"enabled": True, "host": broker.host, "port": broker.port,
                                "telemetry_interval_s": 0.5})
    listener = Listener(broker, ["carts/bc-test/status", "carts/bc-test/telemetry",
                                 "carts/bc-test/cmd/result"])
    try:
        with cart.running(faketime="+1h"):
            status = wait_for(lambda: listener.got.get("carts/bc-test/status"), timeout_s=20,
                              what="the retained status")[-1]
            assert status["state"] == "online"
            assert {"since", "at"} <= set(status)
            assert set(status["clock"]) == {"source", "offset_s", "alarm"}
            # A live command carries the server's time: the cart's wall clock is an hour on.
            listener.publish("carts/bc-test/cmd", {"id": "c1", "name": "ping", "args": {},
                                                   "at": rfc3339(time.time())})
            result = wait_for(lambda: listener.got.get("carts/bc-test/cmd/result"),
                              timeout_s=20, what="the ping's answer")[0]
            assert result["ok"] is True
            telemetry = wait_for(
                lambda: [t for t in listener.got.get("carts/bc-test/telemetry", [])
                         if t.get("clock", {}).get("alarm") == "ahead"],
                timeout_s=20, what="telemetry saying the clock is ahead")[-1]
            assert telemetry["clock"]["source"] == "wall"
            assert -3700 < telemetry["clock"]["offset_s"] < -3500
            clock = cart.clock()
            assert clock["alarm"] == "ahead"
            assert cart.wait_txs("clock.ahead")[0]["data"]["alarm"] == "ahead"
            # An ack with the server's time (the ingest sends one): also evidence.
            listener.publish("carts/bc-test/tx/ack", {"ids": [], "at": rfc3339(time.time())})
        will = listener.got["carts/bc-test/status"][-1]
        assert will["state"] == "offline"
        assert will["since"] == status["since"]  # the connection's time, said as such
    finally:
        listener.close()
        broker.stop()
