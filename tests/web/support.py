"""The screens under test: a Rig (the real daemon on simulators) with the web service on a free
port, plain HTTP helpers that follow no redirects, and where screenshots go."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from pathlib import Path
from typing import Any

from agent.web.server import WebService
from tests.browser import screenshot_dir
from tests.flows_support import Clock, Rig
from tests.support import wait_for


class ScreenshotDir:
    """Where the screen tests write screenshots: `SCREENSHOTS / "name.png"` (see
    tests/browser.py: the test's own tmp dir, or docs/screenshots/ when refreshing)."""

    def __init__(self) -> None:
        self.test_dir: Path | None = None  # set for each test by an autouse fixture

    def __truediv__(self, name: str) -> Path:
        if self.test_dir is None:
            raise RuntimeError("screenshots are taken inside a test (tests/web/conftest.py)")
        path = screenshot_dir(self.test_dir) / name  # a name may hold a subfolder: "a11y/x.png"
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
