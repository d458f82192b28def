"""Every refusal reason, end to end: none opens a door, each is answered and recorded."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from tests.flows_support import Issuer, Rig
from tests.support import wait_for


def b64(obj: object) -> str:
    raw = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forged(header: dict, claims: dict | bytes, key: Ed25519PrivateKey | None = None) -> str:
    signing_input = f"{b64(header)}.{b64(claims)}"
    sig = key.sign(signing_input.encode()) if key else b"\x00" * 64
    return f"{signing_input}.{b64(sig)}"


def by_key(rig: Rig, **claims: object) -> str:
    """A well-signed, current token with exactly these claims, past the issuer's own checks."""
    now = int(time.time())
    body = {"jti": f"raw-{time.monotonic_ns()}", "iat": now, "nbf": now, "exp": now + 600}
    return jws.sign({**body, **claims}, rig.issuer.key, rig.issuer.kid)


def refused(rig: Rig, scan: str | bytes, reason: str) -> None:
    before_opens = rig.sim.opens()
    before = len(rig.txs("scan.rejected"))
    answer = rig.scan(scan)
    assert answer.kind == "refused", answer
    assert answer.reason == reason, answer
    assert answer.zh
    assert answer.en
    rows = rig.wait_tx("scan.rejected", before + 1)
    record = rows[-1]["data"]
    assert record["reason"] == reason
    if isinstance(scan, str) and scan.count(".") == 2:
        assert scan.split(".")[2] not in json.dumps(record)  # the signature is never kept
    assert rig.sim.opens() == before_opens


def deposit_parcel(rig: Rig, label: str) -> None:
    badge = rig.issuer.token("courier", sub="c-1")
    rig.scan(badge)
    answer = rig.scan(label)
    rig.close_door(answer.details["compartment"])
    rig.wait_tx("parcel.deposit")
    rig.scan(badge)


def test_signature_key_and_algorithm_refusals(rig: Rig) -> None:
    good = rig.issuer.token("ticket", service="gov")
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    tampered = f"{head}.{b64({**claims, 'service': 'property'})}.{sig}"
    refused(rig, tampered, "bad_signature")
    stranger = Issuer(kid="k1")  # same key id, different key
    refused(rig, stranger.token("ticket", service="gov"), "bad_signature")
    refused(rig, Issuer(kid="k9").token("ticket", service="gov"), "unknown_key")
    refused(rig, forged({"alg": "none", "kid": "k1"}, claims), "bad_signature")
    refused(rig, forged({"alg": "HS256", "kid": "k1"}, claims), "bad_signature")
    dup = (b'{"svc":"ticket","service":"gov","jti":"x1","exp":%d,"svc":"parcel"}'
           % int(time.time() + 60))
    refused(rig, forged({"alg": "EdDSA", "kid": "k1"}, dup, rig.issuer.key), "unreadable")


def test_time_cart_and_service_refusals(rig: Rig) -> None:
    now = time.time()
    refused(rig, rig.issuer.token("ticket", service="gov", ttl=600, now=now - 1200), "expired")
    # within the clock-skew allowance (120 s) an expired token still passes
    assert rig.scan(rig.issuer.token("ticket", service="gov", ttl=60,
                                     now=now - 120)).kind == "accepted"
    early = jws.sign({"svc": "ticket", "service": "gov", "jti": "early", "nbf": int(now + 3600),
                      "exp": int(now + 7200)}, rig.issuer.key, "k1")
    refused(rig, early, "not_yet_valid")
    refused(rig, rig.issuer.token("ticket", service="gov", cart="bc-99"), "other_cart")
    # The fleet's issuer refuses to make these; a leaked issuer key or another issuer could.
    refused(rig, by_key(rig, svc="laundry"), "unknown_service")
    refused(rig, by_key(rig, svc="ticket", service="casino"), "unknown_service")
    refused(rig, rig.issuer.token("parcel", parcel="NOPE000000"), "unknown_parcel")
    refused(rig, by_key(rig, svc="meal", order="M1", items="not a list"), "bad_claims")
    refused(rig, by_key(rig, svc="meal", order="M1", items=["饭"], name=7), "bad_claims")
    no_exp = jws.sign({"svc": "ticket", "service": "gov", "jti": "forever"}, rig.issuer.key, "k1")
    refused(rig, no_exp, "bad_claims")


