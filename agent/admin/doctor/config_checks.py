"""The config file: valid as `cart-agent check-config` sees it."""

from __future__ import annotations

from agent.admin.config_check import check_data_dir, check_files
from agent.admin.doctor.report import Check, fail, ok
from agent.config import AgentConfig, ConfigError, load


def load_config(path: str) -> tuple[AgentConfig | None, Check]:
    try:
        cfg = load(path)
    except ConfigError as exc:
        return None, fail("config", f"{path}: " + "; ".join(exc.problems[:3])
                          + (f" (+{len(exc.problems) - 3} more)" if len(exc.problems) > 3
                             else ""),
                          f"fix the file (cart-agent check-config -c {path} lists every "
                          "problem); the other checks need a valid config")
    problems = check_data_dir(cfg) + check_files(cfg)
    if problems:
        return cfg, fail("config", "; ".join(problems),
                         f"create or fix what it names (cart-agent check-config -c {path})")
    return cfg, ok("config", f"{path} valid (cart {cfg.cart_id})")
