"""The RS485 bus of lock boards, driven over pyserial: one request at a time.

The cart is the only master on a half-duplex bus, so every exchange is request, then reply or
timeout, under one lock. Input is flushed before each request so a late reply to an earlier
request cannot be taken for the answer to this one, and every reply is checked (length,
checksum, echoed board and lock) before anything is done with it.

Opening is the one request that is never repeated: `unlock.py` sends one open frame per call
and, when the answer is lost, reads the door instead of asking again.
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

from agent.devices.errors import cannot_open, cause
from agent.devices.lockboard import codec_for
from agent.devices.lockboard.frames import (
    BoardTimeout,
    Expect,
    FrameError,
    FrameStream,
    LockAddress,
    LockerUnavailable,
    LockReply,
    Reply,
    StatusReply,
)
from agent.devices.lockboard.unlock import OpenResult, open_lock

log = logging.getLogger(__name__)

READ_SLICE_S = 0.02  # pyserial read timeout; bounds how late a deadline is noticed
_PORT_ERRORS = (serial.SerialException, OSError, termios.error)


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
        self._health: dict[int, _BoardHealth] = {}
        # kerong: whether a board answers an unlock at all (learnt on the first unlock).
        self.unlock_answers: dict[int, bool] = {}
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
                raise LockerUnavailable(cannot_open(self.port, exc)) from exc

    def close(self) -> None:
        with self._lock:
            self._close_locked()

    def _close_locked(self) -> None:
        ser, self._serial = self._serial, None
        if ser is not None:
            with contextlib.suppress(*_PORT_ERRORS):  # the device may already be gone
                ser.close()

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
        reply = self.exchange(
            board, self.codec.encode_status(board), self.status_timeout_s,
            lambda r: isinstance(r, StatusReply) and r.board == board,
        )
        assert isinstance(reply, StatusReply)
        return {
            lock: (reply.locks >> (lock - 1)) & 1 == self.closed_bit for lock in self.codec.locks
        }

    def read_lock(self, address: LockAddress) -> bool:
        """One door: True when closed and latched. A single-lock read where the protocol has
        one (bs `80 bb ll 33`), else the board's status read."""
        self.codec.check(address)
        encode = self.codec.encode_read_lock
        if encode is None:
            return self.read_board(address.board)[address.lock]
        board, lock = address.board, address.lock
        reply = self.exchange(
            board, encode(board, lock), self.status_timeout_s,
            lambda r: isinstance(r, LockReply) and (r.board, r.lock) == (board, lock),
            expect="lock",
        )
        assert isinstance(reply, LockReply)
        return reply.bit == self.closed_bit

    def door_closed(self, address: LockAddress) -> bool | None:
        """read_lock, or None when the board gave no valid answer."""
        try:
            return self.read_lock(address)
        except (BoardTimeout, FrameError):
            return None

    def open_lock(self, address: LockAddress) -> OpenResult:
        """Release one lock: exactly one open frame, whatever happens (see unlock.py).

        Raises LockerUnavailable when nothing could be sent; board silence and bad frames end
        up in the result (outcome "unknown" when the lock may have released).
        """
        return open_lock(self, address)

    def exchange(
        self, board: int, request: bytes, timeout_s: float,
        accept: Callable[[Reply], bool] | None, expect: Expect = "board",
        silence_ok: bool = False,
    ) -> Reply | None:
        """Send `request` once and return the first reply `accept` takes.

        None when no reply is awaited (`accept` None), or when the board stayed silent and
        `silence_ok` says silence is normal here (it then does not count against the board).
        """
        with self._lock:
            ser = self._serial
            if ser is None:
                raise LockerUnavailable(f"{self.port} is not open")
            seen = _Exchange()
            stream = self.codec.reply_stream(expect)
            sent = False
            try:
                ser.reset_input_buffer()
                sent = True  # from here on the request may be on the wire
                ser.write(request)
                if accept is None:
                    return None
                reply = self._await_reply(ser, stream, timeout_s, accept, seen)
            except _PORT_ERRORS as exc:
                self._close_locked()
                raise LockerUnavailable(f"{self.port}: {cause(exc)}", sent=sent) from exc
        if reply is None and silence_ok and not (seen.bad_frames or seen.rejected):
            return None
        self._record(board, reply, seen)
        if reply is not None:
            return reply
        if seen.bad_frames or seen.rejected:
            raise FrameError(
                f"board {board}: no valid reply in {timeout_s:.2f}s "
                f"({seen.bad_frames} bad frames, {len(seen.rejected)} replies to something else)"
            )
        raise BoardTimeout(f"board {board}: no reply in {timeout_s:.2f}s")

    @staticmethod
    def _await_reply(
        ser: serial.Serial, stream: FrameStream[Reply], timeout_s: float,
        accept: Callable[[Reply], bool], seen: _Exchange,
    ) -> Reply | None:
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                data = ser.read(max(1, ser.in_waiting))
                if not data:
                    continue
                for reply in stream.feed(data):
                    if accept(reply):
                        return reply
                    seen.rejected.append(reply)  # valid, but from another board or request
            return None
        finally:
            seen.bad_frames = stream.bad_frames

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
