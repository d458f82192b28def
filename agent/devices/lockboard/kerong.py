"""Codec of KERONG KR-CU16 lock boards, 19200 baud 8N1. No I/O.

Request `02 ADDR CMD 03 SUM`, SUM = byte sum of the four bytes before it mod 256, with
`ADDR = (board << 4) | (lock - 1)`: boards 0-15, locks 1-16. Status (CMD 30, ADDR = board << 4)
is answered by `02 ADDR 35 L1 L2 I1 I2 03 SUM`, L1/L2 the lock bits of locks 1-8 / 9-16
(bit 0 = lock 1), I1/I2 the infrared item-present bits.

An unlock (CMD 31) has no defined answer, and boards in the field differ: most stay silent,
some echo the unlock frame, some send a status frame. The stream knows all three: an echo
decodes as `UnlockEcho` (an acknowledgement that says nothing about the lock), a status frame
as a `StatusReply` like any other.
"""

from __future__ import annotations

from agent.devices.lockboard.frames import (
    Expect,
    FrameError,
    FrameStream,
    LockCodec,
    Reply,
    Request,
    StatusReply,
    UnlockEcho,
)

STX, ETX = 0x02, 0x03
UNLOCK, STATUS, STATUS_REPLY = 0x31, 0x30, 0x35
BAUDRATE = 19200
BOARDS = range(16)
LOCKS = range(1, 17)
REQUEST_LEN = 5
STATUS_REPLY_LEN = 9


def checksum(data: bytes | bytearray) -> int:
    return sum(data) & 0xFF


def _frame(*body: int) -> bytes:
    raw = bytes(body)
    return raw + bytes([checksum(raw)])


def address(board: int, lock: int) -> int:
    if board not in BOARDS or lock not in LOCKS:
        raise ValueError(f"kerong address out of range: board {board} (0..15), lock {lock} (1..16)")
    return board << 4 | (lock - 1)


def encode_open(board: int, lock: int) -> bytes:
    return _frame(STX, address(board, lock), UNLOCK, ETX)


def encode_status(board: int) -> bytes:
    return _frame(STX, address(board, 1), STATUS, ETX)


def encode_open_reply(board: int, lock: int, bit: int) -> bytes:
    del board, lock, bit
    return b""  # the usual board stays silent after an unlock


def encode_unlock_echo(board: int, lock: int) -> bytes:
    return encode_open(board, lock)  # what an echoing board sends back


def encode_status_reply(board: int, locks: int, items: int = 0) -> bytes:
    if not (0 <= locks < 1 << 16 and 0 <= items < 1 << 16):
        raise ValueError("a kerong board reports 16 lock bits and 16 item bits")
    return _frame(
        STX, address(board, 1), STATUS_REPLY,
        locks & 0xFF, locks >> 8, items & 0xFF, items >> 8, ETX,
    )


def _check(frame: bytes, length: int) -> None:
    if len(frame) != length:
        raise FrameError(f"kerong frame of {len(frame)} bytes, expected {length}: {frame.hex(' ')}")
    if frame[0] != STX or frame[-2] != ETX:
        raise FrameError(f"kerong frame without STX/ETX: {frame.hex(' ')}")
    if checksum(frame[:-1]) != frame[-1]:
        raise FrameError(f"kerong checksum mismatch: {frame.hex(' ')}")


def decode_reply(frame: bytes) -> Reply:
    if len(frame) == REQUEST_LEN and frame[2:3] == bytes([UNLOCK]):
        _check(frame, REQUEST_LEN)
        return UnlockEcho(frame[1] >> 4, (frame[1] & 0x0F) + 1)
    _check(frame, STATUS_REPLY_LEN)
    addr, cmd = frame[1], frame[2]
    if cmd != STATUS_REPLY:
        raise FrameError(f"kerong reply with command {cmd:#04x}")
    if addr & 0x0F:
        raise FrameError(f"kerong status reply with lock bits in its address {addr:#04x}")
    return StatusReply(addr >> 4, frame[3] | frame[4] << 8, frame[5] | frame[6] << 8)


def decode_request(frame: bytes) -> Request:
    _check(frame, REQUEST_LEN)
    addr, cmd = frame[1], frame[2]
    board, lock = addr >> 4, (addr & 0x0F) + 1
    if cmd == UNLOCK:
        return Request("open", board, lock)
    if cmd == STATUS and lock == 1:
        return Request("status", board)
    raise FrameError(f"kerong request not understood: {frame.hex(' ')}")


def _reply_length(buf: bytes | bytearray) -> int | None:
    if buf[0] != STX:
        return None
    if len(buf) < 3:
        return 0
    return {STATUS_REPLY: STATUS_REPLY_LEN, UNLOCK: REQUEST_LEN}.get(buf[2])


def _request_length(buf: bytes | bytearray) -> int | None:
    if buf[0] != STX:
        return None
    if len(buf) < 3:
        return 0
    return REQUEST_LEN if buf[2] in (UNLOCK, STATUS) else None


def reply_stream(expect: Expect = "board") -> FrameStream[Reply]:
    del expect  # kerong has one status answer
    return FrameStream(_reply_length, decode_reply)


def request_stream() -> FrameStream[tuple[bytes, Request]]:
    return FrameStream(_request_length, lambda frame: (frame, decode_request(frame)))


CODEC = LockCodec(
    name="kerong",
    baudrate=BAUDRATE,
    boards=BOARDS,
    locks=LOCKS,
    open_replies=False,
    encode_open=encode_open,
    encode_status=encode_status,
    encode_open_reply=encode_open_reply,
    encode_status_reply=encode_status_reply,
    reply_stream=reply_stream,
    request_stream=request_stream,
)
