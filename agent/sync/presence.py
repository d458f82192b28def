"""What the cart says about itself: the retained status (and its last will), telemetry."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.clock import TrustedClock
from agent.contract import rfc3339
from agent.store import Store
from agent.store.config_layers import config_versions
from agent.update.report import software_report

DEVICES = ("scanner", "printer", "locker")


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def disk_free_mb(path: str) -> int | None:
    try:
        return int(shutil.disk_usage(path).free // (1024 * 1024))
    except OSError:
        return None


class Presence:
    def __init__(self, store: Store, data_dir: str,
                 health_snapshot: Callable[[], dict[str, dict[str, Any]]],
                 started_at: float, clock: Callable[[], float] = time.time,
                 trusted: TrustedClock | None = None) -> None:
        self.store = store
        self.data_dir = data_dir
        self.health_snapshot = health_snapshot
        self.started_at = started_at
        self.clock = clock
        self.trusted = trusted

    def status(self, state: str, since: float) -> bytes:
        """`online` on connect; `offline` as the last will and on a clean stop. `since` is
        when this connection was made; `at` when the payload was made (for a last will, set
        at connect time, that is also the connection time, not when the cart went away)."""
        versions = config_versions(self.store)
        return encode({"state": state, "since": rfc3339(since), "at": rfc3339(self.clock()),
                       "agent_version": __version__,
                       "config_version": versions["config_version"],
                       "fleet_config_version": versions["fleet_config_version"],
                       "software": software_report(self.data_dir),
                       # the trusted clock as it stood then; telemetry carries the current one
                       "clock": self.clock_state()})

    def clock_state(self) -> dict[str, Any]:
        if self.trusted is None:
            return {"source": "wall", "offset_s": 0.0, "alarm": None}
        return self.trusted.state().public()

    def devices(self) -> dict[str, dict[str, Any]]:
        snapshot = self.health_snapshot()
        out: dict[str, dict[str, Any]] = {}
        for name in DEVICES:
            health = snapshot.get(name)
            if health is None:
                out[name] = {"ok": False, "error": "not running"}
            else:
                error = health.get("error")
                out[name] = {"ok": bool(health.get("ok")),
                             "error": None if error is None else str(error)}
        return out

    def telemetry(self) -> bytes:
        queue = self.store.queue_stats()
        now = self.clock()
        return encode({
            "at": rfc3339(now),
            "queue": {"pending": queue["pending"], "oldest_pending_s": queue["oldest_pending_s"]},
            "devices": self.devices(),
            "uptime_s": round(max(0.0, now - self.started_at), 1),
            "disk_free_mb": disk_free_mb(self.data_dir),
            "clock": self.clock_state(),
            "software": software_report(self.data_dir),
        })
