"""scripts/provision-cart against a scratch root (a directory standing in for `/`), with the
package, device and service steps recorded rather than run: every file checked, a second run
changes nothing and says so, and every unit the project ships passes `systemd-analyze verify`
as installed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agent.config import load
from tests.mqtt_broker import REPO

SCRIPT = REPO / "scripts" / "provision-cart"
KEY = "fq8oHGoh_oXtCeNHAzsMWrVe6U4_2lL2AkWXDYYXUz4"
FLEET_KEY = "2RkVPEXuu8gribeTf1jShyvHKvUSFempaSaoz0WQgDI"
SHIPPED_UNITS = sorted(p.name for p in (REPO / "systemd").glob("*.service"))


def provision(tmp: Path, *extra: str,
              broker: str = "mqtt.example.net") -> tuple[int, str, list[str]]:
    record = tmp / "record.txt"
    record.unlink(missing_ok=True)
    done = subprocess.run(
        [str(SCRIPT), "--cart-id", "bc-11", "--broker", broker,
         "--mqtt-password-file", str(tmp / "password"), "--ca-file", str(tmp / "ca.crt"),
         "--token-key", f"k1=@{tmp / 'k1.pub'}", "--fleet-key", f"f1={FLEET_KEY}",
         "--root", str(tmp / "root"), "--dry-packages", "--record", str(record), *extra],
        capture_output=True, text=True, timeout=120, check=False)
    commands = record.read_text().splitlines() if record.exists() else []
    return done.returncode, done.stdout + done.stderr, commands


@pytest.fixture
def inputs(tmp_path: Path) -> Path:
    (tmp_path / "root").mkdir()
    (tmp_path / "password").write_text("s3cret-bc-11\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n"
                                     "-----END CERTIFICATE-----\n")
    (tmp_path / "k1.pub").write_text(KEY + "\n")
    return tmp_path


def snapshot(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        what: Any = os.readlink(path) if path.is_symlink() else (
            path.read_bytes() if path.is_file() else "dir")
        out[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def ids(root: Path, table: str, name: str) -> list[str]:
    for line in (root / "etc" / table).read_text().splitlines():
        if line.split(":")[0] == name:
            return line.split(":")
    raise AssertionError(f"no {name} in {table}")


def mode_owner(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def test_provision_writes_every_file_and_records_the_system_steps(inputs: Path) -> None:
    code, out, commands = provision(inputs, "--attendant-pin-hash", "scrypt$x")
    assert code == 0, out
    root = inputs / "root"
    agent_uid = int(ids(root, "passwd", "cart-agent")[2])
    agent_gid = int(ids(root, "group", "cart-agent")[2])
    assert ids(root, "passwd", "cart-kiosk")[6] == "/usr/sbin/nologin"
    assert "cart-agent" in ids(root, "group", "dialout")[3].split(",")
    assert "cart-agent" in ids(root, "group", "lp")[3].split(",")
    assert "cart-kiosk" in ids(root, "group", "video")[3].split(",")

    shipped = {"etc/systemd/system/cart-agent.service": "systemd/cart-agent.service",
               "etc/systemd/system/cart-kiosk.service": "systemd/cart-kiosk.service",
               "etc/udev/rules.d/99-cart-agent.rules": "systemd/99-cart-agent.rules",
               "etc/pam.d/cart-kiosk": "systemd/cart-kiosk.pam",
               "etc/sysusers.d/cart-agent.conf": "systemd/cart-agent.sysusers.conf",
               "etc/sysusers.d/cart-kiosk.conf": "systemd/cart-kiosk.sysusers.conf"}
    for installed, source in shipped.items():
        assert (root / installed).read_bytes() == (REPO / source).read_bytes(), installed
        assert mode_owner(root / installed) == (0o644, 0, 0), installed

    conf = root / "etc" / "cart-agent"
    assert mode_owner(conf) == (0o750, 0, agent_gid)
    assert mode_owner(conf / "agent.toml") == (0o640, 0, agent_gid)
    assert mode_owner(conf / "mqtt-password") == (0o640, 0, agent_gid)
    assert (conf / "mqtt-password").read_text() == "s3cret-bc-11\n"
    assert "s3cret" not in out  # never printed
    assert (conf / "ca.crt").read_bytes() == (inputs / "ca.crt").read_bytes()
    assert (conf / "kiosk.env").read_text() == "KIOSK_URL=http://127.0.0.1:8080/?kiosk=1\n"
    cfg = load(conf / "agent.toml")  # the agent's own models accept it
    assert cfg.cart_id == "bc-11"
    m = cfg.mqtt
    assert (m.host, m.port, m.tls, m.username) == ("mqtt.example.net", 8883, True, "bc-11")
    assert (m.password_file, m.ca_file) == ("/etc/cart-agent/mqtt-password",
                                            "/etc/cart-agent/ca.crt")
    assert cfg.security.token_keys == {"k1": KEY}
    assert cfg.security.fleet_keys == {"f1": FLEET_KEY}
    assert cfg.security.attendant_pin_hash == "scrypt$x"
    assert len(cfg.locker.compartments) > 0  # the layout's (config/example.toml) kept
    assert mode_owner(root / "var/lib/cart-agent") == (0o700, agent_uid, agent_gid)
    assert os.readlink(root / "usr/local/bin/cart-agent") == "/opt/cart-agent/bin/cart-agent"
    for unit in ("cart-agent.service", "cart-kiosk.service"):
        link = root / "etc/systemd/system/multi-user.target.wants" / unit
        assert os.readlink(link) == f"/etc/systemd/system/{unit}"

    # What would have touched the running machine, in order.
    assert commands[0].startswith("apt-get install")
    for package in ("cage", "chromium", "python3-venv", "libzbar0", "systemd-timesyncd"):
        assert package in commands[0].split()
    assert commands[1:] == [
        "python3 -m venv /opt/cart-agent",
        f"/opt/cart-agent/bin/pip install --quiet '{REPO}[camera]'",
        "udevadm control --reload",
        "udevadm trigger --subsystem-match=tty --subsystem-match=usb",
        "systemctl daemon-reload",
        "systemctl restart cart-agent.service cart-kiosk.service",
        "/usr/local/bin/cart-agent doctor -c /etc/cart-agent/agent.toml"]


def test_a_second_run_changes_nothing_and_says_so(inputs: Path) -> None:
    assert provision(inputs)[0] == 0
    before = snapshot(inputs / "root")
    code, out, commands = provision(inputs)
    assert code == 0, out
    assert "nothing to change (already provisioned as asked)" in out
    assert snapshot(inputs / "root") == before
    assert not [c for c in commands if c.startswith(("udevadm", "systemctl daemon-reload",
                                                     "systemctl restart"))]


def test_a_changed_option_changes_only_its_file(inputs: Path) -> None:
    assert provision(inputs)[0] == 0
    before = snapshot(inputs / "root")
    code, out, commands = provision(inputs, broker="mqtt2.example.net:8884")
    assert code == 0, out
    after = snapshot(inputs / "root")
    assert [k for k in after if after[k] != before.get(k)] == ["etc/cart-agent/agent.toml"]
    assert "1 change(s):\n  /etc/cart-agent/agent.toml" in out
    assert "systemctl restart cart-agent.service cart-kiosk.service" in commands
    cfg = load(inputs / "root/etc/cart-agent/agent.toml")
    assert (cfg.mqtt.host, cfg.mqtt.port) == ("mqtt2.example.net", 8884)


@pytest.mark.parametrize(("bad", "why"), [
    (["--cart-id", "BC 11"], "--cart-id"),
    (["--token-key", "k1=not-a-key"], "not a base64url Ed25519 public key"),
    (["--broker", "mqtt.example.net:port"], "expected HOST or HOST:PORT"),
])
def test_bad_input_is_refused_before_anything_changes(inputs: Path, bad: list[str],
                                                      why: str) -> None:
    code, out, commands = provision(inputs, *bad)
    assert code == 2
    assert why in out
    assert list((inputs / "root").iterdir()) == []
    assert commands == []


def test_a_scratch_root_needs_dry_packages(inputs: Path) -> None:
    done = subprocess.run([str(SCRIPT), "--cart-id", "bc-11", "--broker", "h",
                           "--token-key", f"k1={KEY}", "--root", str(inputs / "root")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "needs --dry-packages" in done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd not installed")
def test_every_shipped_unit_passes_systemd_analyze_verify(inputs: Path) -> None:
    assert SHIPPED_UNITS == ["cart-agent.service", "cart-kiosk.service"]
    assert provision(inputs)[0] == 0
    root = inputs / "root"
    # What the recorded package steps would have installed, and systemd's own units.
    for exe in ("usr/bin/cage", "usr/bin/chromium", "opt/cart-agent/bin/cart-agent"):
        (root / exe).parent.mkdir(parents=True, exist_ok=True)
        (root / exe).write_text("#!/bin/sh\n")
        (root / exe).chmod(0o755)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)

    def verify(*units: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["systemd-analyze", "verify", f"--root={root}", *units],
                              capture_output=True, text=True, timeout=60, check=False)

    done = verify(*SHIPPED_UNITS)
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""
    # The check would catch a mistake: an unknown key, a missing program.
    unit = root / "etc/systemd/system/cart-kiosk.service"
    unit.write_text(unit.read_text().replace("Restart=always", "Restart=always\nRestartt=no"))
    assert "Unknown key" in verify("cart-kiosk.service").stderr
    (root / "usr/bin/cage").unlink()
    assert "is not executable" in verify("cart-kiosk.service").stderr
