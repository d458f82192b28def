"""Door events from the lock boards: keep compartments true to the sensors, finish pick-ups
and deposits when their door closes, and record alarms."""

from __future__ import annotations

from agent.devices.lockboard.locker import DoorEvent
from agent.flows import intents, open_outcome
from agent.flows.context import CartContext, log
from agent.store import Writer


class DoorWatch:
    def __init__(self, ctx: CartContext) -> None:
        self.ctx = ctx

    def handle(self, event: DoorEvent) -> None:
        ctx = self.ctx
        comp = ctx.compartments.by_lock(event.address.board, event.address.lock)
        if comp is None:
            return  # a channel no compartment is wired to
        door = "closed" if event.closed else "open"
        ctx.light_off(comp.id)  # the door moved: the light has done its job
        with ctx.store.write() as w:
            ctx.compartments.set_door(w, comp.id, door, event.at)
            # An open whose answer was lost is decided by the door: seen open, it released
            # (and a door that opens then is ours, not an alarm).
            confirmed = [] if event.closed else open_outcome.resolve_opened(ctx, w, comp.id)
            forced = event.kind == "forced_open" and not confirmed
            if forced:
                w.append("locker.forced_open", {"compartment": comp.id, "parcel": comp.parcel})
            elif event.kind == "left_open":
                w.append("locker.door_left_open", {"compartment": comp.id,
                                                   "parcel": comp.parcel})
            stored = self._complete(w, comp.id, event.at) if event.closed else []
        for intent in confirmed:
            open_outcome.tell_opened(ctx, intent)
        for label in stored:
            ctx.say("deposit", "deposit_stored", compartment=comp.id, label=label)
        if forced:
            log.warning("compartment %s opened without a command", comp.id)
            ctx.say("info", "forced_open", "forced_open", compartment=comp.id, alarm=True)
        elif event.kind == "left_open":
            ctx.say("info", "left_open", "left_open", compartment=comp.id, alarm=True)

    def _complete(self, w: Writer, comp_id: str, at: float) -> list[str]:
        """The door is closed: intents whose lock was released are done now."""
        stored: list[str] = []
        rows = w.execute(
            "SELECT id, purpose, label, courier FROM open_intents "
            "WHERE compartment = ? AND state = 'released' ORDER BY created_at", (comp_id,)
        ).fetchall()
        for intent_id, purpose, label, courier in rows:
            if purpose == "pickup":
                self.ctx.compartments.clear_parcel(w, comp_id)
            elif purpose == "deposit":
                self.ctx.compartments.put_parcel(w, comp_id, label, courier, at)
                w.append("parcel.deposit", {"label": label, "compartment": comp_id,
                                            "courier": courier})
                stored.append(label)
            intents.set_state(w, intent_id, "done")
        return stored

    def expire_unconfirmed(self, after_s: float) -> None:
        open_outcome.expire(self.ctx, after_s)
