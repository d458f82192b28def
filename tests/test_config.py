"""Config: every problem named by its key path; the CLI exits 2 with one line per problem."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import ConfigError, load, overlay, validate
from tests.support import Mounted, can_mount, offline_config, write_config

REPO = Path(__file__).resolve().parents[1]


def problems(doc: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate(doc)
    return info.value.problems


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "agent", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO)


def test_demo_config_is_valid_and_says_it_is_a_demo() -> None:
    cfg = load(REPO / "config" / "demo.toml")
    assert cfg.demo is True
    assert cfg.cart_id


def test_example_config_ships_a_placeholder_key_that_fails_validation() -> None:
    with pytest.raises(ConfigError) as info:
        load(REPO / "config" / "example.toml")
    assert info.value.problems == ["security.token_keys: key 'k1': public key is not base64url"]
    # with a real key in its place, everything else in the example validates
    from agent.config import read_document
    from tests.flows_support import Issuer

    doc = overlay(read_document(REPO / "config" / "example.toml"),
                  {"security": {"token_keys": {"k1": Issuer().public}}})
    assert validate(doc).cart_id == "bc-01"


def test_every_published_demo_key_is_refused_outside_a_demo_config() -> None:
    from agent.config import DEMO_PUBLIC_KEYS

    published = {p.read_text().strip() for p in (REPO / "config" / "demo-keys").glob("*.pub")}
    assert published
    assert published <= set(DEMO_PUBLIC_KEYS)
    for i, key in enumerate(sorted(published)):
        for where in ("token_keys", "fleet_keys", "root_keys"):
            doc = {"cart_id": "bc-01", "security": {where: {f"k{i}": key}}}
            with pytest.raises(ConfigError) as info:
                validate(doc)
            assert info.value.problems[0].startswith(f"security.{where}.k{i}: is the published")
            assert validate({**doc, "demo": True}).demo


def test_check_config_refuses_the_demo_key_in_a_real_config(tmp_path: Path) -> None:
    demo_key = (REPO / "config" / "demo-keys" / "demo-issuer.pub").read_text().strip()
    conf = write_config(tmp_path / "agent.toml", {
        "cart_id": "bc-01", "data_dir": str(tmp_path / "data"),
        "security": {"token_keys": {"k1": demo_key}}})
    out = subprocess.run([sys.executable, "-m", "agent", "check-config", "-c", str(conf)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "security.token_keys.k1: is the published demo-issuer" in (
        out.stderr)


def test_a_key_has_one_job() -> None:
    from tests.flows_support import Issuer

    key = Issuer().public
    with pytest.raises(ConfigError) as info:
        validate({"cart_id": "bc-01", "security": {"token_keys": {"k1": key},
                                                   "root_keys": {"r1": key}}})
    assert "root_keys.r1: the same key is already in token_keys.k1" in info.value.problems[0]


def test_errors_name_the_key_path() -> None:
    lines = problems({
        "cart_id": "BC_01",
        "mqtt": {"port": 99999, "qos": 7},
        "locker": {"compartments": [{"id": "A01", "board": 1, "lock": 30}]},
        "printer": {"kind": "network"},
    })
    joined = "\n".join(lines)
    assert "cart_id: String should match pattern" in joined
    assert "mqtt.port: Input should be less than or equal to 65535" in joined
    assert "mqtt.qos: Extra inputs are not permitted" in joined
    assert "locker.compartments[0].lock: Input should be less than or equal to 24" in joined
    assert "printer.host: kind = 'network' needs host" in joined


@pytest.mark.parametrize(("doc", "expected"), [
    ({"cart_id": "bc-01", "mqtt": {"keepalive": "thirty"}}, "mqtt.keepalive: Input should be"),
    ({"cart_id": "bc-01", "surprise": 1}, "surprise: Extra inputs are not permitted"),
    ({"cart_id": "bc-01", "locker": {"protocol": "modbus"}}, "locker.protocol: Input should be"),
    ({"cart_id": "bc-01", "timezone": "Mars/Olympus"},
     "timezone: unknown time zone 'Mars/Olympus'"),
    ({"cart_id": "bc-01", "security": {"token_keys": {"k1": "not-a-key"}}},
     "security.token_keys: key 'k1': public key is not base64url"),
    ({}, "cart_id: Field required"),
    ({"cart_id": "bc-01", "locker": {"compartments": [
        {"id": "A01", "board": 1, "lock": 1}, {"id": "A01", "board": 1, "lock": 2}]}},
     "duplicate id 'A01'"),
    ({"cart_id": "bc-01", "locker": {"protocol": "kerong", "compartments": [
        {"id": "A01", "board": 20, "lock": 1}]}}, "kerong boards are 0-15"),
])
def test_each_kind_of_bad_value(doc: dict, expected: str) -> None:
    joined = "\n".join(problems(doc))
    assert expected in joined


def test_every_problem_in_one_pass_in_one_key_format(tmp_path: Path) -> None:
    """Field errors and the rules between fields together, each under its own key: fixing
    the first problems must not reveal more."""
    from tests.flows_support import Issuer

    key = Issuer().public
    doc = offline_config(tmp_path, locker={"enabled": True, "protocol": "kerong", "compartments": [
        {"id": "A01", "board": 1, "lock": 1}, {"id": "A01", "board": 1, "lock": 1},
        {"id": "A03", "board": 20, "lock": 2}, {"id": "A04", "board": 2, "lock": 99}]},
        printer={"kind": "network", "width_chars": 40},
        mqtt={"cert_file": "/x.pem", "keepalive": 1},
        security={"token_keys": {"k1": key}, "fleet_keys": {"f1": key}})
    lines = problems(doc)
    assert lines == [
        "mqtt.keepalive: Input should be greater than or equal to 5",
        "printer.width_chars: Input should be 32, 42 or 48",
        "locker.compartments[3].lock: Input should be less than or equal to 24",
        "mqtt.key_file: cert_file and key_file go together",
        "printer.host: kind = 'network' needs host",
        "printer.port: kind = 'network' needs a numeric port",
        "locker.compartments[1].id: duplicate id 'A01'",
        "locker.compartments[1]: board 1 lock 1 used twice",
        "locker.compartments[2].board: kerong boards are 0-15, locks 1-16",
        "locker.compartments[3].lock: kerong boards are 0-15, locks 1-16",
        "security.fleet_keys.f1: the same key is already in token_keys.k1; a key has one job",
    ]
    out = cli("check-config", "-c", str(write_config(tmp_path / "bad.toml", doc)))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == lines


def test_overlay_merges_tables_and_replaces_lists() -> None:
    base = {"cart_id": "a", "mqtt": {"host": "h", "port": 1}, "locker": {"compartments": [1, 2]}}
    out = overlay(base, {"mqtt": {"port": 2}, "locker": {"compartments": [3]}})
    assert out == {"cart_id": "a", "mqtt": {"host": "h", "port": 2},
                   "locker": {"compartments": [3]}}
    assert base["mqtt"]["port"] == 1  # the base is not modified


def test_check_config_cli_exit_codes(tmp_path: Path) -> None:
    good = write_config(tmp_path / "good.toml", offline_config(tmp_path))
    ok = cli("check-config", "-c", str(good))
    assert ok.returncode == 0, ok.stderr
    assert "config OK" in ok.stdout

    bad = write_config(tmp_path / "bad.toml", offline_config(
        tmp_path, mqtt={"port": 0, "extra": True}, locker={"compartments": [
            {"id": "A01", "board": 1, "lock": 1}, {"id": "A02", "board": 1, "lock": 99}]}))
    out = cli("check-config", "-c", str(bad))
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert "mqtt.port: Input should be greater than or equal to 1" in lines
    assert "mqtt.extra: Extra inputs are not permitted" in lines
    assert any(line.startswith("locker.compartments[1].lock:") for line in lines)
    assert "Traceback" not in out.stderr


def test_malformed_missing_and_unwritable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('cart_id = "bc-01"\n[mqtt\nport = 1\n')
    out = cli("check-config", "-c", str(broken))
    assert out.returncode == 2
    assert "not valid TOML" in out.stderr
    assert "Traceback" not in out.stderr

    out = cli("status", "-c", str(tmp_path / "nope.toml"))
    assert out.returncode == 2
    assert "no such file" in out.stderr

    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    out = cli("check-config", "-c", str(binary))
    assert out.returncode == 2
    assert "Traceback" not in out.stderr



@pytest.mark.skipif(not can_mount() and os.geteuid() == 0,
                    reason="needs a read-only mount (root) or a non-root user")
def test_unwritable_data_dir(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    mount = None
    if os.geteuid() == 0:
        mount = Mounted(ro, read_only=True)  # root ignores permissions, not a read-only fs
    else:
        ro.mkdir()
        ro.chmod(0o500)
    try:
        cfg = write_config(tmp_path / "ro.toml", offline_config(tmp_path, data_dir=str(ro / "d")))
        out = cli("check-config", "-c", str(cfg))
        assert out.returncode == 2, out.stdout
        assert "data_dir:" in out.stderr
        assert "Traceback" not in out.stderr
        out = cli("run", "-c", str(cfg))
        assert out.returncode == 2
        assert "data_dir:" in out.stderr
    finally:
        if mount is not None:
            mount.close()
        else:
            ro.chmod(0o700)


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = write_config(tmp_path / "c.toml", offline_config(tmp_path, data_dir=str(blocker)))
    out = cli("check-config", "-c", str(cfg))
    assert out.returncode == 2
    assert "data_dir:" in out.stderr
    assert "not a directory" in out.stderr


def test_config_from_environment(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "env.toml", offline_config(tmp_path))
    out = subprocess.run([sys.executable, "-m", "agent", "check-config"], capture_output=True,
                         text=True, timeout=60, cwd=REPO,
                         env={**os.environ, "CART_AGENT_CONFIG": str(cfg)})
    assert out.returncode == 0
    assert "bc-test" in out.stdout


def test_named_files_must_exist(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "tls.toml", offline_config(tmp_path, mqtt={
        "enabled": True, "tls": True, "ca_file": str(tmp_path / "missing-ca.crt"),
        "password_file": str(tmp_path / "missing-pw")}))
    out = cli("check-config", "-c", str(cfg))
    assert out.returncode == 2
    assert f"mqtt.ca_file: {tmp_path / 'missing-ca.crt'} does not exist" in out.stderr
    assert "mqtt.password_file:" in out.stderr
