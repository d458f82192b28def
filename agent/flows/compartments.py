"""Compartments: what each one holds and whether its door is open, kept in the store.

States, derived from the row: out of service (attendant or a lock that failed), open (door
sensor), holding a parcel, reserved (a deposit intent is pending on it), free. Door state comes
only from the boards' sensors; the store never guesses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.config import CompartmentConfig
from agent.contract import rfc3339
from agent.store import Store, Writer

SIZE_ORDER = {"S": 0, "M": 1, "L": 2}


@dataclass(frozen=True)
class Compartment:
    id: str
    board: int
    lock: int
    size: str
    parcel: str | None
    courier: str | None
    parcel_since: str | None
    door: str               # "open" | "closed" | "unknown"
    door_since: str | None
    out_of_service: bool
    oos_reason: str | None
    reserved: bool = False

    @property
    def state(self) -> str:
        if self.out_of_service:
            return "out_of_service"
        if self.door == "open":
            return "open"
        if self.parcel:
            return "holding"
        if self.reserved:
            return "reserved"
        return "free"

    def view(self) -> dict[str, Any]:
        return {"id": self.id, "size": self.size, "door": self.door, "parcel": self.parcel,
                "state": self.state, "since": self.parcel_since or self.door_since,
                "board": self.board, "lock": self.lock, "out_of_service": self.out_of_service,
                "oos_reason": self.oos_reason}


_SELECT = (
    "SELECT c.*, EXISTS(SELECT 1 FROM open_intents i WHERE i.compartment = c.id "
    "AND i.state IN ('pending', 'released', 'unknown') AND i.purpose = 'deposit') AS reserved "
    "FROM compartments c"
)


def _row(r: dict[str, Any]) -> Compartment:
    return Compartment(
        id=r["id"], board=r["board"], lock=r["lock"], size=r["size"], parcel=r["parcel"],
        courier=r["courier"], parcel_since=r["parcel_since"], door=r["door"] or "unknown",
        door_since=r["door_since"], out_of_service=bool(r["out_of_service"]),
        oos_reason=r["oos_reason"], reserved=bool(r["reserved"]),
    )


def sort_key(comp_id: str) -> tuple[str, int, str]:
    head = comp_id.rstrip("0123456789")
    tail = comp_id[len(head):]
    return (head, int(tail) if tail else 0, comp_id)


class Compartments:
    def __init__(self, store: Store) -> None:
        self.store = store

    def sync_from_config(self, configured: list[CompartmentConfig]) -> None:
        """Upsert what the config lists; an empty compartment no longer listed is removed, one
        still holding a parcel is kept but out of service, so nothing is forgotten."""
        wanted = {c.id: c for c in configured}
        with self.store.write() as w:
            existing = {r[0]: r[1] for r in w.execute(
                "SELECT id, parcel FROM compartments").fetchall()}
            for comp in configured:
                w.execute(
                    "INSERT INTO compartments(id, board, lock, size, door, out_of_service) "
                    "VALUES (?, ?, ?, ?, 'unknown', 0) ON CONFLICT(id) DO UPDATE SET "
                    "board = excluded.board, lock = excluded.lock, size = excluded.size, "
                    "out_of_service = CASE WHEN oos_reason = 'not in config' THEN 0 "
                    "ELSE out_of_service END, "
                    "oos_reason = CASE WHEN oos_reason = 'not in config' THEN NULL "
                    "ELSE oos_reason END",
                    (comp.id, comp.board, comp.lock, comp.size),
                )
            for comp_id, parcel in existing.items():
                if comp_id in wanted:
                    continue
                if parcel:
                    w.execute("UPDATE compartments SET out_of_service = 1, "
                              "oos_reason = 'not in config' WHERE id = ?", (comp_id,))
                else:
                    w.execute("DELETE FROM compartments WHERE id = ?", (comp_id,))

    def all(self) -> list[Compartment]:
        rows = self.store.query(_SELECT)
        return sorted((_row(r) for r in rows), key=lambda c: sort_key(c.id))

    def get(self, comp_id: str) -> Compartment | None:
        rows = self.store.query(_SELECT + " WHERE c.id = ?", (comp_id,))
        return _row(rows[0]) if rows else None

    def by_lock(self, board: int, lock: int) -> Compartment | None:
        rows = self.store.query(_SELECT + " WHERE c.board = ? AND c.lock = ?", (board, lock))
        return _row(rows[0]) if rows else None

    def holding(self, label: str) -> Compartment | None:
        rows = self.store.query(_SELECT + " WHERE c.parcel = ?", (label,))
        return _row(rows[0]) if rows else None

    def best_fit_free(self, min_size: str = "S") -> Compartment | None:
        """Smallest free compartment that fits: S first, then M, then L."""
        free = [c for c in self.all() if c.state == "free" and c.door == "closed"
                and SIZE_ORDER[c.size] >= SIZE_ORDER[min_size]]
        free.sort(key=lambda c: (SIZE_ORDER[c.size], sort_key(c.id)))
        return free[0] if free else None

    @staticmethod
    def set_door(w: Writer, comp_id: str, door: str, at: float) -> None:
        w.execute("UPDATE compartments SET door = ?, door_since = ? WHERE id = ? "
                  "AND (door IS NULL OR door != ?)", (door, rfc3339(at), comp_id, door))

    @staticmethod
    def put_parcel(w: Writer, comp_id: str, label: str, courier: str, at: float) -> None:
        w.execute("UPDATE compartments SET parcel = ?, courier = ?, parcel_since = ? "
                  "WHERE id = ?", (label, courier, rfc3339(at), comp_id))

    @staticmethod
    def clear_parcel(w: Writer, comp_id: str) -> None:
        w.execute("UPDATE compartments SET parcel = NULL, courier = NULL, parcel_since = NULL "
                  "WHERE id = ?", (comp_id,))

    @staticmethod
    def set_out_of_service(w: Writer, comp_id: str, on: bool, reason: str | None) -> None:
        w.execute("UPDATE compartments SET out_of_service = ?, oos_reason = ? WHERE id = ?",
                  (1 if on else 0, reason if on else None, comp_id))
