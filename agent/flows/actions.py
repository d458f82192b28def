"""What attendants and the fleet can do to a cart: manual opening with a reason, out of
service, reprint, revoking a token, deposit without a badge, the end-of-day report.

Each action runs on the flow thread (through `Cart.submit`), is checked before anything
moves, and leaves an audit transaction.
"""

from __future__ import annotations

from typing import Any

from agent.flows import intents, open_outcome
from agent.flows.cart import Cart
from agent.flows.compartments import Compartment
from agent.flows.opening import open_for
from agent.flows.report import day_report

MAX_REASON = 200


class ActionError(Exception):
    """An action refused with a reason a person can act on; nothing was done."""


def _text(value: object, name: str, max_len: int = MAX_REASON, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise ActionError(f"{name} is required")
    value = value.strip()
    if len(value) > max_len or any(ord(c) < 32 for c in value):
        raise ActionError(f"{name} must be at most {max_len} printable characters")
    return value


class Actions:
    def __init__(self, cart: Cart) -> None:
        self.cart = cart
        self.ctx = cart.ctx

    def _compartment(self, comp_id: object) -> Compartment:
        name = _text(comp_id, "compartment", 8)
        comp = self.ctx.compartments.get(name)
        if comp is None:
            raise ActionError(f"no compartment {name!r} on this cart")
        return comp

    # Each public method is safe to call from any thread.

    def open_compartment(self, compartment: object, reason: object, by: str,
                         source: str) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            comp = self._compartment(compartment)
            why = _text(reason, "reason")
            with self.ctx.store.write() as w:
                tx = w.append("locker.open", {"compartment": comp.id, "reason": why, "by": by,
                                              "source": source, "parcel": comp.parcel})
                intent = intents.create(w, comp.id, "manual", self.ctx.clock(), tx_id=tx.id)
            opened = open_for(self.ctx, comp, intent)
            if opened == "failed":
                raise ActionError(f"compartment {comp.id} did not open (lock did not release "
                                  f"or the locker is unavailable); recorded as {tx.id}")
            if opened == "unknown":
                # Never sent again: the door decides, and the screens and records say so.
                open_outcome.checking(self.ctx, comp.id)
                return {"compartment": comp.id, "opened": None, "outcome": "unknown",
                        "tx_id": tx.id}
            self.ctx.say("info", "opened_manual", compartment=comp.id)
            return {"compartment": comp.id, "opened": True, "outcome": "released",
                    "tx_id": tx.id}
        return self.cart.submit(act)

    def set_out_of_service(self, on: object, by: str, compartment: object = None,
                           reason: object = None) -> dict[str, Any]:
        if not isinstance(on, bool):
            raise ActionError("on must be true or false")

        def act() -> dict[str, Any]:
            why = _text(reason, "reason", required=False) or None
            with self.ctx.store.write() as w:
                if compartment is None:
                    w.execute("INSERT INTO meta(key, value) VALUES ('out_of_service', ?) "
                              "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                              ("1" if on else "0",))
                    tx = w.append("cart.out_of_service", {"on": on, "by": by, "reason": why})
                    return {"cart": self.ctx.cfg.cart_id, "out_of_service": on, "tx_id": tx.id}
                comp = self._compartment(compartment)
                self.ctx.compartments.set_out_of_service(w, comp.id, on, why or "by staff")
                tx = w.append("compartment.out_of_service", {"compartment": comp.id, "on": on,
                                                             "by": by, "reason": why})
                return {"compartment": comp.id, "out_of_service": on, "tx_id": tx.id}
        return self.cart.submit(act)

    def reprint(self, tx_id: object, by: str) -> dict[str, Any]:
        ident = _text(tx_id, "tx_id", 26)

        def act() -> dict[str, Any]:
            tx = self.ctx.store.get_tx(ident)
            if tx is None or tx.type not in ("parcel.pickup", "meal.pickup", "ticket.issue"):
                raise ActionError(f"no receipt for transaction {ident!r}")
            kind = {"parcel.pickup": "pickup", "meal.pickup": "meal",
                    "ticket.issue": "ticket"}[tx.type]
            with self.ctx.store.write() as w:
                self.ctx.queue_print(w, tx.id, kind + ".reprint")
                w.append("receipt.reprint", {"tx_id": tx.id, "by": by})
            self.ctx.wake_printer()
            return {"tx_id": tx.id, "queued": True}
        return self.cart.submit(act)

    def revoke_token(self, jti: object, source: str) -> dict[str, Any]:
        ident = _text(jti, "jti", 128)

        def act() -> dict[str, Any]:
            with self.ctx.store.write() as w:
                tx = w.append("token.revoked", {"jti": ident, "source": source})
                w.execute("INSERT INTO revoked_tokens(jti, revoked_at, source) VALUES (?, ?, ?) "
                          "ON CONFLICT(jti) DO NOTHING", (ident, tx.at, source))
            return {"jti": ident, "revoked": True}
        return self.cart.submit(act)

    def deposit_mode(self, on: bool, attendant: str) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            deposit = self.cart.scans.deposit
            if on and not deposit.active:
                deposit.enter(f"attendant:{attendant}", attendant, "console")
            elif not on and deposit.active:
                deposit.leave("console")
            return {"deposit_mode": deposit.active}
        return self.cart.submit(act)

    def print_report(self, day: str | None, by: str) -> dict[str, Any]:
        def act() -> dict[str, Any]:
            report = day_report(self.ctx.store, self.ctx.cfg, self.ctx.clock(), day)
            with self.ctx.store.write() as w:
                tx = w.append("report.printed", {"day": report["day"], "by": by,
                                                 "summary": report})
                self.ctx.queue_print(w, tx.id, "report")
            self.ctx.wake_printer()
            return {"day": report["day"], "queued": True, "tx_id": tx.id}
        return self.cart.submit(act)
