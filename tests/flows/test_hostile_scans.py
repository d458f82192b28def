"""Scans an attacker can print: each is refused, recorded as valid UTF-8, and never stalls the
next resident; signed tokens with non-finite times never pass; meal tokens cannot open a
compartment that holds a parcel or is out of service."""

from __future__ import annotations

import time

import pytest

from agent import jws
from tests.flows.test_refusals import b64, deposit_parcel, forged, refused
from tests.flows_support import Rig


def sign_raw(rig: Rig, payload: bytes, alg: str = "EdDSA") -> str:
    """A token whose payload bytes are exactly `payload` (json.dumps cannot write all of
    these), signed by the cart's trusted issuer."""
    head = b64({"alg": alg, "kid": rig.issuer.kid, "typ": "JWT"})
    signing_input = f"{head}.{b64(payload)}"
    return f"{signing_input}.{b64(rig.issuer.key.sign(signing_input.encode()))}"


def stored_bytes_are_utf8(rig: Rig) -> None:
    for (blob,) in rig.store.conn.execute("SELECT CAST(data AS BLOB) FROM transactions"):
        blob.decode("utf-8")  # raises on anything that is not valid UTF-8


def test_lone_surrogates_are_refused_at_once_and_the_next_scan_is_served(rig: Rig) -> None:
    exp = int(time.time() + 600)
    surrogate = b'{"svc":"ticket","service":"gov","jti":"s-%d","exp":%d,"note":"\\ud800"}'
    for i in range(7):
        # forged (no valid signature): anyone with a printer can make these
        head = {"alg": "EdDSA", "kid": "k1", "x": "\ud800"} if i % 2 else {"alg": "EdDSA",
                                                                            "kid": "k1"}
        refused(rig, forged(head, surrogate % (i, exp)), "bad_signature" if i % 2 == 0
                else "unreadable")
    # signed by the trusted issuer: still not I-JSON, so unreadable
    refused(rig, sign_raw(rig, surrogate % (99, exp)), "unreadable")
    started = time.monotonic()
    answer = rig.scan(rig.issuer.token("ticket", service="gov"))
    assert answer.kind == "accepted", answer
    assert time.monotonic() - started < 2.0
    assert rig.daemon.cart is not None
    assert rig.daemon.supervisor.restarts().get("flows") == 0
    stored_bytes_are_utf8(rig)


def test_a_scan_that_raises_is_recorded_as_unreadable_and_the_next_is_served(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rig.daemon.cart is not None
    verifier = rig.daemon.cart.ctx.verifier
    real = verifier.verify

    def faulty(text: str) -> object:
        if "bomb" in text:
            raise RuntimeError("a bug no test foresaw")
        return real(text)

    monkeypatch.setattr(verifier, "verify", faulty)
    bomb = "eyJ4IjoxfQ.eyJ4IjoxfQ.bomb"
    for _ in range(3):
        refused(rig, bomb, "unreadable")
    started = time.monotonic()
    assert rig.scan(rig.issuer.token("ticket", service="gov")).kind == "accepted"
    assert time.monotonic() - started < 2.0
    assert rig.daemon.supervisor.restarts().get("flows") == 0


@pytest.mark.parametrize("exp", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1.7e9",
                                 b"17000000000.5", b'"2099-01-01"', b"true"])
def test_exp_must_be_a_finite_integer(rig: Rig, exp: bytes) -> None:
    payload = b'{"svc":"ticket","service":"gov","jti":"nan-%s","exp":%s}' % (
        exp.strip(b'"').replace(b".", b"-"), exp)
    reason = "unreadable" if exp in (b"NaN", b"Infinity", b"-Infinity") else "bad_claims"
    refused(rig, sign_raw(rig, payload), reason)
    assert rig.txs("ticket.issue") == []


def test_non_integer_nbf_and_iat_are_refused(rig: Rig) -> None:
    exp = int(time.time() + 600)
    refused(rig, sign_raw(rig, b'{"svc":"ticket","service":"gov","jti":"n1","exp":%d,'
                               b'"nbf":1e999}' % exp), "bad_claims")
    refused(rig, sign_raw(rig, b'{"svc":"ticket","service":"gov","jti":"n2","exp":%d,'
                               b'"iat":1.5}' % exp), "bad_claims")


def test_alg_ed25519_is_the_same_algorithm_as_eddsa(rig: Rig) -> None:
    payload = (b'{"svc":"ticket","service":"gov","jti":"rfc9864","exp":%d}'
               % int(time.time() + 600))
    answer = rig.scan(sign_raw(rig, payload, alg="Ed25519"))
    assert answer.kind == "accepted", answer
    # nothing else is new: Ed448 and lower-case spellings stay refused
    refused(rig, sign_raw(rig, payload.replace(b"rfc9864", b"x2"), alg="Ed448"), "bad_signature")
    refused(rig, sign_raw(rig, payload.replace(b"rfc9864", b"x3"), alg="ed25519"),
            "bad_signature")
    assert jws.verify(sign_raw(rig, payload, alg="Ed25519"),
                      {rig.issuer.kid: rig.issuer.key.public_key()}).claims["jti"] == "rfc9864"


def test_meal_refused_for_a_compartment_holding_a_parcel(rig: Rig) -> None:
    deposit_parcel(rig, "JD0000000777")
    holder = rig.compartment("A01")
    assert holder.parcel == "JD0000000777"
    opens = rig.sim.opens()
    meal = rig.issuer.token("meal", order="M-9", items=["饭"], compartment="A01")
    refused(rig, meal, "compartment_in_use")
    assert rig.sim.opens() == opens
    assert rig.txs("meal.pickup") == []
    # the token was not consumed: once staff sort it out, it still works
    assert rig.store.query("SELECT COUNT(*) AS n FROM used_tokens WHERE svc = 'meal'")[0]["n"] == 0


def test_meal_refused_for_a_compartment_out_of_service(rig: Rig) -> None:
    assert rig.daemon.actions is not None
    rig.daemon.actions.set_out_of_service(True, by="test", compartment="B01", reason="broken")
    opens = rig.sim.opens()
    refused(rig, rig.issuer.token("meal", order="M-10", items=["粥"], compartment="B01"),
            "out_of_service")
    assert rig.sim.opens() == opens
    rig.daemon.actions.set_out_of_service(False, by="test", compartment="B01")
    assert rig.scan(rig.issuer.token("meal", order="M-11", items=["粥"],
                                      compartment="B01")).kind == "accepted"
