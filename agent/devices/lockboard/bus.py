"""The RS485 bus of lock boards, driven over pyserial: one request at a time.

The cart is the only master on a half-duplex bus, so every exchange is request, then reply or
timeout, under one lock. Input is flushed before each request so a late reply to an earlier
request cannot be taken for the answer to this one, and every reply is checked (length,
checksum, echoed board and lock) before anything is done with it.

Opening is the one operation that must not be repeated blindly: a timed-out open may still
have released the lock. So after a timeout the door is read first, and the open is retried
(once) only when the door reads closed. Kerong boards never answer an unlock at all, so there
the status read is how we learn whether it released.
"""

from __future__ import annotations

import contextlib
import logging
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import serial

from agent.devices.lockboard import codec_for
from agent.devices.lockboard.frames import (
    BoardTimeout,
    FrameError,
    LockAddress,
    LockerUnavailable,
    OpenReply,
    Reply,
    StatusReply,
)

log = logging.getLogger(__name__)

READ_SLICE_S = 0.02  # pyserial read timeout; bounds how late a deadline is noticed
KERONG_STATUS_GAP_S = 0.05  # between status reads while waiting for a kerong door to spring
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


@dataclass(frozen=True)
class OpenResult:
    address: LockAddress
    released: bool  # the lock released (board said so, or the door was seen open)
    door_open: bool | None  # door state read after the command; None when not read or unknown
    error: str | None


@dataclass
class _BoardHealth:
    ok: bool = False
    error: str | None = "not polled yet"
    last_ok_at: float | None = None
    timeouts: int = 0
    bad_frames: int = 0
    logged_ok: bool | None = None  # the state last logged, so each change is logged once

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "error": self.error, "last_ok_at": self.last_ok_at,
            "timeouts": self.timeouts, "bad_frames": self.bad_frames,
        }


@dataclass
class _Exchange:
    """What one request saw on the wire, for the board's telemetry."""

    bad_frames: int = 0
    rejected: list[Reply] = field(default_factory=list)


