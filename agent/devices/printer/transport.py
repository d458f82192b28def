"""How bytes reach the printer: serial, TCP (port 9100), a device file, or USB.

Each transport is a thin pipe with `open/close/write/read`; every failure comes out as
TransportError with the cause, so the service above has one error to handle. Serial and TCP
printers answer status requests; through a device file (e.g. /dev/usb/lp0) or python-escpos's
USB class the answers cannot be relied on, so `can_read` is False and status is unknown.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import termios
import time
from typing import Any, Protocol

import serial

from agent.devices.errors import cannot_open, cause


class TransportError(OSError):
    """The printer's connection failed or timed out."""


class Transport(Protocol):
    """`read` waits up to `timeout_s` for the first byte and returns b"" on silence."""

    can_read: bool
    description: str

    def open(self) -> None: ...

    def close(self) -> None: ...

    def write(self, data: bytes, timeout_s: float) -> None: ...

    def read(self, max_bytes: int, timeout_s: float) -> bytes: ...

    def drain(self, timeout_s: float) -> None: ...

    def discard_input(self) -> None: ...


# pyserial lets termios.error (not an OSError) through from tcflush/tcsetattr on a vanished port.
_SERIAL_ERRORS = (serial.SerialException, OSError, termios.error)


class SerialTransport:
    can_read = True

    def __init__(self, port: str, baudrate: int) -> None:
        self.port, self.baudrate = port, baudrate
        self.description = f"serial {port}"
        self._serial: serial.Serial | None = None

    def open(self) -> None:
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=0, write_timeout=1)
        except _SERIAL_ERRORS as exc:
            raise TransportError(cannot_open(self.port, exc)) from exc

    def close(self) -> None:
        if self._serial is not None:
            # Closing a vanished device can fail; it is closed either way.
            with contextlib.suppress(*_SERIAL_ERRORS):
                self._serial.close()
            self._serial = None

    def _port(self) -> serial.Serial:
        if self._serial is None:
            raise TransportError(f"{self.port} is not open")
        return self._serial

    def write(self, data: bytes, timeout_s: float) -> None:
        port = self._port()
        try:
            if port.write_timeout != timeout_s:  # each change is a tcsetattr
                port.write_timeout = timeout_s
            port.write(data)
        except serial.SerialTimeoutException as exc:
            raise TransportError(f"write to {self.port} timed out after {timeout_s} s") from exc
        except _SERIAL_ERRORS as exc:
            raise TransportError(f"write to {self.port} failed: {cause(exc)}") from exc

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        """Waits up to `timeout_s` for the first byte, then returns what has arrived."""
        port = self._port()
        try:
            if port.timeout != timeout_s:
                port.timeout = timeout_s
            data = bytes(port.read(1))
            waiting = port.in_waiting if data else 0
            if waiting and max_bytes > 1:
                data += port.read(min(waiting, max_bytes - 1))
            return data
        except _SERIAL_ERRORS as exc:
            raise TransportError(f"read from {self.port} failed: {cause(exc)}") from exc

    def drain(self, timeout_s: float) -> None:
        """Wait until the bytes queued in the kernel are on the wire: at 9600 baud a 5 KB
        receipt takes ~5 s, and a status request sent behind it is answered only then.
        (pyserial's flush() is tcdrain, which has no timeout.)"""
        port = self._port()
        deadline = time.monotonic() + timeout_s
        try:
            while port.out_waiting:
                if time.monotonic() > deadline:
                    raise TransportError(f"{self.port} did not take the data in {timeout_s} s")
                time.sleep(0.01)
        except _SERIAL_ERRORS as exc:
            raise TransportError(f"{self.port} failed: {cause(exc)}") from exc

    def discard_input(self) -> None:
        try:
            self._port().reset_input_buffer()
        except _SERIAL_ERRORS as exc:
            raise TransportError(f"{self.port} failed: {cause(exc)}") from exc


