"""What the cart shares with the fleet (CONTRACT.md sections 3 and 4): topic names, the one table
of remote commands, id patterns, the time format and the transaction type names.

The fleet side imports these rather than the cart's internals, so both sides check the same
things the same way; the cart's own code (sync, the flows, the store) takes them from here too.
Pure definitions: this module imports nothing of the project.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# --- ids ----------------------------------------------------------------------------------

CART_ID_PATTERN = r"^[a-z0-9-]{1,32}$"
KEY_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
COMMAND_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
ULID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32


def is_ulid(text: str) -> bool:
    """A transaction id: 26 Crockford base32 characters, the first at most 7 (128 bits)."""
    return len(text) == 26 and all(c in ULID_ALPHABET for c in text) and text[0] in "01234567"


# The config file format this agent reads; a release's manifest names the lowest it needs.
CONFIG_SCHEMA = 1

# --- time ---------------------------------------------------------------------------------

def rfc3339(ts: float) -> str:
    """UTC with milliseconds and a Z, e.g. 2026-11-25T14:02:03.120Z."""
    ms = int(ts * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def parse_rfc3339(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- topics -------------------------------------------------------------------------------

FLEET_SCOPE = "_all"


@dataclass(frozen=True)
class Topics:
    """The MQTT topics of one cart (contract section 4)."""

    prefix: str
    cart: str

    def _t(self, suffix: str, cart: str | None = None) -> str:
        return f"{self.prefix}/{cart or self.cart}/{suffix}"

    @property
    def tx(self) -> str:
        return self._t("tx")

    @property
    def ack(self) -> str:
        return self._t("tx/ack")

    @property
    def status(self) -> str:
        return self._t("status")

    @property
    def telemetry(self) -> str:
        return self._t("telemetry")

    @property
    def desired(self) -> str:
        return self._t("config/desired")

    @property
    def fleet_desired(self) -> str:
        return self._t("config/desired", FLEET_SCOPE)

    @property
    def reported(self) -> str:
        return self._t("config/reported")

    @property
    def cmd(self) -> str:
        return self._t("cmd")

    @property
    def result(self) -> str:
        return self._t("cmd/result")

    def down(self) -> list[str]:
        """What the cart subscribes to."""
        return [self.ack, self.desired, self.fleet_desired, self.cmd]


# --- remote commands ----------------------------------------------------------------------

MAX_ARG_CHARS = 128


class CommandError(Exception):
    """A command refused or failed for a reason worth telling the sender."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Arg:
    kind: type
    required: bool = True


# The one table of remote commands: what the cart accepts, what `cart-fleet command` parses
# its arguments by, and what docs/interfaces/mqtt.md lists (a test keeps them in step).
SIGNATURES: dict[str, dict[str, Arg]] = {
    "open_compartment": {"compartment": Arg(str), "reason": Arg(str, required=False)},
    "reprint": {"tx_id": Arg(str)},
    "sync_now": {},
    "set_out_of_service": {"on": Arg(bool), "compartment": Arg(str, required=False),
                           "reason": Arg(str, required=False)},
    "revoke_token": {"jti": Arg(str)},
    "ping": {},
    # A signed release published under URL/VERSION/ (see agent/update/): fetched, installed
    # beside the running one and switched to at a quiet moment within `window_s`; kept only
    # if healthy within `deadline_s` of the switch.
    "update": {"version": Arg(str), "url": Arg(str), "window_s": Arg(int, required=False),
               "deadline_s": Arg(int, required=False)},
}


def check_args(name: str, args: dict[str, Any]) -> None:
    """Raise CommandError naming the first problem with the command's name or arguments."""
    signature = SIGNATURES.get(name)
    if signature is None:
        raise CommandError(f"unknown command {name!r}")
    unknown = sorted(set(args) - set(signature))
    if unknown:
        raise CommandError(f"{name}: unknown argument(s): {', '.join(map(str, unknown))}")
    for key, arg in signature.items():
        if key not in args:
            if arg.required:
                raise CommandError(f"{name}: missing argument {key!r}")
            continue
        value = args[key]
        # bool is an int in Python; a JSON true must not pass for a number or the reverse.
        if not isinstance(value, arg.kind) or (arg.kind is not bool and isinstance(value, bool)):
            raise CommandError(f"{name}: argument {key!r} must be {arg.kind.__name__}")
        if isinstance(value, str) and not 0 < len(value) <= MAX_ARG_CHARS:
            raise CommandError(f"{name}: argument {key!r} must be 1-{MAX_ARG_CHARS} characters")


# --- transactions -------------------------------------------------------------------------

# Every transaction type the cart records (docs/interfaces/mqtt.md lists them; a consumer
# must still accept types it does not know).
TX_TYPES = frozenset({
    "parcel.deposit", "parcel.pickup", "meal.pickup", "ticket.issue", "scan.rejected",
    "locker.open", "locker.open_failed", "locker.open_confirmed", "locker.open_unconfirmed",
    "locker.open_interrupted", "locker.forced_open", "locker.door_left_open",
    "deposit_mode", "token.revoked", "cart.out_of_service", "compartment.out_of_service",
    "receipt.reprint", "report.printed", "attendant.lockout_reset", "store.restored",
    "config.applied", "config.rejected", "command.done",
    "clock.behind", "clock.ahead", "clock.unknown", "clock.ok",
    "software.update",
})
