"""Fixtures for the desk: one private PostgreSQL for the module (each rig gets its own
database in it), a rig per test, headless Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fleet.desk.rig import MANAGER, VIEWER, DeskRig
from tests.postgres_cluster import PostgresCluster, postgres_cluster


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresCluster]:
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture
def rig(tmp_path: Path, pg: PostgresCluster) -> Iterator[DeskRig]:
    r = DeskRig(tmp_path, pg, carts=("bc-01", "bc-02"))
    try:
        yield r
    finally:
        r.close()


@pytest.fixture
def laptop(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, locale="zh-CN")
    context.set_default_timeout(8000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                  is_mobile=True, has_touch=True)
    context.set_default_timeout(8000)
    try:
        yield context.new_page()
    finally:
        context.close()


def log_in(page: Any, base: str, who: tuple[str, str] = MANAGER, path: str = "/fleet") -> None:
    page.goto(base + path)
    page.fill("#username", who[0])
    page.fill("#password", who[1])
    page.click("form.login button[type=submit]")
    page.wait_for_url(f"**{path}*")


__all__ = ["MANAGER", "VIEWER", "log_in"]
