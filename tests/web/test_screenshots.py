"""Running the tests never changes docs/screenshots/: screenshots go to the test's tmp dir,
and only `scripts/screenshots` (CART_REFRESH_SCREENSHOTS=1) refreshes the documented ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.web.support import DOC_SCREENSHOTS, REFRESH_ENV, SCREENSHOTS


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


def test_refreshing_is_asked_for_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REFRESH_ENV, "1")
    assert SCREENSHOTS.folder == DOC_SCREENSHOTS
    monkeypatch.setenv(REFRESH_ENV, "0")
    assert SCREENSHOTS.folder.parent == SCREENSHOTS.test_dir
