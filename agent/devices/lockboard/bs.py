"""Codec of the generic 5-byte 0x8A/0x80 lock boards ("bs"), 9600 baud 8N1. No I/O.

Every frame is `CMD BOARD LOCK FN CHK` with CHK the XOR of the bytes before it, except the
status reply of a 24-channel board: `80 bb G3 G2 G1 33 CHK` (7 bytes), where G1 holds locks
1-8 (bit 0 = lock 1), G2 locks 9-16, G3 locks 17-24.

The answer to an open (`8A bb ll SS xx`) and to a single-lock read (`80 bb ll SS xx`) carry
the lock's state in SS: `11` for a set bit, `00` for a clear one. Which bit value means
"closed" depends on the lock's feedback switch, so the codec hands the bit over as is and the
bus reads it through `closed_bit`. With the common lock type (closed_bit = 1) the vendor
manual's example reads: send `8A 01 01 11 9B`; `8A 01 01 00 8A` = released, `8A 01 01 11 9B`
(the request echoed) = did not release.
"""

from __future__ import annotations

from functools import reduce

from agent.devices.lockboard.frames import (
    Expect,
    FrameError,
    FrameStream,
    LockCodec,
    LockReply,
    OpenReply,
    ProbeReply,
    Reply,
    Request,
    StatusReply,
)

OPEN, STATUS, PROBE = 0x8A, 0x80, 0x81
FN_OPEN, FN_STATUS, FN_PROBE = 0x11, 0x33, 0x99
STATE_SET, STATE_CLEAR = 0x11, 0x00  # SS of an open or single-lock reply: bit 1 / bit 0
BAUDRATE = 9600
BOARDS = range(1, 256)  # DIP-switch addresses; one bus carries at most 31 of them
LOCKS = range(1, 25)
REQUEST_LEN = 5
STATUS_REPLY_LEN = 7


def checksum(data: bytes | bytearray) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def _frame(*body: int) -> bytes:
    raw = bytes(body)
    return raw + bytes([checksum(raw)])


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} does not fit in a byte")
    return value


def _state(bit: int) -> int:
    if bit not in (0, 1):
        raise ValueError(f"a lock state bit is 0 or 1, not {bit}")
    return STATE_SET if bit else STATE_CLEAR


def encode_open(board: int, lock: int) -> bytes:
    return _frame(OPEN, _byte(board, "board"), _byte(lock, "lock"), FN_OPEN)


def encode_status(board: int) -> bytes:
    return _frame(STATUS, _byte(board, "board"), 0x00, FN_STATUS)


def encode_read_lock(board: int, lock: int) -> bytes:
    if lock == 0:
        raise ValueError("lock 0 would read the whole board")
    return _frame(STATUS, _byte(board, "board"), _byte(lock, "lock"), FN_STATUS)


def encode_probe(board: int) -> bytes:
    return _frame(PROBE, _byte(board, "board"), 0x01, FN_PROBE)


def encode_open_reply(board: int, lock: int, bit: int) -> bytes:
    """The board's answer to an open: the lock's state bit after the pulse."""
    return _frame(OPEN, board, lock, _state(bit))


def encode_lock_reply(board: int, lock: int, bit: int) -> bytes:
    return _frame(STATUS, board, lock, _state(bit))


def encode_status_reply(board: int, locks: int, items: int = 0) -> bytes:
    del items  # these boards have no item sensors
    if not 0 <= locks < 1 << 24:
        raise ValueError("a bs board reports 24 lock bits")
    g1, g2, g3 = locks & 0xFF, (locks >> 8) & 0xFF, (locks >> 16) & 0xFF
    return _frame(STATUS, board, g3, g2, g1, FN_STATUS)


def encode_probe_reply(board: int) -> bytes:
    return encode_probe(board)  # the board echoes the probe


def _check(frame: bytes, length: int) -> None:
    if len(frame) != length:
        raise FrameError(f"bs frame of {len(frame)} bytes, expected {length}: {frame.hex(' ')}")
    if checksum(frame[:-1]) != frame[-1]:
        raise FrameError(f"bs checksum mismatch: {frame.hex(' ')}")


def _state_bit(frame: bytes) -> int:
    if frame[3] not in (STATE_SET, STATE_CLEAR):
        raise FrameError(f"bs reply with lock state {frame[3]:#04x}: {frame.hex(' ')}")
    return 1 if frame[3] == STATE_SET else 0


def decode_reply(frame: bytes) -> Reply:
    """Decode one whole reply frame; FrameError unless length, checksum and fixed bytes hold.

    A status frame of 5 bytes is a single-lock answer, of 7 bytes a whole-board one.
    """
    if not frame:
        raise FrameError("empty bs frame")
    cmd = frame[0]
    if cmd == OPEN:
        _check(frame, REQUEST_LEN)
        return OpenReply(frame[1], frame[2], _state_bit(frame))
    if cmd == STATUS and len(frame) == REQUEST_LEN:
        _check(frame, REQUEST_LEN)
        if frame[2] == 0:
            raise FrameError(f"bs single-lock reply for lock 0: {frame.hex(' ')}")
        return LockReply(frame[1], frame[2], _state_bit(frame))
    if cmd == STATUS:
        _check(frame, STATUS_REPLY_LEN)
        if frame[5] != FN_STATUS:
            raise FrameError(f"bs status reply with function {frame[5]:#04x}")
        return StatusReply(frame[1], frame[4] | frame[3] << 8 | frame[2] << 16)
    if cmd == PROBE:
        _check(frame, REQUEST_LEN)
        if frame[2:4] != bytes([0x01, FN_PROBE]):
            raise FrameError(f"bs probe reply {frame.hex(' ')}")
        return ProbeReply(frame[1])
    raise FrameError(f"bs reply with command {cmd:#04x}")


def decode_request(frame: bytes) -> Request:
    if not frame:
        raise FrameError("empty bs frame")
    _check(frame, REQUEST_LEN)
    cmd, board, lock, fn = frame[0], frame[1], frame[2], frame[3]
    if cmd == OPEN and fn == FN_OPEN:
        return Request("open", board, lock)
    if cmd == STATUS and fn == FN_STATUS:
        return Request("status", board) if lock == 0 else Request("read_lock", board, lock)
    if cmd == PROBE and fn == FN_PROBE and lock == 1:
        return Request("probe", board)
    raise FrameError(f"bs request not understood: {frame.hex(' ')}")


def reply_stream(expect: Expect = "board") -> FrameStream[Reply]:
    status_len = STATUS_REPLY_LEN if expect == "board" else REQUEST_LEN
    lengths = {OPEN: REQUEST_LEN, STATUS: status_len, PROBE: REQUEST_LEN}
    return FrameStream(lambda buf: lengths.get(buf[0]), decode_reply)


def _request_length(buf: bytes | bytearray) -> int | None:
    return REQUEST_LEN if buf[0] in (OPEN, STATUS, PROBE) else None


def request_stream() -> FrameStream[tuple[bytes, Request]]:
    return FrameStream(_request_length, lambda frame: (frame, decode_request(frame)))


CODEC = LockCodec(
    name="bs",
    baudrate=BAUDRATE,
    boards=BOARDS,
    locks=LOCKS,
    open_replies=True,
    encode_open=encode_open,
    encode_status=encode_status,
    encode_open_reply=encode_open_reply,
    encode_status_reply=encode_status_reply,
    reply_stream=reply_stream,
    request_stream=request_stream,
    encode_read_lock=encode_read_lock,
    encode_lock_reply=encode_lock_reply,
)