def test_replay_and_revocation(rig: Rig) -> None:
    deposit_parcel(rig, "JD0000000001")
    token = rig.issuer.token("parcel", parcel="JD0000000001")
    assert rig.scan(token).kind == "accepted"
    answer = rig.scan(token)
    assert answer.reason == "already_used"
    assert "已于" in answer.zh
    assert "used on" in answer.en
    assert rig.sim.opens("A01") == 2                  # the deposit and one pick-up

    jti = "revoked-jti-1"
    assert rig.daemon.actions is not None
    rig.daemon.actions.revoke_token(jti, source="test")
    revoked = jws.sign({"svc": "ticket", "service": "gov", "jti": jti,
                        "exp": int(time.time() + 60)}, rig.issuer.key, "k1")
    refused(rig, revoked, "revoked")
    assert rig.txs("token.revoked")[0]["data"]["jti"] == jti


def test_replay_race_opens_once(rig: Rig) -> None:
    deposit_parcel(rig, "ZTO000000042")
    token = rig.issuer.token("parcel", parcel="ZTO000000042")
    rig.drain()
    # the same token twice within a millisecond, in one write on the scanner's line
    rig.sim.scanner.send(token.encode() + b"\r\n" + token.encode() + b"\r\n")
    answers = [rig.next_answer(), rig.next_answer()]
    assert sorted(a.kind for a in answers) == ["accepted", "refused"]
    assert rig.sim.opens("A01") == 2                  # deposit + exactly one pick-up
    assert len(rig.txs("parcel.pickup")) == 1


@pytest.mark.parametrize(("garbage", "reason"), [
    (b"\xff\xfe\x80\x81garbage", "unreadable"),
    ("eyJhbGciOiJFZERTQSJ9.%%%.abc", "unreadable"),
    ("eyJ" + "A" * 5000, "unreadable"),
    ("eyJub3QganNvbg.eyJub3QganNvbg.AAAA", "unreadable"),
    ("'; DROP TABLE transactions; --", "not_a_label"),
    ("https://example.com/phish", "not_a_label"),
    ("取件码一二三", "not_a_label"),
])
def test_garbage_scans(rig: Rig, garbage: str | bytes, reason: str) -> None:
    refused(rig, garbage, reason)
    assert rig.store.query("SELECT COUNT(*) AS n FROM transactions")[0]["n"] >= 1


def test_deposit_refusals(rig: Rig) -> None:
    badge = rig.issuer.token("courier", sub="c-1", name="甲")
    assert rig.scan(badge).kind == "deposit"
    refused(rig, rig.issuer.token("courier", sub="c-2", name="乙"), "deposit_in_progress")
    refused(rig, "'; DROP TABLE x;--", "not_a_label")
    refused(rig, "A" * 200, "not_a_label")
    first = rig.scan("SF0000000001")
    assert first.details["compartment"] == "A01"
    refused(rig, "SF0000000001", "label_in_use")      # scanned twice while the door is open
    rig.close_door("A01")
    rig.wait_tx("parcel.deposit")
    for _ in range(5):                                # fill every other compartment
        answer = rig.scan(f"SF00000001{_:02d}")
        assert answer.kind == "deposit", answer
        rig.close_door(answer.details["compartment"])
    wait_for(lambda: len(rig.txs("parcel.deposit")) == 6, what="six deposits")
    refused(rig, "SF9999999999", "no_free_compartment")


def test_stuck_lock_goes_out_of_service_and_next_scan_uses_another(rig: Rig) -> None:
    rig.sim.locker.set_stuck(rig.sim.address("A01"))
    rig.scan(rig.issuer.token("courier", sub="c-1"))
    answer = rig.scan("SF5555555555")
    assert answer.kind == "refused"
    assert answer.reason == "compartment_failed"
    failed = rig.wait_tx("locker.open_failed")[0]["data"]
    assert failed["compartment"] == "A01"
    assert rig.compartment("A01").state == "out_of_service"
    again = rig.scan("SF5555555555")
    assert again.details["compartment"] == "A02"


def test_a_scan_that_never_was_text_is_recorded_with_what_was_read(rig: Rig) -> None:
    refused(rig, b"\xff\xfe\x80\x81garbage", "unreadable")
    record = rig.txs("scan.rejected")[-1]["data"]
    assert record["form"] == "bytes"
    assert record["source"] == "serial"
    assert record["head"] == (b"\xff\xfe\x80\x81garbage").hex()    # what was read, not a word
    assert record["detail"].startswith("unreadable: neither UTF-8 nor GB18030")
    refused(rig, b"Z" * 5000, "unreadable")                          # over scanner.max_line
    record = rig.txs("scan.rejected")[-1]["data"]
    assert record["detail"] == "too long: 5000 bytes"
    assert record["head"] == (b"Z" * 64).hex()
