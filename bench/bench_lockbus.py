"""Lock-board bus: round trips of the real LockBus against the simulator on a pty.

A pty moves bytes at memory speed, so what is measured is the driver's and the simulator's
own overhead; the baseline is how long the same bytes take on a real RS485 wire (10 bits a
byte at 8N1). A ratio well under 1 means the driver adds little to what the wire costs anyway.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from agent.devices.lockboard.bus import LockBus
from agent.devices.lockboard.frames import LockAddress, LockCodec
from agent.devices.sim.lockbus import LockBusSimulator

ADDRESS = LockAddress(1, 1)


def _wire_ms(n_bytes: int, baud: int) -> float:
    return n_bytes * 10 / baud * 1000


def _percentiles(samples_ms: list[float]) -> tuple[float, float]:
    ordered = sorted(samples_ms)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99


def _time(op: Callable[[], object], reset: Callable[[], None], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        reset()
        started = time.perf_counter()
        op()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _wire_bytes(codec: LockCodec) -> tuple[int, int]:
    """Bytes on the wire for (one open, one status read) as the driver does them."""
    status = len(codec.encode_status(1)) + len(codec.encode_status_reply(1, 0, 0))
    open_ = len(codec.encode_open(1, 1)) + len(codec.encode_open_reply(1, 1, 0))
    if not codec.open_replies:
        open_ += status  # kerong: silence after the unlock, then a status read tells
    return open_, status


def _bench_protocol(protocol: str, n: int, folder: Path) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    with LockBusSimulator(folder / f"locker-{protocol}", protocol) as sim:
        codec = sim.codec
        with LockBus(sim.path, protocol, codec.baudrate) as bus:
            def open_once() -> None:
                if not bus.open_lock(ADDRESS).released:
                    raise RuntimeError("benchmark open did not release")

            def close_door() -> None:
                sim.close_door(ADDRESS)

            bus.read_board(1)  # warm up the port and the code paths
            open_bytes, status_bytes = _wire_bytes(codec)
            cases = [
                ("open round trip", open_once, close_door, open_bytes),
                ("status read", lambda: bus.read_board(1), lambda: None, status_bytes),
            ]
            for label, op, reset, wire_bytes in cases:
                p50, p99 = _percentiles(_time(op, reset, n))
                baseline = _wire_ms(wire_bytes, codec.baudrate)
                rows.append({
                    "name": f"lockbus {label} {protocol}",
                    "n": n,
                    "p50_ms": round(p50, 3),
                    "p99_ms": round(p99, 3),
                    "baseline": f"wire time of the same bytes at {codec.baudrate} baud",
                    "baseline_ms": round(baseline, 3),
                    "ratio": round(p50 / baseline, 3),
                })
    return rows


def run(quick: bool = False) -> list[dict[str, object]]:
    n = 50 if quick else 500
    with tempfile.TemporaryDirectory(prefix="bench-lockbus-") as folder:
        rows = []
        for protocol in ("bs", "kerong"):
            rows += _bench_protocol(protocol, n, Path(folder))
        return rows


if __name__ == "__main__":
    for row in run():
        print(
            f"{row['name']:<34} p50 {row['p50_ms']:>7} ms  p99 {row['p99_ms']:>7} ms  "
            f"wire {row['baseline_ms']:>6} ms  ratio {row['ratio']}"
        )
