"""The one owner of a pushed config: applies what sync accepted, then records the outcome.

Sync checks a desired document and hands an accepted change over (or, when a config on
probation never reached the broker, a rollback). Here, on the daemon's main thread, the cart
is rebuilt where the change touches it; only once that worked is the change committed as
applied. If rebuilding fails (a full disk, a device that cannot be built) everything goes back
to the previous config and the change is recorded and reported as rejected, with the reason.
Whatever happens, the daemon keeps running and sync is told the outcome (`Settled`). New link
settings are the exception that proves the order: sync reports the outcome on its old
connection, and only then does the runtime replace it with one using the new settings, which
stay on probation until they reach the broker (rolled back otherwise).
"""

from __future__ import annotations

import logging
from typing import Protocol

from agent.config import AgentConfig, ConfigError
from agent.store import StoreError
from agent.sync.desired import Decision, DesiredConfig, Rollback
from agent.sync.service import Settled

log = logging.getLogger(__name__)


class Rebuildable(Protocol):
    def rebuild(self, old: AgentConfig, new: AgentConfig, restoring: bool = False) -> None:
        """Run with `new` from now on, rebuilding what differs from `old`; raises when it
        cannot (what it did is then undone by a rebuild the other way, `restoring`)."""


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, StoreError | OSError) else f"{type(exc).__name__}: {exc}"


class Reconfigure:
    def __init__(self, desired: DesiredConfig, runtime: Rebuildable) -> None:
        self.desired = desired
        self.runtime = runtime

    def apply(self, change: Decision | Rollback, current: AgentConfig) -> Settled:
        """Never raises: the outcome, applied or not, is in what it returns."""
        if isinstance(change, Rollback):
            return self._roll_back(change, current)
        assert change.config is not None
        new = change.config
        try:
            self.runtime.rebuild(current, new)
            report = self.desired.commit(change, mqtt_changed=new.mqtt != current.mqtt)
        except Exception as exc:  # whatever failed, the cart goes back and says why
            reason = _reason(exc)
            log.error("%s could not be applied (%s); back to the previous config",
                      change.label, reason, exc_info=not isinstance(exc, StoreError | OSError))
            self._restore(new, current)
            return Settled(current, self._refused(change, reason))
        return Settled(new, report)

    def _refused(self, change: Decision, reason: str) -> dict[str, object]:
        try:
            return self.desired.refuse(change, reason)
        except StoreError as exc:
            # The store cannot take the record either (a full disk): the fleet is still told.
            log.error("could not record that %s was not applied: %s", change.label, exc)
            return self.desired.unrecorded("rejected",
                                           [f"{change.label}: not applied: {reason}"])

    def _restore(self, new: AgentConfig, old: AgentConfig) -> None:
        try:
            self.runtime.rebuild(new, old, restoring=True)
        except Exception:  # nothing better to go back to; the log says what failed
            log.exception("going back to the previous config failed")

    def _roll_back(self, rollback: Rollback, current: AgentConfig) -> Settled:
        try:
            target = self.desired.rollback_target(rollback)
        except (ConfigError, OSError) as exc:  # the file no longer reads: keep what runs
            log.error("cannot roll back: %s", _reason(exc))
            return Settled(current, self.desired.report())
        try:
            self.runtime.rebuild(current, target)
            report = self.desired.commit_rollback(rollback)
        except Exception as exc:  # asked again later by sync
            log.exception("rolling back failed (%s); keeping the current config for now",
                          _reason(exc))
            self._restore(target, current)
            return Settled(current, self.desired.unrecorded(
                "rejected", [f"rolling back failed: {_reason(exc)}"]))
        return Settled(target, report)
