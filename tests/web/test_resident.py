"""The resident screen in headless Chromium: idle, then each answer pushed live within a second
of the scan on the simulated scanner, colour by kind, back to idle after web.answer_s (20 s by
default) unless a tap keeps the answer up."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.mqtt_broker import MosquittoBroker, free_port
from tests.support import wait_for
from tests.web.support import SCREENSHOTS, WebRig

pytestmark = pytest.mark.browser


def scan_and_see(rig: WebRig, page: Any, code: str, text: str) -> float:
    """Scan, wait for `text` on the screen; returns the seconds it took."""
    started = time.monotonic()
    rig.sim.scanner.scan(code)
    expect(page.locator("#answer-zh")).to_contain_text(text, timeout=3000)
    return time.monotonic() - started


def test_resident_screen_answers_live(web_rig: WebRig, page: Any) -> None:
    rig = web_rig
    page.clock.install()                  # the seconds back to idle, without waiting them
    page.goto(rig.base + "/")
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#idle h1")).to_contain_text("请将二维码对准扫描口")
    for what in ("取件码", "助餐码", "排队取号码", "快递员工牌", "政务服务"):
        expect(page.locator(".codes")).to_contain_text(what)
    # No broker configured: offline-first, said calmly.
    expect(page.locator("#offline")).to_contain_text("网络离线：记录已保存，联网后自动上传")
    page.screenshot(path=str(SCREENSHOTS / "resident-idle.png"))

    # A courier deposits a parcel: blue.
    badge = rig.issuer.token("courier", sub="c-007", name="王师傅")
    scan_and_see(rig, page, badge, "投递模式：王师傅")
    expect(page.locator("#answer")).to_have_class("answer kind-deposit")
    scan_and_see(rig, page, "SF1234567890", "A01 号柜门已打开")
    expect(page.locator("#answer-big")).to_have_text("A01")
    page.screenshot(path=str(SCREENSHOTS / "resident-deposit.png"))
    rig.close_door("A01")
    expect(page.locator("#answer-zh")).to_contain_text("已存入 A01")
    scan_and_see(rig, page, badge, "投递模式已结束")

    # The resident picks it up: green, within a second of the scan.
    pickup = rig.issuer.token("parcel", parcel="SF1234567890", cart="bc-test")
    took = scan_and_see(rig, page, pickup, "A01 号柜门已打开，取件后请关好柜门")
    assert took < 1.0, f"the answer took {took:.2f} s"
    expect(page.locator("#answer-en")).to_contain_text("please close the door afterwards")
    expect(page.locator("#answer-big")).to_have_text("A01")
    expect(page.locator("#answer")).to_have_class("answer kind-accepted")
    expect(page.locator("#idle")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "resident-accepted.png"))
    html = page.content()
    jti = rig.txs("parcel.pickup")[0]["data"]["jti"]
    assert pickup not in html
    assert jti not in html

    # The same code again: refused, calm amber, with when it was used.
    took = scan_and_see(rig, page, pickup, "此二维码已于")
    assert took < 1.0, f"the answer took {took:.2f} s"
    expect(page.locator("#answer-en")).to_contain_text("This code was already used on")
    expect(page.locator("#answer")).to_have_class("answer kind-refused")
    expect(page.locator("#answer-big")).to_be_hidden()
    page.screenshot(path=str(SCREENSHOTS / "resident-refused.png"))

    # A queue ticket shows its number big.
    scan_and_see(rig, page, rig.issuer.token("ticket", service="gov"), "政务服务 1 号")
    expect(page.locator("#answer-big")).to_have_text("1")
    expect(page.locator("#answer-en")).to_contain_text("Government services No. 1")

    # Twenty seconds (web.answer_s) after the last answer the screen is idle again.
    page.clock.fast_forward(19000)
    expect(page.locator("#answer")).to_be_visible()
    page.clock.fast_forward(1500)
    expect(page.locator("#idle")).to_be_visible()
    expect(page.locator("#answer")).to_be_hidden()


def test_a_tap_keeps_the_answer_up(tmp_path: Path, page: Any) -> None:
    rig = WebRig(tmp_path, web={"answer_s": 8})
    try:
        page.clock.install()
        page.goto(rig.base + "/")
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        answer, hint = page.locator("#answer"), page.locator("#answer-keep")
        refusal = "请扫描应用中的取件码"  # what a scan of plain text gets
        scan_and_see(rig, page, "hello", refusal)
        expect(hint).to_have_text("轻触屏幕可保持显示 Tap the screen to keep this")
        page.clock.fast_forward(5000)
        page.mouse.click(400, 300)          # anywhere on the screen
        expect(hint).to_contain_text("已保持显示，再次轻触返回")
        page.clock.fast_forward(120_000)    # far past web.answer_s: still up
        expect(answer).to_be_visible()
        expect(page.locator("#answer-zh")).to_have_text(refusal)

        # The next scan replaces it and counts down again, 8 s as configured.
        rig.sim.scanner.scan("hello again")
        expect(answer).not_to_have_attribute("data-kept", "1")
        page.clock.fast_forward(7000)
        expect(answer).to_be_visible()
        page.clock.fast_forward(1500)
        expect(page.locator("#idle")).to_be_visible()

        # Kept, then a second tap puts it away.
        rig.sim.scanner.scan("hello")
        expect(answer).to_be_visible()
        page.mouse.click(400, 300)
        expect(answer).to_have_attribute("data-kept", "1")
        page.mouse.click(400, 300)
        expect(page.locator("#idle")).to_be_visible()
        page.mouse.click(400, 300)          # a tap on the idle screen does nothing
        expect(page.locator("#idle")).to_be_visible()
    finally:
        rig.stop()


def test_a_pushed_answer_time_applies_without_a_reload(tmp_path: Path, page: Any) -> None:
    """The kiosk page stays open for days: a changed web.answer_s reaches it with the next
    answer, through the restarted screens' event stream, not the page it loaded with."""
    rig = WebRig(tmp_path, web={"answer_s": 8, "port": free_port()})
    try:
        page.clock.install()
        page.goto(rig.base + "/")
        expect(page.locator("body")).to_have_attribute("data-live", "1")
        old_web = rig.web
        old = rig.daemon.cfg
        new = old.model_copy(update={"web": old.web.model_copy(update={"answer_s": 30})})
        page.evaluate("delete document.body.dataset.live")
        rig.daemon.rebuild(old, new)
        wait_for(lambda: (svc := rig.daemon.supervisor.services().get("web")) is not old_web
                 and svc is not None and svc.health.ok, what="the screens restarted")
        expect(page.locator("body")).to_have_attribute("data-live", "1", timeout=10_000)
        assert page.locator("#screen").get_attribute("data-answer-s") == "8"  # not reloaded

        scan_and_see(rig, page, "hello", "请扫描应用中的取件码")
        page.clock.fast_forward(20_000)     # past the page's 8 s, short of the pushed 30 s
        expect(page.locator("#answer")).to_be_visible()
        page.clock.fast_forward(11_000)
        expect(page.locator("#idle")).to_be_visible()
    finally:
        rig.stop()


