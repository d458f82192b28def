"""Alarms in headless Chromium: a door forced open and a printer out of paper on a real
daemon reach the desk (through the ingest and the live topics) and are acknowledged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from agent.devices.sim.cart import SimulatedCart
from tests.browser import screenshot_dir
from tests.fleet.desk.conftest import log_in
from tests.fleet.desk.rig import DeskRig
from tests.support import wait_for

pytestmark = pytest.mark.browser


def test_an_alarm_appears_and_is_acknowledged(rig: DeskRig, laptop: Any, tmp_path: Path
                                              ) -> None:
    page = laptop
    cart = rig.carts["bc-01"]
    log_in(page, rig.base, path="/alarms")
    expect(page.locator(".alarms li")).to_have_count(0)

    cart.sim.locker.force_open(SimulatedCart.address("A02"))
    cart.sim.printer.set_paper_out(True)
    rig.wait_synced("bc-01")
    forced = page.locator("li.alarm[data-kind=forced_open]")

    def shown() -> bool:
        page.reload()
        return forced.count() == 1 and page.locator("li.alarm[data-kind=paper_out]").count() == 1

    wait_for(shown, timeout_s=20, interval_s=0.5, what="both alarms on the page")
    expect(forced).to_contain_text("柜门被非正常打开")
    expect(forced).to_contain_text("Door forced open")
    expect(forced).to_contain_text("bc-01")
    expect(forced.locator(".detail")).to_contain_text("compartment: A02")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "desk-alarms.png"), full_page=True)

    # The fleet view says so in words, and puts the cart first.
    page.goto(rig.base + "/fleet")
    first = page.locator("article.card").first
    expect(first).to_have_attribute("data-cart", "bc-01")
    expect(first.locator(".reasons")).to_contain_text("2 条警报未确认")
    expect(first.locator(".reasons")).to_contain_text("printer out of paper")

    page.goto(rig.base + "/alarms")
    forced.locator("input[name=note]").fill("门已检查，锁扣松动 latch loose")
    forced.locator("button[type=submit]").click()
    expect(forced).to_have_count(0)  # gone from the unacknowledged list
    page.goto(rig.base + "/alarms?show=all")
    done = page.locator("li.alarm[data-kind=forced_open]")
    expect(done.locator(".ack-done")).to_contain_text("boss")
    expect(done.locator(".ack-done")).to_contain_text("latch loose")

    stored = rig.sql("SELECT acked_by, ack_note, acked_at IS NOT NULL FROM desk_alarms "
                     "WHERE kind = 'forced_open'")
    assert stored == [("boss", "门已检查，锁扣松动 latch loose", True)]
    assert rig.sql("SELECT username, kind, target FROM desk_actions") == [
        ("boss", "ack", "bc-01")]
    source = rig.sql("SELECT source FROM desk_alarms WHERE kind = 'forced_open'")[0][0]
    tx = rig.sql("SELECT type, data->>'compartment' FROM cart_transactions WHERE id = %s",
                 (source.removeprefix("tx:"),))
    assert tx == [("locker.forced_open", "A02")]  # the alarm is the cart's own record

    # Paper back in: the condition clears; the alarm stays until someone acknowledges it.
    cart.sim.printer.set_paper_out(False)
    wait_for(lambda: rig.sql("SELECT cleared_at IS NOT NULL FROM desk_alarms "
                             "WHERE kind = 'paper_out'") == [(True,)], timeout_s=20,
             what="the paper alarm cleared")
    page.reload()
    expect(page.locator("li.alarm[data-kind=paper_out] .cleared")).to_contain_text("cleared")
