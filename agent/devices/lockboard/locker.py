"""The locker as a supervised service: the one thread that owns the lock-board bus.

It polls every board that has a compartment, turns changes of door state into `DoorEvent`s and
executes open requests queued from other threads between two board reads, so an open never
waits for more than one status exchange. It never opens anything by itself: after a
(re)connect the first reading of each door is an "initial" event, not an alarm.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from agent.devices.lockboard import codec_for
from agent.devices.lockboard.bus import LockBus
from agent.devices.lockboard.frames import BoardTimeout, FrameError, LockAddress, LockerUnavailable
from agent.devices.lockboard.unlock import OpenResult
from agent.health import Health

log = logging.getLogger(__name__)

STOP_CHECK_S = 0.1  # longest the idle loop goes without looking at the stop flag


@dataclass(frozen=True)
class DoorEvent:
    address: LockAddress
    kind: str  # initial | opened | forced_open | closed | left_open
    closed: bool
    at: float  # time.time()


@dataclass(frozen=True)
class _OpenRequest:
    address: LockAddress
    future: Future[OpenResult]


class LockerService:
    """Supervised owner of the bus. `on_event` is called on the bus thread: keep it short
    (record or queue the event), since the doors are not polled while it runs."""

    name = "locker"

    def __init__(
        self,
        port: str,
        protocol: str,
        baudrate: int,
        closed_bit: int,
        addresses: list[LockAddress],
        on_event: Callable[[DoorEvent], None],
        poll_interval_s: float = 1.0,
        open_timeout_s: float = 1.5,
        status_timeout_s: float = 0.5,
        left_open_after_s: float = 120.0,
        command_window_s: float = 10.0,
    ) -> None:
        self._codec = codec_for(protocol)
        for address in addresses:
            self._codec.check(address)
        self._new_bus = functools.partial(
            LockBus, port, protocol, baudrate, closed_bit, open_timeout_s, status_timeout_s
        )
        self.on_event = on_event
        self.poll_interval_s = poll_interval_s
        self.left_open_after_s = left_open_after_s
        # A door seen open this soon after our open command for it was opened by us.
        self.command_window_s = command_window_s
        self.health = Health(self.name)
        self._by_board: dict[int, list[LockAddress]] = {}
        for address in sorted(set(addresses)):
            self._by_board.setdefault(address.board, []).append(address)
        self._requests: queue.Queue[_OpenRequest] = queue.Queue()
        self._wake = threading.Event()
        self._running = threading.Event()
        self._state_lock = threading.Lock()
        self._states: dict[LockAddress, bool | None] = dict.fromkeys(sorted(set(addresses)))
        # Only the bus thread touches these.
        self._known: dict[LockAddress, bool] = {}
        self._open_since: dict[LockAddress, float] = {}
        self._left_open_sent: set[LockAddress] = set()
        self._commanded: dict[LockAddress, float] = {}

    # -- any thread ------------------------------------------------------------------------

    def open(self, address: LockAddress, timeout_s: float = 5.0) -> OpenResult:
        """Open one lock through the bus thread; LockerUnavailable if the bus is not serving.

        A request not yet started when `timeout_s` runs out is withdrawn (it will never run);
        one already on the wire is waited for, since its outcome is what the caller must record.
        """
        self._codec.check(address)
        if not self._running.is_set():
            raise LockerUnavailable("locker bus is not running")
        future: Future[OpenResult] = Future()
        self._requests.put(_OpenRequest(address, future))
        self._wake.set()
        try:
            return future.result(timeout_s)
        except TimeoutError:
            if future.cancel():
                raise LockerUnavailable(
                    f"open of {address} not served within {timeout_s:.1f}s"
                ) from None
            return future.result()

    def door_states(self) -> dict[LockAddress, bool | None]:
        with self._state_lock:
            return dict(self._states)

    # -- the bus thread --------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        bus = self._new_bus()
        bus.open()
        self._known.clear()
        self._open_since.clear()
        self._left_open_sent.clear()
        self._running.set()
        try:
            next_poll = time.monotonic()
            while not stop.is_set():
                self._wake.clear()
                self._serve_opens(bus)
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_interval_s
                    self._poll(bus, stop)
                    continue  # serve opens that came in during the poll before sleeping
                self._wake.wait(min(STOP_CHECK_S, max(0.0, next_poll - time.monotonic())))
        finally:
            self._running.clear()
            bus.close()
            self._fail_pending(LockerUnavailable("locker bus stopped"))
            with self._state_lock:
                self._states = dict.fromkeys(self._states)

    def _serve_opens(self, bus: LockBus) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if not request.future.set_running_or_notify_cancel():
                continue  # the caller gave up before it started: it must never run
            self._commanded[request.address] = time.monotonic()
            try:
                result = bus.open_lock(request.address)
            except Exception as exc:  # hand it to the caller, then let the loop fail
                request.future.set_exception(exc)
                raise
            request.future.set_result(result)
            log.info("open %s: %s", request.address, result)
            if result.door_open is not None:
                self._observe(request.address, not result.door_open, time.monotonic())

    def _poll(self, bus: LockBus, stop: threading.Event) -> None:
        answered = 0
        for board, addresses in self._by_board.items():
            if stop.is_set():
                return
            self._serve_opens(bus)  # opens go before polls
            try:
                doors = bus.read_board(board)
            except (BoardTimeout, FrameError):
                with self._state_lock:
                    self._states.update(dict.fromkeys(addresses))
                continue
            answered += 1
            now = time.monotonic()
            for address in addresses:
                self._observe(address, doors[address.lock], now)
        boards = bus.board_health()
        if answered:
            if self.health.set_ok(boards=boards):
                log.info("locker: %d of %d boards answer", answered, len(self._by_board))
        elif self.health.set_error("no lock board answers", boards=boards):
            log.warning("locker: no lock board answers")

    def _observe(self, address: LockAddress, closed: bool, now: float) -> None:
        prev = self._known.get(address)
        self._known[address] = closed
        with self._state_lock:
            self._states[address] = closed
        kind: str | None = None
        if closed:
            self._open_since.pop(address, None)
            if prev is None:
                kind = "initial"
            elif prev is False:
                kind = "closed"
        elif prev is not False:  # newly open, or first seen open
            self._open_since[address] = now
            self._left_open_sent.discard(address)
            commanded = self._commanded.pop(address, None)
            if commanded is not None and now - commanded <= self.command_window_s:
                kind = "opened"
            else:
                kind = "initial" if prev is None else "forced_open"
        elif (
            address not in self._left_open_sent
            and now - self._open_since.get(address, now) >= self.left_open_after_s
        ):
            self._left_open_sent.add(address)
            kind = "left_open"
        if kind is not None:
            self._emit(DoorEvent(address, kind, closed, time.time()))

    def _emit(self, event: DoorEvent) -> None:
        try:
            self.on_event(event)
        except Exception:  # a bug in a flow must not stop the doors being watched
            log.exception("locker event handler failed on %s", event)

    def _fail_pending(self, error: LockerUnavailable) -> None:
        while True:
            try:
                request = self._requests.get_nowait()
            except queue.Empty:
                return
            if request.future.set_running_or_notify_cancel():
                request.future.set_exception(error)
