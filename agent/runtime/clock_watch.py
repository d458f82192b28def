"""Watches the trusted clock from the main loop: asks the system about NTP now and then, and
records a transaction when the clock's alarm changes (`clock.behind`, `clock.ahead`,
`clock.unknown`, and `clock.ok` when it clears), so the fleet hears of it durably."""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.clock import ClockState, TrustedClock
from agent.clock.ntp import ntp_synchronized
from agent.store import Store, StoreError

log = logging.getLogger("agent.clock")

NTP_EVERY_S = 60.0


class ClockWatch:
    def __init__(self, clock: TrustedClock, store: Store,
                 ntp: Callable[[], bool | None] = ntp_synchronized) -> None:
        self.clock = clock
        self.store = store
        self.ntp = ntp
        self._next_ntp = 0.0
        self._alarm: str | None = None
        self._recorded = True  # the last transition reached the store

    def tick(self, mono_now: float) -> ClockState:
        if mono_now >= self._next_ntp:
            self._next_ntp = mono_now + NTP_EVERY_S
            self.clock.set_ntp(self.ntp())
        state = self.clock.state()
        if state.alarm != self._alarm or not self._recorded:
            self._transition(self._alarm, state)
        return state

    def _transition(self, previous: str | None, state: ClockState) -> None:
        if state.alarm != previous:
            if state.alarm is None:
                log.info("clock alarm %s cleared", previous)
            else:
                log.warning("clock alarm %s: wall clock %s, offset %+.1f s (evidence: %s)",
                            state.alarm, state.detail()["wall"], state.offset_s, state.evidence)
        self._alarm = state.alarm
        kind = f"clock.{state.alarm or 'ok'}"
        try:
            self.store.record(kind, {**state.detail(), "previous": previous})
            self._recorded = True
        except StoreError as exc:
            if self._recorded:
                log.error("could not record %s: %s", kind, exc)
            self._recorded = False
