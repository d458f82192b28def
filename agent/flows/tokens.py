"""Residents' QR tokens: signature, validity window, cart binding and claim shapes.

Single use (`jti`) and revocation are checked against the store by the scan flow, in the same
SQLite transaction that records the result, so two quick scans of one token cannot both pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from agent import jws
from agent.clock import TrustedClock
from agent.devices.scanner.lines import ScanEvent
from agent.flows.refusals import ScanRefused

BASE_SERVICES = ("parcel", "meal", "ticket", "courier")
_MAX_TEXT = 128


@dataclass(frozen=True)
class Token:
    svc: str
    jti: str
    kid: str
    claims: dict[str, Any]

    def text(self, name: str) -> str | None:
        value = self.claims.get(name)
        return value if isinstance(value, str) else None


def _require_str(claims: dict[str, Any], name: str, max_len: int = _MAX_TEXT) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ScanRefused("bad_claims", f"claim {name!r} must be a non-empty string")
    if any(ord(c) < 32 for c in value):
        raise ScanRefused("bad_claims", f"claim {name!r} holds control characters")
    return value


def _numeric_date(claims: dict[str, Any], name: str) -> int | None:
    """A NumericDate is a finite integer (contract section 6): a float such as 1e999 (inf)
    would make a token that never expires, and NaN compares false with everything."""
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScanRefused("bad_claims", f"claim {name!r} must be an integer NumericDate")
    return value


class TokenVerifier:
    def __init__(self, keys: dict[str, Ed25519PublicKey], cart_id: str, clock_skew_s: int,
                 max_bytes: int, extra_services: tuple[str, ...] = (),
                 clock: Callable[[], float] = time.time,
                 trusted: TrustedClock | None = None) -> None:
        self.keys = keys
        self.cart_id = cart_id
        self.clock_skew_s = clock_skew_s
        self.max_bytes = max_bytes
        self.services = BASE_SERVICES + extra_services
        self.clock = clock
        self.trusted = trusted

    def _now(self) -> float:
        if self.trusted is None:
            return self.clock()
        state = self.trusted.state()
        if state.alarm == "unknown":
            # No evidence of the time and a wall clock that cannot be right: any answer
            # about exp/nbf would be a guess, so the code is refused, not consumed.
            raise ScanRefused("clock_unknown", "the cart does not know the time: no evidence "
                              "and the wall clock is implausible")
        return state.now

    def verify(self, text: str) -> Token:
        try:
            verified = jws.verify(text, self.keys, self.max_bytes)
        except jws.JwsError as exc:
            raise ScanRefused(exc.reason, str(exc)) from None
        claims = verified.claims
        exp = _numeric_date(claims, "exp")
        nbf = _numeric_date(claims, "nbf")
        iat = _numeric_date(claims, "iat")
        if exp is None:
            raise ScanRefused("bad_claims", "token has no expiry")
        try:
            self._check_window(exp, nbf)
        finally:
            # A verified signature says the token existed at `iat`: evidence of the time for
            # the next decisions (never for this token's own: it cannot vouch for itself).
            if iat is not None and self.trusted is not None:
                self.trusted.note(float(iat), "token")
        cart = claims.get("cart")
        if cart is not None and cart != self.cart_id:
            raise ScanRefused("other_cart", f"token is for cart {str(cart)[:32]!r}")
        svc = claims.get("svc")
        if not isinstance(svc, str) or svc not in self.services:
            raise ScanRefused("unknown_service", f"service {str(svc)[:32]!r} is not offered")
        jti = _require_str(claims, "jti")
        self._check_shape(svc, claims)
        return Token(svc=svc, jti=jti, kid=verified.kid, claims=claims)

    def _check_window(self, exp: int, nbf: int | None) -> None:
        now = self._now()
        if now > exp + self.clock_skew_s:
            raise ScanRefused("expired", f"expired at {exp}", exp=exp)
        if nbf is not None and now < nbf - self.clock_skew_s:
            raise ScanRefused("not_yet_valid", f"valid from {nbf}", nbf=nbf)

    @staticmethod
    def _check_shape(svc: str, claims: dict[str, Any]) -> None:
        if svc == "parcel":
            _require_str(claims, "parcel", 64)
        elif svc == "meal":
            _require_str(claims, "order", 64)
            items = claims.get("items")
            if (not isinstance(items, list) or not items or len(items) > 30
                    or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in items)):
                raise ScanRefused("bad_claims", "claim 'items' must be a list of item names")
            if "name" in claims:
                _require_str(claims, "name", 64)
            if "compartment" in claims:
                _require_str(claims, "compartment", 8)
        elif svc == "ticket":
            _require_str(claims, "service", 16)
        elif svc == "courier":
            _require_str(claims, "sub", 64)
            if "name" in claims:
                _require_str(claims, "name", 64)


def public_facts(text: str) -> dict[str, Any]:
    """What a refused scan keeps for the audit trail: never the signature, never a huge blob."""
    if jws.looks_like_jws(text) and len(text) <= 8192:
        head, body, _signature = text.split(".")
        out: dict[str, Any] = {"form": "jws"}
        for part, name in ((head, "header"), (body, "claims")):
            try:
                decoded = jws.strict_json_object(jws.b64url_decode(part), name)
                out[name] = {k: v for k, v in list(decoded.items())[:20]
                             if isinstance(v, str | int | float | bool | type(None) | list)}
            except (ValueError, jws.JwsError):
                out[name] = None
        return out
    if text.startswith("eyJ") and "." in text:
        text = text.rsplit(".", 1)[0]  # a broken token: still never keep its signature part
    return {"form": "text", "text": text[:64], "length": len(text)}


def read_facts(scan: ScanEvent) -> dict[str, Any]:
    """What a scan that never became text keeps: the first bytes read, in hex (the record's
    detail says why it was refused and, for a line too long, how long it was)."""
    return {"form": "bytes", "head": scan.head.hex()}
