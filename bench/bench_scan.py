"""Scan-to-unlock latency: from the last byte of a scan written on the scanner's pty to the
open frame arriving on the lock bus's pty, through the real daemon (serial scanner driver,
token check, durable commit, lock-board driver) on the simulators.

The baseline is the wire time of the same bytes at the configured baud rates: the scan line at
9600 baud plus the 5-byte open frame at 9600 baud, which a real cart cannot go below.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.config import overlay, validate
from agent.devices.sim.cart import COMPARTMENTS, SimulatedCart
from agent.runtime.daemon import Daemon
from agent.runtime.systemd import Notifier
from agent.store import Store
from fleet.keys import issue_token


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _wait(predicate: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        time.sleep(0.001)


def _door(daemon: Daemon, compartment: str) -> str | None:
    cart = daemon.cart
    comp = cart.ctx.compartments.get(compartment) if cart is not None else None
    return comp.door if comp is not None else None


def measure(n: int, patch: Callable[[str], dict[str, Any]] | None = None,
            before_scan: Callable[[Daemon, int], None] | None = None,
            ) -> tuple[list[float], int]:
    """Latencies (ms) of `n` scans after 3 warm-up ones, and the scan line's length, on a
    daemon whose config has `patch(its temporary directory)` laid over the bench's;
    `before_scan(daemon, i)` runs before the i-th measured scan."""
    key = Ed25519PrivateKey.generate()
    with tempfile.TemporaryDirectory() as tmp:
        sim = SimulatedCart(Path(tmp) / "dev")
        doc = {"cart_id": "bench-01", "data_dir": f"{tmp}/data", "log_level": "WARNING",
               "mqtt": {"enabled": False}, "web": {"enabled": False},
               "security": {"token_keys": {"k1": jws.encode_public_key(key.public_key())}},
               **sim.device_config()}
        doc["scanner"]["repeat_window_s"] = 0.0
        doc["scanner"]["idle_timeout_s"] = 0.0
        cfg = validate(overlay(doc, patch(tmp)) if patch else doc)
        daemon = Daemon(cfg, "", Store(cfg.db_path, cfg.cart_id), notifier=Notifier({}))
        thread = threading.Thread(target=daemon.run, daemon=True)
        thread.start()
        try:
            _wait(lambda: daemon.devices.locker is not None and all(
                v is not None for v in daemon.devices.locker.door_states().values()))
            comp = COMPARTMENTS[0]
            latencies: list[float] = []
            line_len = 0
            for i in range(n + 3):
                token = issue_token(key, "k1", "meal", claims={
                    "order": f"B-{i}", "items": ["饭"], "compartment": comp["id"]})
                line = token.encode() + b"\r\n"
                line_len = len(line)
                frames_before = len(sim.locker.frames)
                if before_scan is not None and i >= 3:
                    before_scan(daemon, i - 3)
                sim.scanner.send(line)
                sent = time.monotonic()
                _wait(lambda fb=frames_before: any(
                    f[1][:1] == b"\x8a" for f in sim.locker.frames[fb:]))
                arrived = next(t for t, f in sim.locker.frames[frames_before:]
                               if f[:1] == b"\x8a")
                if i >= 3:  # warm-up: first imports, first fsyncs
                    latencies.append((arrived - sent) * 1000)
                _wait(lambda: daemon.cart is not None
                      and _door(daemon, comp["id"]) == "open")
                sim.close_door(comp["id"])
                _wait(lambda: daemon.cart is not None
                      and _door(daemon, comp["id"]) == "closed")
        finally:
            daemon.stop_event.set()
            thread.join(10)
            sim.close()
    return latencies, line_len


def run(quick: bool = False) -> list[dict[str, object]]:
    latencies, line_len = measure(20 if quick else 200)
    wire_ms = (line_len + 5) * 10 / 9600 * 1000
    p50 = statistics.median(latencies)
    return [{
        "name": "scan-to-unlock (scanner pty -> open frame on lock-bus pty)",
        "p50_ms": round(p50, 2), "p99_ms": round(_percentile(latencies, 0.99), 2),
        "samples": len(latencies),
        "baseline": f"wire time of {line_len}+5 bytes at 9600 baud",
        "baseline_ms": round(wire_ms, 1), "ratio": round(p50 / wire_ms, 3),
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
