"""`cart-fleet release build|publish` and `cart-fleet update`: their options and what they run."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleet.client import BrokerOptions
from fleet.keys import check_kid, read_signing_key
from fleet.operations import Signer

Flags = Callable[[argparse.ArgumentParser], None]


def add_release_parsers(sub: Any, parser_class: type[argparse.ArgumentParser],
                        signing_flags: Flags, broker_flags: Flags) -> None:
    p = sub.add_parser(
        "release", help="build or publish a signed release of the agent",
        description="build: the agent's wheel and its locked dependencies' wheels from a "
                    "checkout, with a manifest signed by a release key. publish: copy a "
                    "built release into the directory a static web server serves.")
    rsub = p.add_subparsers(dest="release_cmd", required=True, parser_class=parser_class)
    b = rsub.add_parser("build", help="build and sign OUT/VERSION from a checkout")
    b.add_argument("--source", type=Path, default=Path("."),
                   help="the cart-agent checkout (default: here)")
    b.add_argument("--out", type=Path, required=True, help="where releases are built")
    b.add_argument("--wheels", type=Path, metavar="DIR",
                   help="take the dependencies from this directory (e.g. an earlier "
                        "release's wheels/), with no network")
    b.add_argument("--key", required=True, metavar="PEM",
                   help="the release key (Ed25519, its own key: never a token, fleet or "
                        "root key)")
    b.add_argument("--kid", required=True,
                   help="its key id, as carts list it in security.release_keys")
    b = rsub.add_parser("publish", help="copy a built release under a web server's directory")
    b.add_argument("release", type=Path, help="a built release directory (OUT/VERSION)")
    b.add_argument("--to", type=Path, required=True, metavar="DIR",
                   help="the directory served as the releases' URL")

    p = sub.add_parser(
        "update", help="roll a published release out to carts (signed command)",
        description="Send the `update` command: each cart fetches URL/VERSION/, verifies it "
                    "with its release keys, installs it beside the running one, switches at "
                    "a quiet moment and rolls back by itself unless healthy.")
    p.add_argument("--version", required=True, help="the release's version")
    p.add_argument("--url", required=True,
                   help="where releases are published (http(s)://HOST/PATH)")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--cart", nargs="+", help="these carts")
    target.add_argument("--all", action="store_true", help="every cart with a status")
    target.add_argument("--percent", type=int, metavar="N",
                        help="a stable N %% of the carts (the same ones as N grows)")
    p.add_argument("--window", type=int, metavar="SECONDS",
                   help="switch at a quiet moment within this long (default on the cart: "
                        "3600)")
    p.add_argument("--deadline", type=int, metavar="SECONDS",
                   help="healthy within this long after the switch or rolled back "
                        "(default on the cart: 180)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait per cart")
    signing_flags(p)
    broker_flags(p)


def run_release(args: argparse.Namespace) -> int:
    from fleet.release import build, publish

    if args.release_cmd == "build":
        key = read_signing_key(args.key)
        built = build(args.source.resolve(), args.out, key, check_kid(args.kid),
                      wheels_from=args.wheels)
        print(f"built {built}")
        return 0
    published = publish(args.release, args.to)
    print(f"published {published}")
    return 0


def run_update(args: argparse.Namespace, opts: BrokerOptions, signer: Signer | None) -> int:
    from fleet.rollout import check_published, choose, known_carts, roll_out, update_args

    update = update_args(args.version, args.url, args.window, args.deadline)
    check_published(args.url, args.version)
    known = {} if args.cart else known_carts(opts)
    targets = choose(args.cart, args.all, args.percent, known)
    if not targets:
        print("cart-fleet: no cart chosen", file=sys.stderr)
        return 1
    sent = roll_out(opts, targets, update, signer, args.timeout)
    for item in sent:
        print(f"{item.cart}: {item.said}")
    return 0 if all(item.ok for item in sent) else 1
