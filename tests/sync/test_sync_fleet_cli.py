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
from tests.sync.synckit import CART, REPORTED, wait_until


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
    assert len(public) == 43 and public in out
    assert run(capsys, "keygen", "--out", str(tmp_path), "--kid", "k7")[0] == 2  # no overwrite

    png = tmp_path / "token.png"
    code, out, _ = run(capsys, "issue-token", "--key", str(pem), "--kid", "k7", "--svc", "meal",
                       "--cart", CART, "--ttl", "15m", "--claim", 'items=["米饭","青菜"]',
                       "--claim", "name=张三", "--claim", "order=A-17", "--png", str(png))
    assert code == 0
    token = out.strip()
    claims = verify(token, key_map({"k7": public})).claims
    assert claims["items"] == ["米饭", "青菜"] and claims["name"] == "张三"
    assert claims["svc"] == "meal" and claims["cart"] == CART and claims["order"] == "A-17"
    assert claims["exp"] - claims["nbf"] == 900 and abs(claims["nbf"] - time.time()) < 5
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
    assert err.startswith("cart-fleet: ") and "Traceback" not in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["push-config", "--version", "1", "x.toml"])  # neither --cart nor --all
    assert exc.value.code == 2
    assert "one of the arguments --cart --all is required" in capsys.readouterr().err


def test_unreachable_broker_exits_1(capsys):
    code, _out, err = run(capsys, "status", "--port", str(free_port()))
    assert code == 1 and "cannot connect" in err


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
    assert code == 0 and "retained" in out
    watcher.wait_for(REPORTED, lambda d: d["version"] == 4 and d["status"] == "applied")
    wait_until(lambda: cart.service.online() and cart.applied, 10, what="the cart back online")
    assert cart.applied[-1].log_level == "WARNING"

    # Unsigned: the cart refuses it and says so.
    code, _, _ = run(capsys, "push-config", "--all", "--version", "1", str(conf), "--port", port)
    assert code == 0
    watcher.wait_for(REPORTED, lambda d: d["status"] == "rejected")

    code, out, _ = run(capsys, "status", "--json", "--port", port, "--wait", "0.8")
    assert code == 0
    rows = json.loads(out)
    mine = next(r for r in rows if r["cart"] == CART)
    assert mine["state"] == "online" and mine["config_version"] == 4
    assert mine["queue"]["pending"] >= 0 and mine["devices"]["printer"]["error"] == "paper out"
    assert mine["config_status"] == "rejected"
    code, out, _ = run(capsys, "status", "--port", port, "--wait", "0.5")
    assert code == 0 and CART in out and "online" in out

    code, out, _ = run(capsys, "command", CART, "open_compartment", "compartment=01",
                       "--port", port, "--timeout", "5", *signing)
    assert code == 0
    assert json.loads(out)["result"] == {"done": "open_compartment"}
    assert cart.executed == [("open_compartment", {"compartment": "01"})]  # kept a string

    code, out, _ = run(capsys, "command", CART, "open_compartment", "compartment=Z99",
                       "--port", port, *signing)
    assert code == 1 and json.loads(out)["error"] == "no such compartment: Z99"

    code, out, _ = run(capsys, "command", CART, "ping", "--port", port)  # unsigned
    assert code == 1 and "must be signed" in json.loads(out)["error"]

    code, _, err = run(capsys, "command", "bc-77", "ping", "--port", port, "--timeout", "0.3")
    assert code == 1 and "no answer from cart bc-77" in err
