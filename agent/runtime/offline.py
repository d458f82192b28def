"""The cart for one maintenance command when no daemon runs (agent.ports.LocalCart).

A door opened this way goes through the same flow objects the daemon builds, on the store and
the lock bus: the open intent and `locker.open` are committed first, one open frame is sent,
and an answer that was lost is decided by the door, exactly as for any other opening. The
control socket is tried first (agent/admin/maintenance.py): two processes never drive one bus.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from agent.backoff import Backoff
from agent.clock import TrustedClock
from agent.clock import evidence as clock_evidence
from agent.config import AgentConfig
from agent.devices.lockboard.frames import LockerUnavailable
from agent.devices.lockboard.locker import DoorEvent
from agent.devices.protocols import Scanner
from agent.devices.scanner.lines import ScanEvent
from agent.flows import open_outcome
from agent.flows.actions import ActionError, Actions
from agent.flows.cart import Cart
from agent.flows.compartments import Compartments
from agent.flows.context import CartContext
from agent.flows.feedback import FeedbackBus
from agent.runtime.supervisor import Supervisor
from agent.runtime.wiring import build_locker, build_printer, build_scanner
from agent.store import Store, StoreError

log = logging.getLogger(__name__)
READY_S = 5.0   # for the locker to open its port and read the doors once
SETTLED = ("released", "done", "failed", "unconfirmed", "interrupted")


class OfflineCart:
    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg

    @contextmanager
    def _flows(self) -> Iterator[tuple[Actions, Store]]:
        """The store, the flow thread and the locker, running under a supervisor."""
        cfg = self.cfg
        store = Store(cfg.db_path, cfg.cart_id)
        # Dated as the daemon would date them: by the trusted clock on the store's evidence.
        trusted = TrustedClock(cfg.clock.max_skew_s,
                               persist=clock_evidence.keeper(store, StoreError))
        clock_evidence.load(trusted, store)
        store.use_clock(trusted)
        supervisor = Supervisor(Backoff(initial_s=0.2, maximum_s=1.0))
        cart: Cart | None = None

        def on_door(event: DoorEvent) -> None:
            if cart is not None:
                cart.door(event)

        try:
            locker = build_locker(cfg, on_door)
            if locker is None:
                raise ActionError("no locker configured")
            Compartments(store).sync_from_config(list(cfg.locker.compartments))
            cart = Cart(CartContext(cfg=cfg, store=store, locker=locker,
                                    feedback=FeedbackBus(), clock=trusted, trusted=trusted))
            supervisor.start(cart)
            supervisor.start(locker)
            deadline = time.monotonic() + READY_S
            while not (locker.health.ok and cart.health.ok):
                if time.monotonic() > deadline:
                    raise LockerUnavailable(f"locker: {locker.health.error}")
                time.sleep(0.05)
            yield Actions(cart), store
        finally:
            supervisor.stop(timeout_s=3.0)
            store.close()

    def open_compartment(self, compartment: str, reason: str, by: str) -> dict[str, Any]:
        with self._flows() as (actions, store):
            result = actions.open_compartment(compartment, reason, by=by, source="cli")
            if result.get("outcome") != "unknown":
                return result
            # Never sent again: the door decides, within the window the flows watch it for.
            window = open_outcome.confirm_window_s(self.cfg.locker) + 3.0
            state = _wait_intent(store, result["tx_id"], window)
            return {**result, "outcome": {"released": "released", "done": "released"}.get(
                state, "unconfirmed"), "opened": state in ("released", "done")}

    def print_test(self) -> None:
        from agent.devices.printer.service import PrinterError
        from agent.flows.receipts import test_receipt_bytes

        printer = build_printer(self.cfg)
        if printer is None:
            raise ActionError("no printer configured")
        try:
            printer.print_bytes(test_receipt_bytes(self.cfg))
        except (PrinterError, OSError) as exc:
            raise ActionError(str(exc)) from None
        finally:
            close = getattr(printer, "close", None)
            if close is not None:
                close()

    def scanner(self, on_scan: Callable[[ScanEvent], None]) -> Scanner | None:
        return build_scanner(self.cfg, on_scan)


def _wait_intent(store: Store, tx_id: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    state = "unknown"
    while time.monotonic() < deadline:
        rows = store.query("SELECT state FROM open_intents WHERE tx_id = ?", (tx_id,))
        state = str(rows[0]["state"]) if rows else state
        if state in SETTLED:
            return state
        time.sleep(0.1)
    return state
