"""`cart-fleet`: keys and tokens, desired config, commands, status, the reference ingest.

Exit codes (CONTRACT.md section 1): 0 success, 1 operational failure (broker unreachable,
refused, no answer; reason on stderr), 2 bad usage or bad input. No tracebacks for either.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fleet.client import PROTOCOLS, BrokerOptions, FleetError
from fleet.keys import (
    SERVICE_CLAIMS,
    SERVICES,
    BadInput,
    check_kid,
    issue_token,
    keygen,
    parse_pairs,
    parse_ttl,
    read_signing_key,
    write_qr_png,
)
from fleet.operations import (
    CartOffline,
    Signer,
    check_cart,
    command_args,
    no_answer_reason,
    push_config,
    read_config_file,
    send_command,
)
from fleet.release_cli import add_release_parsers, run_release, run_update
from fleet.status import collect_status, format_status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's own exit code for usage errors is 2
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _broker_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--username")
    p.add_argument("--password", help="or $CART_FLEET_PASSWORD")
    p.add_argument("--tls", action="store_true")
    p.add_argument("--ca-file")
    p.add_argument("--prefix", default="carts")
    p.add_argument("--protocol", choices=PROTOCOLS, default="auto",
                   help="MQTT version (default auto: 5, falling back to 3.1.1)")


def _signing_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", help="Ed25519 private key (PEM) to sign with")
    p.add_argument("--kid", help="key id the carts know the public key by")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cart-fleet", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    p = sub.add_parser("keygen", help="make an Ed25519 key pair")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--kid", default="k1")

    p = sub.add_parser(
        "issue-token", help="print a signed QR token",
        description="Print a signed QR token (JWS, EdDSA) for residents, couriers and staff.",
        epilog="claims each service needs: " + "; ".join(
            f"{svc}: {need}" for svc, need in SERVICE_CLAIMS.items())
        + ". Example: cart-fleet issue-token --key keys/k1.pem --kid k1 --svc ticket "
          "--claim service=gov --png t.png")
    p.add_argument("--key", required=True, metavar="PEM",
                   help="the token issuer's Ed25519 private key (from cart-fleet keygen)")
    p.add_argument("--kid", required=True,
                   help="its key id, as carts list it in security.token_keys")
    p.add_argument("--svc", required=True, choices=SERVICES,
                   help="what the token is for: %(choices)s")
    p.add_argument("--cart", help="the only cart where it is valid (default: any cart)")
    p.add_argument("--ttl", default="2h",
                   help="how long it stays valid: 90s, 15m, 2h, 7d (default: %(default)s)")
    p.add_argument("--claim", action="append", default=[], metavar="K=V",
                   help="a claim; the value is JSON when it parses (items='[\"米饭\"]'), "
                        "else text; repeat for more")
    p.add_argument("--png", type=Path, metavar="FILE", help="also write the QR code as a PNG")

    p = sub.add_parser(
        "push-config", help="publish a desired config (retained)",
        description="Check a partial config with the cart's own models, then publish it "
                    "retained to P/CART/config/desired (or P/_all/... with --all).")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--cart", help="the cart it is for")
    target.add_argument("--all", action="store_true", help="every cart (the cart's own wins)")
    p.add_argument("--version", type=int, required=True,
                   help="must be higher than the version retained now")
    p.add_argument("--force", action="store_true",
                   help="publish even when the version is not higher than the retained one")
    p.add_argument("file", help="partial config, TOML or JSON")
    _signing_flags(p)
    _broker_flags(p)

    p = sub.add_parser("status", help="every cart seen: state, queue, config, devices")
    p.add_argument("--json", action="store_true")
    p.add_argument("--wait", type=float, default=1.5, help="seconds to listen (default 1.5)")
    _broker_flags(p)

    p = sub.add_parser("command", help="send a command to a cart and print its result")
    p.add_argument("cart")
    p.add_argument("name")
    p.add_argument("args", nargs="*", metavar="K=V")
    p.add_argument("--timeout", type=float, default=10.0)
    _signing_flags(p)
    _broker_flags(p)

    add_release_parsers(sub, _Parser, _signing_flags, _broker_flags)

    p = sub.add_parser(
        "desk", help="the fleet dashboard (web)",
        description="Serve the fleet manager's desk: a web dashboard over the ingest's "
                    "PostgreSQL tables and the carts' live topics.")
    p.add_argument("--db", required=True, metavar="URL",
                   help="the ingest's PostgreSQL database, postgresql://USER@HOST/DB")
    p.add_argument("--listen", default="127.0.0.1:8780", metavar="HOST:PORT",
                   help="where to serve the pages (default %(default)s)")
    p.add_argument("--timezone", default="Asia/Shanghai",
                   help="local time of the pages and of the usage days (default %(default)s)")
    p.add_argument("--offline-alarm", default="10m", metavar="TTL",
                   help="raise an alarm for a cart offline longer than this (default "
                        "%(default)s)")
    p.add_argument("--table", default="cart_transactions",
                   help="the ingest's transactions table (default %(default)s)")
    p.add_argument("--trusted-proxy", metavar="IP",
                   help="a TLS reverse proxy in front of the desk: its X-Forwarded-Proto is "
                        "believed, so cookies are marked Secure")
    p.add_argument("--key", metavar="PEM",
                   help="the fleet key (Ed25519 private key) that signs pushes and commands")
    p.add_argument("--kid", help="its key id, as carts list it in security.fleet_keys")
    _broker_flags(p)

    p = sub.add_parser("desk-user", help="add, remove or list the desk's users",
                       description="Manage who may log in to the desk. A manager may act "
                                   "(push configs, send commands, acknowledge alarms); a "
                                   "viewer only looks.")
    p.add_argument("action", choices=("add", "remove", "list"),
                   help="add (or reset the password and role of) a user, remove one, list")
    p.add_argument("name", nargs="?", help="the user name (add, remove)")
    p.add_argument("--role", choices=("manager", "viewer"), default="viewer",
                   help="with add: what the user may do (default %(default)s)")
    p.add_argument("--password-stdin", action="store_true",
                   help="with add: read the password from the first line of stdin instead "
                        "of asking twice")
    p.add_argument("--db", required=True, metavar="URL", help="the desk's PostgreSQL database")

    p = sub.add_parser("ingest", help="the reference central ingest")
    p.add_argument("--db", default="ingest.db", help="SQLite path or postgresql:// URL")
    p.add_argument("--group", default="ingest", help="shared-subscription group")
    p.add_argument("--no-shared", action="store_true", help="plain subscription (3.1.1 brokers)")
    p.add_argument("--transport", choices=("mqtt", "nats"), default="mqtt",
                   help="mqtt: $share/GROUP/P/+/tx on one broker; nats: JetStream consumer")
    p.add_argument("--nats", metavar="URL[,URL...]", help="NATS servers (--transport nats)")
    p.add_argument("--probe-timeout", type=float, default=5.0,
                   help="seconds to wait for the subscription probe (mqtt)")
    _broker_flags(p)
    return parser


def _options(args: argparse.Namespace) -> BrokerOptions:
    if not 1 <= args.port <= 65535:
        raise BadInput("--port must be 1..65535")
    password = args.password or os.environ.get("CART_FLEET_PASSWORD")
    return BrokerOptions(host=args.host, port=args.port, username=args.username,
                         password=password, tls=args.tls, ca_file=args.ca_file,
                         prefix=args.prefix, protocol=args.protocol)


def _signer(args: argparse.Namespace) -> Signer | None:
    if bool(args.key) != bool(args.kid):
        raise BadInput("--key and --kid go together")
    if not args.key:
        return None
    return read_signing_key(args.key), check_kid(args.kid)


def _run(args: argparse.Namespace) -> int:
    if args.cmd == "keygen":
        pem, pub = keygen(args.out, args.kid)
        print(f"private key: {pem}\npublic key:  {pub}")
        print(f'trust it with: {args.kid} = "{pub.read_text().strip()}"')
        return 0
    if args.cmd == "issue-token":
        if args.cart:
            check_cart(args.cart)
        token = issue_token(read_signing_key(args.key), check_kid(args.kid), args.svc,
                            cart=args.cart, ttl_s=parse_ttl(args.ttl),
                            claims=parse_pairs(args.claim))
        if args.png:
            try:
                write_qr_png(token, args.png)
            except OSError as exc:
                raise BadInput(f"{args.png}: {exc.strerror}") from None
        print(token)
        return 0
    if args.cmd == "push-config":
        target = "_all" if args.all else check_cart(args.cart)
        config = read_config_file(args.file)
        pushed = push_config(_options(args), target, args.version, config, _signer(args),
                             force=args.force)
        for note in pushed.notes:
            print(f"cart-fleet: note: {note}", file=sys.stderr)
        print(f"published version {args.version} to {pushed.topic} (retained)")
        return 0
    if args.cmd == "status":
        rows = collect_status(_options(args), max(0.1, args.wait))
        print(json.dumps(rows, ensure_ascii=False, indent=2) if args.json
              else format_status(rows))
        return 0
    if args.cmd == "command":
        check_cart(args.cart)
        try:
            outcome = send_command(_options(args), args.cart, args.name,
                                   command_args(args.name, args.args), _signer(args),
                                   args.timeout)
        except CartOffline as exc:
            print(f"cart-fleet: {exc}", file=sys.stderr)
            return 1
        if outcome.result is None:
            print(f"cart-fleet: {no_answer_reason(args.cart, outcome, args.timeout)}",
                  file=sys.stderr)
            return 1
        print(json.dumps(outcome.result, ensure_ascii=False))
        return 0 if outcome.result.get("ok") is True else 1
    if args.cmd == "release":
        return run_release(args)
    if args.cmd == "update":
        return run_update(args, _options(args), _signer(args))
    if args.cmd == "desk":
        from fleet.desk.cli import run_desk

        return run_desk(args, _options(args), _signer(args))
    if args.cmd == "desk-user":
        from fleet.desk.cli import desk_user

        return desk_user(args)
    if args.cmd == "ingest":
        return _ingest(args)
    raise BadInput(f"unknown command {args.cmd}")


def _ingest(args: argparse.Namespace) -> int:
    from fleet.ingest import IngestWorker
    from fleet.storage import StorageError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    opts = _options(args)
    if args.transport == "nats":
        return _ingest_nats(args, opts)
    if args.nats:
        raise BadInput("--nats goes with --transport nats")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        worker = IngestWorker(opts.host, opts.port, opts.prefix, args.db, opts.username,
                              opts.password, opts.tls, opts.ca_file, shared=not args.no_shared,
                              group=args.group, protocol=opts.protocol,
                              probe_timeout_s=max(0.1, args.probe_timeout)).start()
    except StorageError as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 1
    try:
        while not stop.wait(60):
            logging.info("ingest: %s", worker.stats)
    finally:
        worker.stop()
    return 0


def _ingest_nats(args: argparse.Namespace, opts: BrokerOptions) -> int:
    from fleet.ingest_nats import NatsOptions, parse_servers, run_forever
    from fleet.storage import StorageError

    if not args.nats:
        raise BadInput("--transport nats needs --nats URL[,URL...]")
    try:
        servers = parse_servers(args.nats)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    nats_opts = NatsOptions(servers=servers, prefix=opts.prefix, user=opts.username,
                            password=opts.password, durable=args.group, tls=opts.tls,
                            ca_file=opts.ca_file)
    try:
        return run_forever(nats_opts, args.db)
    except StorageError as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except BadInput as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 2
    except FleetError as exc:
        print(f"cart-fleet: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 1


if __name__ == "__main__":
    sys.exit(main())
