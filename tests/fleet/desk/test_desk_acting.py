"""Acting from the desk in headless Chromium: a config push and a command reach a real cart
through a confirmation page, signed with the desk's fleet key; a viewer cannot act."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.devices.sim.cart import SimulatedCart
from fleet.client import BrokerOptions
from fleet.operations import retained_desired
from tests.browser import screenshot_dir
from tests.fleet.desk.conftest import VIEWER, log_in
from tests.fleet.desk.rig import MANAGER, DeskRig, http, login_http
from tests.support import wait_for

pytestmark = pytest.mark.browser

WATER = '[ticket_services.water]\nzh = "水费"\nen = "Water bills"\n'


def test_a_config_push_from_the_page_reaches_the_cart(rig: DeskRig, laptop: Any,
                                                      tmp_path: Path) -> None:
    page = laptop
    shots = screenshot_dir(tmp_path)
    log_in(page, rig.base, path="/carts/bc-01")
    page.click("text=推送配置 Push config")
    expect(page.locator("#version")).to_have_value("1")

    # A key the cart's models do not know: refused on the confirmation page, nothing to click.
    page.fill("#document", 'colour = "red"\n')
    page.click("text=预览变更 Review the change")
    expect(page.locator("#problems")).to_contain_text("colour: unknown key")
    expect(page.locator("#confirm")).to_have_count(0)

    page.click("text=← 修改 Edit")
    page.fill("#version", "3")
    page.fill("#document", WATER)
    page.click("text=预览变更 Review the change")
    diff = page.locator("#diff")
    expect(diff.locator(".dadd")).to_have_count(2)
    expect(diff).to_contain_text('+ ticket_services.water.zh = "水费"')
    page.screenshot(path=str(shots / "desk-push-confirm.png"), full_page=True)
    page.click("#confirm")

    expect(page.locator("#action-outcome")).to_have_attribute("data-outcome", "published")
    cart_card = page.locator("article.card .config")

    def reported() -> bool:
        page.reload()
        return cart_card.get_attribute("data-reported") == "3"

    wait_for(reported, timeout_s=20, interval_s=0.5, what="the cart to report version 3")
    expect(cart_card).to_have_attribute("data-desired", "3")
    # The cart applied it (it trusts only the fleet key the desk signs with).
    applied = rig.carts["bc-01"].query(
        "SELECT version, state, document FROM config_versions WHERE scope = 'cart'")
    assert [(v, s, json.loads(d)) for v, s, d in applied] == [
        (3, "applied", {"ticket_services": {"water": {"zh": "水费", "en": "Water bills"}}})]
    assert rig.sql("SELECT username, kind, target, outcome, (detail->>'version')::int, "
                   "(detail->>'signed')::bool FROM desk_actions") == [
        ("boss", "push_config", "bc-01", "published", 3, True)]

    # The history on the cart's page shows both the push and the cart's own record.
    wait_for(lambda: rig.sql("SELECT count(*) FROM cart_transactions WHERE type = "
                             "'config.applied'")[0][0] == 1, timeout_s=20, what="synced")
    page.reload()
    history = page.locator("table.history")
    expect(history).to_contain_text("pushed by boss")
    expect(history).to_contain_text("applied")

    # An older version than the one retained: refused before anything is published.
    page.click("text=推送配置 Push config")
    page.fill("#version", "2")
    page.click("text=预览变更 Review the change")
    expect(page.locator("#problems")).to_contain_text("not higher than version 3")


def test_a_command_from_the_page_runs_on_the_cart_and_its_result_shows(
        rig: DeskRig, laptop: Any) -> None:
    page = laptop
    log_in(page, rig.base, path="/carts/bc-01")
    page.click("text=发送命令 Send command")
    page.select_option("#name", "open_compartment")
    page.fill("#args", "compartment=B02")
    page.click("text=预览 Review")
    expect(page.locator("#diff")).to_contain_text("bc-01: open_compartment compartment=B02")
    page.click("#confirm")
    expect(page.locator("#action-outcome")).to_have_attribute("data-outcome", "sent")
    wait_for(lambda: rig.carts["bc-01"].sim.opens("B02") == 1, timeout_s=10,
             what="the lock released")

    def done() -> bool:
        page.reload()
        row = page.locator("table.commands tr").first
        return row.get_attribute("data-outcome") == "done"

    wait_for(done, timeout_s=15, interval_s=0.5, what="the command's result on the page")
    assert rig.sql("SELECT outcome, result->>'ok' FROM desk_actions WHERE kind = 'command'") \
        == [("done", "true")]

    # To a cart that is offline: refused (it would be lost), and recorded as refused.
    rig.carts["bc-02"].stop()
    wait_for(lambda: rig.sql("SELECT state FROM desk_carts WHERE cart = 'bc-02'")
             == [("offline",)], timeout_s=10, what="bc-02 offline")
    page.goto(rig.base + "/act/command?cart=bc-02")
    expect(page.locator(".notice.warn")).to_contain_text("offline")
    page.select_option("#name", "ping")
    page.click("text=预览 Review")
    page.click("#confirm")
    outcome = page.locator("#action-outcome")
    expect(outcome).to_have_attribute("data-outcome", "refused")
    expect(outcome).to_contain_text("nothing was sent")


def test_a_viewer_cannot_act(rig: DeskRig, laptop: Any) -> None:
    page = laptop
    log_in(page, rig.base, VIEWER, path="/carts/bc-01")
    expect(page.locator(".acts")).to_have_count(0)
    page.goto(rig.base + "/act/push?target=bc-01")
    expect(page.locator(".refused")).to_contain_text("viewer account cannot act")
    page.goto(rig.base + "/act/command?cart=bc-01")
    expect(page.locator(".refused")).to_contain_text("viewer account cannot act")

    rig.carts["bc-01"].sim.locker.force_open(SimulatedCart.address("A01"))
    wait_for(lambda: rig.sql("SELECT id FROM desk_alarms"), timeout_s=20, what="an alarm")
    alarm_id = rig.sql("SELECT id FROM desk_alarms")[0][0]
    page.goto(rig.base + "/alarms")
    expect(page.locator(f"li.alarm[data-alarm='{alarm_id}']")).to_have_count(1)
    expect(page.locator("form.ack")).to_have_count(0)

    # The forms posted by hand with the viewer's own valid session and token: all refused.
    cookie, csrf = login_http(rig, VIEWER)
    posts = {
        "/act/push/preview": {"target": "bc-01", "version": "9", "document": "{}"},
        "/act/push/confirm": {"target": "bc-01", "version": "9", "document": "{}"},
        "/act/command/preview": {"cart": "bc-01", "name": "ping", "args": ""},
        "/act/command/confirm": {"cart": "bc-01", "name": "open_compartment",
                                 "args": "compartment=A03"},
        f"/alarms/{alarm_id}/ack": {"note": "not mine to close"},
    }
    for path, form in posts.items():
        reply = http(rig, "POST", path, {**form, "csrf": csrf}, cookie)
        assert reply.status == 403, path
        assert "A viewer account cannot act; nothing was done" in reply.body
    assert rig.sql("SELECT count(*) FROM desk_actions")[0][0] == 0
    assert rig.sql("SELECT acked_at FROM desk_alarms") == [(None,)]
    assert retained_desired(BrokerOptions(port=rig.broker.port), "bc-01") is None
    assert rig.carts["bc-01"].sim.opens() == 0

    # A manager without the form token, or from another site, is refused too.
    cookie, csrf = login_http(rig, MANAGER)
    form = {"cart": "bc-01", "name": "open_compartment", "args": "compartment=A03"}
    assert http(rig, "POST", "/act/command/confirm", form, cookie).status == 403
    assert http(rig, "POST", "/act/command/confirm", {**form, "csrf": csrf}, cookie,
                {"Origin": "http://evil.example"}).status == 403
    assert rig.sql("SELECT count(*) FROM desk_actions")[0][0] == 0
    assert rig.carts["bc-01"].sim.opens() == 0
