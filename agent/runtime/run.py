"""`cart-agent run`: check the store, lay the fleet's config over the file, run the daemon.

The store is checked before anything else: a data directory that has held a store never gets
a new, empty one silently (identity.json), and a database that fails quick_check is refused.
Either way the daemon exits 1 with a message saying how to restore; nothing is written.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from agent.config import AgentConfig, ConfigError
from agent.runtime import logs
from agent.store import Store, StoreError, identity
from agent.store.backup import StoreKeeper, listing
from agent.store.files import DataDirLock

log = logging.getLogger("agent")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    log.error("%s", message)
    return 1


def orphan_backups(cfg: AgentConfig) -> str | None:
    """Backups of this cart's store with no store and no identity beside the database: the
    data directory was lost or wiped. Starting afresh would re-open doors; say so."""
    data_dir = Path(cfg.data_dir)
    if cfg.db_path.exists() or identity.path_for(data_dir).exists():
        return None
    ident = identity.read(cfg.backup_dir)
    if ident is None or ident.get("cart_id") != cfg.cart_id or not listing(cfg.backup_dir):
        return None
    return (f"cart-agent: {cfg.db_path} is missing and {data_dir} has no identity, but "
            f"{cfg.backup_dir} holds backups of cart {cfg.cart_id!r} (store "
            f"{ident.get('store_id')}, last seq {ident.get('last_seq')}): refusing to start a "
            "new, empty store. Restore it: `cart-agent restore`.")


def open_checked(cfg: AgentConfig) -> Store:
    """The store, after identity and quick_check; StoreError with the operator's message."""
    problem = orphan_backups(cfg)
    if problem:
        raise StoreError(problem)
    store = Store(cfg.db_path, cfg.cart_id)
    found = store.quick_check()
    if found:
        store.close()
        raise StoreError(f"cart-agent: {cfg.db_path} fails PRAGMA quick_check ("
                         f"{'; '.join(found[:3])}): refusing to start on a damaged store. "
                         "Restore it: `cart-agent restore`.")
    return store


def run_daemon(file_cfg: AgentConfig, config_path: str) -> int:
    logs.setup(file_cfg.log_level)
    lock = DataDirLock(Path(file_cfg.data_dir))
    if not lock.acquire():
        return _fail(f"cart-agent: another cart-agent (or a restore) is using "
                     f"{file_cfg.data_dir}")
    try:
        try:
            store = open_checked(file_cfg)
        except StoreError as exc:
            text = str(exc)
            return _fail(text if text.startswith("cart-agent:") else
                         f"cart-agent: cannot open the store {file_cfg.db_path}: {text}")
        from agent.sync.desired import effective_config

        try:
            cfg = effective_config(config_path, store)
        except ConfigError as exc:
            log.error("stored fleet config no longer validates (%s); using the file alone",
                      "; ".join(exc.problems))
            cfg = file_cfg
        logs.set_level(cfg.log_level)  # a pushed log_level holds across restarts too
        from agent.runtime.daemon import Daemon

        daemon = Daemon(cfg, config_path, store)
        # Backups and identity.json follow the file's settings: paths are not pushable.
        daemon.supervisor.start(StoreKeeper(store, file_cfg.backup_dir,
                                            file_cfg.backup.interval_s, file_cfg.backup.keep))
        return daemon.run()
    finally:
        lock.release()
