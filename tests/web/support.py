"""The screens under test: a Rig (the real daemon on simulators) with the web service on a free
port, plain HTTP helpers that follow no redirects, and the headless Chromium settings."""

from __future__ import annotations

import http.client
import os
import re
import urllib.parse
from pathlib import Path
from typing import Any

from agent.web.server import WebService
from tests.flows_support import Clock, Rig
from tests.support import wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOC_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
REFRESH_ENV = "CART_REFRESH_SCREENSHOTS"


class ScreenshotDir:
    """Where the screen tests write screenshots: `SCREENSHOTS / "name.png"`.

    A test run writes them under the running test's own tmp dir, so running the tests never
    changes the repository. The documented ones in docs/screenshots/ change only when asked:
    `scripts/screenshots` (which sets CART_REFRESH_SCREENSHOTS=1)."""

    def __init__(self) -> None:
        self.test_dir: Path | None = None  # set for each test by an autouse fixture

    @property
    def folder(self) -> Path:
        if os.environ.get(REFRESH_ENV) == "1":
            return DOC_SCREENSHOTS
        if self.test_dir is None:
            raise RuntimeError("screenshots are taken inside a test (tests/web/conftest.py)")
        return self.test_dir / "screenshots"

    def __truediv__(self, name: str) -> Path:
        path = self.folder / name  # a name may hold a subfolder: "a11y/idle.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


SCREENSHOTS = ScreenshotDir()
PIN = "246810"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class WebRig(Rig):
    """Rig with the screens on: `base` is the URL, `web` the running WebService."""

    def __init__(self, tmp: Path, pin_hash: str = "", clock: Clock | None = None,
                 web: dict[str, Any] | None = None, **patch: Any) -> None:
        super().__init__(tmp, clock=clock, web={"enabled": True, "port": 0, **(web or {})},
                         security={"attendant_pin_hash": pin_hash}, **patch)
        self.web: WebService = wait_for(lambda: self.daemon.supervisor.services().get("web"),
                                        what="the web service")
        wait_for(lambda: self.web.health.ok, what="the web service to listen")
        self.port = int(self.web.port or 0)
        self.base = f"http://127.0.0.1:{self.port}"


class Reply:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: str) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def cookie(self) -> str | None:
        raw = self.headers.get("Set-Cookie")
        return raw.split(";", 1)[0] if raw else None

    def csrf(self) -> str:
        match = CSRF.search(self.body)
        assert match, "no form token on the page"
        return match.group(1)


def request(rig: WebRig, method: str, path: str, form: dict[str, str] | None = None,
            cookie: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", rig.port, timeout=10)
    try:
        head = dict(headers or {})
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form).encode()
            head["Content-Type"] = "application/x-www-form-urlencoded"
        if cookie:
            head["Cookie"] = cookie
        conn.request(method, path, body=body, headers=head)
        resp = conn.getresponse()
        return Reply(resp.status, resp.headers, resp.read().decode("utf-8"))
    finally:
        conn.close()


def login(rig: WebRig, pin: str = PIN) -> tuple[str, str]:
    """Log in over plain HTTP; returns (cookie, csrf) of the logged-in session."""
    page = request(rig, "GET", "/attendant")
    cookie = page.cookie()
    assert cookie
    done = request(rig, "POST", "/attendant/login", {"pin": pin, "csrf": page.csrf()}, cookie)
    assert done.status == 303, done.body
    fresh = done.cookie()
    assert fresh
    assert fresh != cookie
    console = request(rig, "GET", "/attendant", cookie=fresh)
    assert "工作人员控制台" in console.body
    return fresh, console.csrf()
