"""Running the tests never changes docs/screenshots/: screenshots go to the test's tmp dir,
and only `scripts/screenshots` (CART_REFRESH_SCREENSHOTS=1) refreshes the documented ones,
for the cart's screens and the fleet desk alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.browser import DOC_SCREENSHOTS, REFRESH_ENV, screenshot_dir
from tests.web.support import SCREENSHOTS


def _docs() -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in DOC_SCREENSHOTS.iterdir()}


@pytest.mark.browser
def test_a_screenshot_lands_in_the_tests_tmp_dir(page: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REFRESH_ENV, raising=False)
    before = _docs()
    page.set_content("<p>probe</p>")
    target = SCREENSHOTS / "probe.png"
    page.screenshot(path=str(target))
    assert target == tmp_path / "screenshots" / "probe.png"
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _docs() == before


def test_refreshing_is_asked_for_explicitly(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The cart's screens and the desk write through the same switch."""
    monkeypatch.setenv(REFRESH_ENV, "1")
    assert screenshot_dir(tmp_path) == DOC_SCREENSHOTS
    monkeypatch.setenv(REFRESH_ENV, "0")
    assert screenshot_dir(tmp_path) == tmp_path / "screenshots"
    assert SCREENSHOTS.test_dir == tmp_path  # the cart's screens: the running test's dir
