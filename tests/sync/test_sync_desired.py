"""Desired config pushed over a real broker: applied, rejected, persisted, layered, rolled back."""

from __future__ import annotations

import json

import pytest

from agent.jws import sign
from agent.store.config_layers import config_versions
from agent.sync.desired import effective_config
from fleet.keys import keygen, read_signing_key
from tests.mqtt_broker import free_port
from tests.support import wait_for
from tests.sync.synckit import DESIRED, FLEET, REPORTED, STATUS, push


@pytest.fixture
def root(tmp_path):
    """A root key: the broker endpoint (mqtt.port here) is pushable only with its signature."""
    pem, pub = keygen(tmp_path / "root", "r1")
    key = read_signing_key(pem)
    return {"extra": {"security": {"root_keys": {"r1": pub.read_text().strip()}}},
            "sign": lambda doc: sign({**doc, "cart": "bc-01"}, key, "r1")}


def tx_types(cart) -> list[str]:
    rows = cart.store.query("SELECT type FROM transactions WHERE type LIKE 'config.%' ORDER BY seq")
    return [r["type"] for r in rows]


def test_applied_reported_and_kept_across_restart(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [REPORTED, STATUS])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    report = push(watcher, DESIRED, {"version": 3, "config": {"log_level": "DEBUG",
                                                               "retention_days": 9}})
    assert report["status"] == "applied"
    assert report["errors"] == []
    assert report["version"] == 3
    assert report["fleet_version"] is None
    assert set(report) == {"version", "fleet_version", "status", "errors", "at", "changed",
                           "warnings"}
    assert report["changed"] == ["log_level", "retention_days"]
    assert report["warnings"] == []
    assert cart.applied[-1].log_level == "DEBUG"
    assert cart.applied[-1].retention_days == 9
    watcher.wait_for(STATUS, lambda d: d["config_version"] == 3)
    assert tx_types(cart) == ["config.applied"]

    # Restart: the pushed layer holds (the daemon starts from effective_config), and the
    # retained copy redelivered on reconnect is not applied a second time.
    cart.stop()
    cfg = effective_config(str(cart.config_path), cart.store)
    assert cfg.log_level == "DEBUG"
    assert cfg.retention_days == 9
    cart.start()
    cart.wait_online()
    watcher.wait_for(REPORTED, lambda d: d["version"] == 3)
    assert tx_types(cart) == ["config.applied"]
    assert config_versions(cart.store) == {"config_version": 3, "fleet_config_version": None}


def test_rejections_change_nothing(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [REPORTED])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    assert push(watcher, DESIRED, {"version": 5, "config": {"log_level": "WARNING"}}
                )["status"] == "applied"

    cases = [
        ({"version": 6, "config": {"surprise": 1}}, "surprise: Extra inputs are not permitted"),
        ({"version": 7, "config": {"mqtt": {"keepalive": 1}}}, "mqtt.keepalive"),
        ({"version": 8, "config": {"cart_id": "bc-99"}}, "cart_id: must not be pushed"),
        ({"version": 9, "config": {"data_dir": "/tmp/x"}}, "data_dir: must not be pushed"),
        ({"version": 10, "config": {"mqtt": {"enabled": False}}}, "mqtt.enabled"),
        ({"version": 4, "config": {"log_level": "ERROR"}}, "older than the latest seen (10)"),
        ({"version": 10, "config": {"log_level": "ERROR"}}, "the same as the latest seen"),
        ({"version": "11", "config": {}}, "version must be an integer"),
        ({"version": True, "config": {}}, "version must be an integer"),
        ({"version": 0, "config": {}}, "version must be 1.."),
        ({"version": 12, "config": []}, "config must be an object"),
        ({"version": 12}, "config must be an object"),
        ({"version": 12, "config": {}, "extra": 1}, "unknown member(s): extra"),
        (b"not json at all", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"version": 12, "version": 13, "config": {}}', "duplicate member"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps({"version": 12, "config": {"x": "a" * 300_000}}), "more than 262144"),
    ]
    for payload, reason in cases:
        report = push(watcher, DESIRED, payload)
        assert report["status"] == "rejected", (payload, report)
        assert any(reason in e for e in report["errors"]), (reason, report["errors"])
        assert report["version"] == 5  # still in effect
    assert cart.service.online()
    assert [c.log_level for c in cart.applied] == ["WARNING"]
    assert effective_config(str(cart.config_path), cart.store).log_level == "WARNING"
    assert tx_types(cart).count("config.rejected") == len(cases)
    # A good one afterwards still goes through: nothing was left half-applied.
    assert push(watcher, DESIRED, {"version": 20, "config": {"log_level": "ERROR"}}
                )["status"] == "applied"
    assert cart.applied[-1].log_level == "ERROR"


