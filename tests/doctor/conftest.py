"""The doctor's tests share the screen tests' Chromium (the kiosk check needs a resident
screen really connected)."""

from tests.web.conftest import browser, page, pin_hash, screenshots_in_tmp  # noqa: F401
