"""Lock-control boards of the parcel locker on an RS485 bus (see spec/LOCKBOARD.md).

`bs` and `kerong` are pure codecs, `bus.LockBus` moves their frames over a serial port, and
`locker.LockerService` polls the doors, reports door events and serves open requests.
"""

from __future__ import annotations

from agent.devices.lockboard import bs, kerong
from agent.devices.lockboard.frames import (
    BoardTimeout,
    FrameError,
    LockAddress,
    LockBoardError,
    LockCodec,
    LockerUnavailable,
)

PROTOCOLS: dict[str, LockCodec] = {"bs": bs.CODEC, "kerong": kerong.CODEC}


def codec_for(protocol: str) -> LockCodec:
    try:
        return PROTOCOLS[protocol]
    except KeyError:
        raise ValueError(f"unknown lock-board protocol {protocol!r} (bs | kerong)") from None


__all__ = [
    "PROTOCOLS",
    "BoardTimeout",
    "FrameError",
    "LockAddress",
    "LockBoardError",
    "LockCodec",
    "LockerUnavailable",
    "codec_for",
]
