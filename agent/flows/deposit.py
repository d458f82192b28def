"""Courier deposit mode: a badge opens a session, each label scanned opens the best-fit free
compartment, and `parcel.deposit` is recorded when that door closes again.

The session lives in memory only: a restart ends it (the courier scans the badge again),
while doors already opened for a deposit are completed from the store's intents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.flows import intents, open_outcome
from agent.flows.context import CartContext
from agent.flows.feedback import Feedback
from agent.flows.opening import open_for
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import Token

# Express tracking numbers: letters, digits and dashes. Anything else (SQL-ish strings, URLs,
# Chinese text) is not a label.
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{5,39}$")


@dataclass
class Session:
    courier: str
    name: str
    last_scan: float


class DepositMode:
    def __init__(self, ctx: CartContext) -> None:
        self.ctx = ctx
        self.session: Session | None = None

    @property
    def active(self) -> bool:
        return self.session is not None

    def badge(self, token: Token) -> Feedback:
        ctx = self.ctx
        courier = token.claims["sub"]
        name = token.text("name") or courier
        revoked = ctx.store.query("SELECT 1 FROM revoked_tokens WHERE jti = ?", (token.jti,))
        if revoked or token.jti in ctx.cfg.security.revoked_jtis:
            raise ScanRefused("revoked", f"badge {token.jti[:16]} was revoked")
        if self.session is not None and self.session.courier != courier:
            raise ScanRefused("deposit_in_progress",
                              f"{self.session.name} is depositing", courier=self.session.courier)
        if self.session is not None:
            return self.leave("badge")
        return self.enter(courier, name, "badge")

    def enter(self, courier: str, name: str, via: str) -> Feedback:
        ctx = self.ctx
        self.session = Session(courier, name, ctx.clock())
        ctx.store.record("deposit_mode", {"action": "enter", "courier": courier, "via": via})
        return ctx.say("deposit", "deposit_enter", params={"name": name}, courier=courier,
                       active=True)

    def leave(self, why: str) -> Feedback:
        ctx = self.ctx
        session, self.session = self.session, None
        courier = session.courier if session else None
        ctx.store.record("deposit_mode", {"action": "leave", "courier": courier, "why": why})
        return ctx.say("deposit", "deposit_leave", courier=courier, active=False, why=why)

    def tick(self) -> None:
        session = self.session
        if session and self.ctx.clock() - session.last_scan > self.ctx.cfg.deposit_timeout_s:
            self.leave("timeout")

    def label(self, text: str) -> Feedback:
        ctx = self.ctx
        session = self.session
        assert session is not None
        session.last_scan = ctx.clock()
        if not LABEL.match(text):
            raise ScanRefused("not_a_label", "a parcel label is 6-40 letters, digits or dashes")
        holder = ctx.compartments.holding(text)
        if holder is not None or intents.label_reserved(ctx.store, text):
            where = holder.id if holder else "an open compartment"
            raise ScanRefused("label_in_use", f"{text} is already in {where}")
        comp = ctx.compartments.best_fit_free()
        if comp is None:
            raise ScanRefused("no_free_compartment", "every compartment is taken or open")
        with ctx.store.write() as w:
            intent = intents.create(w, comp.id, "deposit", ctx.clock(), label=text,
                                    courier=session.courier)
        opened = open_for(ctx, comp, intent)
        if opened == "failed":
            return ctx.refuse(ScanRefused("compartment_failed", comp.id), compartment=comp.id)
        if opened == "unknown":
            return open_outcome.checking(ctx, comp.id, label=text, courier=session.courier)
        return ctx.say("deposit", "opened_deposit", compartment=comp.id, label=text,
                       courier=session.courier, active=True)
