"""`cart-agent run`: open the store, lay the fleet's config over the file, run the daemon."""

from __future__ import annotations

import logging
import sys

from agent import logs
from agent.config import AgentConfig, ConfigError
from agent.store import Store, StoreError

log = logging.getLogger("agent")


def run_daemon(file_cfg: AgentConfig, config_path: str) -> int:
    logs.setup(file_cfg.log_level)
    try:
        store = Store(file_cfg.db_path, file_cfg.cart_id)
    except StoreError as exc:
        print(f"cart-agent: cannot open the store {file_cfg.db_path}: {exc}", file=sys.stderr)
        return 1
    from agent.sync.desired import effective_config

    try:
        cfg = effective_config(config_path, store)
    except ConfigError as exc:
        log.error("stored fleet config no longer validates (%s); using the file alone",
                  "; ".join(exc.problems))
        cfg = file_cfg
    from agent.daemon import Daemon

    return Daemon(cfg, config_path, store).run()
