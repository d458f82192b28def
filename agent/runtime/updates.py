"""The update service's view of the running cart: what a quiet moment is, what healthy means
after a switch, how to restart into the switched release, where outcomes are recorded.

Quiet: no door open (a door whose state is unknown does not block), no deposit session, no
receipt waiting to print. Healthy (the gate): the daemon has said READY, the store answers,
every supervised part is up (devices opened), and the broker is connected when it was
connected at the switch (a cart that was offline is not rolled back for being offline).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from agent.config import AgentConfig
from agent.ports import HealthView, ReadModel
from agent.store import Store, StoreError
from agent.update.updater import Hooks, Updater

log = logging.getLogger("agent.daemon")

NOT_NEEDED_OFFLINE = {"sync"}


class Host(Protocol):
    cfg: AgentConfig
    config_path: str
    store: Store
    serving: bool

    def restart(self, reason: str) -> None: ...

    def announce(self) -> None: ...


def not_quiet(read: ReadModel, health: HealthView) -> str | None:
    doors, _ = health.doors()
    open_doors = sorted(name for name, closed in doors.items() if closed is False)
    if open_doors:
        return f"door(s) open: {', '.join(open_doors)}"
    if read.deposit_active():
        return "a deposit session is active"
    if read.print_queue():
        return "a receipt is printing"
    return None


def not_healthy(host: Host, health: HealthView, need_broker: bool) -> str | None:
    if not host.serving:
        return "not READY yet"
    try:
        host.store.queue_stats()
    except StoreError as exc:
        return f"store: {exc}"
    down = sorted(name for name, snap in health.services().items()
                  if not snap.get("ok") and name != "update"
                  and not (name in NOT_NEEDED_OFFLINE and not need_broker))
    if down:
        return f"not up: {', '.join(down)}"
    if need_broker and not health.online():
        return "broker not reached"
    return None


def build_updater(host: Host, read: ReadModel, health: HealthView) -> Updater:
    def record(type_: str, data: dict[str, Any]) -> None:
        with host.store.write() as w:
            w.append(type_, data)

    hooks = Hooks(quiet=lambda: not_quiet(read, health),
                  healthy=lambda need: not_healthy(host, health, need),
                  broker_up=health.online, restart=host.restart, record=record,
                  announce=host.announce,
                  release_keys=lambda: dict(host.cfg.security.release_keys))
    return Updater(host.cfg.data_dir, host.config_path, hooks)