def test_resident_screen_shows_cart_out_of_service(web_rig: WebRig, page: Any) -> None:
    page.goto(web_rig.base + "/")
    expect(page.locator("body")).to_have_attribute("data-live", "1")
    expect(page.locator("#oos")).to_be_hidden()
    assert web_rig.daemon.actions is not None
    web_rig.daemon.actions.set_out_of_service(True, by="test", reason="maintenance")
    expect(page.locator("#oos")).to_contain_text("本车暂停服务", timeout=4000)
    web_rig.daemon.actions.set_out_of_service(False, by="test")
    expect(page.locator("#oos")).to_be_hidden(timeout=4000)


def test_offline_note_follows_the_broker(tmp_path: Path, page: Any) -> None:
    broker = MosquittoBroker(tmp_path / "broker").start()
    rig = WebRig(tmp_path, mqtt={"enabled": True, "port": broker.port,
                                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0})
    try:
        wait_for(lambda: rig.daemon.sync.online(), what="sync online")
        page.goto(rig.base + "/")
        expect(page.locator("#offline")).to_be_hidden()
        broker.stop()
        expect(page.locator("#offline")).to_be_visible(timeout=6000)
        expect(page.locator("#offline")).to_contain_text("Offline: records are kept")
        broker.start()
        expect(page.locator("#offline")).to_be_hidden(timeout=8000)
    finally:
        rig.stop()
        broker.close()
