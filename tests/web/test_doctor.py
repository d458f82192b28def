"""`cart-agent doctor` on a healthy simulated cart (every check passes, exit 0), then each
fault alone: a missing device, a device in the wrong group, a full disk, an unsynchronised
clock, a broker refusing the login. Each gives its own failing line, and only that one, with
exit 1. And without the agent running, the doctor drives the devices and logs in itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Mounted, can_mount, fill_disk, wait_for
from tests.web.doctor_support import DoctorCart, failed, give_group, status_of

pytestmark = pytest.mark.browser


@pytest.fixture
def cart(tmp_path: Path) -> Iterator[DoctorCart]:
    rig = DoctorCart(tmp_path)
    try:
        yield rig
    finally:
        rig.close()


def healthy(cart: DoctorCart, page: Any) -> None:
    cart.wait_online()
    cart.show_resident_screen(page)


def test_a_healthy_cart_passes_every_check(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    code, report = cart.doctor()
    assert failed(report) == {}
    assert code == 0
    assert report["ok"] is True
    status = status_of(report)
    for name in ("config", "scanner", "printer", "locker", "lock board 1", "lock board 2",
                 "data dir", "store", "disk", "clock ntp", "broker dns", "broker tcp",
                 "broker login", "broker round trip", "unit cart-agent", "unit cart-kiosk",
                 "kiosk", "clock trusted"):
        assert status[name] == "ok", name
    # Not applicable here: plain MQTT on loopback, no speaker, no lights.
    assert {n for n, s in status.items() if s == "skip"} == {"broker tls", "audio", "light"}
    kiosk = next(c for c in report["checks"] if c["name"] == "kiosk")
    assert "1 resident screen" in kiosk["detail"]


def test_a_missing_device(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    cart.rig.sim.scanner.unplug()
    code, report = cart.doctor()
    assert code == 1
    assert list(failed(report)) == ["scanner"]
    line = failed(report)["scanner"]
    assert "cart-scanner does not exist" in line["detail"]
    assert "udev" in line["fix"]


def test_a_device_in_the_wrong_group(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    give_group(cart.rig.sim.printer.path, "tty", 0o620)
    code, report = cart.doctor()
    assert code == 1
    assert list(failed(report)) == ["printer"]
    line = failed(report)["printer"]
    assert "belongs to group tty, not dialout" in line["detail"]
    assert 'GROUP="dialout"' in line["fix"]


def test_an_unsynchronised_clock(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    cart.set_tool("timedatectl", "NTP=yes\nNTPSynchronized=no\n")
    code, report = cart.doctor()
    assert code == 1
    assert list(failed(report)) == ["clock ntp"]
    assert "NTPSynchronized=no" in failed(report)["clock ntp"]["detail"]


def test_a_wall_clock_behind_the_evidence(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    # The cart's records say it is two days later than its wall clock (an RTC without battery).
    cart.rig.daemon.trusted.loaded(cart.rig.clock() + 2 * 86_400, "store")
    code, report = cart.doctor()
    assert code == 1
    assert list(failed(report)) == ["clock trusted"]
    line = failed(report)["clock trusted"]
    assert "the clock is behind" in line["detail"]
    assert "NTP" in line["fix"]


def test_a_unit_not_enabled(cart: DoctorCart, page: Any) -> None:
    healthy(cart, page)
    cart.set_tool("systemctl", "LoadState=loaded\nUnitFileState=disabled\n"
                               "ActiveState=inactive\nSubState=dead\n")
    code, report = cart.doctor()
    assert code == 1
    assert set(failed(report)) == {"unit cart-agent", "unit cart-kiosk"}
    assert failed(report)["unit cart-kiosk"]["fix"] == \
        "systemctl enable --now cart-kiosk.service"


def test_no_screen_showing_the_resident_page(cart: DoctorCart) -> None:
    cart.wait_online()  # everything else healthy; the kiosk's browser never came up
    code, report = cart.doctor()
    assert code == 1
    assert list(failed(report)) == ["kiosk"]
    assert "no screen shows it" in failed(report)["kiosk"]["detail"]
    assert "systemctl restart cart-kiosk" in failed(report)["kiosk"]["fix"]


def test_a_broker_refusing_the_login(tmp_path: Path, page: Any) -> None:
    cart = DoctorCart(tmp_path, password="not-the-password")
    try:
        cart.show_resident_screen(page)
        sync = cart.rig.daemon.sync
        assert sync is not None
        wait_for(lambda: "refused" in str(sync.health.error), what="the broker to refuse")
        code, report = cart.doctor()
        assert code == 1
        assert list(failed(report)) == ["broker login"]
        line = failed(report)["broker login"]
        assert "not authori" in line["detail"].lower()
        assert "mqtt.password_file" in line["fix"]
        assert status_of(report)["broker round trip"] == "skip"
    finally:
        cart.close()


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small tmpfs")
def test_a_full_disk(tmp_path: Path, page: Any) -> None:
    disk = Mounted(tmp_path / "data", size="16m")
    cart = None
    try:
        cart = DoctorCart(tmp_path)
        healthy(cart, page)
        code, report = cart.doctor()
        assert failed(report) == {}
        assert code == 0
        fill_disk(tmp_path / "data" / "ballast")
        code, report = cart.doctor()
        assert code == 1
        assert list(failed(report)) == ["disk"]
        assert "0.0 MiB free" in failed(report)["disk"]["detail"]
        assert "journalctl --vacuum-size" in failed(report)["disk"]["fix"]
    finally:
        if cart is not None:
            cart.close()
        disk.close()


def test_without_the_agent_the_doctor_drives_the_devices_and_logs_in(
        cart: DoctorCart) -> None:
    cart.wait_online()
    cart.stop_agent()
    code, report = cart.doctor()
    assert code == 1
    details = {c["name"]: c["detail"] for c in report["checks"]}
    status = status_of(report)
    # The devices, asked by the doctor itself over their real byte protocols.
    assert status["scanner"] == "ok"
    assert "readable" in details["scanner"]
    assert status["printer"] == "ok"
    assert "answers: ok" in details["printer"]
    assert status["lock board 2"] == "ok"
    assert "answers" in details["lock board 2"]
    # Logged in as the cart, a probe on its own topic acknowledged by the broker.
    assert status["broker login"] == "ok"
    assert "carts/bc-test/cmd/result" in details["broker round trip"]
    # Only the kiosk fails: nobody serves the screens.
    assert list(failed(report)) == ["kiosk"]

    cart.rig.sim.printer.set_paper_out()
    cart.password_file.write_text("wrong\n")
    code, report = cart.doctor()
    assert set(failed(report)) == {"printer", "broker login", "kiosk"}
    assert "paper out" in failed(report)["printer"]["detail"]
    assert "not authori" in failed(report)["broker login"]["detail"].lower()


def test_an_invalid_config_is_one_failing_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "agent.toml"
    bad.write_text('cart_id = "BAD ID"\n')
    done = subprocess.run([sys.executable, "-m", "agent", "doctor", "-c", str(bad)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert first.startswith("FAIL  config")
    assert "cart_id" in first
    assert "check-config" in first
