"""Fixtures every part of the suite may use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium per test process, for the cart's screens and the desk alike:
    Playwright's sync API cannot run a second instance beside a live one."""
    with chromium() as launched:
        yield launched
