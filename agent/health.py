"""Health of one long-lived part of the cart, shared between its loop and the reporters."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass
class Health:
    """Thread-safe ok/error flag with the time of the last change.

    Device and sync loops set it; telemetry, status and the screens read `snapshot()`.
    """

    name: str
    ok: bool = False
    error: str | None = "not started"
    since: float = field(default_factory=time.time)
    details: dict[str, object] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set_ok(self, **details: object) -> bool:
        """Mark healthy; returns True when this is a change (so callers log once)."""
        with self._lock:
            changed = not self.ok
            self.ok, self.error = True, None
            self.details.update(details)
            if changed:
                self.since = time.time()
            return changed

    def set_error(self, error: str, **details: object) -> bool:
        """Mark unhealthy; returns True when this is a change of state or of reason."""
        with self._lock:
            changed = self.ok or self.error != error
            self.ok, self.error = False, error
            self.details.update(details)
            if changed:
                self.since = time.time()
            return changed

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"ok": self.ok, "error": self.error, "since": self.since, **self.details}
