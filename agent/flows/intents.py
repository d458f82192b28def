"""Open intents: a door opening we decided on, committed before the open frame is sent.

pending  -> the open frame is about to go out, or its answer is awaited;
released -> the board released the lock (or the door was seen open); completed when the door
            is seen closed;
unknown  -> the one open frame went out and no trustworthy answer came back: the door sensor
            decides within the confirmation window (released, or `unconfirmed`);
done / failed / interrupted / unconfirmed.
After a crash nothing is replayed: pending intents become `interrupted` (an audit record for
the attendant), released ones complete on the first door reading that shows them closed,
unknown ones are still decided by the door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.contract import rfc3339
from agent.ids import new_ulid
from agent.store import Store, Writer


@dataclass(frozen=True)
class Intent:
    id: str
    compartment: str
    purpose: str          # pickup | deposit | meal | manual
    tx_id: str | None
    state: str
    label: str | None
    courier: str | None


def _row(r: dict[str, Any]) -> Intent:
    return Intent(id=r["id"], compartment=r["compartment"], purpose=r["purpose"],
                  tx_id=r["tx_id"], state=r["state"], label=r["label"], courier=r["courier"])


def create(w: Writer, compartment: str, purpose: str, at: float, tx_id: str | None = None,
           label: str | None = None, courier: str | None = None) -> Intent:
    intent_id = new_ulid()
    w.execute(
        "INSERT INTO open_intents(id, compartment, purpose, tx_id, created_at, state, label, "
        "courier) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
        (intent_id, compartment, purpose, tx_id, rfc3339(at), label, courier),
    )
    return Intent(intent_id, compartment, purpose, tx_id, "pending", label, courier)


def set_state(w: Writer, intent_id: str, state: str) -> None:
    w.execute("UPDATE open_intents SET state = ? WHERE id = ?", (state, intent_id))


def active(store: Store, compartment: str | None = None) -> list[Intent]:
    sql = "SELECT * FROM open_intents WHERE state IN ('pending', 'released', 'unknown')"
    params: tuple[Any, ...] = ()
    if compartment is not None:
        sql += " AND compartment = ?"
        params = (compartment,)
    return [_row(r) for r in store.query(sql + " ORDER BY created_at", params)]


def label_reserved(store: Store, label: str) -> bool:
    return bool(store.query(
        "SELECT 1 FROM open_intents WHERE label = ? AND purpose = 'deposit' "
        "AND state IN ('pending', 'released', 'unknown')", (label,)))