def test_fleet_wide_and_per_cart_layers(broker, make_cart, make_watcher):
    watcher = make_watcher(broker.port, [REPORTED])
    cart = make_cart(broker.port).start()
    cart.wait_online()
    report = push(watcher, FLEET, {"version": 2, "config": {"log_level": "WARNING",
                                                             "retention_days": 7}})
    assert report["status"] == "applied"
    assert report["fleet_version"] == 2
    report = push(watcher, DESIRED, {"version": 1, "config": {"log_level": "ERROR"}})
    assert (report["version"], report["fleet_version"]) == (1, 2)
    cfg = cart.applied[-1]
    assert cfg.log_level == "ERROR"
    assert cfg.retention_days == 7
    # A later fleet push does not override the cart's layer.
    push(watcher, FLEET, {"version": 3, "config": {"log_level": "INFO", "retention_days": 8}})
    cfg = cart.applied[-1]
    assert cfg.log_level == "ERROR"
    assert cfg.retention_days == 8
    # The fleet layer is validated with the cart layer over it, whole.
    report = push(watcher, FLEET, {"version": 4, "config": {"retention_days": 0}})
    assert report["status"] == "rejected"
    assert "retention_days" in report["errors"][0]
    assert config_versions(cart.store) == {"config_version": 1, "fleet_config_version": 3}


def test_a_config_the_runtime_cannot_take_is_never_recorded_applied(broker, make_cart,
                                                                    make_watcher):
    watcher = make_watcher(broker.port, [REPORTED])
    cart = make_cart(broker.port, fail_on_config=True).start()
    cart.wait_online()
    report = push(watcher, DESIRED, {"version": 1, "config": {"log_level": "DEBUG"}})
    assert report["status"] == "rejected"
    assert "not applied: RuntimeError: cannot rebuild the devices" in report["errors"][0]
    assert report["version"] is None
    assert effective_config(str(cart.config_path), cart.store).log_level == "INFO"
    # Only the outcome is recorded: it was never "applied", not even for a moment.
    assert tx_types(cart) == ["config.rejected"]
    assert cart.store.query("SELECT state FROM config_versions") == [{"state": "rejected"}]
    assert "applied" not in [r["status"] for r in watcher.on(REPORTED)[1:]]


def test_config_that_cuts_the_cart_off_is_rolled_back(broker, make_cart, make_watcher, root):
    watcher = make_watcher(broker.port, [REPORTED, STATUS])
    cart = make_cart(broker.port, extra=root["extra"]).start()
    cart.wait_online()
    bad_port = free_port()  # nothing listens there
    report = push(watcher, DESIRED, root["sign"]({"version": 1, "config": {
        "mqtt": {"port": bad_port, "config_rollback_s": 1.0}}}))
    assert report["status"] == "applied"
    wait_for(lambda: not cart.service.online(), 5, what="the cart to move to the bad port")
    # After the grace period it goes back to the last good config and reports why.
    report = watcher.wait_for(REPORTED, lambda d: d["status"] == "rejected", timeout_s=10)
    assert "rolled back" in report["errors"][0]
    assert report["version"] is None
    cart.wait_online()
    assert cart.service.cfg.mqtt.port == broker.port
    assert cart.applied[-1].mqtt.port == broker.port
    rows = cart.store.query("SELECT state FROM config_versions WHERE scope = 'cart'")
    assert rows == [{"state": "rolled_back"}]
    assert tx_types(cart) == ["config.applied", "config.rejected"]
    # The retained v1 comes again on reconnect and is not applied again; a restart keeps the
    # rollback too.
    cart.stop()
    assert effective_config(str(cart.config_path), cart.store).mqtt.port == broker.port
    cart.start()
    cart.wait_online()
    assert cart.service.cfg.mqtt.port == broker.port
    assert tx_types(cart) == ["config.applied", "config.rejected"]


def test_probation_continues_across_a_restart(broker, make_cart, make_watcher, root):
    watcher = make_watcher(broker.port, [REPORTED])
    cart = make_cart(broker.port, extra=root["extra"]).start()
    cart.wait_online()
    push(watcher, DESIRED, root["sign"]({"version": 1, "config": {
        "mqtt": {"port": free_port(), "config_rollback_s": 1.5}}}))
    wait_for(lambda: not cart.service.online(), 5, what="the move to the bad port")
    cart.stop()
    # The daemon restarts with the pushed (bad) config in effect, and the clock keeps running.
    assert effective_config(str(cart.config_path), cart.store).mqtt.port != broker.port
    cart.start()
    cart.wait_online(10)
    assert cart.service.cfg.mqtt.port == broker.port
    report = watcher.wait_for(REPORTED, lambda d: d["status"] == "rejected")
    assert "rolled back" in report["errors"][0]


def test_a_stored_layer_that_no_longer_fits_the_file_is_left_out(tmp_path, make_cart):
    cart = make_cart(1883, extra={"locker": {"compartments": [
        {"id": "A01", "board": 20, "lock": 1}]}})
    with cart.store.write() as w:
        for scope, version, doc in [("fleet", 1, {"retention_days": 5}),
                                    ("cart", 1, {"locker": {"protocol": "kerong"}})]:
            w.execute("INSERT INTO config_versions(scope, version, document, state, "
                      "received_at, errors) VALUES (?, ?, ?, 'applied', '', '[]')",
                      (scope, version, json.dumps(doc)))
    # kerong boards are 0-15: the cart layer cannot lie over this file any more.
    cfg = effective_config(str(cart.config_path), cart.store)
    assert cfg.locker.protocol == "bs"
    assert cfg.retention_days == 5
