"""The kiosk's way to the attendant console and back, in Chromium (agent/web/static/kiosk.js):
a long press in the resident screen's top-left corner or F2 opens the console; a minute with
no touch logs the attendant out and shows the resident screen again, even across the
console's own reloads. Outside kiosk mode none of it happens."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.web.support import PIN, WebRig

pytestmark = pytest.mark.browser


def log_in(page: Any) -> None:
    page.fill("#pin", PIN)
    page.click("form.login button[type=submit]")
    expect(page.locator("body.page-console")).to_be_visible()


def touch(page: Any) -> float:
    """Touch the console; the ms since the touch the kiosk last counted. A console reload
    (every 20 s, fired by the fake clock and then loading in real time) may swallow a click
    given while the old page goes: then touch the new page. A click the page did take and
    the kiosk did not count still comes back as a large number."""
    for _ in range(5):
        page.wait_for_load_state("load")
        try:
            # Set only on a page whose scripts (kiosk.js among them) have all run.
            page.evaluate("window.touchProbe = document.readyState === 'complete'")
            page.mouse.click(900, 500)
            since = page.evaluate(
                "Date.now() - Number(sessionStorage.getItem('cartKioskActiveAt'))")
            if page.evaluate("window.touchProbe === true"):  # the same page took the click
                return float(since)
        except PlaywrightError:  # the reload destroyed the page mid-question
            continue
    raise AssertionError("the console kept reloading under every touch")


def test_long_press_opens_the_console_and_a_quiet_minute_brings_the_resident_back(
        web_rig: WebRig, page: Any) -> None:
    page.clock.install()
    page.goto(web_rig.base + "/?kiosk=1")
    expect(page.locator("html")).to_have_attribute("data-kiosk", "1")
    # A short tap in the corner, and a long press elsewhere, do nothing.
    page.mouse.move(20, 20)
    page.mouse.down()
    page.clock.run_for(1000)
    page.mouse.up()
    page.mouse.move(500, 300)
    page.mouse.down()
    page.clock.run_for(4000)
    page.mouse.up()
    expect(page.locator("body.page-resident")).to_be_visible()
    # Three seconds held in the corner.
    page.mouse.move(20, 20)
    page.mouse.down()
    page.clock.run_for(3100)
    page.mouse.up()
    expect(page.locator("body.page-login")).to_be_visible()
    log_in(page)

    # Touches keep it; 50 s quiet, a touch, 50 s quiet again: still the console.
    page.clock.run_for(50_000)
    expect(page.locator("body.page-console")).to_be_visible()
    assert touch(page) < 1000  # the touch counted
    page.clock.run_for(50_000)
    expect(page.locator("body.page-console")).to_be_visible()
    # The console reloads itself every 20 s; that is not a touch. A minute after the last one
    # the kiosk logs out and shows the resident screen.
    page.clock.run_for(25_000)
    expect(page.locator("body.page-resident")).to_be_visible()
    page.goto(web_rig.base + "/attendant")
    expect(page.locator("body.page-login")).to_be_visible()  # logged out, not just away


def test_f2_opens_the_console_from_the_resident_screen(web_rig: WebRig, page: Any) -> None:
    page.goto(web_rig.base + "/?kiosk=1")
    expect(page.locator("html")).to_have_attribute("data-kiosk", "1")
    page.keyboard.press("F2")
    expect(page.locator("body.page-login")).to_be_visible()


def test_outside_the_kiosk_nothing_changes(web_rig: WebRig, page: Any) -> None:
    page.clock.install()
    page.goto(web_rig.base + "/")
    expect(page.locator("html")).not_to_have_attribute("data-kiosk", "1")
    page.keyboard.press("F2")
    page.mouse.move(20, 20)
    page.mouse.down()
    page.clock.run_for(4000)
    page.mouse.up()
    expect(page.locator("body.page-resident")).to_be_visible()
    page.goto(web_rig.base + "/attendant")
    log_in(page)
    page.clock.run_for(120_000)
    expect(page.locator("body.page-console")).to_be_visible()


def test_a_reload_in_the_middle_of_leaving_still_logs_out(web_rig: WebRig, page: Any) -> None:
    """The console reloads itself every 20 s; one that lands while the kiosk is logging out
    cuts that page short. The page it loads carries on leaving."""
    page.goto(web_rig.base + "/?kiosk=1")
    page.keyboard.press("F2")
    log_in(page)
    page.evaluate("sessionStorage.setItem('cartKioskLeaving', '1')")  # as backToResident does
    page.reload()
    expect(page.locator("body.page-resident")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('cartKioskLeaving')") is None
    page.goto(web_rig.base + "/attendant")
    expect(page.locator("body.page-login")).to_be_visible()
