"""The fleet view in headless Chromium: live state from real daemons, a cart going offline."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser import screenshot_dir
from tests.fleet.desk.conftest import VIEWER, log_in
from tests.fleet.desk.rig import DeskRig

pytestmark = pytest.mark.browser


def card(page: Any, cart: str) -> Any:
    return page.locator(f"article.card[data-cart={cart}]")


def test_fleet_view_shows_a_cart_going_offline_within_seconds(
        rig: DeskRig, laptop: Any, tmp_path: Path) -> None:
    page = laptop
    log_in(page, rig.base, VIEWER)
    for cart in ("bc-01", "bc-02"):
        expect(card(page, cart)).to_have_attribute("data-state", "online", timeout=15_000)
    first = card(page, "bc-01")
    expect(first.locator("[data-device=printer]")).to_have_class("dev ok", timeout=10_000)
    expect(first.locator(".facts")).to_contain_text("柜格")
    expect(page.locator("[data-count=online]")).to_contain_text("2")
    expect(first.locator(".config")).to_contain_text("v–")

    killed_at = time.monotonic()
    rig.carts["bc-02"].kill9()
    # No reload: the page refreshes its cards by itself.
    expect(card(page, "bc-02")).to_have_attribute("data-state", "offline", timeout=10_000)
    seen_after = time.monotonic() - killed_at
    print(f"offline on the page {seen_after:.1f} s after kill -9")
    gone = card(page, "bc-02")
    expect(gone.locator(".reasons")).to_contain_text("离线")
    expect(gone.locator(".reasons")).to_contain_text("offline for")
    # Carts needing attention sort first.
    expect(page.locator("article.card").first).to_have_attribute("data-cart", "bc-02")
    expect(page.locator("[data-count=offline]")).to_contain_text("1")
    page.screenshot(path=str(screenshot_dir(tmp_path) / "desk-fleet.png"), full_page=True)

    # And back: the cart restarts and its card turns online again.
    rig.carts["bc-02"].start()
    expect(card(page, "bc-02")).to_have_attribute("data-state", "online", timeout=20_000)
