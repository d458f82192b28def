"""The rules of the cart's "now" (docs/decisions.md, "Trusted time").

Evidence is a time the true time is known to be past: the newest committed transaction, the
`iat` of a token whose signature verified, the server's `at` on a downlink. The best one is
carried forward with the boot-time clock (monotonic, and it keeps counting through a suspend),
so it stays a lower bound while the cart runs. The rules:

- now() is never below that bound. A wall clock behind it by more than the skew is not used:
  the bound is (`corrected`, alarm `behind`).
- A wall clock ahead of the server's time by more than the skew (measured on a live downlink)
  raises `ahead`; it cannot be corrected downwards from lower bounds, only reported.
- With no evidence but a token's `iat` and a wall clock before the build floor (or absurdly
  late), nothing says what time it is: alarm `unknown`, and codes are refused.
- An NTP-synchronized wall clock is the time; evidence does not overrule it.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.contract import rfc3339

log = logging.getLogger(__name__)

# No true time on a cart running this build is earlier than this (raise it with releases).
BUILD_FLOOR = float(calendar.timegm((2026, 11, 1, 0, 0, 0)))
CEILING_S = 40 * 365 * 86_400  # a wall clock or evidence later than floor + this is nonsense
CORRECT_TOLERANCE_S = 1.0      # below this the wall clock is used as it is
PERSIST_STEP_S = 600.0         # persisted evidence is refreshed when it gains this much
STRONG = frozenset({"store", "record", "server", "ntp"})  # evidence that ends `unknown`
KINDS = STRONG | {"token"}

Persist = Callable[[float, str], None]


def boot_clock() -> float:
    """Seconds since boot, counting through a suspend (CLOCK_MONOTONIC stops during one)."""
    try:
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    except (AttributeError, OSError):
        return time.monotonic()


@dataclass(frozen=True)
class ClockState:
    now: float                 # the cart's best estimate of the true time
    wall: float                # what the system clock said
    source: str                # "wall" | "corrected"
    offset_s: float            # add to the wall clock to get the best estimate (ahead: < 0)
    alarm: str | None          # None | "behind" | "ahead" | "unknown"
    bound: float | None        # the best evidence, carried forward to now
    evidence: str | None       # what that evidence was
    ntp: bool | None           # NTP-synchronized, as the system says (None: nobody knows)

    @property
    def record_clock(self) -> str:
        """What a record made now says about its time: the server may trust `wall` and
        `corrected` times, and should re-date `unknown` ones."""
        return "unknown" if self.alarm == "unknown" else self.source

    def public(self) -> dict[str, Any]:
        """The contract's `clock` object (status, telemetry)."""
        return {"source": self.source, "offset_s": round(self.offset_s, 1), "alarm": self.alarm}

    def detail(self) -> dict[str, Any]:
        """The public object and what stands behind it (for `cart-agent status`, doctor)."""
        return {**self.public(), "now": rfc3339(max(0.0, self.now)),
                "wall": rfc3339(max(0.0, self.wall)),
                "bound": None if self.bound is None else rfc3339(self.bound),
                "evidence": self.evidence, "ntp": self.ntp}


class TrustedClock:
    """Thread-safe; callable like time.time(). `stamp()` is what records are dated with."""

    def __init__(self, skew_s: float, *, floor: float = BUILD_FLOOR,
                 wall: Callable[[], float] = time.time,
                 mono: Callable[[], float] = boot_clock,
                 persist: Persist | None = None) -> None:
        self.skew_s = float(skew_s)
        self.floor = floor
        self._wall = wall
        self._mono = mono
        self._persist = persist
        self._lock = threading.Lock()
        self._bound: tuple[float, float, str] | None = None  # (at, boot clock then, kind)
        self._strong = False
        self._ntp: bool | None = None
        self._heard: tuple[float, float] | None = None  # (server at, boot clock) of the freshest
        self._persisted = 0.0

    def __call__(self) -> float:
        return self.state().now

    def plausible(self, at: float) -> bool:
        return self.floor <= at <= self.floor + CEILING_S

    # --- evidence --------------------------------------------------------------------------

    def note(self, at: float, kind: str) -> bool:
        """Take `at` as a time the true time is past; True when it raised the bound."""
        if kind not in KINDS:
            raise ValueError(f"unknown evidence kind {kind!r}")
        if not self.plausible(at):
            log.warning("clock evidence (%s) ignored: %s is not a plausible time", kind,
                        rfc3339(max(0.0, min(at, 1e11))))
            return False
        persist = False
        with self._lock:
            self._strong = self._strong or kind in STRONG
            current = self._carried(self._mono())
            if current is not None and at <= current:
                return False
            self._bound = (at, self._mono(), kind)
            if kind == "server" and at - self._persisted >= PERSIST_STEP_S:
                self._persisted = at
                persist = self._persist is not None
        if persist and self._persist is not None:
            self._persist(at, kind)
        return True

    def loaded(self, at: float, kind: str = "store") -> None:
        """Evidence read back from the store at start: already durable."""
        if self.note(at, kind):
            with self._lock:
                self._persisted = max(self._persisted, at)

    def server_time(self, at: float, live: bool) -> None:
        """The server's clock on a downlink. A live one (an ack, a command: sent moments ago)
        also measures whether the wall clock runs ahead; a retained config may be days old."""
        self.note(at, "server")
        if not live or not self.plausible(at):
            return
        with self._lock:
            if self._heard is None or at >= self._heard[0]:
                self._heard = (at, self._mono())

    def set_ntp(self, synchronized: bool | None) -> None:
        with self._lock:
            changed = synchronized != self._ntp
            self._ntp = synchronized
        if changed:
            log.info("system clock NTP-synchronized: %s",
                     {True: "yes", False: "no", None: "unknown"}[synchronized])
        if synchronized:
            self.note(self._wall(), "ntp")

    # --- readings --------------------------------------------------------------------------

    def _carried(self, mono: float) -> float | None:
        if self._bound is None:
            return None
        at, then, _kind = self._bound
        return at + max(0.0, mono - then)

    def state(self) -> ClockState:
        wall = self._wall()
        with self._lock:
            mono = self._mono()
            bound = self._carried(mono)
            kind = self._bound[2] if self._bound else None
            strong, ntp = self._strong, self._ntp
            # How far the wall clock is ahead of the server's time carried forward: a wall
            # clock set right since then shows at once.
            ahead = None if self._heard is None else (
                wall - (self._heard[0] + max(0.0, mono - self._heard[1])))
        now, source, alarm = wall, "wall", None
        if ntp is not True and bound is not None and bound - wall > CORRECT_TOLERANCE_S:
            now, source = bound, "corrected"
            if bound - wall > self.skew_s:
                alarm = "behind"
        offset = now - wall
        if ntp is not True and not strong and not self.plausible(wall):
            alarm = "unknown"
        elif alarm is None and ahead is not None and ahead > self.skew_s:
            alarm, offset = "ahead", -ahead
        return ClockState(now=now, wall=wall, source=source, offset_s=offset, alarm=alarm,
                          bound=bound, evidence=kind, ntp=ntp)

    def stamp(self) -> tuple[float, str]:
        """The time and clock a record is dated with. A committed record is itself evidence,
        unless the clock was unknown or running ahead then."""
        state = self.state()
        if state.alarm in (None, "behind"):
            self.note(state.now, "record")
        return state.now, state.record_clock
