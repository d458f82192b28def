"""The console's defences over plain HTTP: forged and cross-site POSTs, bad input, headers,
and what the resident stream lets out. Every refusal is checked to have done nothing."""

from __future__ import annotations

import http.client
import json
import logging
import socket
from pathlib import Path

import pytest

from tests.flows_support import Rig
from tests.support import wait_for
from tests.web.support import PIN, WebRig, login, request


def nothing_opened(rig: WebRig) -> None:
    assert rig.sim.opens() == 0
    assert rig.txs("locker.open") == []


def flash_of(rig: WebRig, cookie: str) -> str:
    return request(rig, "GET", "/attendant", cookie=cookie).body


def test_headers_and_cookie(web_rig: WebRig) -> None:
    for path in ("/", "/attendant", "/static/screen.css", "/no-such-page"):
        reply = request(web_rig, "GET", path)
        assert reply.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert request(web_rig, "GET", "/attendant").headers["Cache-Control"] == "no-store"
    assert request(web_rig, "GET", "/no-such-page").status == 404
    cookie = request(web_rig, "GET", "/attendant").headers["Set-Cookie"]
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=strict"} <= flags
    # Attendant pages are not served without a session, only the login form.
    assert "name=\"pin\"" in request(web_rig, "GET", "/attendant").body
    assert request(web_rig, "GET", "/attendant/report").status == 303


