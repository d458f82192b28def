"""Fleet commands (contract section 4) mapped onto the cart's actions.

`sync_now` and `ping` are answered by the sync layer itself; the rest arrive here. A bad
argument raises CommandError with the reason, which goes back on `cmd/result`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent.flows.actions import ActionError

if TYPE_CHECKING:
    from agent.daemon import Daemon


def run_command(daemon: Daemon, name: str, args: dict[str, Any]) -> object:
    from agent.sync.commands import CommandError

    actions = daemon.actions
    if actions is None:
        raise CommandError("the cart is starting; try again")
    if not isinstance(args, dict):
        raise CommandError("args must be an object")
    allowed = {
        "open_compartment": {"compartment", "reason"},
        "reprint": {"tx_id"},
        "set_out_of_service": {"on", "compartment", "reason"},
        "revoke_token": {"jti"},
    }
    if name not in allowed:
        raise CommandError(f"unknown command {name[:40]!r}")
    extra = set(args) - allowed[name]
    if extra:
        raise CommandError(f"unknown argument(s) for {name}: {', '.join(sorted(extra))}")
    try:
        if name == "open_compartment":
            if "compartment" not in args:
                raise CommandError("open_compartment needs compartment")
            return actions.open_compartment(args["compartment"],
                                            args.get("reason") or "remote command",
                                            by="fleet", source="command")
        if name == "reprint":
            if "tx_id" not in args:
                raise CommandError("reprint needs tx_id")
            return actions.reprint(args["tx_id"], by="fleet")
        if name == "set_out_of_service":
            if "on" not in args:
                raise CommandError("set_out_of_service needs on (true or false)")
            return actions.set_out_of_service(args["on"], by="fleet",
                                              compartment=args.get("compartment"),
                                              reason=args.get("reason"))
        if "jti" not in args:
            raise CommandError("revoke_token needs jti")
        return actions.revoke_token(args["jti"], source="fleet")
    except ActionError as exc:
        raise CommandError(str(exc)) from None
