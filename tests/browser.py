"""Headless Debian Chromium for the screen tests (the cart's screens and the fleet desk), and
where their screenshots go.

A test run writes screenshots under the running test's own tmp dir, so running the tests never
changes the repository. The documented ones in docs/screenshots/ change only when asked:
`scripts/screenshots`, which sets CART_REFRESH_SCREENSHOTS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
DOC_SCREENSHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
REFRESH_ENV = "CART_REFRESH_SCREENSHOTS"


@contextmanager
def chromium() -> Iterator[Any]:
    """One browser for a session or module; skips where Debian's chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def screenshot_dir(tmp: Path) -> Path:
    """docs/screenshots/ when refreshing them, else `tmp`/screenshots."""
    target = DOC_SCREENSHOTS if os.environ.get(REFRESH_ENV) == "1" else tmp / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    return target