class NetworkTransport:
    can_read = True

    def __init__(self, host: str, port: int = 9100, connect_timeout_s: float = 3.0) -> None:
        self.host, self.port = host, port
        self.connect_timeout_s = connect_timeout_s
        self.description = f"tcp {host}:{port}"
        self._sock: socket.socket | None = None

    def open(self) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), self.connect_timeout_s)
        except OSError as exc:
            raise TransportError(f"cannot connect to {self.description}: {cause(exc)}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise TransportError(f"{self.description} is not connected")
        return self._sock

    def write(self, data: bytes, timeout_s: float) -> None:
        sock = self._socket()
        try:
            sock.settimeout(timeout_s)
            sock.sendall(data)
        except OSError as exc:
            raise TransportError(f"send to {self.description} failed: {cause(exc)}") from exc

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        sock = self._socket()
        try:
            sock.settimeout(timeout_s)
            data = sock.recv(max_bytes)
        except TimeoutError:
            return b""
        except OSError as exc:
            raise TransportError(f"receive from {self.description} failed: {cause(exc)}") from exc
        if not data:
            raise TransportError(f"{self.description} closed the connection")
        return data

    def drain(self, timeout_s: float) -> None:
        pass  # sendall returned: the kernel has it; TCP delivers it or the next read fails

    def discard_input(self) -> None:
        sock = self._socket()
        while select.select([sock], [], [], 0)[0]:
            if not self.read(4096, 0.01):
                return


class FileTransport:
    """A device file such as /dev/usb/lp0 (the kernel's usblp driver), or a plain file."""

    can_read = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.description = f"file {path}"
        self._fd: int | None = None

    def open(self) -> None:
        flags = os.O_WRONLY | os.O_APPEND
        # Never create a file where a device node is expected: printing into /dev/usb/lp0 as a
        # regular file would swallow every receipt without an error.
        if not self.path.startswith("/dev/"):
            flags |= os.O_CREAT
        try:
            self._fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise TransportError(cannot_open(self.path, exc)) from exc

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def write(self, data: bytes, timeout_s: float) -> None:
        if self._fd is None:
            raise TransportError(f"{self.path} is not open")
        view = memoryview(data)
        deadline = time.monotonic() + timeout_s
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                raise TransportError(f"write to {self.path} failed: {cause(exc)}") from exc
            view = view[written:]
            if view and time.monotonic() > deadline:
                raise TransportError(f"write to {self.path} timed out")

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        return b""

    def drain(self, timeout_s: float) -> None:
        pass

    def discard_input(self) -> None:
        pass


class UsbTransport:
    """python-escpos's USB printer class (needs pyusb: the escpos `usb` extra)."""

    can_read = False

    def __init__(self, vendor_id: int, product_id: int) -> None:
        self.vendor_id, self.product_id = vendor_id, product_id
        self.description = f"usb {vendor_id:04x}:{product_id:04x}"
        self._printer: Any = None

    def open(self) -> None:
        try:
            from escpos.printer import Usb

            printer = Usb(self.vendor_id, self.product_id, timeout=0)
            printer.open()
        except Exception as exc:  # escpos raises its own types, or RuntimeError without pyusb
            raise TransportError(f"cannot open {self.description}: {exc}") from exc
        self._printer = printer

    def close(self) -> None:
        if self._printer is not None:
            with contextlib.suppress(Exception):  # the device may already be gone
                self._printer.close()
            self._printer = None

    def write(self, data: bytes, timeout_s: float) -> None:
        if self._printer is None:
            raise TransportError(f"{self.description} is not open")
        try:
            self._printer.device.write(self._printer.out_ep, data, int(timeout_s * 1000))
        except Exception as exc:  # usb.core.USBError and friends
            raise TransportError(f"write to {self.description} failed: {exc}") from exc

    def read(self, max_bytes: int, timeout_s: float) -> bytes:
        return b""

    def drain(self, timeout_s: float) -> None:
        pass

    def discard_input(self) -> None:
        pass


def make_transport(
    kind: str,
    port: str | None = None,
    baudrate: int = 9600,
    host: str | None = None,
    tcp_port: int | None = None,
    path: str | None = None,
    vendor_id: int | None = None,
    product_id: int | None = None,
) -> Transport:
    if kind == "serial":
        if not port:
            raise ValueError("printer kind serial needs a port")
        return SerialTransport(port, baudrate)
    if kind == "network":
        if not host:
            raise ValueError("printer kind network needs a host")
        return NetworkTransport(host, tcp_port or 9100)
    if kind == "file":
        if not path:
            raise ValueError("printer kind file needs a path")
        return FileTransport(path)
    if kind == "usb":
        if vendor_id is None or product_id is None:
            raise ValueError("printer kind usb needs vendor_id and product_id")
        return UsbTransport(vendor_id, product_id)
    raise ValueError(f"unknown printer kind {kind!r} (serial, network, file, usb)")
