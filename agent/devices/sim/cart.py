"""A whole simulated cart: scanner, printer and lock bus behind udev-like names in one folder.

The demo and the end-to-end tests run the real daemon against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent.devices.lockboard.frames import LockAddress
from agent.devices.sim.lockbus import LockBusSimulator
from agent.devices.sim.printer import PrinterSimulator
from agent.devices.sim.scanner import ScannerSimulator

# Two bs boards: four compartments on board 1, two large ones on board 2.
COMPARTMENTS: list[dict[str, Any]] = [
    {"id": "A01", "board": 1, "lock": 1, "size": "S"},
    {"id": "A02", "board": 1, "lock": 2, "size": "S"},
    {"id": "A03", "board": 1, "lock": 3, "size": "M"},
    {"id": "A04", "board": 1, "lock": 4, "size": "M"},
    {"id": "B01", "board": 2, "lock": 1, "size": "L"},
    {"id": "B02", "board": 2, "lock": 2, "size": "L"},
]


class SimulatedCart:
    def __init__(self, dev_dir: str | Path, protocol: str = "bs") -> None:
        self.dev_dir = Path(dev_dir)
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        boards = {1: 24, 2: 24} if protocol == "bs" else {1: 16, 2: 16}
        self.locker = LockBusSimulator(self.dev_dir / "cart-locker", protocol, boards).start()
        self.printer = PrinterSimulator(self.dev_dir / "cart-printer")
        self.scanner = ScannerSimulator(self.dev_dir / "cart-scanner")
        self.protocol = protocol

    def device_config(self) -> dict[str, Any]:
        """The config sections that point the agent at these simulators."""
        return {
            "scanner": {"kind": "serial", "port": self.scanner.path, "repeat_window_s": 0.0},
            "printer": {"kind": "serial", "port": self.printer.path},
            "locker": {"enabled": True, "port": self.locker.path, "protocol": self.protocol,
                       "baudrate": 9600 if self.protocol == "bs" else 19200,
                       "poll_interval_s": 0.1, "compartments": COMPARTMENTS},
        }

    @staticmethod
    def address(comp_id: str) -> LockAddress:
        comp = next(c for c in COMPARTMENTS if c["id"] == comp_id)
        return LockAddress(comp["board"], comp["lock"])

    def close_door(self, comp_id: str) -> None:
        self.locker.close_door(self.address(comp_id))

    def opens(self, comp_id: str | None = None) -> int:
        """How many times a lock really released (all compartments when no id is given)."""
        ids = [comp_id] if comp_id else [c["id"] for c in COMPARTMENTS]
        return sum(self.locker.open_count(self.address(i)) for i in ids)

    def close(self) -> None:
        self.scanner.close()
        self.printer.close()
        self.locker.stop()

    def __enter__(self) -> SimulatedCart:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
