"""Opening a compartment for a flow: intent committed first, one open frame, the outcome
recorded as the evidence says.

- released: the board said so (or the door was seen open right after a lost answer);
- failed: the board said the lock did not release, or nothing could be sent: the compartment
  goes out of service;
- unknown: the frame went out and no trustworthy answer came back. Nothing is sent again; the
  door decides within the confirmation window (open_outcome.py).
"""

from __future__ import annotations

from typing import Literal

from agent.devices.lockboard.frames import LockBoardError, LockerUnavailable
from agent.flows import intents
from agent.flows.compartments import Compartment
from agent.flows.context import CartContext, log
from agent.store import StoreError

Opened = Literal["released", "failed", "unknown"]
_FROM_BUS: dict[str, Opened] = {"released": "released", "not_released": "failed",
                                "unknown": "unknown"}


def open_for(ctx: CartContext, comp: Compartment, intent: intents.Intent) -> Opened:
    """Send the one open frame and record what is known: see the module docstring."""
    reply_lost = False
    outcome: Opened
    try:
        result = ctx.open_lock(comp.board, comp.lock)
        outcome = _FROM_BUS[result.outcome]
        error, reply_lost = result.error, result.reply_lost
    except LockerUnavailable as exc:
        # Sent and then the port failed: the board may have acted. Otherwise nothing went out.
        outcome, error = ("unknown" if exc.sent else "failed"), str(exc)
    except LockBoardError as exc:
        outcome, error = "failed", str(exc)
    try:
        with ctx.store.write() as w:
            if outcome == "released":
                intents.set_state(w, intent.id, "released")
                if reply_lost:  # the board's answer was lost; the door showed it released
                    w.append("locker.open_confirmed", {
                        "compartment": comp.id, "purpose": intent.purpose,
                        "tx_id": intent.tx_id, "label": intent.label,
                        "evidence": "door read open after the answer was lost"})
            elif outcome == "unknown":
                intents.set_state(w, intent.id, "unknown")
            else:
                intents.set_state(w, intent.id, "failed")
                w.append("locker.open_failed", {"compartment": comp.id, "purpose": intent.purpose,
                                                "error": error, "tx_id": intent.tx_id})
                ctx.compartments.set_out_of_service(w, comp.id, True,
                                                    f"lock did not release: {error}")
    except StoreError:
        log.exception("could not record the outcome of opening %s", comp.id)
    if outcome != "failed":
        ctx.light_on(comp.id)  # until the door is seen open (flows/doors.py)
    if outcome == "failed":
        log.error("compartment %s did not open: %s", comp.id, error)
    elif outcome == "unknown":
        log.warning("compartment %s: outcome of the open unknown (%s); watching the door",
                    comp.id, error)
    return outcome
