"""A QR/barcode scanner on a serial port (USB-CDC or RS232): one line per code."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import serial

from agent.devices.errors import DeviceUnavailable, cannot_open
from agent.devices.scanner.lines import (
    LineReader,
    RepeatFilter,
    ScanEvent,
    TooLong,
    event_from_line,
    repeat_key,
)
from agent.health import Health

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.05  # how often the loop checks `stop` and the idle timeout


class SerialScanner:
    """Supervised service: opens the port, reads lines, calls `on_scan` for each code.

    Failed reads (unreadable bytes, over-long lines) are events too, with `error` set, so the
    flows can record a rejection. A port that fails raises out of `run`; the supervisor
    reopens it by path, which is how an unplugged and replugged scanner comes back.
    `on_scan` runs in this service's thread; an exception from it propagates (a bug in a flow
    is not the scanner's to hide).
    """

    name = "scanner"

    def __init__(
        self,
        port: str,
        baudrate: int,
        on_scan: Callable[[ScanEvent], None],
        repeat_window_s: float = 2.0,
        idle_timeout_s: float | None = 0.3,
        max_line: int = 4096,
    ) -> None:
        self.port = port
        self.baudrate = baudrate
        self.on_scan = on_scan
        self.idle_timeout_s = idle_timeout_s
        self.max_line = max_line
        # Kept across reopens: a continuous-mode scanner's repeat is still a repeat after a
        # reconnect.
        self.repeats = RepeatFilter(repeat_window_s)
        self.health = Health(self.name)

    def run(self, stop: threading.Event) -> None:
        reader = LineReader(self.max_line, self.idle_timeout_s)
        try:
            port = serial.Serial(self.port, self.baudrate, timeout=_READ_TIMEOUT_S)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise DeviceUnavailable(cannot_open(self.port, exc)) from exc
        with port:
            if self.health.set_ok(port=self.port):
                log.info("scanner on %s ready", self.port)
            while not stop.is_set():
                # read(1) blocks for at most the timeout; then take whatever else has arrived.
                data = port.read(1)
                if data and port.in_waiting:
                    data += port.read(port.in_waiting)
                now = time.monotonic()
                lines = reader.feed(data, now) if data else reader.flush_idle(now)
                for line in lines:
                    self._emit(line)

    def _emit(self, line: bytes | TooLong) -> None:
        event = event_from_line(line, "serial")
        if not self.repeats.accept(repeat_key(event), event.mono):
            return
        if event.error:
            log.warning("scan rejected: %s (%s)", event.error, event.detail)
        self.on_scan(event)
