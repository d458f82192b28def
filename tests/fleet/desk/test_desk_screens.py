"""The desk on a phone and on a laptop: nothing wider than the screen, everything reachable;
the screenshots of docs/screenshots/desk-*.png come from here (scripts/screenshots)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import screenshot_dir
from tests.fleet.desk.conftest import VIEWER, log_in
from tests.fleet.desk.rig import DeskRig
from tests.support import wait_for

pytestmark = pytest.mark.browser


def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the viewport (0: fits)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def test_the_desk_on_a_phone(rig: DeskRig, phone: Any, laptop: Any, tmp_path: Path) -> None:
    shots = screenshot_dir(tmp_path)
    cart = rig.carts["bc-01"]
    for token in (cart.issuer.token("ticket", service="gov"),
                  cart.issuer.token("meal", order="B-7", items=["面条"], name="李四"),
                  "not-a-token-at-all"):
        cart.sim.scanner.scan(token)
    cart.sim.printer.set_paper_out(True)
    wait_for(lambda: len(cart.query("SELECT id FROM transactions")) >= 3, timeout_s=10,
             what="three records")
    rig.wait_synced("bc-01")
    rig.wait_followed()

    page = phone
    log_in(page, rig.base, VIEWER)
    expect(page.locator("article.card")).to_have_count(2)
    printer = page.locator("article.card[data-cart=bc-01] [data-device=printer]")
    # The printer is asked for its status every 5 s; the card refreshes by itself.
    expect(printer).to_have_class("dev bad", timeout=20_000)
    expect(printer).to_contain_text("paper out")
    assert overflow(page) == 0
    box = page.locator("article.card").first.bounding_box()
    assert box is not None
    assert box["width"] <= 390
    page.screenshot(path=str(shots / "desk-phone-fleet.png"), full_page=True)

    page.click("article.card[data-cart=bc-01] a.cart-id")
    expect(page.locator("table.timeline tr[data-type]")).to_have_count(
        len(cart.query("SELECT id FROM transactions")))
    expect(page.locator("table.timeline")).to_contain_text("ticket.issue")
    assert overflow(page) == 0
    page.screenshot(path=str(shots / "desk-phone-cart.png"), full_page=True)

    page.goto(rig.base + "/usage")
    assert overflow(page) == 0
    page.goto(rig.base + "/alarms")
    expect(page.locator("li.alarm[data-kind=paper_out]")).to_have_count(1)
    assert overflow(page) == 0

    # The same cart on a laptop, with its timeline filtered to one type.
    log_in(laptop, rig.base, VIEWER, path="/carts/bc-01?type=ticket.issue")
    expect(laptop.locator("table.timeline tr[data-type]")).to_have_count(1)
    laptop.goto(rig.base + "/carts/bc-01")
    laptop.screenshot(path=str(shots / "desk-cart.png"), full_page=True)
