"""A healthy simulated cart for `cart-agent doctor` (tests/web/test_doctor.py): the real daemon
on pty simulators, a real Mosquitto that wants a password, a resident screen open in Chromium,
and stand-ins for the two systemd tools this container cannot answer (no systemd as PID 1):
`timedatectl` and `systemctl` on PATH, printing what they print on a cart."""

from __future__ import annotations

import grp
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.mqtt_broker import MosquittoBroker, make_password_file
from tests.support import wait_for
from tests.web.support import WebRig

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-bc-test"
NTP_SYNCED = "NTP=yes\nNTPSynchronized=yes\nTimeUSec=Wed 2026-12-02 18:00:00 UTC\n"
UNIT_OK = "LoadState=loaded\nUnitFileState=enabled\nActiveState=active\nSubState=running\n"
FAKE_TOOL = '#!/bin/sh\ncat "$(dirname "$0")/{name}.out"\n'


def give_group(link: str, group: str = "dialout", mode: int = 0o660) -> None:
    """What the cart's udev rule does to the adapter's node."""
    real = os.path.realpath(link)
    os.chown(real, -1, grp.getgrnam(group).gr_gid)
    os.chmod(real, mode)


class DoctorCart:
    def __init__(self, tmp: Path, password: str = PASSWORD) -> None:
        self.tmp = tmp
        users = make_password_file(tmp / "broker-passwd", {"bc-test": PASSWORD})
        self.broker = MosquittoBroker(tmp / "mosq", password_file=users).start()
        self.password_file = tmp / "mqtt-password"
        self.password_file.write_text(password + "\n")
        self.bin = tmp / "bin"
        self.bin.mkdir()
        for tool, out in (("timedatectl", NTP_SYNCED), ("systemctl", UNIT_OK)):
            (self.bin / tool).write_text(FAKE_TOOL.format(name=tool))
            (self.bin / tool).chmod(0o755)
            self.set_tool(tool, out)
        self.rig = WebRig(tmp, mqtt={"enabled": True, "host": "127.0.0.1",
                                     "port": self.broker.port, "username": "bc-test",
                                     "password_file": str(self.password_file),
                                     "reconnect_max_s": 2.0})
        for sim in (self.rig.sim.scanner, self.rig.sim.printer, self.rig.sim.locker):
            give_group(sim.path)

    def set_tool(self, tool: str, output: str) -> None:
        (self.bin / f"{tool}.out").write_text(output)

    def wait_online(self) -> None:
        sync = self.rig.daemon.sync
        assert sync is not None
        wait_for(sync.online, what="the agent to reach the broker")

    def show_resident_screen(self, page: Any) -> None:
        from playwright.sync_api import expect

        page.goto(self.rig.base + "/?kiosk=1")
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        web = self.rig.web
        wait_for(lambda: web.health.snapshot().get("resident_screens") == 1,
                 what="the resident screen's event stream")

    def doctor(self, *args: str) -> tuple[int, dict[str, Any]]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ.get('PATH', '')}"}
        done = subprocess.run(
            [sys.executable, "-m", "agent", "doctor", "-c", str(self.rig.config_path),
             "--json", *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=60,
            check=False)
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)

    def stop_agent(self) -> None:
        self.rig.daemon.stop_event.set()
        self.rig.thread.join(10)

    def close(self) -> None:
        self.rig.stop()
        self.broker.close()


def failed(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["status"] == "fail"}


def status_of(report: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in report["checks"]}
