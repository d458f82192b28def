"""The cart's state as the screens, status and the control socket read it: one read model over
the store (and, for what lives only on the flow thread, a question to it).

It reads only, so `cart-agent status` uses it on a store opened read-only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from typing import Any

from agent.config import AgentConfig
from agent.flows.compartments import Compartment, Compartments
from agent.flows.report import day_report
from agent.store import Store, Tx
from agent.store.config_layers import config_versions


class StoreReadModel:
    """agent.ports.ReadModel over a store; `config` gives the config in effect now."""

    def __init__(self, store: Store, config: Callable[[], AgentConfig],
                 clock: Callable[[], float],
                 deposit_active: Callable[[], bool] = lambda: False) -> None:
        self.store = store
        self._config = config
        self._clock = clock
        self._deposit_active = deposit_active

    def queue_stats(self) -> dict[str, Any]:
        return self.store.queue_stats()

    def last_sync_at(self) -> str | None:
        return self.store.get_meta("last_sync_at")

    def out_of_service(self) -> bool:
        return self.store.get_meta("out_of_service") == "1"

    def compartments(self) -> list[Compartment]:
        return Compartments(self.store).all()

    def recent(self, types: Collection[str], limit: int) -> list[Tx]:
        marks = ",".join("?" * len(types))
        rows = self.store.query(
            f"SELECT id, seq, type, at, data, state FROM transactions WHERE type IN ({marks}) "
            "ORDER BY seq DESC LIMIT ?", (*types, limit))
        return [Tx(id=r["id"], seq=r["seq"], cart=self.store.cart_id, type=r["type"],
                   at=r["at"], data=json.loads(r["data"]), state=r["state"]) for r in rows]

    def config_versions(self) -> dict[str, int | None]:
        return config_versions(self.store)

    def print_queue(self) -> int:
        return int(self.store.query(
            "SELECT COUNT(*) AS n FROM print_jobs WHERE state = 'queued'")[0]["n"])

    def day_report(self, day: str | None = None) -> dict[str, Any]:
        return day_report(self.store, self._config(), self._clock(), day)

    def deposit_active(self) -> bool:
        return self._deposit_active()
