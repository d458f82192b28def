"""The narrow interfaces the screens, the control socket and the fleet's commands get instead of
the daemon.

The runtime builds one object implementing them all (agent/runtime/facade.py) and hands each
part only the ports it needs; nothing outside the runtime sees how the cart is put together.
Every method is safe to call from any thread. Actions raise `ActionError` (agent.flows.actions)
with a reason a person can act on when they refuse, and do nothing then.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from agent.config import AgentConfig
from agent.devices.protocols import Scanner
from agent.devices.scanner.lines import ScanEvent
from agent.flows.compartments import Compartment
from agent.flows.feedback import FeedbackBus
from agent.store import Tx


class CartActions(Protocol):
    """What attendants, maintenance and the fleet may do; each leaves an audit transaction."""

    def open_compartment(self, compartment: object, reason: object, by: str,
                         source: str) -> dict[str, Any]: ...

    def set_out_of_service(self, on: object, by: str, compartment: object = None,
                           reason: object = None) -> dict[str, Any]: ...

    def reprint(self, tx_id: object, by: str) -> dict[str, Any]: ...

    def revoke_token(self, jti: object, source: str) -> dict[str, Any]: ...

    def deposit_mode(self, on: bool, attendant: str) -> dict[str, Any]: ...

    def print_report(self, day: str | None, by: str) -> dict[str, Any]: ...

    def print_test(self) -> None: ...

    def test_audio(self, by: str) -> dict[str, Any]:
        """Play the test prompt (a tone and a phrase per language), quiet hours or not:
        `{"languages", "problem"}`, the speaker's health error or None."""

    def reset_lockout(self, by: str) -> dict[str, Any]: ...

    def request_update(self, args: dict[str, Any], cmd_id: str | None = None
                       ) -> dict[str, Any]:
        """Accept a fleet `update` job (agent/update/); carried out in the background."""


class ReadModel(Protocol):
    """What the cart holds and has done, as the store (and the flow thread) know it."""

    def queue_stats(self) -> dict[str, Any]: ...

    def last_sync_at(self) -> str | None: ...

    def out_of_service(self) -> bool: ...

    def compartments(self) -> list[Compartment]: ...

    def recent(self, types: Collection[str], limit: int) -> list[Tx]: ...

    def config_versions(self) -> dict[str, int | None]: ...

    def print_queue(self) -> int: ...

    def day_report(self, day: str | None = None) -> dict[str, Any]: ...

    def deposit_active(self) -> bool: ...


class HealthView(Protocol):
    """How the cart's parts are doing, live."""

    def devices(self) -> dict[str, dict[str, Any]]:
        """Per device (scanner, printer, locker) `{"ok", "error"}` as telemetry says it."""

    def services(self) -> dict[str, dict[str, object]]:
        """Every supervised service's health snapshot, and the storage probe's."""

    def clock(self) -> dict[str, Any]:
        """The trusted clock's state (agent/clock): the contract's `clock` object and what
        stands behind it."""

    def sync(self) -> dict[str, object] | None:
        """The link's health snapshot; None when the cart runs without a broker."""

    def online(self) -> bool: ...

    def doors(self) -> tuple[dict[str, bool | None], dict[str, object]]:
        """Door states by "board:lock" (True closed, None unknown) and the locker's health."""


class ConfigView(Protocol):
    """The config the cart runs with now (a pushed config replaces it)."""

    @property
    def config(self) -> AgentConfig: ...


class Feeds(Protocol):
    """What the cart tells residents, and the raw scans (for `cart-agent scan-test`)."""

    @property
    def feedback(self) -> FeedbackBus: ...

    @property
    def scans(self) -> FeedbackBus: ...


class LocalCart(Protocol):
    """The cart as a maintenance command drives it when no daemon runs: built by the runtime
    for that one command, from the same parts the daemon uses."""

    def open_compartment(self, compartment: str, reason: str, by: str) -> dict[str, Any]:
        """Open one door through the flows (intent first), waiting for the door to decide an
        open whose answer was lost; ActionError when it did not open."""

    def print_test(self) -> None:
        """Print the test receipt; ActionError saying why it did not print."""

    def scanner(self, on_scan: Callable[[ScanEvent], None]) -> Scanner | None:
        """The configured scanner (not running yet), delivering to `on_scan`."""
