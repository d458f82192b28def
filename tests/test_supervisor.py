"""A crashed service is restarted with backoff, its health shows the failure, then recovery."""

from __future__ import annotations

import random
import threading

from agent.backoff import Backoff
from agent.health import Health
from agent.runtime.supervisor import Supervisor
from tests.support import wait_for


class Flaky:
    name = "flaky"

    def __init__(self, failures: int) -> None:
        self.health = Health("flaky")
        self.failures = failures
        self.runs = 0

    def run(self, stop: threading.Event) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise OSError(f"device gone (attempt {self.runs})")
        self.health.set_ok()
        stop.wait()


def test_restart_with_backoff_and_health() -> None:
    sup = Supervisor(Backoff(initial_s=0.01, maximum_s=0.05), rng=random.Random(1))
    svc = Flaky(failures=3)
    sup.start(svc)
    wait_for(lambda: svc.health.ok, timeout_s=5, what="recovery")
    assert svc.runs == 4
    assert sup.restarts()["flaky"] == 3
    assert sup.health()["flaky"]["ok"] is True
    sup.stop(1.0)


def test_health_shows_the_error_while_failing() -> None:
    sup = Supervisor(Backoff(initial_s=0.2, maximum_s=0.2))
    svc = Flaky(failures=1000)
    sup.start(svc)
    # The health starts as "not started": wait for the failure itself, not any error.
    wait_for(lambda: "device gone" in (svc.health.error or ""), what="the first failure")
    assert svc.runs >= 1
    assert not svc.health.ok
    assert sup.stop_service("flaky", 1.0)


def test_backoff_grows_with_jitter_and_caps() -> None:
    rng = random.Random(3)
    b = Backoff(initial_s=1.0, maximum_s=8.0, jitter=0.5)
    delays = [b.delay(n, rng) for n in range(8)]
    assert all(0.5 <= d <= 1.0 for d in delays[:1])
    assert all(4.0 <= d <= 8.0 for d in delays[4:])
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered: no two alike
