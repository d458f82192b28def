"""The attendant console in headless Chromium against the real daemon on simulators."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.devices.sim.escpos_decode import decode_escpos
from tests.support import wait_for
from tests.web.support import PIN, SCREENSHOTS, WebRig, request

pytestmark = pytest.mark.browser


def log_in(rig: WebRig, page: Any, pin: str = PIN) -> None:
    page.goto(rig.base + "/attendant")
    page.fill("#pin", pin)
    page.click("form.login button[type=submit]")


def flash(page: Any) -> Any:
    return page.locator(".flash")


def session_cookie(page: Any) -> str:
    cookies = page.context.cookies()
    found = [c for c in cookies if c["name"] == "cart_console"]
    assert found
    assert found[0]["httpOnly"]
    assert found[0]["sameSite"] == "Strict"
    return f"cart_console={found[0]['value']}"


def comp_action(page: Any, comp: str, form: str, reason: str) -> None:
    card = page.locator(f"#comp-{comp}")
    card.locator("summary").click()
    card.locator(f"form.{form} input[name=reason]").fill(reason)
    card.locator(f"form.{form} button").click()


def test_login_open_and_refusals(web_rig: WebRig, page: Any) -> None:
    rig = web_rig
    rig.scan(rig.issuer.token("courier", sub="c-007", name="王师傅"))
    rig.scan("SF1234567890")
    rig.close_door("A01")
    rig.wait_tx("parcel.deposit")
    rig.scan(rig.issuer.token("courier", sub="c-007"))

    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(rig.base + "/attendant")
    expect(page.locator("form.login")).to_be_visible()
    page.screenshot(path=str(SCREENSHOTS / "attendant-login.png"))
    log_in(rig, page)
    expect(flash(page)).to_contain_text("已登录")
    expect(page.locator(".bar")).to_contain_text("工作人员控制台")
    for device in ("scanner", "printer", "locker"):
        expect(page.locator(f"[data-device={device}] .pill")).to_have_text("正常 OK")
    expect(page.locator("#sync")).to_contain_text("离线 Offline")
    expect(page.locator("#comp-A01")).to_have_attribute("data-state", "holding")
    expect(page.locator("#comp-A01 .parcel")).to_have_text("SF1234567890")
    expect(page.locator("#comp-B02")).to_have_attribute("data-state", "free")

    # Open with a reason: the lock releases once, the reason is recorded.
    comp_action(page, "A03", "open-form", "顾客反映柜门卡住 door stuck")
    expect(flash(page)).to_contain_text("A03 号柜门已打开")
    assert rig.sim.opens("A03") == 1
    opened = rig.txs("locker.open")
    assert len(opened) == 1
    assert opened[0]["data"]["reason"] == "顾客反映柜门卡住 door stuck"
    assert opened[0]["data"]["by"] == "attendant"
    assert opened[0]["data"]["source"] == "console"
    wait_for(lambda: rig.compartment("A03").door == "open", what="A03 seen open")
    page.reload()
    expect(page.locator("#comp-A03")).to_have_attribute("data-state", "open")

    # An empty reason (spaces pass the browser's `required`): refused, nothing opened.
    comp_action(page, "A02", "open-form", "   ")
    expect(flash(page)).to_contain_text("请填写开柜原因，未执行")
    expect(flash(page)).to_contain_text("A reason for opening is required")
    assert rig.sim.opens("A02") == 0
    assert len(rig.txs("locker.open")) == 1

    # With the browser's own session cookie, a POST without the form token is refused.
    cookie = session_cookie(page)
    forged = request(rig, "POST", "/attendant/open",
                     {"compartment": "A02", "reason": "forged"}, cookie)
    assert forged.status == 403
    assert "nothing was done" in forged.body
    # A compartment this cart does not have, with a valid form token: refused, with words.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    unknown = request(rig, "POST", "/attendant/open",
                      {"compartment": "C09", "reason": "test", "csrf": csrf}, cookie)
    assert unknown.status == 303
    page.goto(rig.base + "/attendant")
    expect(flash(page)).to_contain_text("本车没有 C09 号柜")
    assert rig.sim.opens() == 2                  # the deposit and the one opening with a reason
    assert len(rig.txs("locker.open")) == 1

    page.click("text=退出 Log out")
    expect(flash(page)).to_contain_text("已退出")
    expect(page.locator("form.login")).to_be_visible()
    stale = request(rig, "POST", "/attendant/open",
                    {"compartment": "A02", "reason": "after logout", "csrf": csrf}, cookie)
    assert stale.status == 403
    assert rig.sim.opens("A02") == 0


def test_service_reprint_deposit_and_report(web_rig: WebRig, page: Any) -> None:
    rig = web_rig
    ticket = rig.scan(rig.issuer.token("ticket", service="gov"))
    wait_for(lambda: len(rig.sim.printer.receipts()) >= 1, what="the ticket")
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(rig, page)
    expect(flash(page)).to_contain_text("已登录")

    # Reprint from the list of recent receipts.
    row = page.locator("#receipts tbody tr").first
    expect(row).to_contain_text("政务服务 1 号")
    expect(row).to_contain_text(ticket.details["tx_id"])
    row.locator("button").click()
    expect(flash(page)).to_contain_text("正在补打凭条")
    wait_for(lambda: len(rig.sim.printer.receipts()) >= 2, what="the reprint")
    reprint = decode_escpos(rig.sim.printer.receipts()[1]).text
    assert "补打 REPRINT" in reprint
    assert "No. 1" in reprint
    assert rig.txs("receipt.reprint")[0]["data"]["tx_id"] == ticket.details["tx_id"]

    # Deposit mode without a badge, then off again.
    page.click("#deposit-toggle")
    expect(page.locator("#deposit-state")).to_have_text("开启 On")
    answer = rig.scan("YT9876543210")
    assert answer.kind == "deposit"
    assert answer.details["compartment"] == "A01"
    page.click("#deposit-toggle")
    expect(page.locator("#deposit-state")).to_have_text("关闭 Off")
    rig.close_door("A01")
    rig.wait_tx("parcel.deposit")

    # Out of service and back, each with a reason, shown in the grid.
    comp_action(page, "A04", "service-form", "锁坏了 lock broken")
    expect(flash(page)).to_contain_text("A04 号柜已停用")
    card = page.locator("#comp-A04")
    expect(card).to_have_attribute("data-state", "out_of_service")
    expect(card.locator(".oos-reason")).to_have_text("锁坏了 lock broken")
    assert rig.compartment("A04").out_of_service
    expect(page.locator("#comp-A01")).to_have_attribute("data-state", "holding")
    page.screenshot(path=str(SCREENSHOTS / "attendant-console.png"), full_page=True)
    comp_action(page, "A04", "service-form", "修好了 fixed")
    expect(flash(page)).to_contain_text("A04 号柜已恢复使用")
    expect(card).to_have_attribute("data-state", "free")
    changes = [t["data"] for t in rig.txs("compartment.out_of_service")]
    assert [(c["on"], c["reason"]) for c in changes] == [(True, "锁坏了 lock broken"),
                                                         (False, "修好了 fixed")]

    # The day's report on screen, then printed.
    page.click("text=日报 Day report")
    expect(page.locator("#parcels-in")).to_have_text("1")
    expect(page.locator("#parcels-out")).to_have_text("0")
    expect(page.locator("#parcels-waiting")).to_have_text("1")
    expect(page.locator("#tickets")).to_contain_text("政务服务 Government services")
    expect(page.locator("#by-type")).to_contain_text("排队取号 Queue ticket")
    page.screenshot(path=str(SCREENSHOTS / "attendant-report.png"), full_page=True)
    page.click("#print-report")
    expect(flash(page)).to_contain_text("日报")
    assert rig.wait_tx("report.printed")[0]["data"]["by"] == "attendant"
    wait_for(lambda: len(rig.sim.printer.receipts()) >= 3, what="the printed report")


def test_lockout_after_wrong_pins(tmp_path: Path, pin_hash: str, page: Any) -> None:
    rig = WebRig(tmp_path, pin_hash=pin_hash, web={"lockout_failures": 5, "lockout_s": 60})
    try:
        page.set_viewport_size({"width": 1280, "height": 800})
        for left in (4, 3, 2, 1):
            log_in(rig, page, pin="000000")
            expect(flash(page)).to_contain_text(f"PIN 不正确，还可尝试 {left} 次")
        log_in(rig, page, pin="000000")
        expect(flash(page)).to_contain_text("PIN 错误次数过多，已锁定至")
        until = rig.web.lockout.locked_until("127.0.0.1")  # this browser, not everyone
        assert until is not None
        assert 45 < until - rig.clock() <= 60
        # While locked even the right PIN is refused, and the page says until when.
        log_in(rig, page)
        expect(flash(page)).to_contain_text("Too many wrong PINs: locked until")
        expect(page.locator(".bar")).not_to_contain_text("工作人员控制台")
        page.screenshot(path=str(SCREENSHOTS / "attendant-locked.png"))
        page.reload()                                 # the form itself says it too
        expect(page.locator(".notice")).to_contain_text("PIN 错误次数过多，已锁定至")
        rig.clock.advance(61)
        log_in(rig, page)
        expect(flash(page)).to_contain_text("已登录")
        assert rig.web.lockout.failures("127.0.0.1") == 0
        assert rig.web.lockout.locked_until("192.0.2.7") is None
    finally:
        rig.stop()


def test_session_expires_when_idle(web_rig: WebRig, page: Any) -> None:
    log_in(web_rig, page)
    expect(flash(page)).to_contain_text("已登录")
    web_rig.web.sessions.idle_s = 0.2
    time.sleep(0.3)
    page.goto(web_rig.base + "/attendant")
    expect(page.locator("form.login")).to_be_visible()