class LockBus:
    def __init__(
        self,
        port: str,
        protocol: str = "bs",
        baudrate: int = 9600,
        closed_bit: int = 1,
        open_timeout_s: float = 1.5,
        status_timeout_s: float = 0.5,
    ) -> None:
        if closed_bit not in (0, 1):
            raise ValueError("closed_bit must be 0 or 1")
        self.port = port
        self.codec = codec_for(protocol)
        self.baudrate = baudrate
        self.closed_bit = closed_bit
        self.open_timeout_s = open_timeout_s
        self.status_timeout_s = status_timeout_s
        self._lock = threading.Lock()  # one exchange on the bus at a time
        self._serial: serial.Serial | None = None
        self._stream = self.codec.reply_stream()
        self._health: dict[int, _BoardHealth] = {}
        self._health_lock = threading.Lock()  # board_health() must not wait for an exchange

    # -- port ------------------------------------------------------------------------------

    def open(self) -> None:
        with self._lock:
            if self._serial is not None:
                return
            try:
                self._serial = serial.Serial(
                    port=self.port, baudrate=self.baudrate, bytesize=serial.EIGHTBITS,
                    parity=serial.PARITY_NONE, stopbits=serial.STOPBITS_ONE,
                    timeout=READ_SLICE_S, write_timeout=1.0, exclusive=True,
                )
            except (*_PORT_ERRORS, ValueError) as exc:
                raise LockerUnavailable(f"cannot open {self.port}: {exc}") from exc
            self._stream.clear()

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(*_PORT_ERRORS):  # the device may already be gone
                ser.close()

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def __enter__(self) -> LockBus:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------

    def read_board(self, board: int) -> dict[int, bool]:
        """Door states of one board: lock -> True when closed and latched, False when open."""
        if board not in self.codec.boards:
            raise ValueError(f"{self.codec.name} board {board} out of range")
        reply = self._exchange(
            board, self.codec.encode_status(board), self.status_timeout_s,
            lambda r: isinstance(r, StatusReply) and r.board == board,
        )
        assert isinstance(reply, StatusReply)
        return {
            lock: (reply.locks >> (lock - 1)) & 1 == self.closed_bit for lock in self.codec.locks
        }

    def open_lock(self, address: LockAddress) -> OpenResult:
        """Release one lock, at most twice and the second time only if the door reads closed.

        Raises LockerUnavailable when the port is down; board silence and bad frames end up in
        the result's `error`.
        """
        self.codec.check(address)
        if self.codec.open_replies:
            return self._open_with_reply(address)
        return self._open_then_poll(address)

    def _open_with_reply(self, address: LockAddress) -> OpenResult:
        request = self.codec.encode_open(address.board, address.lock)
        for attempt in (1, 2):
            try:
                reply = self._exchange(
                    address.board, request, self.open_timeout_s,
                    lambda r: isinstance(r, OpenReply)
                    and (r.board, r.lock) == (address.board, address.lock),
                )
            except (BoardTimeout, FrameError) as exc:
                failure = f"no valid reply to open: {exc}"
            else:
                assert isinstance(reply, OpenReply)
                # The door is not read here: it springs open some time after the release, so a
                # status read right now would often still say closed. Polling reports it.
                if reply.released:
                    return OpenResult(address, True, None, None)
                return OpenResult(address, False, None, "board reports the lock did not release")
            closed = self._door_closed(address)
            if closed is None:
                return OpenResult(
                    address, False, None, f"{failure}; door state unknown, not retried"
                )
            if not closed:
                return OpenResult(address, True, True, None)  # it released; only the reply was lost
            if attempt == 1:
                log.warning("lock %s: %s; door still closed, retrying once", address, failure)
        return OpenResult(address, False, False, f"{failure}; door still closed after one retry")

    def _open_then_poll(self, address: LockAddress) -> OpenResult:
        request = self.codec.encode_open(address.board, address.lock)
        for attempt in (1, 2):
            self._exchange(address.board, request, 0.0, None)
            closed = self._await_door_open(address, time.monotonic() + self.open_timeout_s)
            if closed is None:
                return OpenResult(
                    address, False, None, "board did not answer status after unlock; not retried"
                )
            if not closed:
                return OpenResult(address, True, True, None)
            if attempt == 1:
                log.warning("lock %s: door still closed after unlock, retrying once", address)
        return OpenResult(
            address, False, False, "lock did not release: door still closed after one retry"
        )

    def _await_door_open(self, address: LockAddress, deadline: float) -> bool | None:
        """Poll the door until it reads open or `deadline`; the last answer, None if none."""
        last: bool | None = None
        while True:
            closed = self._door_closed(address)
            if closed is not None:
                last = closed
            if closed is False or time.monotonic() + KERONG_STATUS_GAP_S >= deadline:
                return last
            time.sleep(KERONG_STATUS_GAP_S)

    def _door_closed(self, address: LockAddress) -> bool | None:
        try:
            return self.read_board(address.board)[address.lock]
        except (BoardTimeout, FrameError):
            return None

    def _exchange(
        self, board: int, request: bytes, timeout_s: float, accept: Callable[[Reply], bool] | None
    ) -> Reply | None:
        """Send `request` and return the first reply `accept` takes; None when no reply is due."""
        with self._lock:
            ser = self._serial
            if ser is None:
                raise LockerUnavailable(f"{self.port} is not open")
            seen = _Exchange()
            try:
                ser.reset_input_buffer()
                self._stream.clear()
                ser.write(request)
                if accept is None:
                    return None
                reply = self._await_reply(ser, timeout_s, accept, seen)
            except _PORT_ERRORS as exc:
                self._close_locked()
                raise LockerUnavailable(f"{self.port}: {exc}") from exc
        self._record(board, reply, seen)
        if reply is not None:
            return reply
        if seen.bad_frames or seen.rejected:
            raise FrameError(
                f"board {board}: no valid reply in {timeout_s:.2f}s "
                f"({seen.bad_frames} bad frames, {len(seen.rejected)} replies to something else)"
            )
        raise BoardTimeout(f"board {board}: no reply in {timeout_s:.2f}s")

    def _await_reply(
        self, ser: serial.Serial, timeout_s: float, accept: Callable[[Reply], bool], seen: _Exchange
    ) -> Reply | None:
        deadline = time.monotonic() + timeout_s
        bad_before = self._stream.bad_frames
        try:
            while time.monotonic() < deadline:
                data = ser.read(max(1, ser.in_waiting))
                if not data:
                    continue
                for reply in self._stream.feed(data):
                    if accept(reply):
                        return reply
                    seen.rejected.append(reply)  # valid, but from another board or request
            return None
        finally:
            seen.bad_frames = self._stream.bad_frames - bad_before

    def _record(self, board: int, reply: Reply | None, seen: _Exchange) -> None:
        with self._health_lock:
            health = self._health.setdefault(board, _BoardHealth())
            health.bad_frames += seen.bad_frames + len(seen.rejected)
            if reply is not None:
                health.ok, health.error, health.last_ok_at = True, None, time.time()
            elif seen.bad_frames or seen.rejected:
                health.ok, health.error = False, "bad frames"
            else:
                health.ok, health.error = False, "timeout"
                health.timeouts += 1
            changed = health.logged_ok != health.ok
            health.logged_ok = health.ok
        if changed:
            if health.ok:
                log.info("lock board %d answers", board)
            else:
                log.warning("lock board %d: %s", board, health.error)
        for other in seen.rejected:
            log.debug("board %d: ignored reply %r", board, other)

    def board_health(self) -> dict[int, dict[str, Any]]:
        with self._health_lock:
            return {board: h.as_dict() for board, h in sorted(self._health.items())}
