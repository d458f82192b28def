"""`cart-fleet update`: send a signed `update` command to the chosen carts.

Which carts: named ones, all carts the broker holds a status for, or a stable share of them
(`--percent N`: a cart is in when a hash of its id falls under N %, so 10 % then 50 % then
100 % widens the same group rather than picking new carts each time). Offline carts are
skipped and named: the broker keeps no command for a cart that is not connected.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from agent.contract import check_args
from agent.update.manifest import MANIFEST_NAME, check_version
from fleet.client import BrokerOptions, FleetError
from fleet.keys import BadInput
from fleet.operations import CartOffline, Signer, check_cart, no_answer_reason, send_command
from fleet.watch import read_retained


def in_share(cart: str, percent: int) -> bool:
    bucket = int.from_bytes(hashlib.sha256(cart.encode()).digest()[:4], "big") % 100
    return bucket < percent


def known_carts(opts: BrokerOptions) -> dict[str, dict[str, Any]]:
    """Every cart with a retained status: {cart: status}."""
    import json

    found = read_retained(opts, [f"{opts.prefix}/+/status"])
    out: dict[str, dict[str, Any]] = {}
    for topic, payload in found.items():
        cart = topic[len(opts.prefix) + 1:].split("/")[0]
        try:
            doc = json.loads(payload)
        except ValueError:
            continue
        if isinstance(doc, dict):
            out[cart] = doc
    return out


def choose(carts: list[str] | None, everyone: bool, percent: int | None,
           known: dict[str, dict[str, Any]]) -> list[str]:
    if carts:
        return [check_cart(c) for c in carts]
    if percent is not None and not 1 <= percent <= 100:
        raise BadInput("--percent must be 1..100")
    names = sorted(known)
    return names if everyone else [c for c in names if in_share(c, percent or 0)]


def check_published(url: str, version: str) -> None:
    """The manifest is where the carts will look for it (publish first)."""
    where = f"{url.rstrip('/')}/{version}/{MANIFEST_NAME}"
    try:
        with urllib.request.urlopen(urllib.request.Request(where, method="HEAD"), timeout=10):
            pass
    except (urllib.error.URLError, OSError) as exc:
        raise BadInput(f"{where}: not reachable from here ({exc}); publish the release "
                       "first (cart-fleet release publish)") from None


@dataclass
class Sent:
    cart: str
    ok: bool
    said: str


def update_args(version: str, url: str, window_s: int | None, deadline_s: int | None
                ) -> dict[str, Any]:
    check_version(version)
    args: dict[str, Any] = {"version": version, "url": url.rstrip("/")}
    if window_s is not None:
        args["window_s"] = window_s
    if deadline_s is not None:
        args["deadline_s"] = deadline_s
    try:
        check_args("update", args)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    return args


def roll_out(opts: BrokerOptions, targets: list[str], args: dict[str, Any],
             signer: Signer | None, timeout_s: float) -> list[Sent]:
    out: list[Sent] = []
    for cart in targets:
        try:
            outcome = send_command(opts, cart, "update", args, signer, timeout_s)
        except CartOffline as exc:
            out.append(Sent(cart, False, f"skipped: {exc}"))
            continue
        except FleetError as exc:
            out.append(Sent(cart, False, f"not sent: {exc}"))
            continue
        result = outcome.result
        if result is None:
            out.append(Sent(cart, False, no_answer_reason(cart, outcome, timeout_s)))
        elif result.get("ok") is not True:
            out.append(Sent(cart, False, f"refused: {result.get('error')}"))
        else:
            body = result.get("result") or {}
            accepted = isinstance(body, dict) and body.get("accepted") is True
            running = isinstance(body, dict) and body.get("state") == "running"
            said = ("accepted" if accepted else "already running it" if running
                    else f"not taken: {body.get('reason')}")
            out.append(Sent(cart, accepted or running, said))
    return out
