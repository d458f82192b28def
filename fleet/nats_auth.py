"""Per-cart authorisation on NATS: the same rights as `config/mosquitto/acl`, as accounts.

    python -m fleet.nats_auth --users users.txt --out accounts.conf [--prefix carts]

`users.txt` has one `NAME:PASSWORD` per line: cart ids, plus `ingest`, `fleet` and `sys`
(the system account's user, for monitoring). The output is the `accounts {}` block every
node includes (`config/nats/node.conf`), with bcrypt hashes, never the passwords.

NATS has no per-user pattern like Mosquitto's `%u` in a config file, so every cart gets its
own user entry whose permissions name its own subjects (MQTT topic `P/C/tx` is subject
`P.C.tx`):

- cart C publishes `P.C.{tx,status,telemetry,config.reported,cmd.result}` and subscribes
  to `P.C.{tx.ack,config.desired,cmd}` and `P._all.config.desired`;
- `ingest` publishes `P.*.tx.ack`, its stream's and consumer's JetStream API calls and acks,
  and subscribes to `_INBOX.>` (where pulled messages are delivered);
- `fleet` publishes `P.*.config.desired` and `P.*.cmd` and subscribes to
  `P.*.{status,telemetry,config.reported,cmd.result}`.

Everyone is in one JetStream-enabled account (MQTT on NATS needs JetStream in the user's
account; the carts' retained messages and sessions live there).

The bcrypt cost is low on purpose (default 6): the server runs bcrypt on every connect, so
with cost 11 a reconnect storm of 10,000 carts would cost the cluster minutes of CPU. Cart
passwords are random (make them with `openssl rand -base64 24`, 192 bits): no cost factor
makes those guessable, and none would save a short one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import bcrypt

from agent.contract import CART_ID_PATTERN

SPECIAL = ("ingest", "fleet", "sys")
# NATS delivers an MQTT QoS 1 subscription through a JetStream consumer whose delivery
# subject is `$MQTT.sub.<random>`: without it every QoS 1 SUBSCRIBE is refused (0x80).
# Checked by the tests: it does not let an MQTT client read what was meant for another.
MQTT_DELIVERY = "$MQTT.sub.>"
STREAM = "CARTS_TX"
DURABLE = "ingest"


class AuthInputError(ValueError):
    pass


def read_users(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, password = line.partition(":")
        if not sep or not password:
            raise AuthInputError(f"line {n}: use NAME:PASSWORD")
        if name not in SPECIAL and not re.match(CART_ID_PATTERN, name):
            raise AuthInputError(f"line {n}: {name!r} is neither a cart id nor one of "
                                 f"{', '.join(SPECIAL)}")
        if name in users:
            raise AuthInputError(f"line {n}: {name} twice")
        users[name] = password
    return users


def cart_permissions(prefix: str, cart: str) -> dict[str, list[str]]:
    mine = f"{prefix}.{cart}"
    return {"publish": [f"{mine}.tx", f"{mine}.status", f"{mine}.telemetry",
                        f"{mine}.config.reported", f"{mine}.cmd.result"],
            "subscribe": [f"{mine}.tx.ack", f"{mine}.config.desired",
                          f"{prefix}._all.config.desired", f"{mine}.cmd", MQTT_DELIVERY]}


def ingest_permissions(prefix: str, stream: str = STREAM,
                       durable: str = DURABLE) -> dict[str, list[str]]:
    api = "$JS.API"
    return {"publish": [f"{prefix}.*.tx.ack", f"{api}.INFO",
                        f"{api}.STREAM.INFO.{stream}", f"{api}.STREAM.CREATE.{stream}",
                        f"{api}.CONSUMER.CREATE.{stream}", f"{api}.CONSUMER.CREATE.{stream}.>",
                        f"{api}.CONSUMER.DURABLE.CREATE.{stream}.{durable}",
                        f"{api}.CONSUMER.INFO.{stream}.{durable}",
                        f"{api}.CONSUMER.MSG.NEXT.{stream}.{durable}",
                        f"$JS.ACK.{stream}.>"],
            "subscribe": ["_INBOX.>"]}


def fleet_permissions(prefix: str) -> dict[str, list[str]]:
    return {"publish": [f"{prefix}.*.config.desired", f"{prefix}.*.cmd"],
            "subscribe": [f"{prefix}.*.status", f"{prefix}.*.telemetry",
                          f"{prefix}.*.config.reported", f"{prefix}.*.cmd.result",
                          MQTT_DELIVERY]}


def _hash(password: str, cost: int) -> str:
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(cost)).decode("ascii")


def _user(name: str, password: str, perms: dict[str, list[str]] | None, cost: int) -> str:
    entry = f"{{ user: {json.dumps(name)}, password: {json.dumps(_hash(password, cost))}"
    if perms is not None:
        entry += (f", permissions: {{ publish: {{ allow: {json.dumps(perms['publish'])} }}, "
                  f"subscribe: {{ allow: {json.dumps(perms['subscribe'])} }} }}")
    return entry + " }"


def render_accounts(users: dict[str, str], prefix: str = "carts", cost: int = 6) -> str:
    """The accounts block for every node; raises AuthInputError without `sys`."""
    if not re.match(r"^[A-Za-z0-9_-]{1,64}$", prefix):
        raise AuthInputError(f"prefix {prefix!r}: NATS subjects need [A-Za-z0-9_-]")
    if "sys" not in users:
        raise AuthInputError("a `sys` user is needed for the system account")
    lines = []
    for name, password in users.items():
        if name == "sys":
            continue
        perms = (ingest_permissions(prefix) if name == "ingest" else
                 fleet_permissions(prefix) if name == "fleet" else
                 cart_permissions(prefix, name))
        lines.append("      " + _user(name, password, perms, cost))
    return ("# Generated by `python -m fleet.nats_auth`: edit users.txt, not this file.\n"
            "accounts {\n  CARTS {\n    jetstream: enabled\n    users: [\n"
            + "\n".join(lines) + "\n    ]\n  }\n  SYS {\n    users: [\n      "
            + _user("sys", users["sys"], None, cost) + "\n    ]\n  }\n}\n"
            "system_account: SYS\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fleet.nats_auth",
                                description="NATS accounts with per-cart permissions")
    p.add_argument("--users", required=True, type=Path, help="NAME:PASSWORD per line")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--prefix", default="carts")
    p.add_argument("--cost", type=int, default=6, help="bcrypt cost, 4..14 (default 6)")
    args = p.parse_args(argv)
    if not 4 <= args.cost <= 14:
        print("--cost must be 4..14", file=sys.stderr)
        return 2
    try:
        users = read_users(args.users.read_text(encoding="utf-8"))
        text = render_accounts(users, args.prefix, args.cost)
    except (OSError, UnicodeDecodeError, AuthInputError) as exc:
        print(f"nats_auth: {exc}", file=sys.stderr)
        return 2
    args.out.write_text(text)
    args.out.chmod(0o640)
    print(f"{args.out}: {len(users)} users ({len(users) - len(set(users) & set(SPECIAL))} "
          "carts)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
