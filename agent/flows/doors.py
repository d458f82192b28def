"""Door events from the lock boards: keep compartments true to the sensors, finish pick-ups
and deposits when their door closes, and record alarms."""

from __future__ import annotations

from agent.devices.lockboard.locker import DoorEvent
from agent.flows import intents
from agent.flows.context import CartContext, log
from agent.store import Writer
from agent.store.transactions import rfc3339


class DoorWatch:
    def __init__(self, ctx: CartContext) -> None:
        self.ctx = ctx

    def handle(self, event: DoorEvent) -> None:
        ctx = self.ctx
        comp = ctx.compartments.by_lock(event.address.board, event.address.lock)
        if comp is None:
            return  # a channel no compartment is wired to
        door = "closed" if event.closed else "open"
        with ctx.store.write() as w:
            ctx.compartments.set_door(w, comp.id, door, event.at)
            if event.kind == "forced_open":
                w.append("locker.forced_open", {"compartment": comp.id, "parcel": comp.parcel})
            elif event.kind == "left_open":
                w.append("locker.door_left_open", {"compartment": comp.id,
                                                   "parcel": comp.parcel})
            stored = self._complete(w, comp.id, event.at) if event.closed else []
        for label in stored:
            ctx.tell("deposit", f"包裹 {label} 已存入 {comp.id} 号柜",
                     f"Parcel {label} stored in compartment {comp.id}",
                     compartment=comp.id, label=label)
        if event.kind == "forced_open":
            log.warning("compartment %s opened without a command", comp.id)
            ctx.tell("info", f"警报：{comp.id} 号柜门被非正常打开",
                     f"Alarm: compartment {comp.id} opened without a command",
                     "forced_open", compartment=comp.id, alarm=True)
        elif event.kind == "left_open":
            ctx.tell("info", f"{comp.id} 号柜门未关，请关好柜门",
                     f"Compartment {comp.id} is still open; please close the door",
                     "left_open", compartment=comp.id, alarm=True)

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
        ctx = self.ctx
        cutoff = rfc3339(ctx.clock() - after_s)
        rows = ctx.store.query(
            "SELECT i.id, i.compartment, i.purpose, i.label, i.tx_id FROM open_intents i "
            "JOIN compartments c ON c.id = i.compartment WHERE i.state = 'released' "
            "AND i.created_at < ? AND c.door = 'closed' "
            "AND (c.door_since IS NULL OR c.door_since < i.created_at)", (cutoff,))
        for row in rows:
            with ctx.store.write() as w:
                intents.set_state(w, row["id"], "unconfirmed")
                w.append("locker.open_unconfirmed", {
                    "compartment": row["compartment"], "purpose": row["purpose"],
                    "label": row["label"], "tx_id": row["tx_id"]})
            log.warning("compartment %s was released for %s but never seen open",
                        row["compartment"], row["purpose"])
