"""Opening a compartment for a flow: intent committed first, one open command, the outcome
recorded. A lock that does not release puts its compartment out of service."""

from __future__ import annotations

from agent.devices.lockboard.frames import LockBoardError
from agent.flows import intents
from agent.flows.compartments import Compartment
from agent.flows.context import CartContext, log
from agent.store import StoreError


def open_for(ctx: CartContext, comp: Compartment, intent: intents.Intent) -> bool:
    """Send the open; True when the board confirmed the release."""
    try:
        result = ctx.open_lock(comp.board, comp.lock)
        released, error = result.released, result.error
    except LockBoardError as exc:
        released, error = False, str(exc)
    try:
        with ctx.store.write() as w:
            if released:
                intents.set_state(w, intent.id, "released")
            else:
                intents.set_state(w, intent.id, "failed")
                w.append("locker.open_failed", {"compartment": comp.id, "purpose": intent.purpose,
                                                "error": error, "tx_id": intent.tx_id})
                ctx.compartments.set_out_of_service(w, comp.id, True,
                                                    f"lock did not release: {error}")
    except StoreError:
        log.exception("could not record the outcome of opening %s", comp.id)
    if not released:
        log.error("compartment %s did not open: %s", comp.id, error)
    return released
