"""Exponential backoff with jitter: how long to wait before the next try.

Shared by the supervisor (restarting a failed service) and sync (reconnecting to the broker),
so a fleet of carts or a row of devices does not retry in step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 30.0
    factor: float = 2.0
    jitter: float = 0.5  # each delay is drawn from [d*(1-jitter), d]

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum_s, self.initial_s * self.factor ** max(0, attempt))
        return base * (1.0 - self.jitter * rng.random())
