"""The fleet's commands (contract section 4) carried out through the cart's actions.

The command ledger (agent/sync/command_ledger.py) has checked the name and the arguments
against the one table of commands (agent.contract.SIGNATURES) before anything runs here;
`sync_now` and `ping` are answered by sync itself.
"""

from __future__ import annotations

from typing import Any

from agent.contract import CommandError
from agent.flows.actions import ActionError
from agent.ports import CartActions

BY = "fleet"


def run_command(actions: CartActions, name: str, args: dict[str, Any]) -> object:
    """The command's result; CommandError (sent back on cmd/result) when it was refused."""
    try:
        if name == "open_compartment":
            return actions.open_compartment(args["compartment"],
                                            args.get("reason") or "remote command",
                                            by=BY, source="command")
        if name == "reprint":
            return actions.reprint(args["tx_id"], by=BY)
        if name == "set_out_of_service":
            return actions.set_out_of_service(args["on"], by=BY,
                                              compartment=args.get("compartment"),
                                              reason=args.get("reason"))
        if name == "revoke_token":
            return actions.revoke_token(args["jti"], source=BY)
        if name == "update":
            return actions.request_update(args)
    except ActionError as exc:
        raise CommandError(str(exc)) from None
    raise CommandError(f"unknown command {name[:40]!r}")
