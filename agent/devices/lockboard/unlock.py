"""Opening one lock: exactly one open frame per call, and an honest outcome.

A lock that released cannot be un-released, so the open frame is never sent a second time:
not after a timeout, not after a garbled reply, not after the port failed mid-exchange. A
board that released but whose answer was lost (or mangled on the line) would otherwise
release again, and a door that someone leans on could be reported as "did not open" while
it is unlocked. So the outcome is one of:

- released: the board said so (bs, through `closed_bit`), or the door was seen open;
- not_released: the board said the lock is still closed after the pulse (bs only);
- unknown: one frame went out and nothing trustworthy came back, and the door does not (yet)
  read open. The caller watches the door for a while and records what it then sees.

kerong boards never confirm an unlock: the driver waits briefly for whatever the board sends
back (nothing, an echo of the unlock, or a status frame: all three are seen in the field),
then reads the door until it opens or the open timeout passes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from agent.devices.lockboard.frames import (
    BoardTimeout,
    Expect,
    FrameError,
    LockAddress,
    LockCodec,
    LockerUnavailable,
    OpenReply,
    Reply,
    StatusReply,
    UnlockEcho,
)


class LockBus(Protocol):
    """The bus as an opening uses it (bus.LockBus): one exchange at a time, door reads."""

    codec: LockCodec
    closed_bit: int
    open_timeout_s: float
    status_timeout_s: float
    unlock_answers: dict[int, bool]

    def exchange(self, board: int, request: bytes, timeout_s: float,
                 accept: Callable[[Reply], bool] | None, expect: Expect = "board",
                 silence_ok: bool = False) -> Reply | None: ...

    def door_closed(self, address: LockAddress) -> bool | None: ...

Outcome = Literal["released", "not_released", "unknown"]
RELEASED: Outcome = "released"
NOT_RELEASED: Outcome = "not_released"
UNKNOWN: Outcome = "unknown"

DOOR_POLL_GAP_S = 0.05  # between door reads while waiting for a kerong door to spring
# How long to listen for a kerong board's answer to an unlock before polling: 9 bytes at
# 19200 baud take 5 ms, and boards that answer do so within a few tens of ms.
UNLOCK_LISTEN_S = 0.1


@dataclass(frozen=True)
class OpenResult:
    address: LockAddress
    outcome: Outcome
    door_open: bool | None  # door state read after the command; None when not read or unknown
    error: str | None  # why the outcome is not "released"
    note: str | None = None  # what else happened (a lost answer, an echo)
    reply_lost: bool = False  # released, but known from the door: the board's answer was lost

    @property
    def released(self) -> bool:
        return self.outcome == RELEASED


def open_lock(bus: LockBus, address: LockAddress) -> OpenResult:
    bus.codec.check(address)
    if bus.codec.open_replies:
        return _open_with_reply(bus, address)
    return _open_then_watch(bus, address)


def _sent_then_failed(address: LockAddress, exc: LockerUnavailable) -> OpenResult:
    if not exc.sent:
        raise exc
    return OpenResult(address, UNKNOWN, None,
                      f"the port failed after the open frame went out ({exc}); not sent again")


def _open_with_reply(bus: LockBus, address: LockAddress) -> OpenResult:
    board, lock = address.board, address.lock
    try:
        reply = bus.exchange(
            board, bus.codec.encode_open(board, lock), bus.open_timeout_s,
            lambda r: isinstance(r, OpenReply) and (r.board, r.lock) == (board, lock),
        )
    except (BoardTimeout, FrameError) as exc:
        return _after_lost_reply(bus, address, f"no valid answer to the open ({exc})")
    except LockerUnavailable as exc:
        return _sent_then_failed(address, exc)
    assert isinstance(reply, OpenReply)
    if reply.bit == bus.closed_bit:
        # The door is not read here either way: it springs open some time after the
        # release, and the poller reports it.
        return OpenResult(address, NOT_RELEASED, None,
                          "the board reports the lock still closed after the pulse")
    return OpenResult(address, RELEASED, None, None)


def _after_lost_reply(bus: LockBus, address: LockAddress, why: str) -> OpenResult:
    """The frame went out, the answer did not come back: the door is the only evidence left."""
    try:
        closed = bus.door_closed(address)
    except LockerUnavailable as exc:
        return OpenResult(address, UNKNOWN, None, f"{why}; the door could not be read ({exc})")
    if closed is False:
        return OpenResult(address, RELEASED, True, None, note=f"{why}; the door reads open",
                          reply_lost=True)
    door = "the door still reads closed" if closed else "the door state is unknown"
    return OpenResult(address, UNKNOWN, None if closed is None else False,
                      f"{why}; {door}; not sent again")


def _open_then_watch(bus: LockBus, address: LockAddress) -> OpenResult:
    board, lock = address.board, address.lock

    def answers_unlock(r: Reply) -> bool:
        return (isinstance(r, UnlockEcho) and (r.board, r.lock) == (board, lock)) or (
            isinstance(r, StatusReply) and r.board == board)

    note = None
    closed: bool | None = None
    # Listen before polling: a board that answers an unlock must finish before the bus is
    # ours again (half duplex). Silence is the usual answer: a board that stayed silent once
    # is not waited for again (its firmware does not change), so only the first unlock pays.
    listen = bus.unlock_answers.get(board, True)
    try:
        answer = bus.exchange(board, bus.codec.encode_open(board, lock),
                              min(bus.status_timeout_s, UNLOCK_LISTEN_S),
                              answers_unlock if listen else None, silence_ok=True)
    except FrameError as exc:
        answer, note = None, f"a garbled answer to the unlock was ignored ({exc})"
        bus.unlock_answers[board] = True
    except LockerUnavailable as exc:
        return _sent_then_failed(address, exc)
    else:
        if listen:
            bus.unlock_answers[board] = answer is not None
    if isinstance(answer, UnlockEcho):
        note = "the board echoed the unlock"
    elif isinstance(answer, StatusReply):
        closed = (answer.locks >> (lock - 1)) & 1 == bus.closed_bit
        note = "the board answered the unlock with its status"
    deadline = time.monotonic() + bus.open_timeout_s
    try:
        while closed is not False and time.monotonic() < deadline:
            reading = bus.door_closed(address)
            if reading is not None:
                closed = reading
            if closed is not False and time.monotonic() + DOOR_POLL_GAP_S < deadline:
                time.sleep(DOOR_POLL_GAP_S)
    except LockerUnavailable as exc:
        return OpenResult(address, UNKNOWN, None,
                          f"the door could not be read after the unlock ({exc}); not sent again",
                          note)
    if closed is False:
        return OpenResult(address, RELEASED, True, None, note)
    if closed is None:
        return OpenResult(address, UNKNOWN, None,
                          "the board did not answer a status read after the unlock; "
                          "not sent again", note)
    return OpenResult(address, UNKNOWN, False,
                      f"the door still reads closed {bus.open_timeout_s:.1f} s after the "
                      "unlock; not sent again", note)
