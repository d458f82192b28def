"""An in-process daemon on a simulated cart, with a token issuer and a feedback listener."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.config import load, overlay
from agent.devices.sim.cart import SimulatedCart
from agent.flows.feedback import Feedback
from agent.runtime.daemon import Daemon
from agent.runtime.systemd import Notifier
from agent.store import Store
from fleet.keys import issue_token
from tests.support import offline_config, wait_for, write_config


class Clock:
    def __init__(self, now: float | None = None) -> None:
        self.now = now if now is not None else time.time()
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Issuer:
    def __init__(self, kid: str = "k1") -> None:
        self.kid = kid
        self.key = Ed25519PrivateKey.generate()
        self.public = jws.encode_public_key(self.key.public_key())

    def token(self, svc: str, ttl: float = 3600, now: float | None = None,
              **claims: Any) -> str:
        """A token as the fleet's issuer makes one (fleet.keys.issue_token)."""
        cart = claims.pop("cart", None)
        if ttl < 1:  # an already expired token: issued far enough back to expire ttl from now
            now = (time.time() if now is None else now) + ttl - 1
            ttl = 1
        return issue_token(self.key, self.kid, svc, cart=cart, ttl_s=ttl, now=now,
                           claims={k: v for k, v in claims.items() if v is not None})


class Rig:
    """Simulators + the real daemon (in this process, in a thread) + a feedback subscription."""

    def __init__(self, tmp: Path, clock: Clock | None = None, **patch: Any) -> None:
        self.tmp = tmp
        self.sim = SimulatedCart(tmp / "dev")
        self.issuer = Issuer()
        self.clock = clock or Clock()
        doc = overlay(offline_config(
            tmp, **self.sim.device_config(), deposit_timeout_s=60,
            security={"token_keys": {self.issuer.kid: self.issuer.public}}), patch)
        self.config_path = write_config(tmp / "agent.toml", doc)
        self.cfg = load(self.config_path)
        self.store = Store(self.cfg.db_path, self.cfg.cart_id, clock=self.clock)
        self.daemon = Daemon(self.cfg, str(self.config_path), self.store,
                             notifier=Notifier(environ={}), clock=self.clock)
        self.feedback: queue.Queue[Feedback] = self.daemon.feedback.subscribe(500)
        self.thread = threading.Thread(target=self.daemon.run, daemon=True)
        self.thread.start()
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until the flows (as built now: a pushed config rebuilds them) serve: the flow
        thread up, every door read once, the scanner's port open. The scanner drops what
        waited on its port when it opens it: a scan sent before would be lost."""
        wait_for(lambda: self.daemon.cart is not None and self.daemon.cart.health.ok,
                 timeout_s, what="flows to start")
        locker = self.daemon.devices.locker
        assert locker is not None
        wait_for(lambda: all(v is not None for v in locker.door_states().values()),
                 timeout_s, what="first door reading")
        scanner = self.daemon.devices.scanner
        if scanner is not None:
            wait_for(lambda: scanner.health.ok, timeout_s, what="the scanner's port to open")

    def scan(self, text: str | bytes, timeout_s: float = 10.0) -> Feedback:
        """Scan on the simulated scanner and return the resident's answer."""
        self.drain()
        self.sim.scanner.scan(text)
        return self.next_answer(timeout_s)

    def next_answer(self, timeout_s: float = 10.0) -> Feedback:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                event = self.feedback.get(timeout=0.1)
            except queue.Empty:
                continue
            if event.kind in ("accepted", "refused", "deposit") and event.reason not in (
                    "forced_open", "left_open"):
                return event
        raise AssertionError("no answer to the scan")

    def drain(self) -> list[Feedback]:
        out = []
        while True:
            try:
                out.append(self.feedback.get_nowait())
            except queue.Empty:
                return out

    def txs(self, type_: str | None = None) -> list[dict[str, Any]]:
        import json

        sql = "SELECT id, seq, type, data FROM transactions"
        params: tuple[Any, ...] = ()
        if type_:
            sql += " WHERE type = ?"
            params = (type_,)
        rows = self.store.query(sql + " ORDER BY seq", params)
        return [{**r, "data": json.loads(r["data"])} for r in rows]

    def wait_tx(self, type_: str, count: int = 1, timeout_s: float = 10.0) -> list[dict[str, Any]]:
        return wait_for(lambda: (rows := self.txs(type_)) and len(rows) >= count and rows,
                        timeout_s=timeout_s, what=f"{count} {type_} transaction(s)")

    def close_door(self, comp_id: str) -> None:
        """Close a door the agent has seen open (a person takes longer than one poll)."""
        wait_for(lambda: self.compartment(comp_id).door == "open", what=f"{comp_id} seen open")
        self.sim.close_door(comp_id)

    def compartment(self, comp_id: str) -> Any:
        assert self.daemon.cart is not None
        return self.daemon.cart.ctx.compartments.get(comp_id)

    def stop(self) -> None:
        self.daemon.stop_event.set()
        self.thread.join(10)
        self.sim.close()
