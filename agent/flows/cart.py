"""The flow thread: the one place where scans, door events and attendant actions are decided.

Everything that changes what the cart holds goes through one queue and one thread, so the
flows need no locks of their own and their order is the order things happened.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.devices.lockboard.locker import DoorEvent
from agent.devices.scanner.lines import ScanEvent
from agent.flows import intents, open_outcome
from agent.flows.context import CartContext
from agent.flows.doors import DoorWatch
from agent.flows.scan import ScanFlow
from agent.health import Health
from agent.store import StoreError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Call:
    fn: Callable[[], Any]
    future: Future[Any]


class Cart:
    """The supervised service running the flows; other threads talk to it through `submit`."""

    name = "flows"

    def __init__(self, ctx: CartContext, max_queue: int = 256) -> None:
        self.ctx = ctx
        self.health = Health("flows")
        self.scans = ScanFlow(ctx)
        self.doors = DoorWatch(ctx)
        self._queue: queue.Queue[object] = queue.Queue(max_queue)
        self._reconciled = False
        # An open the door has not confirmed by then (the board's answer was lost, or the
        # door did not spring) is recorded as unconfirmed; the attendant is told, nothing
        # reopens.
        self.unconfirmed_after_s = open_outcome.confirm_window_s(ctx.cfg.locker)

    # --- inputs, from any thread ------------------------------------------------------

    def scan(self, scan: ScanEvent) -> None:
        try:
            self._queue.put_nowait(scan)
        except queue.Full:
            log.error("flow queue full: scan dropped")
            self.ctx.say("refused", "busy", "busy")

    def door(self, event: DoorEvent) -> None:
        self._queue.put(event)

    def submit(self, fn: Callable[[], T], timeout_s: float = 10.0) -> T:
        """Run `fn` on the flow thread and return its result (or raise its exception)."""
        call = _Call(fn, Future())
        self._queue.put(call, timeout=timeout_s)
        result: T = call.future.result(timeout_s)
        return result

    # --- the thread --------------------------------------------------------------------

    def reconcile(self) -> None:
        """After a restart: intents never confirmed are interrupted, never replayed."""
        with self.ctx.store.write() as w:
            for intent in intents.active(self.ctx.store):
                if intent.state == "pending":
                    intents.set_state(w, intent.id, "interrupted")
                    w.append("locker.open_interrupted", {
                        "compartment": intent.compartment, "purpose": intent.purpose,
                        "tx_id": intent.tx_id, "label": intent.label})
                    log.warning("open of %s for %s was interrupted by a restart; not replayed",
                                intent.compartment, intent.purpose)
        self._reconciled = True

    def run(self, stop: threading.Event) -> None:
        if not self._reconciled:
            self.reconcile()
        self.health.set_ok()
        next_check = 0.0
        while not stop.is_set():
            try:
                item = self._queue.get(timeout=0.25)
            except queue.Empty:
                item = None
            if item is not None:
                self._handle(item)
            now = time.monotonic()
            if now >= next_check:
                next_check = now + 1.0
                self._housekeeping()

    def _housekeeping(self) -> None:
        try:
            self.scans.deposit.tick()
            self.doors.expire_unconfirmed(self.unconfirmed_after_s)
        except StoreError as exc:
            log.error("housekeeping could not record: %s", exc)

    def _handle(self, item: object) -> None:
        try:
            if isinstance(item, ScanEvent):
                self.scans.handle(item)
            elif isinstance(item, DoorEvent):
                self.doors.handle(item)
            elif isinstance(item, _Call):
                try:
                    item.future.set_result(item.fn())
                except Exception as exc:  # noqa: BLE001 - raised again in the caller's thread
                    item.future.set_exception(exc)
        except StoreError as exc:
            # The disk is full or failing: say so and keep serving; nothing committed is lost.
            self.health.set_error(str(exc))
            log.error("flow could not record: %s", exc)
            self.ctx.say("refused", "storage_full", "storage_full")
        except Exception:
            # One item, one failure: the flow thread goes on with the next scan or door event
            # instead of dying and coming back after a growing back-off.
            log.exception("flow item %s failed", type(item).__name__)
            if isinstance(item, ScanEvent):
                self.ctx.say("refused", "unreadable", "unreadable")
        else:
            if not self.health.ok:
                self.health.set_ok()
