"""The doctor's data-directory and store checks on real files: a store the agent made passes
quick_check; a damaged one, a missing one and a data directory open to others each fail with
what to do."""

from __future__ import annotations

import os
from pathlib import Path

from agent.admin.doctor.context import Context
from agent.admin.doctor.storage import data_dir, store
from agent.config import load
from agent.store import Store
from tests.support import offline_config, write_config


def context(tmp: Path) -> Context:
    cfg = load(write_config(tmp / "agent.toml", offline_config(tmp)))
    return Context(cfg, str(tmp / "agent.toml"), None)


def test_a_store_the_agent_made_passes(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    s = Store(ctx.cfg.db_path, ctx.cfg.cart_id)
    s.close()
    assert data_dir(ctx).status == "ok"
    check = store(ctx)
    assert check.status == "ok"
    assert "quick_check ok" in check.detail


def test_a_missing_store_and_a_damaged_one(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    assert data_dir(ctx).status == "fail"  # never created
    s = Store(ctx.cfg.db_path, ctx.cfg.cart_id)
    s.close()
    ctx.cfg.db_path.rename(tmp_path / "kept.db")
    missing = store(ctx)
    assert missing.status == "fail"
    assert "cart-agent restore" in missing.fix
    damaged = bytearray((tmp_path / "kept.db").read_bytes())
    damaged[4096:8192] = b"\xff" * 4096  # a page of garbage in the middle
    ctx.cfg.db_path.write_bytes(bytes(damaged))
    check = store(ctx)
    assert check.status == "fail"
    assert "cart-agent restore" in check.fix


def test_a_data_directory_open_to_others(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    Store(ctx.cfg.db_path, ctx.cfg.cart_id).close()
    os.chmod(ctx.cfg.data_dir, 0o755)
    check = data_dir(ctx)
    assert check.status == "fail"
    assert "0755" in check.detail
    assert check.fix == f"chmod 0700 {ctx.cfg.data_dir}"
