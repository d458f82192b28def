"""A bus of lock boards behind a pty, speaking the real bs or kerong bytes.

The boards answer as their vendors document: a bs board answers an open with the lock's state
after the pulse and a single-lock read with that lock's state, both through the same polarity
as its status bits (`closed_bit`); a kerong board answers an unlock with nothing, an echo or a
status frame (`kerong_unlock_answer`), as boards in the field do.

Doors spring open when their lock releases (after `spring_delay_s`, or never) and stay open
until the test closes them. Faults a real bus shows are switches: a silent board, a stuck
lock, slow replies, line noise, a reply with a flipped bit or from the wrong address, a reply
lost, cut short or garbled (`fault_next_reply`), a pulled cable. `frames` logs every valid
request with its arrival time, `received` every byte that arrived, and `open_count` how often
each lock really released, so tests assert what reached the boards, not what the driver
believes it sent.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Literal

from agent.devices.lockboard import bs, codec_for
from agent.devices.lockboard.frames import LockAddress, Request
from agent.devices.sim.pty import PtyPort

# Which byte corrupt_next_reply() flips: one that carries door state (bs status G1, kerong L1;
# for a bs open reply the lock number), so a driver that skipped the checksum would misread it.
_CORRUPT_BYTE = {"bs": -3, "kerong": 3}

Fault = Literal["drop", "truncate", "flip", "noise", "unplug"]
KerongUnlockAnswer = Literal["silence", "echo", "status"]


class LockBusSimulator:
    def __init__(
        self,
        link_path: str | Path,
        protocol: str = "bs",
        boards: dict[int, int] | None = None,
        closed_bit: int = 1,
    ) -> None:
        self.codec = codec_for(protocol)
        channels = len(self.codec.locks)
        self.boards = dict(boards) if boards is not None else {1: channels, 2: channels}
        for board, count in self.boards.items():
            if board not in self.codec.boards or not 1 <= count <= channels:
                raise ValueError(f"{protocol} board {board} with {count} locks is not possible")
        self.closed_bit = closed_bit
        self.port = PtyPort(link_path)
        self.frames: list[tuple[float, bytes]] = []
        self.received = bytearray()  # every byte the driver sent, valid or not
        self.sent = bytearray()  # every byte the boards sent back
        self._lock = threading.Lock()
        self._closed = {
            LockAddress(b, lock): True for b, n in self.boards.items() for lock in range(1, n + 1)
        }
        self._released: Counter[LockAddress] = Counter()
        self._springs: dict[LockAddress, float] = {}  # released doors not yet sprung: when
        self.spring_delay_s: float | None = 0.0  # None: a released door never springs
        self.kerong_unlock_answer: KerongUnlockAnswer = "silence"
        self._faults: list[tuple[Fault, int, str | None]] = []
        self._stuck: set[LockAddress] = set()
        self._absent: set[int] = set()
        self._delay_s = 0.0
        self._delay_only: str | None = None
        self._garbage = bytearray()
        self._corrupt_next = False
        self._misaddress_next: int | None = None
        self._stream = self.codec.request_stream()  # only the serving thread touches it
        self._drop_partial = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return self.port.path

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> LockBusSimulator:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._serve, name="sim-lockbus", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        self.port.unplug()

    def __enter__(self) -> LockBusSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def unplug(self) -> None:
        self.port.unplug()
        self._drop_partial.set()  # a torn request does not survive the cable being pulled

    def replug(self) -> None:
        self.port.replug()

    # -- the world around the boards -------------------------------------------------------

    def close_door(self, address: LockAddress) -> None:
        with self._lock:
            self._closed[self._known(address)] = True

    def force_open(self, address: LockAddress) -> None:
        """The door opens without a release (by hand, with a crowbar)."""
        with self._lock:
            self._closed[self._known(address)] = False

    def door_closed(self, address: LockAddress) -> bool:
        with self._lock:
            self._spring(time.monotonic())
            return self._closed[self._known(address)]

    def set_spring_delay(self, seconds: float | None) -> None:
        """A released door opens this long after the pulse (a slow spring, a door someone
        leans on); None: it never springs and reads closed until someone pulls it."""
        with self._lock:
            self.spring_delay_s = seconds

    def open_frames_received(self, address: LockAddress) -> int:
        """How often the exact open frame for this lock appears in the raw bytes received."""
        frame = self.codec.encode_open(address.board, address.lock)
        with self._lock:
            return bytes(self.received).count(frame)

    def open_count(self, address: LockAddress) -> int:
        with self._lock:
            return self._released[address]

    def opens_received(self, address: LockAddress) -> int:
        """How many valid open requests for this lock reached the bus (released or not)."""
        request = self.codec.encode_open(address.board, address.lock)
        with self._lock:
            return sum(1 for _, frame in self.frames if frame == request)

    # -- faults ----------------------------------------------------------------------------

    def set_absent(self, board: int, absent: bool = True) -> None:
        with self._lock:
            (self._absent.add if absent else self._absent.discard)(board)

    def set_stuck(self, address: LockAddress, stuck: bool = True) -> None:
        with self._lock:
            (self._stuck.add if stuck else self._stuck.discard)(self._known(address))

    def set_reply_delay(self, seconds: float, only: str | None = None) -> None:
        """Delay replies (all, or only those to "open" or "status" requests)."""
        with self._lock:
            self._delay_s, self._delay_only = seconds, only

    def inject_garbage(self, data: bytes) -> None:
        """Line noise sent just before the next reply."""
        with self._lock:
            self._garbage += data

    def corrupt_next_reply(self) -> None:
        with self._lock:
            self._corrupt_next = True

    def fault_next_reply(self, fault: Fault, arg: int = 0, only: str | None = None) -> None:
        """The next reply (to a request of kind `only`, if given) is lost ("drop"), cut to its
        first `arg` bytes ("truncate"), has bit 0 of byte `arg` flipped ("flip") or is replaced
        by as many bytes of noise ("noise"), or the cable is pulled instead ("unplug", after
        the board acted on the request). Queued faults apply in order."""
        with self._lock:
            self._faults.append((fault, arg, only))

    def misaddress_next_reply(self, board: int) -> None:
        """The next reply comes back well formed but stamped with another board's address."""
        with self._lock:
            self._misaddress_next = board

    # -- the boards ------------------------------------------------------------------------

    def _known(self, address: LockAddress) -> LockAddress:
        if address not in self._closed:
            raise KeyError(f"no lock {address} on the simulated bus")
        return address

    def _serve(self) -> None:
        while not self._stop.is_set():
            data = self.port.read(4096, 0.05)
            if self._drop_partial.is_set():
                self._drop_partial.clear()
                self._stream.clear()
            if not data:
                continue
            arrived = time.monotonic()
            with self._lock:
                self.received += data
            for raw, request in self._stream.feed(data):
                with self._lock:
                    self.frames.append((arrived, raw))
                    self._spring(arrived)
                    reply, delay = self._answer(request)
                    if reply is not None:
                        reply = self._fault(reply, request.kind)
                if reply is None:
                    continue
                if delay and self._stop.wait(delay):
                    return
                with self._lock:
                    out = bytes(self._garbage) + self._mangle(reply)
                    self._garbage.clear()
                    self.sent += out
                self.port.write(out)

    def _answer(self, request: Request) -> tuple[bytes | None, float]:
        board = request.board
        if board not in self.boards or board in self._absent:
            return None, 0.0
        stamp = board if self._misaddress_next is None else self._misaddress_next
        reply: bytes | None
        if request.kind == "open":
            address = LockAddress(board, request.lock)
            if address not in self._closed:
                return None, 0.0
            released = address not in self._stuck
            if released:
                self._released[address] += 1
                if self._closed[address]:
                    self._release(address)
            reply = self._open_answer(stamp, request.lock, released)
        elif request.kind == "read_lock":
            address = LockAddress(board, request.lock)
            encode = self.codec.encode_lock_reply
            if address not in self._closed or encode is None:
                return None, 0.0
            reply = encode(stamp, request.lock, self._bit(self._closed[address]))
        elif request.kind == "status":
            reply = self.codec.encode_status_reply(stamp, self._lock_bits(board), 0)
        else:  # probe: only bs has it, and the board echoes it
            reply = bs.encode_probe_reply(stamp)
        if reply is None:  # kerong unlock: silence, and the misaddressing waits for a reply
            return None, 0.0
        self._misaddress_next = None
        delay = self._delay_s if self._delay_only in (None, request.kind) else 0.0
        return reply, delay

    def _open_answer(self, stamp: int, lock: int, released: bool) -> bytes | None:
        if self.codec.open_replies:
            # bs: the lock's state after the pulse, read through the same polarity as status:
            # released reads as an open lock even while the door has not sprung yet.
            return self.codec.encode_open_reply(stamp, lock, self._bit(not released))
        if self.kerong_unlock_answer == "echo":
            return self.codec.encode_open(stamp, lock)
        if self.kerong_unlock_answer == "status":
            return self.codec.encode_status_reply(stamp, self._lock_bits(stamp), 0)
        return None

    def _release(self, address: LockAddress) -> None:
        if self.spring_delay_s is None:
            return  # unlocked, but nothing pushes the door: it still reads closed
        self._springs[address] = time.monotonic() + self.spring_delay_s
        self._spring(time.monotonic())

    def _spring(self, now: float) -> None:
        for address, due in list(self._springs.items()):
            if now >= due:
                del self._springs[address]
                self._closed[address] = False  # the door's spring pushes it open

    def _bit(self, closed: bool) -> int:
        return self.closed_bit if closed else 1 - self.closed_bit

    def _fault(self, reply: bytes, kind: str) -> bytes | None:
        index = next((i for i, (_, _, only) in enumerate(self._faults)
                      if only is None or only == kind), None)
        if index is None:
            return reply
        fault, arg, _ = self._faults.pop(index)
        if fault == "drop":
            return None
        if fault == "unplug":
            self.unplug()
            return None
        if fault == "truncate":
            return reply[:arg] or None
        if fault == "flip":
            frame = bytearray(reply)
            frame[arg % len(frame)] ^= 0x01
            return bytes(frame)
        return bytes((0x55 + 7 * i) & 0x7F for i in range(len(reply)))  # noise, no start byte

    def _lock_bits(self, board: int) -> int:
        bits = 0
        for lock in range(1, self.boards.get(board, 0) + 1):
            if self._bit(self._closed[LockAddress(board, lock)]) == 1:
                bits |= 1 << (lock - 1)
        return bits

    def _mangle(self, reply: bytes) -> bytes:
        if not self._corrupt_next:
            return reply
        self._corrupt_next = False
        frame = bytearray(reply)
        frame[_CORRUPT_BYTE[self.codec.name]] ^= 0x01
        return bytes(frame)

