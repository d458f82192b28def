"""What the rest of the cart may ask of each kind of device: the typed faces of the supervised
device services (lockboard.locker.LockerService, scanner.SerialScanner / CameraScanner,
printer.PrinterService, audio.AudioService, light.LightService). The flows and the runtime
hold devices through these."""

from __future__ import annotations

import threading
from typing import Protocol

from agent.devices.lockboard.frames import LockAddress
from agent.devices.lockboard.unlock import OpenResult
from agent.health import Health


class Device(Protocol):
    """A supervised service that owns one device: opens it, serves, raises when it fails."""

    name: str
    health: Health

    def run(self, stop: threading.Event) -> None: ...


class Locker(Device, Protocol):
    def open(self, address: LockAddress, timeout_s: float = 5.0) -> OpenResult: ...

    def door_states(self) -> dict[LockAddress, bool | None]: ...


class Scanner(Device, Protocol):
    """Delivers each code read (a ScanEvent) to the callback it was built with."""


class Printer(Device, Protocol):
    def print_bytes(self, data: bytes, timeout_s: float = 10.0) -> None: ...


class Light(Device, Protocol):
    """Lights over the compartments (or one for the cart): blink one until it is stopped."""

    def blink(self, compartment: str) -> None: ...

    def stop(self, compartment: str) -> None: ...
