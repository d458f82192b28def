"""Signed fleet control: with security.fleet_keys set, only JWS signed by a listed key goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.jws import sign
from fleet.keys import keygen, read_signing_key
from tests.sync.synckit import CART, DESIRED, FLEET, REPORTED, RESULT, push, send


@pytest.fixture
def keys(tmp_path: Path) -> dict:
    pem, pub = keygen(tmp_path / "keys", "fleet1")
    stranger_pem, _ = keygen(tmp_path / "stranger", "fleet1")  # same kid, other key
    other_pem, _ = keygen(tmp_path / "other", "other")
    return {"pub": pub.read_text().strip(), "key": read_signing_key(pem),
            "stranger": read_signing_key(stranger_pem), "other": read_signing_key(other_pem)}


@pytest.fixture
def signed_cart(broker, make_cart, keys):
    cart = make_cart(broker.port, extra={"security": {"fleet_keys": {"fleet1": keys["pub"]}}})
    cart.start()
    cart.wait_online()
    return cart


def test_signed_config_accepted_unsigned_and_strangers_rejected(
        broker, signed_cart, make_watcher, keys):
    watcher = make_watcher(broker.port, [REPORTED])
    doc = {"version": 1, "config": {"log_level": "DEBUG"}}

    report = push(watcher, DESIRED, doc)  # plain JSON
    assert report["status"] == "rejected"
    assert "must be signed" in report["errors"][0]

    report = push(watcher, DESIRED, sign({"version": 2, "config": {}}, keys["stranger"],
                                         "fleet1"))
    assert report["status"] == "rejected"
    assert "bad_signature" in report["errors"][0]

    report = push(watcher, DESIRED, sign({"version": 3, "config": {}}, keys["other"], "other"))
    assert report["status"] == "rejected"
    assert "unknown_key" in report["errors"][0]

    # Signed for another cart and replayed here: the binding refuses it.
    report = push(watcher, DESIRED, sign({"version": 4, "config": {}, "cart": "bc-02"},
                                         keys["key"], "fleet1"))
    assert report["status"] == "rejected"
    assert "meant for 'bc-02'" in report["errors"][0]

    report = push(watcher, DESIRED, sign({**doc, "version": 5, "cart": CART}, keys["key"],
                                         "fleet1"))
    assert report["status"] == "applied"
    assert report["version"] == 5
    assert signed_cart.applied[-1].log_level == "DEBUG"

    # Fleet-wide, unsigned: rejected too, and the cart's config is untouched.
    report = push(watcher, FLEET, {"version": 1, "config": {"log_level": "ERROR"}})
    assert report["status"] == "rejected"
    assert report["version"] == 5
    assert [c.log_level for c in signed_cart.applied] == ["DEBUG"]


def test_signed_commands(broker, signed_cart, make_watcher, keys):
    watcher = make_watcher(broker.port, [RESULT])
    cmd = {"id": "s-1", "name": "open_compartment", "args": {"compartment": "A01"}}

    result = send(watcher, cmd)
    assert result["ok"] is False
    assert "must be signed" in result["error"]
    assert result["id"] == "s-1"

    result = send(watcher, sign({**cmd, "id": "s-2"}, keys["stranger"], "fleet1"))
    assert result["ok"] is False
    assert "bad_signature" in result["error"]
    assert result["id"] == "s-2"  # read (unverified) only to address the refusal

    result = send(watcher, "eyJhbGciOiJub25lIn0.e30.")
    assert result["ok"] is False
    assert "signature refused" in result["error"]
    assert signed_cart.executed == []

    result = send(watcher, sign({**cmd, "cart": CART}, keys["key"], "fleet1"))
    assert result == {"id": "s-1", "ok": True, "result": {"done": "open_compartment"},
                      "error": None}
    assert signed_cart.executed == [("open_compartment", {"compartment": "A01"})]
    # Replaying the signed message does not run it again.
    assert send(watcher, sign({**cmd, "cart": CART}, keys["key"], "fleet1")) == result
    assert len(signed_cart.executed) == 1
