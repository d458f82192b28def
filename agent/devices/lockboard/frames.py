"""Types shared by the lock-board codecs, the bus driver and the simulator.

Nothing here does I/O. `FrameStream` turns a byte stream that may hold garbage, torn frames
and frames that fail their checksum into whole, validated frames, resynchronising on the next
byte that can start one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar


@dataclass(frozen=True, order=True)
class LockAddress:
    """One compartment's lock: the board's bus address and the channel on that board."""

    board: int
    lock: int

    def __str__(self) -> str:
        return f"{self.board}:{self.lock}"


class LockBoardError(Exception):
    """Anything that went wrong talking to the lock boards."""


class BoardTimeout(LockBoardError):
    """The board stayed silent (absent, unpowered, or the bus is cut)."""


class FrameError(LockBoardError):
    """A frame with a bad length, checksum or echo, or a reply that answers something else."""


class LockerUnavailable(LockBoardError, ConnectionError):
    """The port is not open or the bus is down. `sent` is True when the port failed after the
    request was handed to it: the board may have acted on it."""

    def __init__(self, message: str, sent: bool = False) -> None:
        super().__init__(message)
        self.sent = sent


RequestKind = Literal["open", "status", "read_lock", "probe"]


@dataclass(frozen=True)
class Request:
    """A request as a board sees it (the simulator decodes these)."""

    kind: RequestKind
    board: int
    lock: int = 0


@dataclass(frozen=True)
class OpenReply:
    """The answer to an open: the lock's state bit *after* the pulse, as the board reports it
    (bs: `11` -> 1, `00` -> 0). Whether that means released is the bus's `closed_bit`."""

    board: int
    lock: int
    bit: int


@dataclass(frozen=True)
class LockReply:
    """The answer to a single-lock read: that lock's state bit (same polarity rule)."""

    board: int
    lock: int
    bit: int


@dataclass(frozen=True)
class UnlockEcho:
    """A kerong board that echoes the unlock request: an acknowledgement, not evidence."""

    board: int
    lock: int


@dataclass(frozen=True)
class StatusReply:
    """Raw lock bits of a board: bit (n - 1) is lock n, as the board reports it.

    Which bit value means closed is the bus's `closed_bit`, not the codec's business.
    """

    board: int
    locks: int
    items: int = 0  # kerong infrared item-present bits; 0 for boards without sensors


@dataclass(frozen=True)
class ProbeReply:
    board: int


Reply = OpenReply | LockReply | StatusReply | ProbeReply | UnlockEcho

# What a reply stream should expect after a status request starting with the same byte:
# bs answers a single-lock read in 5 bytes and a whole-board read in 7, and nothing in the
# bytes themselves tells the two apart, so the driver says which it asked for.
Expect = Literal["board", "lock"]

T = TypeVar("T")

# frame_length(buffer) -> None: buffer[0] cannot start a frame; 0: need more bytes to tell;
# n > 0: a frame starting at buffer[0] is n bytes long.
FrameLength = Callable[[bytes | bytearray], int | None]


class FrameStream(Generic[T]):
    """Incremental decoder: feed it whatever the port returned, get whole parsed frames.

    A candidate frame that fails `parse` (checksum, fixed bytes) is not trusted to have had the
    right length either, so only its first byte is dropped and the scan goes on from the next
    byte: a real frame hidden behind a stray start byte is still found.
    """

    def __init__(self, frame_length: FrameLength, parse: Callable[[bytes], T]) -> None:
        self._frame_length = frame_length
        self._parse = parse
        self._buf = bytearray()
        self.discarded = 0  # bytes thrown away while resynchronising
        self.bad_frames = 0  # candidates with a start byte and a length that failed to parse

    def feed(self, data: bytes) -> list[T]:
        self._buf += data
        out: list[T] = []
        buf = self._buf
        while buf:
            length = self._frame_length(buf)
            if length is None:
                self._drop_until_start(buf)
                continue
            if length == 0 or len(buf) < length:
                break
            frame = bytes(buf[:length])
            try:
                item = self._parse(frame)
            except FrameError:
                self.bad_frames += 1
                del buf[:1]
                self.discarded += 1
                continue
            del buf[:length]
            out.append(item)
        return out

    def _drop_until_start(self, buf: bytearray) -> None:
        # Drop the byte that cannot start a frame and every following one that cannot either.
        n = 1
        while n < len(buf) and self._frame_length(buf[n : n + 1]) is None:
            n += 1
        del buf[:n]
        self.discarded += n

    def clear(self) -> None:
        self._buf.clear()

    @property
    def pending(self) -> bytes:
        return bytes(self._buf)


@dataclass(frozen=True)
class LockCodec:
    """What the bus driver and the simulator need to know about one protocol family."""

    name: str
    baudrate: int
    boards: range
    locks: range
    open_replies: bool  # kerong boards do not answer an unlock: status tells whether it released
    encode_open: Callable[[int, int], bytes]
    encode_status: Callable[[int], bytes]
    encode_open_reply: Callable[[int, int, int], bytes]  # board, lock, state bit after pulse
    encode_status_reply: Callable[[int, int, int], bytes]  # board, lock bits, item bits
    reply_stream: Callable[[Expect], FrameStream[Reply]]
    request_stream: Callable[[], FrameStream[tuple[bytes, Request]]]
    # Single-lock read and its answer; None where the protocol has none (kerong).
    encode_read_lock: Callable[[int, int], bytes] | None = None
    encode_lock_reply: Callable[[int, int, int], bytes] | None = None

    def check(self, address: LockAddress) -> None:
        if address.board not in self.boards or address.lock not in self.locks:
            raise ValueError(
                f"{self.name} lock address out of range: board {address.board} "
                f"({self.boards.start}..{self.boards.stop - 1}), lock {address.lock} "
                f"({self.locks.start}..{self.locks.stop - 1})"
            )
