"""The cart's trusted clock: what "now" is when the wall clock may be wrong (issue 14).

`trusted.TrustedClock` holds the rules; `evidence` reads and keeps the durable evidence in the
store; `ntp` asks the system whether its clock is NTP-synchronized. Imports nothing of the
project but the contract, so the store, the flows and sync can all take readings from it.
"""

from agent.clock.trusted import BUILD_FLOOR, ClockState, TrustedClock

__all__ = ["BUILD_FLOOR", "ClockState", "TrustedClock"]
