"""Fixtures every part of the suite may use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per test module, for the cart's screens and the desk alike.
    Never two at once (Playwright's sync API cannot run a second instance beside a live one),
    and never left running into the next module: its event loop would stand in the way of
    every later test that runs asyncio (the NATS tests)."""
    with chromium() as launched:
        yield launched