def test_forged_posts_do_nothing(web_rig: WebRig, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    cookie, csrf = login(web_rig)
    form = {"compartment": "A01", "reason": "forged"}
    cases = [
        ({**form}, cookie, {}),                                         # no form token
        ({**form, "csrf": csrf[:-2] + "xx"}, cookie, {}),               # a wrong one
        ({**form, "csrf": csrf}, None, {}),                             # no session
        ({**form, "csrf": csrf}, "cart_console=guessed", {}),           # an unknown session
        ({**form, "csrf": csrf}, cookie, {"Origin": "http://evil.example"}),
        ({**form, "csrf": csrf}, cookie, {"Origin": "null"}),
    ]
    for fields, cookie_sent, headers in cases:
        reply = request(web_rig, "POST", "/attendant/open", fields, cookie_sent, headers)
        assert reply.status == 403, (fields, headers)
        assert "未执行" in reply.body
        assert "nothing was done" in reply.body
    for path in ("/attendant/deposit", "/attendant/service", "/attendant/reprint"):
        assert request(web_rig, "POST", path, {"on": "1"}, cookie).status == 403
    nothing_opened(web_rig)
    assert web_rig.txs("compartment.out_of_service") == []
    assert web_rig.txs("deposit_mode") == []

    # The same request with the token and a same-origin Origin goes through.
    ok = request(web_rig, "POST", "/attendant/open", {**form, "csrf": csrf}, cookie,
                 {"Origin": web_rig.base})
    assert ok.status == 303
    assert ok.headers["Location"] == "/attendant"
    assert web_rig.sim.opens("A01") == 1
    # Neither the PIN nor a session id ever reaches the log.
    session_id = cookie.split("=", 1)[1]
    assert PIN not in caplog.text
    assert session_id not in caplog.text
    assert csrf not in caplog.text
    assert "without a valid form token" in caplog.text


def test_bad_input_refused(web_rig: WebRig) -> None:
    cookie, csrf = login(web_rig)

    def post(path: str, **fields: str) -> str:
        reply = request(web_rig, "POST", path, {**fields, "csrf": csrf}, cookie)
        assert reply.status == 303
        return flash_of(web_rig, cookie)

    assert "本车没有 Z99 号柜" in post("/attendant/open", compartment="Z99", reason="test")
    assert "No compartment Z99 on this cart" in post("/attendant/service", compartment="Z99",
                                                     on="1", reason="broken")
    page = post("/attendant/open", compartment="A01", reason="")
    assert "请填写开柜原因" in page
    assert "A reason for opening is required" in page
    assert "输入过长" in post("/attendant/open", compartment="A01", reason="x" * 201)
    assert "Input too long" in post("/attendant/open", compartment="A01" * 3, reason="x")
    assert "Enter a 26-character transaction id" in post("/attendant/reprint",
                                                         tx_id="'; DROP TABLE")
    assert "No receipt for transaction" in post("/attendant/reprint", tx_id="0" * 26)
    assert "Bad request" in post("/attendant/deposit", on="yes")
    big = request(web_rig, "POST", "/attendant/open",
                  {"compartment": "A01", "reason": "x" * 20_000, "csrf": csrf}, cookie)
    assert big.status == 413
    nothing_opened(web_rig)
    assert web_rig.txs("compartment.out_of_service") == []
    assert web_rig.txs("receipt.reprint") == []
    day = request(web_rig, "GET", "/attendant/report?day=2026-13-45", cookie=cookie)
    assert day.status == 303
    assert "日期无效" in request(web_rig, "GET", "/attendant/report", cookie=cookie).body


def test_no_pin_configured_refuses_login(tmp_path: Path) -> None:
    rig = WebRig(tmp_path, pin_hash="")
    try:
        page = request(rig, "GET", "/attendant")
        assert "no attendant PIN configured (cart-agent hash-pin)" in page.body
        cookie = page.cookie()
        done = request(rig, "POST", "/attendant/login", {"pin": "0000", "csrf": page.csrf()},
                       cookie)
        assert done.status == 303
        assert done.cookie() is None
        again = request(rig, "GET", "/attendant", cookie=cookie).body
        assert "尚未设置工作人员 PIN" in again
        assert "工作人员控制台" not in again
        assert rig.store.get_meta("web.pin_failures") is None
    finally:
        rig.stop()


def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        rig = Rig(tmp_path, web={"enabled": True, "port": port})
        try:
            web = wait_for(lambda: rig.daemon.supervisor.services().get("web"))
            wait_for(lambda: "cannot listen on 127.0.0.1:" in (web.health.error or ""),
                     what="the web service to report the port in use")
            assert rig.daemon.cart is not None
            assert rig.daemon.cart.health.ok
        finally:
            rig.stop()


def test_event_stream_shows_only_public_fields(web_rig: WebRig) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", web_rig.port, timeout=5)
    try:
        conn.request("GET", "/events")
        resp = conn.getresponse()
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        status_line = ""
        while not status_line.startswith("data:"):
            status_line = resp.readline().decode()
        assert json.loads(status_line[5:]) == {"online": False, "out_of_service": False}
        token = web_rig.issuer.token("ticket", service="gov")
        web_rig.sim.scanner.scan(token)
        lines: list[str] = []
        wait_for(lambda: lines.append(resp.readline().decode()) or "event: feedback\n" in lines,
                 what="a feedback event")
        data = json.loads(resp.readline().decode()[5:])
    finally:
        conn.close()
    assert data["kind"] == "accepted"
    assert data["big"] == "1"
    assert "政务服务 1 号" in data["zh"]
    assert "No. 1" in data["en"]
    assert set(data) == {"id", "kind", "zh", "en", "reason", "big", "hold_s"}
    assert data["hold_s"] == 20  # web.answer_s's default, as the config says now
    jti = web_rig.txs("ticket.issue")[0]["data"]["jti"]
    assert jti not in json.dumps(data)
    assert token not in json.dumps(data)


def test_console_shows_the_clock_alarm(web_rig: WebRig) -> None:
    cookie, _csrf = login(web_rig)
    page = request(web_rig, "GET", "/attendant", cookie=cookie).body
    assert 'id="clock-state"' in page
    assert '正常 <span lang="en">OK</span>' in page
    # The cart's records say it is two days later than the wall clock: behind, corrected.
    web_rig.daemon.trusted.loaded(web_rig.clock() + 2 * 86_400, "store")
    page = request(web_rig, "GET", "/attendant", cookie=cookie).body
    assert "Wall clock behind" in page
    assert '<span lang="en">offset</span> +172800 s' in page
