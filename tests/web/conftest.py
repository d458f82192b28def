from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.web.auth import hash_pin
from tests.web.support import PIN, SCREENSHOTS, WebRig


@pytest.fixture(scope="session")
def pin_hash() -> str:
    return hash_pin(PIN)


@pytest.fixture
def web_rig(tmp_path: Path, pin_hash: str) -> Iterator[WebRig]:
    rig = WebRig(tmp_path, pin_hash=pin_hash)
    try:
        yield rig
    finally:
        rig.stop()


@pytest.fixture(autouse=True)
def screenshots_in_tmp(tmp_path: Path) -> Iterator[Path]:
    """Screenshots taken by this test go to its own tmp dir (see ScreenshotDir)."""
    SCREENSHOTS.test_dir = tmp_path
    try:
        yield tmp_path
    finally:
        SCREENSHOTS.test_dir = None


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) at the kiosk's size, 1024 × 600."""
    context = browser.new_context(viewport={"width": 1024, "height": 600}, locale="zh-CN")
    context.set_default_timeout(5000)
    try:
        yield context.new_page()
    finally:
        context.close()
