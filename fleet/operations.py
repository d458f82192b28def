"""Fleet operations over MQTT: push a desired config, send a command.

Both `cart-fleet` and the desk call these; there is no second copy of the encoding, the
signing, the checks or the publishing.

Commands and offline carts (measured against Mosquitto 2.0 with the real daemon, see
tests/sync/test_sync_fleet_cli.py): a cart connects with a clean session and its `cmd` topic
is not retained, so a command published while the cart is disconnected is acknowledged by
the broker (PUBACK: "accepted") and then delivered to nobody. It is not queued for the cart
and the cart never runs it when it comes back. So a command is only sent to a cart whose
retained status says `online`.
"""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.contract import CART_ID_PATTERN, SIGNATURES, rfc3339
from agent.ids import new_ulid
from agent.jws import b64url_decode, looks_like_jws, sign
from fleet.checks import check_config_document
from fleet.client import BrokerOptions, FleetClient, FleetError
from fleet.keys import BadInput, parse_value
from fleet.watch import read_retained

Signer = tuple[Ed25519PrivateKey, str]  # key, kid
MAX_VERSION = 2**53


class CartOffline(FleetError):
    """The cart is not connected: a command would be accepted by the broker and lost."""


def check_cart(cart: str) -> str:
    if not re.match(CART_ID_PATTERN, cart):
        raise BadInput(f"bad cart id {cart!r}: use 1-32 of a-z 0-9 -")
    return cart


def read_config_text(text: str, name: str = "config", json_only: bool = False
                     ) -> dict[str, Any]:
    """A partial config as TOML, or JSON when it starts with '{' (or `json_only`)."""
    doc: Any
    try:
        if json_only or text.lstrip().startswith("{"):
            doc = json.loads(text)
        else:
            doc = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{name}: not valid TOML or JSON: {exc}") from None
    except RecursionError:
        raise BadInput(f"{name}: nested too deeply") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{name}: must hold a table/object of config keys")
    return doc


def read_config_file(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    return read_config_text(text, path, json_only=path.endswith(".json"))


def _encode(doc: dict[str, Any], signer: Signer | None) -> bytes:
    if signer is None:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return sign(doc, signer[0], signer[1]).encode("ascii")


def decode_control(payload: bytes) -> dict[str, Any] | None:
    """The JSON object of a control message we (or another fleet tool) published: plain JSON
    or the payload part of a JWS. Not verified: this reads what the broker holds, it decides
    nothing on it."""
    try:
        text = payload.decode("utf-8").strip()
        raw = b64url_decode(text.split(".")[1]) if looks_like_jws(text) else text.encode()
        doc = json.loads(raw)
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def desired_topic(opts: BrokerOptions, target: str) -> str:
    return f"{opts.prefix}/{target}/config/desired"


def retained_desired(opts: BrokerOptions, target: str) -> dict[str, Any] | None:
    """What the broker holds for the target now: {"version", "config"} or None."""
    found = read_retained(opts, [desired_topic(opts, target)])
    payload = found.get(desired_topic(opts, target))
    return decode_control(payload) if payload else None


def _version_of(doc: dict[str, Any] | None, key: str = "version") -> int | None:
    value = (doc or {}).get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class PushResult:
    topic: str
    version: int
    previous: int | None
    notes: list[str] = field(default_factory=list)


def check_push(target: str, version: int, config: dict[str, Any],
               retained: dict[str, Any] | None, force: bool = False) -> list[str]:
    """Raise BadInput for a document or version the cart would refuse; returns the notes."""
    if not 1 <= version <= MAX_VERSION:
        raise BadInput(f"--version must be 1..{MAX_VERSION}")
    check = check_config_document(config)
    if check.problems:
        raise BadInput("the config would be refused by the cart's models:\n  "
                       + "\n  ".join(check.problems))
    previous = _version_of(retained)
    if previous is not None and version <= previous and not force:
        raise BadInput(f"version {version} is not higher than version {previous} retained for "
                       f"{target}: the cart only takes versions above the latest it has seen; "
                       f"use --version {previous + 1} (or --force to publish it anyway)")
    return check.notes


def push_config(opts: BrokerOptions, target: str, version: int, config: dict[str, Any],
                signer: Signer | None, force: bool = False, check_seen: bool = False,
                seen_version: int | None = None) -> PushResult:
    """Check, then publish retained QoS 1 to P/TARGET/config/desired.

    `check_seen` (the desk's confirmation page): `seen_version` is the retained version the
    operator saw the diff against; if another push landed since, nothing is published.
    """
    retained = retained_desired(opts, target)
    previous = _version_of(retained)
    if check_seen and previous != seen_version:
        raise BadInput(f"the desired config of {target} changed meanwhile (now version "
                       f"{previous}); review the change again")
    notes = check_push(target, version, config, retained, force)
    # `at`: the fleet's clock, evidence of the time for the carts (contract section 6).
    doc: dict[str, Any] = {"version": version, "config": config, "at": rfc3339(time.time())}
    if signer is not None:
        doc["cart"] = target  # binds the signature to its topic: no replay at another cart
    topic = desired_topic(opts, target)
    client = FleetClient(opts)
    client.connect()
    try:
        client.publish(topic, _encode(doc, signer), qos=1, retain=True)
    finally:
        client.close()
    return PushResult(topic, version, previous, notes)


def command_args(name: str, pairs: list[str]) -> dict[str, Any]:
    """k=v pairs; a value is JSON when it parses, except where the command wants a string."""
    signature = SIGNATURES.get(name, {})
    args: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"bad argument {pair!r}: use NAME=VALUE")
        wanted = signature.get(key)
        args[key] = raw if wanted is not None and wanted.kind is str else parse_value(raw)
    return args


