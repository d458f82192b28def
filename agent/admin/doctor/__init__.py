"""`cart-agent doctor`: checks an installed cart, one line per check with what to do when it
fails. Exit 0 when nothing failed, 1 otherwise.

Checks, in order: the config; each device's node and whether it answers; the data directory,
the store and free space; the clock; the broker; the systemd units; the kiosk. A check that
does not apply (a device the config leaves out) or cannot be tried (a step before it failed)
is `skip`. Each part is a small module here; this one runs them.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from agent.admin.doctor.broker import broker_checks
from agent.admin.doctor.clock import clock_checks, ntp
from agent.admin.doctor.config_checks import load_config
from agent.admin.doctor.context import Context
from agent.admin.doctor.devices import device_checks
from agent.admin.doctor.kiosk import kiosk_checks
from agent.admin.doctor.report import Check, render_json, render_text
from agent.admin.doctor.storage import storage_checks
from agent.admin.doctor.units import unit_checks
from agent.admin.status import clock_report, live_ping, open_store
from agent.config import AgentConfig
from agent.store import StoreError

EXIT_OK, EXIT_FAIL = 0, 1


def examine(config_path: str) -> list[Check]:
    cfg, first = load_config(config_path)
    if cfg is None:
        return [first, ntp(), *unit_checks()]  # what needs no config
    ping = live_ping(cfg)
    live = dict(ping.get("health") or {}) if ping is not None else None
    ctx = Context(cfg, config_path, live, _trusted_clock(cfg, ping))
    return [first, *device_checks(ctx), *storage_checks(ctx), *clock_checks(ctx),
            *broker_checks(ctx), *unit_checks(cfg.web.enabled), *kiosk_checks(ctx)]


def _trusted_clock(cfg: AgentConfig, ping: dict[str, Any] | None) -> dict[str, Any] | None:
    """The running agent's trusted clock, or with none running the store's evidence read now;
    None when neither can be read (the store check says why)."""
    if ping is not None:
        return clock_report(cfg, None, ping)
    with contextlib.suppress(StoreError, OSError):
        store = open_store(cfg)
        try:
            return clock_report(cfg, store)
        finally:
            if store is not None:
                store.close()
    return None


def doctor(config_path: str, as_json: bool) -> int:
    checks = examine(config_path)
    print(render_json(checks) if as_json else render_text(checks))
    failed = [c for c in checks if c.failed]
    if failed and not as_json:
        print(f"{len(failed)} of {len(checks)} checks failed", file=sys.stderr)
    return EXIT_FAIL if failed else EXIT_OK
