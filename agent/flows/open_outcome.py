"""What happens after an open whose outcome the board did not tell: the door decides.

The one open frame went out and its answer was lost or garbled (or the board never answers,
as kerong boards). The lock may well have released, so nothing is sent again. The intent waits
in state `unknown` while the door sensor is watched for the confirmation window:

- the door is seen open: the intent becomes `released` (it completes like any other when the
  door closes) and `locker.open_confirmed` records that the door, not the board, confirmed it;
- the window passes with the door never seen open: `locker.open_unconfirmed`, the compartment
  goes out of service until the attendant has checked it (it may be unlocked but shut, or
  still locked), and the resident is told to ask the attendant.

A released lock whose door never springs open ends the same way (the board said it released:
the door may be unlocked but shut). Everyone is told the truth, Chinese first.
"""

from __future__ import annotations

from typing import Any

from agent.config import LockerConfig
from agent.contract import parse_rfc3339
from agent.flows import intents
from agent.flows.context import CartContext, log
from agent.flows.feedback import Feedback
from agent.store import Writer

OOS_REASON = "open not confirmed: check the door (开柜未确认，请检查柜门)"


def confirm_window_s(locker: LockerConfig) -> float:
    """How long the door is watched after an open: ten polls, and never under 10 s (a slow
    spring, a door someone leans on). The locker takes a door opening this soon after our
    command for ours, not for a forced door, so both use this one value."""
    return max(10.0, locker.poll_interval_s * 10)


def checking(ctx: CartContext, comp_id: str, **details: Any) -> Feedback:
    """Said at once when the outcome is unknown; the answer follows within the window."""
    return ctx.say("info", "open_checking", "open_checking", compartment=comp_id, **details)


# (kind, phrase) of the answer for a door that opened, by what it was opened for.
OPENED = {"deposit": ("deposit", "opened_deposit"), "meal": ("accepted", "opened_meal"),
          "manual": ("info", "opened_manual"), "pickup": ("accepted", "opened_pickup")}


def resolve_opened(ctx: CartContext, w: Writer, comp_id: str) -> list[intents.Intent]:
    """The door of `comp_id` is seen open: every intent waiting on it did release."""
    waiting = [i for i in intents.active(ctx.store, comp_id) if i.state == "unknown"]
    for intent in waiting:
        intents.set_state(w, intent.id, "released")
        w.append("locker.open_confirmed", {
            "compartment": comp_id, "purpose": intent.purpose, "tx_id": intent.tx_id,
            "label": intent.label, "evidence": "door seen open"})
    return waiting


def tell_opened(ctx: CartContext, intent: intents.Intent) -> None:
    kind, phrase = OPENED.get(intent.purpose, OPENED["pickup"])
    ctx.say(kind, phrase, compartment=intent.compartment, tx_id=intent.tx_id,
            label=intent.label, confirmed_by="door")
    log.info("compartment %s: open confirmed by the door", intent.compartment)


def expire(ctx: CartContext, after_s: float) -> None:
    """Intents that waited longer than `after_s` for the door: decide them now."""
    now = ctx.clock()
    rows = ctx.store.query(
        "SELECT i.id, i.compartment, i.purpose, i.label, i.tx_id, i.state, i.created_at, "
        "c.door, c.door_since FROM open_intents i LEFT JOIN compartments c "
        "ON c.id = i.compartment WHERE i.state IN ('released', 'unknown')")
    for row in rows:
        created = parse_rfc3339(row["created_at"])
        if now - created < after_s:
            continue
        since = parse_rfc3339(row["door_since"]) if row["door_since"] else None
        seen_open_since = row["door"] == "open" and since is not None and since >= created
        if row["state"] == "released":
            # Completed on the door's next close; only a door never seen moving is a problem.
            if row["door"] != "closed" or (since is not None and since >= created):
                continue
            _unconfirmed(ctx, row, "the board reported the lock released, the door never "
                                   "opened")
        elif seen_open_since:  # the event was missed (e.g. a restart): the sensor still tells
            with ctx.store.write() as w:
                for intent in resolve_opened(ctx, w, row["compartment"]):
                    tell_opened(ctx, intent)
        else:
            _unconfirmed(ctx, row, "no answer from the lock board and the door was not seen "
                                   f"open within {after_s:.0f} s")


def _unconfirmed(ctx: CartContext, row: dict[str, Any], why: str) -> None:
    comp_id = row["compartment"]
    with ctx.store.write() as w:
        intents.set_state(w, row["id"], "unconfirmed")
        w.append("locker.open_unconfirmed", {
            "compartment": comp_id, "purpose": row["purpose"], "label": row["label"],
            "tx_id": row["tx_id"], "was": row["state"], "why": why})
        ctx.compartments.set_out_of_service(w, comp_id, True, OOS_REASON)
    log.warning("compartment %s: open for %s not confirmed (%s); out of service until checked",
                comp_id, row["purpose"], why)
    ctx.light_off(comp_id)
    phrase = "not_sprung" if row["state"] == "released" else "open_unconfirmed"
    ctx.say("refused", phrase, "open_unconfirmed", compartment=comp_id, tx_id=row["tx_id"],
            label=row["label"])