def cart_status(opts: BrokerOptions, cart: str) -> dict[str, Any] | None:
    """The cart's retained status (its last will when it dropped off), or None."""
    topic = f"{opts.prefix}/{cart}/status"
    payload = read_retained(opts, [topic]).get(topic)
    return decode_control(payload) if payload else None


def offline_reason(cart: str, status: dict[str, Any]) -> str:
    return (f"cart {cart} is offline (its status says so since {status.get('at', '?')}): "
            "the broker keeps no commands for a cart that is not connected (the cart's "
            "session is clean and commands are not retained), so it would be lost; "
            "nothing was sent")


def ensure_not_offline(opts: BrokerOptions, cart: str) -> dict[str, Any] | None:
    """The cart's retained status; raises CartOffline when it says offline."""
    status = cart_status(opts, cart)
    if status is not None and status.get("state") == "offline":
        raise CartOffline(offline_reason(cart, status))
    return status


def command_document(cart: str, name: str, args: dict[str, Any], signed: bool,
                     cmd_id: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": cmd_id or new_ulid(), "name": name, "args": args,
                           "at": rfc3339(time.time())}
    if signed:
        doc["cart"] = cart  # binds the signature to this cart
    return doc


def publish_command(opts: BrokerOptions, cart: str, doc: dict[str, Any],
                    signer: Signer | None, client: FleetClient | None = None) -> None:
    """Publish one command (QoS 1, never retained: the cart refuses retained commands)."""
    own = client is None
    client = client or FleetClient(opts)
    if own:
        client.connect()
    try:
        client.publish(f"{opts.prefix}/{cart}/cmd", _encode(doc, signer), qos=1)
    finally:
        if own:
            client.close()


@dataclass
class CommandOutcome:
    cmd_id: str
    result: dict[str, Any] | None  # None: no answer in time
    status_after: dict[str, Any] | None = None


def send_command(opts: BrokerOptions, cart: str, name: str, args: dict[str, Any],
                 signer: Signer | None, timeout_s: float) -> CommandOutcome:
    """Send one command to an online cart and wait for its result.

    Raises CartOffline (nothing sent) when the cart's retained status says offline.
    """
    ensure_not_offline(opts, cart)
    doc = command_document(cart, name, args, signer is not None)
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_result(_topic: str, payload: bytes, _retain: bool) -> None:
        try:
            result = json.loads(payload)
        except ValueError:
            return
        if isinstance(result, dict) and result.get("id") == doc["id"]:
            got.append(result)
            done.set()

    client = FleetClient(opts)
    client.connect()
    try:
        client.subscribe([f"{opts.prefix}/{cart}/cmd/result"], on_result)
        time.sleep(0.1)  # let the SUBACK land before the cart can answer
        publish_command(opts, cart, doc, signer, client)
        done.wait(timeout_s)
    finally:
        client.close()
    if got:
        return CommandOutcome(doc["id"], got[0])
    return CommandOutcome(doc["id"], None, cart_status(opts, cart))


def no_answer_reason(cart: str, outcome: CommandOutcome, timeout_s: float) -> str:
    status = outcome.status_after
    head = f"no answer from cart {cart} within {timeout_s:g} s (command id {outcome.cmd_id})"
    if status is None:
        return (f"{head}: the broker has no status from {cart}, which may not exist or never "
                "connected; the broker accepted the command and delivered it to nobody "
                "unless the cart is connected")
    if status.get("state") == "offline":
        return (f"{head}: the cart is offline now (status at {status.get('at', '?')}); if it "
                "dropped off before receiving the command, the broker discarded it and the "
                "cart will not run it when it comes back")
    return (f"{head}: the cart's status says online, so the broker delivered the command to "
            "it; it runs a command id at most once and records the outcome as a command.done "
            "transaction, which reaches the ingest when the cart syncs")

