"""Supervised loops: each long-lived part runs in its own thread and is restarted on failure.

A service's `run(stop)` opens its resource, serves until `stop` is set (then returns) or
until something fails (then raises). The supervisor marks it unhealthy, waits with
exponential backoff and jitter (so a fleet of carts or a row of devices does not retry in
step), and calls `run` again. It logs once on failure and once more only after the service
had recovered, not on every retry.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from agent.backoff import Backoff
from agent.health import Health

log = logging.getLogger(__name__)


class Service(Protocol):
    name: str
    health: Health

    def run(self, stop: threading.Event) -> None: ...


@dataclass
class _Running:
    service: Service
    stop: threading.Event
    thread: threading.Thread
    restarts: int = 0


class Supervisor:
    """Runs services in daemon threads and restarts them when they fail."""

    def __init__(self, backoff: Backoff | None = None, rng: random.Random | None = None) -> None:
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._running: dict[str, _Running] = {}
        self._lock = threading.Lock()

    def start(self, service: Service) -> None:
        with self._lock:
            if service.name in self._running:
                raise ValueError(f"service {service.name!r} already started")
            stop = threading.Event()
            thread = threading.Thread(target=self._loop, args=(service, stop),
                                      name=f"svc-{service.name}", daemon=True)
            self._running[service.name] = _Running(service, stop, thread)
        thread.start()

    def _loop(self, service: Service, stop: threading.Event) -> None:
        attempt = 0
        failing = False
        while not stop.is_set():
            started = time.monotonic()
            try:
                service.run(stop)
                if stop.is_set():
                    return
                raise RuntimeError("service returned without being stopped")
            except Exception as exc:  # the one catch-all: the top of a supervised loop
                reason = f"{type(exc).__name__}: {exc}"
                had_recovered = service.health.ok
                service.health.set_error(reason)
                if had_recovered or not failing:
                    log.error("service %s failed: %s", service.name, reason,
                              exc_info=not isinstance(exc, OSError))
                failing = True
            if time.monotonic() - started > 60:
                attempt = 0  # it served for a while: start the backoff over
            delay = self.backoff.delay(attempt, self._rng)
            attempt += 1
            with self._lock:
                running = self._running.get(service.name)
                if running is not None:
                    running.restarts += 1
            if stop.wait(delay):
                return

    def stop_service(self, name: str, timeout_s: float = 3.0) -> bool:
        """Stop one service (to rebuild it); returns False if its thread did not end in time."""
        with self._lock:
            running = self._running.pop(name, None)
        if running is None:
            return True
        running.stop.set()
        running.thread.join(timeout_s)
        return not running.thread.is_alive()

    def services(self) -> dict[str, Service]:
        with self._lock:
            return {name: r.service for name, r in self._running.items()}

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {name: r.restarts for name, r in self._running.items()}

    def health(self) -> dict[str, dict[str, object]]:
        return {name: svc.health.snapshot() for name, svc in self.services().items()}

    def stop(self, timeout_s: float = 3.0) -> None:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            running = list(self._running.values())
            self._running.clear()
        for r in running:
            r.stop.set()
        for r in running:
            r.thread.join(max(0.0, deadline - time.monotonic()))
