"""`cart-fleet` end to end: keys, tokens, push-config, status, command; exit codes 0/1/2."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import pytest

from agent.jws import key_map, verify
from fleet.cli import main
from tests.mqtt_broker import free_port
from tests.support import wait_for
from tests.sync.synckit import CART, CMD, REPORTED, RESULT, STATUS


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_and_issue_token(tmp_path: Path, capsys):
    code, out, _ = run(capsys, "keygen", "--out", str(tmp_path), "--kid", "k7")
    assert code == 0
    pem, pub = tmp_path / "k7.pem", tmp_path / "k7.pub"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    public = pub.read_text().strip()
    assert len(public) == 43
    assert public in out
    assert run(capsys, "keygen", "--out", str(tmp_path), "--kid", "k7")[0] == 2  # no overwrite

    png = tmp_path / "token.png"
    code, out, _ = run(capsys, "issue-token", "--key", str(pem), "--kid", "k7", "--svc", "meal",
                       "--cart", CART, "--ttl", "15m", "--claim", 'items=["米饭","青菜"]',
                       "--claim", "name=张三", "--claim", "order=A-17", "--png", str(png))
    assert code == 0
    token = out.strip()
    claims = verify(token, key_map({"k7": public})).claims
    assert claims["items"] == ["米饭", "青菜"]
    assert claims["name"] == "张三"
    assert claims["svc"] == "meal"
    assert claims["cart"] == CART
    assert claims["order"] == "A-17"
    assert claims["exp"] - claims["nbf"] == 900
    assert abs(claims["nbf"] - time.time()) < 5
    assert len(claims["jti"]) >= 16
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    zxingcpp = pytest.importorskip("zxingcpp")
    from PIL import Image

    decoded = zxingcpp.read_barcodes(Image.open(png))
    assert [d.text for d in decoded] == [token]
    assert decoded[0].format == zxingcpp.BarcodeFormat.QRCode  # not a Micro QR


@pytest.mark.parametrize("argv", [
    ["issue-token", "--key", "/nonexistent.pem", "--kid", "k1", "--svc", "meal"],
    ["issue-token", "--key", "KEY", "--kid", "k1", "--svc", "meal", "--ttl", "forever"],
    ["issue-token", "--key", "KEY", "--kid", "k1", "--svc", "meal", "--claim", "novalue"],
    ["issue-token", "--key", "KEY", "--kid", "k1", "--svc", "meal", "--claim", "jti=x"],
    ["issue-token", "--key", "KEY", "--kid", "bad kid", "--svc", "meal"],
    ["push-config", "--cart", CART, "--version", "1", "/nonexistent.toml"],
    ["push-config", "--cart", "BAD_ID", "--version", "1", "CONF"],
    ["push-config", "--cart", CART, "--version", "0", "CONF"],
    ["push-config", "--cart", CART, "--version", "1", "CONF", "--key", "KEY"],
    ["push-config", "--cart", CART, "--version", "1", "NOTTOML"],
])
def test_bad_input_exits_2_without_a_traceback(tmp_path: Path, capsys, argv):
    main(["keygen", "--out", str(tmp_path), "--kid", "k1"])
    (tmp_path / "c.toml").write_text('log_level = "DEBUG"\n')
    (tmp_path / "bad.toml").write_text("log_level = = \n")
    subst = {"KEY": str(tmp_path / "k1.pem"), "CONF": str(tmp_path / "c.toml"),
             "NOTTOML": str(tmp_path / "bad.toml")}
    capsys.readouterr()
    code, _out, err = run(capsys, *[subst.get(a, a) for a in argv])
    assert code == 2
    assert err.startswith("cart-fleet: ")
    assert "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["push-config", "--version", "1", "x.toml"])  # neither --cart nor --all
    assert exc.value.code == 2
    assert "one of the arguments --cart --all is required" in capsys.readouterr().err


def test_unreachable_broker_exits_1(capsys):
    code, _out, err = run(capsys, "status", "--port", str(free_port()))
    assert code == 1
    assert "cannot connect" in err


def test_push_status_and_commands_against_a_running_cart(
        tmp_path, broker, make_cart, make_watcher, capsys):
    port = str(broker.port)
    main(["keygen", "--out", str(tmp_path), "--kid", "f1"])
    capsys.readouterr()
    public = (tmp_path / "f1.pub").read_text().strip()
    cart = make_cart(broker.port, extra={"security": {"fleet_keys": {"f1": public}}}).start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [REPORTED])
    conf = tmp_path / "push.toml"
    conf.write_text('log_level = "WARNING"\n[mqtt]\ntelemetry_interval_s = 0.3\n')
    signing = ["--key", str(tmp_path / "f1.pem"), "--kid", "f1"]

    code, out, _ = run(capsys, "push-config", "--cart", CART, "--version", "4", str(conf),
                       "--port", port, *signing)
    assert code == 0
    assert "retained" in out
    watcher.wait_for(REPORTED, lambda d: d["version"] == 4 and d["status"] == "applied")
    wait_for(lambda: cart.service.online() and cart.applied, 10, what="the cart back online")
    assert cart.applied[-1].log_level == "WARNING"

    # Unsigned: the cart refuses it and says so.
    code, _, _ = run(capsys, "push-config", "--all", "--version", "1", str(conf), "--port", port)
    assert code == 0
    watcher.wait_for(REPORTED, lambda d: d["status"] == "rejected")

    code, out, _ = run(capsys, "status", "--json", "--port", port, "--wait", "0.8")
    assert code == 0
    rows = json.loads(out)
    mine = next(r for r in rows if r["cart"] == CART)
    assert mine["state"] == "online"
    assert mine["config_version"] == 4
    assert mine["queue"]["pending"] >= 0
    assert mine["devices"]["printer"]["error"] == "paper out"
    assert mine["config_status"] == "rejected"
    assert isinstance(mine["since"], str)
    assert mine["clock"] == {"source": "wall", "offset_s": 0.0, "alarm": None}
    code, out, _ = run(capsys, "status", "--port", port, "--wait", "0.5")
    assert code == 0
    assert CART in out
    assert "online" in out

    code, out, _ = run(capsys, "command", CART, "open_compartment", "compartment=01",
                       "--port", port, "--timeout", "5", *signing)
    assert code == 0
    assert json.loads(out)["result"] == {"done": "open_compartment"}
    assert cart.executed == [("open_compartment", {"compartment": "01"})]  # kept a string

    code, out, _ = run(capsys, "command", CART, "open_compartment", "compartment=Z99",
                       "--port", port, *signing)
    assert code == 1
    assert json.loads(out)["error"] == "no such compartment: Z99"

    code, out, _ = run(capsys, "command", CART, "ping", "--port", port)  # unsigned
    assert code == 1
    assert "must be signed" in json.loads(out)["error"]

    code, _, err = run(capsys, "command", "bc-77", "ping", "--port", port, "--timeout", "0.3")
    assert code == 1
    assert "no answer from cart bc-77" in err


def test_issue_token_help_documents_every_option(capsys):
    from fleet.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "cmd").choices["issue-token"]
    with pytest.raises(SystemExit) as exc:
        main(["issue-token", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for action in sub._actions:
        assert action.help, f"{action.option_strings} has no help"
        for option in action.option_strings:
            assert option in text
    for svc in ("parcel", "meal", "ticket", "courier"):
        assert svc in text


@pytest.mark.parametrize(("argv", "says"), [
    (["--svc", "bogus"], "invalid choice: 'bogus'"),
    (["--svc", "ticket"], "needs service=CODE"),
    (["--svc", "meal", "--claim", "order=A-1"], "claim 'items' must be a list"),
    (["--svc", "parcel", "--claim", "iat=5", "--claim", "parcel=SF1"], "iat"),
])
def test_issue_token_refuses_what_a_cart_would_refuse(tmp_path: Path, capsys, argv, says):
    main(["keygen", "--out", str(tmp_path), "--kid", "k1"])
    capsys.readouterr()
    argv = ["issue-token", "--key", str(tmp_path / "k1.pem"), "--kid", "k1", *argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusal (choices)
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert says in err


def _retained(port: int, topic: str) -> dict | None:
    from fleet.client import BrokerOptions
    from fleet.operations import decode_control
    from fleet.watch import read_retained

    payload = read_retained(BrokerOptions(port=port), [topic]).get(topic)
    return decode_control(payload) if payload else None


def test_push_config_checks_the_document_with_the_cart_models(tmp_path, broker, capsys):
    port = str(broker.port)
    desired = f"carts/{CART}/config/desired"
    cases = {
        'colour = "red"\n': "colour: unknown key",
        '[mqtt]\ncolour = "red"\n': "mqtt.colour: unknown key",
        "[mqtt]\nport = 99999\n": "mqtt.port: Input should be less than or equal to 65535",
        '[[locker.compartments]]\nid = "A01"\nboard = 1\n': "locker.compartments[0].lock: "
                                                          "Field required",
        'data_dir = "/tmp/x"\n': "data_dir: must not be pushed",
        "[mqtt]\nenabled = false\n": "mqtt.enabled: must not be pushed as false",
    }
    for i, (text, says) in enumerate(cases.items()):
        conf = tmp_path / f"bad{i}.toml"
        conf.write_text(text)
        code, out, err = run(capsys, "push-config", "--cart", CART, "--version", "13",
                             str(conf), "--port", port)
        assert code == 2
        assert out == "", text
        assert says in err, err
    assert _retained(broker.port, desired) is None  # nothing was published

    # A rule that needs other keys the cart's file may hold: a note, and it is published.
    conf = tmp_path / "printer.toml"
    conf.write_text('[printer]\nkind = "network"\nport = 9100\n')
    code, out, err = run(capsys, "push-config", "--cart", CART, "--version", "13", str(conf),
                         "--port", port)
    assert code == 0, err
    assert "note: printer.host: kind = 'network' needs host" in err
    published = _retained(broker.port, desired)
    assert published is not None
    assert isinstance(published.pop("at"), str)  # the fleet's clock, evidence for the cart's
    assert published == {"version": 13, "config": {"printer": {"kind": "network", "port": 9100}}}


def test_push_config_refuses_a_version_not_above_the_retained_one(tmp_path, broker, capsys):
    port = str(broker.port)
    desired = "carts/_all/config/desired"
    conf = tmp_path / "c.toml"
    conf.write_text('log_level = "WARNING"\n')
    assert run(capsys, "push-config", "--all", "--version", "13", str(conf), "--port",
               port)[0] == 0
    for version in ("5", "13"):
        code, out, err = run(capsys, "push-config", "--all", "--version", version, str(conf),
                             "--port", port)
        assert code == 2
        assert out == ""
        assert f"version {version} is not higher than version 13 retained for _all" in err
        assert "--version 14" in err
    assert _retained(broker.port, desired)["version"] == 13
    code, _out, err = run(capsys, "push-config", "--all", "--version", "5", str(conf),
                          "--port", port, "--force")
    assert code == 0, err
    assert _retained(broker.port, desired)["version"] == 5


def test_command_to_an_offline_cart_is_not_sent_and_would_be_lost(
        tmp_path, broker, make_cart, make_watcher, capsys):
    """What the broker really does with a command for a disconnected cart: accepts it and
    delivers it to nobody; the cart does not run it when it comes back."""
    port = str(broker.port)
    cart = make_cart(broker.port).start()
    cart.wait_online()
    watcher = make_watcher(broker.port, [RESULT, STATUS])
    cart.stop()  # a clean stop: the cart publishes its offline status itself
    watcher.wait_for(STATUS, lambda d: d["state"] == "offline")

    code, out, err = run(capsys, "command", CART, "ping", "--port", port, "--timeout", "2")
    assert code == 1
    assert out == ""
    assert f"cart {CART} is offline" in err
    assert "nothing was sent" in err
    assert "session is clean" in err

    # Sent anyway (by hand, bypassing the check): the broker acknowledges it...
    watcher.publish(CMD, json.dumps({"id": "cmd-while-away", "name": "open_compartment",
                                     "args": {"compartment": "02"}}))
    # ...and when the cart is back it never receives it: not queued, not retained.
    cart.start()
    cart.wait_online()
    watcher.wait_for(STATUS, lambda d: d["state"] == "online")
    code, out, _ = run(capsys, "command", CART, "open_compartment", "compartment=01",
                       "--port", port, "--timeout", "5")
    assert code == 0
    assert json.loads(out)["ok"] is True
    assert cart.executed == [("open_compartment", {"compartment": "01"})]
    sent_id = json.loads(out)["id"]
    # The tool had its answer; the watcher hears it a moment later.
    watcher.wait_for(RESULT, lambda d: d["id"] == sent_id)
    assert [r["id"] for r in watcher.on(RESULT)] == [sent_id]


def test_command_without_answer_says_what_became_of_it(broker, capsys):
    code, _, err = run(capsys, "command", "bc-77", "ping", "--port", str(broker.port),
                       "--timeout", "0.3")
    assert code == 1
    assert "no answer from cart bc-77 within 0.3 s" in err
    assert "the broker has no status from bc-77" in err
    assert "delivered it to nobody" in err


def test_push_config_reads_the_retained_version_under_the_fleet_acl(tmp_path, capsys):
    """With config/mosquitto/acl the fleet user may read what it retained: without that the
    version check would find nothing and let an older version replace a newer one."""
    from tests.mqtt_broker import ACL_FILE, MosquittoBroker, make_password_file

    passwd = make_password_file(tmp_path / "passwd", {"fleet": "fleet-pw"})
    broker = MosquittoBroker(tmp_path / "acl-broker", password_file=passwd,
                             acl_file=ACL_FILE).start()
    try:
        conf = tmp_path / "c.toml"
        conf.write_text('log_level = "WARNING"\n')
        login = ["--port", str(broker.port), "--username", "fleet", "--password", "fleet-pw"]
        assert run(capsys, "push-config", "--cart", CART, "--version", "13", str(conf),
                   *login)[0] == 0
        code, _out, err = run(capsys, "push-config", "--cart", CART, "--version", "5",
                              str(conf), *login)
        assert code == 2
        assert "not higher than version 13" in err
    finally:
        broker.close()
