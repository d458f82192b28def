"""What a push may change: everyday settings with a fleet key; trust anchors, the broker
endpoint and credentials, file paths and listen addresses only with a root key (contract
section 6), each refusal naming the key and why; a push that changes nothing says so."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.jws import sign
from agent.sync.desired import effective_config
from fleet.cli import main as fleet_main
from fleet.keys import keygen, read_signing_key
from tests.flows_support import Issuer
from tests.sync.synckit import CART, DESIRED, FLEET, REPORTED, push


@pytest.fixture
def keys(tmp_path: Path) -> dict:
    out = {}
    for kid in ("f1", "r1", "r2"):
        pem, pub = keygen(tmp_path / "keys", kid)
        out[kid] = {"pem": pem, "pub": pub.read_text().strip(), "key": read_signing_key(pem)}
    return out


def signed(keys: dict, kid: str, version: int, config: dict, cart: str = CART) -> str:
    return sign({"version": version, "config": config, "cart": cart}, keys[kid]["key"], kid)


def errors_by_key(report: dict) -> dict[str, str]:
    out = {}
    for line in report["errors"]:
        _label, key, why = line.split(": ", 2)
        out[key] = why
    return out


HOSTILE = {  # what the attack run pushed with a fleet key
    "security": {"token_keys": {"evil": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}},
    "mqtt": {"host": "203.0.113.9", "port": 1884, "password_file": "/etc/cart-agent/agent.toml",
             "tls": False},  # (tls is already off on the test cart: not a change)
    "web": {"listen": "0.0.0.0"},
    "printer": {"kind": "file", "path": "/var/lib/cart-agent/cart.db"},
}


def test_fleet_key_cannot_touch_trust_anchors_endpoint_or_paths(broker, make_cart,
                                                               make_watcher, keys):
    cart = make_cart(broker.port, extra={"security": {
        "fleet_keys": {"f1": keys["f1"]["pub"]}, "root_keys": {"r1": keys["r1"]["pub"]}}})
    cart.start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [REPORTED])
    report = push(watcher, DESIRED, signed(keys, "f1", 1, HOSTILE))
    assert report["status"] == "rejected"
    refused = errors_by_key(report)
    assert set(refused) == {"security.token_keys", "mqtt.host", "mqtt.port",
                            "mqtt.password_file", "web.listen", "printer.path"}
    assert all(why == "needs a root key's signature; this push is signed by fleet key 'f1'"
               for why in refused.values()), refused
    # replacing the fleet keys (locking the real fleet out for good) is refused the same way
    report = push(watcher, DESIRED, signed(keys, "f1", 2, {"security": {"fleet_keys": {
        "f9": keys["r2"]["pub"]}}}))
    assert errors_by_key(report) == {"security.fleet_keys": "needs a root key's signature; "
                                                            "this push is signed by fleet key 'f1'"}
    # everyday settings still go with the fleet key
    report = push(watcher, DESIRED, signed(keys, "f1", 3, {"retention_days": 9}))
    assert report["status"] == "applied"
    assert report["changed"] == ["retention_days"]
    # a root key may change them all: a new issuer, and the fleet key rotated
    new_issuer = Issuer("k2")
    report = push(watcher, DESIRED, signed(keys, "r1", 4, {"security": {
        "token_keys": {"k2": new_issuer.public}, "fleet_keys": {"f2": keys["r2"]["pub"]}}}))
    assert report["status"] == "applied", report
    # (v4 replaces the cart's layer v3 whole, so retention_days goes back to the file's)
    assert report["changed"] == ["retention_days", "security.fleet_keys", "security.token_keys"]
    cfg = effective_config(str(cart.config_path), cart.store)
    assert cfg.security.token_keys == {"k2": new_issuer.public}  # replaced, not merged
    assert cfg.security.fleet_keys == {"f2": keys["r2"]["pub"]}
    # the old fleet key is out from now on
    report = push(watcher, DESIRED, signed(keys, "f1", 5, {"retention_days": 3}))
    assert report["status"] == "rejected"
    assert "unknown_key" in report["errors"][0]


def test_with_no_root_key_those_settings_are_not_pushable(broker, make_cart, make_watcher):
    cart = make_cart(broker.port)  # no fleet keys, no root keys: unsigned pushes accepted
    cart.start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [REPORTED])
    for scope_topic in (DESIRED, FLEET):
        report = push(watcher, scope_topic, {"version": 1, "config": HOSTILE})
        assert report["status"] == "rejected"
        refused = errors_by_key(report)
        assert "security.token_keys" in refused
        assert "mqtt.host" in refused
        assert set(refused.values()) == {
            "not pushable: no root key is configured (security.root_keys is empty)"}
    report = push(watcher, DESIRED, {"version": 2, "config": {"demo": True}})
    assert "demo: must not be pushed" in report["errors"][0]
    assert cart.applied == []


def test_a_push_that_changes_nothing_says_so(broker, make_cart, make_watcher, keys):
    cart = make_cart(broker.port, extra={"security": {"root_keys": {"r1": keys["r1"]["pub"]}}})
    cart.start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [REPORTED])
    report = push(watcher, DESIRED, {"version": 1, "config": {"log_level": "INFO"}})
    assert report["status"] == "applied"
    assert report["changed"] == []
    assert report["warnings"] == ["cart config v1: changed nothing: every value it sets is "
                                  "already in effect"]
    # fleet_keys = {} over no fleet keys: nothing to change either (root-signed or not)
    report = push(watcher, DESIRED, signed(keys, "r1", 2, {"security": {"fleet_keys": {}}}))
    assert report["status"] == "applied"
    assert report["changed"] == []
    assert report["warnings"]


def test_cart_fleet_push_config_signs_root_pushes(broker, make_cart, make_watcher, keys,
                                                  tmp_path, capsys):
    cart = make_cart(broker.port, extra={"security": {
        "fleet_keys": {"f1": keys["f1"]["pub"]}, "root_keys": {"r1": keys["r1"]["pub"]}}})
    cart.start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [REPORTED])
    conf = tmp_path / "root.toml"
    conf.write_text(f'[security.token_keys]\nk5 = "{Issuer("k5").public}"\n')
    watcher.wait_for(REPORTED)
    time.sleep(0.05)
    for kid, version, status in (("f1", 1, "rejected"), ("r1", 2, "applied")):
        assert fleet_main(["push-config", "--cart", CART, "--version", str(version), str(conf),
                           "--port", str(broker.port), "--key", str(keys[kid]["pem"]),
                           "--kid", kid]) == 0
        capsys.readouterr()
        watcher.wait_for(REPORTED, lambda d, v=version, s=status: d["status"] == s and (
            s == "rejected" or d["version"] == v))
    assert list(effective_config(str(cart.config_path), cart.store).security.token_keys) == [
        "k5"]
