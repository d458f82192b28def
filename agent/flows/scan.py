"""A resident's scan: verify, decide, commit, then open or print, and answer.

Every decision is taken on the flow thread, and each accepted token is checked for single use
and recorded in one SQLite write transaction with its result, so two quick scans of the same
token can never both pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent import jws
from agent.contract import parse_rfc3339
from agent.devices.scanner.lines import ScanEvent
from agent.flows import intents, open_outcome, tickets
from agent.flows.context import CartContext, log
from agent.flows.deposit import DepositMode
from agent.flows.feedback import Feedback
from agent.flows.opening import open_for
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import Token, public_facts, read_facts
from agent.store import StoreError, StoreFullError, Writer


def _check_unused(ctx: CartContext, w: Writer, token: Token) -> None:
    if w.execute("SELECT 1 FROM revoked_tokens WHERE jti = ?", (token.jti,)).fetchone() or (
            token.jti in ctx.cfg.security.revoked_jtis):
        raise ScanRefused("revoked", f"token {token.jti[:16]} was revoked")
    row = w.execute("SELECT used_at FROM used_tokens WHERE jti = ?", (token.jti,)).fetchone()
    if row:
        raise ScanRefused("already_used", f"used at {row[0]}", used_at=row[0])


def _check_meal_compartment(ctx: CartContext, comp_id: str) -> None:
    """A meal is put in a compartment by staff; one holding a parcel (or reserved for a
    deposit) or out of service must not open for a meal token, however well signed."""
    comp = ctx.compartments.get(comp_id)
    if comp is None:
        raise ScanRefused("bad_claims", f"no compartment {comp_id[:8]} at this cart")
    if comp.out_of_service:
        raise ScanRefused("out_of_service", f"{comp.id}: {comp.oos_reason}")
    if comp.parcel or comp.reserved:
        raise ScanRefused("compartment_in_use", f"{comp.id} holds a parcel or is being filled")


def _use(w: Writer, token: Token, tx_id: str, at: str) -> None:
    w.execute("INSERT INTO used_tokens(jti, used_at, tx_id, svc) VALUES (?, ?, ?, ?)",
              (token.jti, at, tx_id, token.svc))


class ScanFlow:
    def __init__(self, ctx: CartContext) -> None:
        self.ctx = ctx
        self.deposit = DepositMode(ctx)

    def handle(self, scan: ScanEvent) -> Feedback:
        """Decide on one scan and say so; a refusal is recorded with what was read."""
        ctx = self.ctx
        text = (scan.text or "").strip()
        try:
            if scan.error:
                detail = f"{scan.error}: {scan.detail}" if scan.detail else scan.error
                raise ScanRefused("unreadable", detail)
            if not text:
                raise ScanRefused("unreadable", "empty scan")
            if ctx.store.get_meta("out_of_service") == "1":
                raise ScanRefused("cart_out_of_service", "the cart is out of service")
            if len(text) > ctx.cfg.security.max_token_bytes:
                raise ScanRefused("unreadable", f"scan of {len(text)} characters is too long")
            if jws.looks_like_jws(text) or text.startswith("eyJ"):
                token = ctx.verifier.verify(text)
                return self._accept(token)
            if self.deposit.active:
                return self.deposit.label(text)
            raise ScanRefused("not_a_label", "not a QR token and no courier is depositing")
        except ScanRefused as refusal:
            return self._refused(refusal, scan, text)
        except StoreFullError as exc:
            log.error("scan refused, storage full: %s", exc)
            return ctx.refuse(ScanRefused("storage_full", str(exc)))
        except StoreError:
            raise  # the disk is failing: the flow thread says so (Cart._handle)
        except Exception as exc:
            # Each scan is handled in isolation: whatever a hostile or unforeseen scan makes
            # raise ends here as a recorded refusal, and the next scan is served at once.
            log.exception("scan could not be handled; refused as unreadable")
            return self._refused(ScanRefused("unreadable", f"internal error: "
                                             f"{type(exc).__name__}"), scan, text)

    def _refused(self, refusal: ScanRefused, scan: ScanEvent, text: str) -> Feedback:
        ctx = self.ctx
        try:
            facts = public_facts(text) if scan.text is not None else read_facts(scan)
        except Exception:  # the audit record must not fail because of what was scanned
            log.exception("could not describe a refused scan")
            facts = {"form": "text", "text": None, "length": len(text)}
        data: dict[str, Any] = {"reason": refusal.reason, "detail": refusal.detail[:200],
                                "source": scan.source, **facts}
        try:
            ctx.store.record("scan.rejected", data)
        except StoreFullError:
            log.error("could not record a refused scan: storage full")
        used_at = refusal.facts.get("used_at")
        if isinstance(used_at, str):
            local = _local(ctx, used_at)
            return ctx.say("refused", "already_used_at", refusal.reason, params={
                "month": local.month, "day": local.day, "hm": f"{local:%H:%M}",
                "hour": local.hour, "minute": local.minute,
                "en_date": f"{local:%d %b %H:%M}"}, used_at=used_at)
        return ctx.refuse(refusal)

    def _accept(self, token: Token) -> Feedback:
        if token.svc == "courier":
            return self.deposit.badge(token)
        if token.svc == "parcel":
            return self._parcel(token)
        if token.svc == "meal":
            return self._meal(token)
        if token.svc == "ticket":
            return self._ticket(token)
        raise ScanRefused("unknown_service", f"no flow for {token.svc!r}")

    def _parcel(self, token: Token) -> Feedback:
        ctx = self.ctx
        label = token.claims["parcel"]
        with ctx.store.write() as w:
            _check_unused(ctx, w, token)
            comp = ctx.compartments.holding(label)
            if comp is None:
                raise ScanRefused("unknown_parcel", f"parcel {label[:40]} is not here")
            if comp.out_of_service:
                raise ScanRefused("out_of_service", f"{comp.id}: {comp.oos_reason}")
            tx = w.append("parcel.pickup", {"label": label, "compartment": comp.id,
                                            "jti": token.jti})
            _use(w, token, tx.id, tx.at)
            intent = intents.create(w, comp.id, "pickup", ctx.clock(), tx_id=tx.id, label=label)
            ctx.queue_print(w, tx.id, "pickup")
        ctx.wake_printer()
        opened = open_for(ctx, comp, intent)
        if opened == "failed":
            return ctx.refuse(ScanRefused("compartment_failed", comp.id), compartment=comp.id)
        if opened == "unknown":  # the door decides; the answer follows (open_outcome)
            return open_outcome.checking(ctx, comp.id, tx_id=tx.id, svc="parcel")
        return ctx.say("accepted", "opened_pickup", compartment=comp.id, tx_id=tx.id,
                       svc="parcel")

    def _meal(self, token: Token) -> Feedback:
        ctx = self.ctx
        comp_id = token.text("compartment")
        comp = None
        if comp_id is not None:
            comp = ctx.compartments.get(comp_id)
            if comp is None:
                raise ScanRefused("bad_claims", f"no compartment {comp_id[:8]} at this cart")
        with ctx.store.write() as w:
            _check_unused(ctx, w, token)
            if comp is not None:
                _check_meal_compartment(ctx, comp.id)
            data = {"order": token.claims["order"], "items": token.claims["items"],
                    "name": token.text("name"), "compartment": comp_id, "jti": token.jti}
            tx = w.append("meal.pickup", data)
            _use(w, token, tx.id, tx.at)
            intent = (intents.create(w, comp.id, "meal", ctx.clock(), tx_id=tx.id)
                      if comp is not None else None)
            ctx.queue_print(w, tx.id, "meal")
        ctx.wake_printer()
        if comp is not None and intent is not None:
            opened = open_for(ctx, comp, intent)
            if opened == "failed":
                return ctx.refuse(ScanRefused("compartment_failed", comp.id),
                                  compartment=comp.id)
            if opened == "unknown":
                return open_outcome.checking(ctx, comp.id, tx_id=tx.id, svc="meal")
            return ctx.say("accepted", "meal_printing_in", compartment=comp.id, tx_id=tx.id,
                           svc="meal")
        return ctx.say("accepted", "meal_printing", tx_id=tx.id, svc="meal")

    def _ticket(self, token: Token) -> Feedback:
        ctx = self.ctx
        code = token.claims["service"]
        service = ctx.cfg.ticket_services.get(code)
        if service is None:
            raise ScanRefused("unknown_service", f"no counter service {code[:16]!r} here")
        with ctx.store.write() as w:
            _check_unused(ctx, w, token)
            number = tickets.next_number(w, code, tickets.local_day(ctx.clock(), ctx.cfg.tz))
            tx = w.append("ticket.issue", {"service": code, "number": number, "jti": token.jti})
            _use(w, token, tx.id, tx.at)
            ctx.queue_print(w, tx.id, "ticket")
        ctx.wake_printer()
        return ctx.say("accepted", "ticket_printing",
                       params={"service_zh": service.zh, "service_en": service.en},
                       tx_id=tx.id, svc="ticket", number=number, service=code)


def _local(ctx: CartContext, at: str) -> datetime:
    return datetime.fromtimestamp(parse_rfc3339(at), ctx.cfg.tz)
