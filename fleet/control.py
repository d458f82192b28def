"""Fleet operations over MQTT: push a desired config, send a command, collect every cart's state."""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import CART_ID_PATTERN
from agent.ids import new_ulid
from agent.jws import sign
from agent.sync.commands import SIGNATURES
from agent.sync.topics import FLEET_SCOPE
from fleet.client import BrokerOptions, FleetClient
from fleet.keys import BadInput, parse_value

Signer = tuple[Ed25519PrivateKey, str]  # key, kid


def check_cart(cart: str) -> str:
    if not re.match(CART_ID_PATTERN, cart):
        raise BadInput(f"bad cart id {cart!r}: use 1-32 of a-z 0-9 -")
    return cart


def read_config_file(path: str) -> dict[str, Any]:
    """A partial config as TOML or JSON (by extension; JSON tried when TOML fails on '{')."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    doc: Any
    try:
        if path.endswith(".json") or text.lstrip().startswith("{"):
            doc = json.loads(text)
        else:
            doc = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise BadInput(f"{path}: not valid TOML or JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{path}: must hold a table/object of config keys")
    return doc


def _encode(doc: dict[str, Any], signer: Signer | None) -> bytes:
    if signer is None:
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return sign(doc, signer[0], signer[1]).encode("ascii")


def push_config(opts: BrokerOptions, target: str, version: int, config: dict[str, Any],
                signer: Signer | None) -> str:
    """Publish retained QoS 1 to P/TARGET/config/desired; returns the topic."""
    if not 1 <= version <= 2**53:
        raise BadInput("--version must be 1..2^53")
    doc: dict[str, Any] = {"version": version, "config": config}
    if signer is not None:
        doc["cart"] = target  # binds the signature to its topic: no replay at another cart
    topic = f"{opts.prefix}/{target}/config/desired"
    client = FleetClient(opts)
    client.connect()
    try:
        client.publish(topic, _encode(doc, signer), qos=1, retain=True)
    finally:
        client.close()
    return topic


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


def send_command(opts: BrokerOptions, cart: str, name: str, args: dict[str, Any],
                 signer: Signer | None, timeout_s: float) -> dict[str, Any] | None:
    """Send one command and wait for its result; None when no answer came in time."""
    cmd_id = new_ulid()
    doc: dict[str, Any] = {"id": cmd_id, "name": name, "args": args}
    if signer is not None:
        doc["cart"] = cart
    got: list[dict[str, Any]] = []
    done = threading.Event()

    def on_result(_topic: str, payload: bytes, _retain: bool) -> None:
        try:
            result = json.loads(payload)
        except ValueError:
            return
        if isinstance(result, dict) and result.get("id") == cmd_id:
            got.append(result)
            done.set()

    client = FleetClient(opts)
    client.connect()
    try:
        client.subscribe([f"{opts.prefix}/{cart}/cmd/result"], on_result)
        time.sleep(0.1)  # let the SUBACK land before the cart can answer
        client.publish(f"{opts.prefix}/{cart}/cmd", _encode(doc, signer), qos=1)
        done.wait(timeout_s)
    finally:
        client.close()
    return got[0] if got else None


def collect_status(opts: BrokerOptions, wait_s: float) -> list[dict[str, Any]]:
    """Listen to status, telemetry and reports for `wait_s` and fold them per cart."""
    carts: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()

    def on_message(topic: str, payload: bytes, _retain: bool) -> None:
        parts = topic.split("/")
        if len(parts) < 3 or parts[-2] == FLEET_SCOPE:
            return
        try:
            doc = json.loads(payload)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        kind = "/".join(parts[-2:]) if parts[-2] == "config" else parts[-1]
        cart = parts[-3] if kind == "config/reported" else parts[-2]
        with lock:
            entry = carts.setdefault(cart, {"cart": cart})
            entry[kind] = doc

    client = FleetClient(opts)
    client.connect()
    try:
        p = opts.prefix
        client.subscribe([f"{p}/+/status", f"{p}/+/telemetry", f"{p}/+/config/reported"],
                         on_message)
        time.sleep(wait_s)
    finally:
        client.close()
    return [_fold(carts[c]) for c in sorted(carts)]


def _fold(entry: dict[str, Any]) -> dict[str, Any]:
    status = entry.get("status", {})
    telemetry = entry.get("telemetry", {})
    reported = entry.get("config/reported", {})
    seen = [t for t in (status.get("at"), telemetry.get("at")) if isinstance(t, str)]
    return {
        "cart": entry["cart"],
        "state": status.get("state", "unknown"),
        "last_seen": max(seen) if seen else None,
        "agent_version": status.get("agent_version"),
        "queue": telemetry.get("queue"),
        "config_version": status.get("config_version", reported.get("version")),
        "fleet_config_version": status.get("fleet_config_version",
                                           reported.get("fleet_version")),
        "config_status": reported.get("status"),
        "config_errors": reported.get("errors", []),
        "devices": telemetry.get("devices"),
        "disk_free_mb": telemetry.get("disk_free_mb"),
    }


def format_status(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no carts seen"
    lines = [f"{'CART':<14}{'STATE':<9}{'LAST SEEN':<26}{'QUEUE':>7}  {'CONFIG':<12}DEVICES"]
    for r in rows:
        queue = r["queue"]["pending"] if isinstance(r["queue"], dict) else "-"
        config = f"{r['config_version'] or '-'}/{r['fleet_config_version'] or '-'}"
        if r["config_status"] == "rejected":
            config += "!"
        devices = r["devices"] or {}
        health = " ".join(f"{name}:{'ok' if d.get('ok') else d.get('error') or 'down'}"
                          for name, d in devices.items() if isinstance(d, dict)) or "-"
        lines.append(f"{r['cart']:<14}{r['state']:<9}{r['last_seen'] or '-':<26}{queue:>7}  "
                     f"{config:<12}{health}")
        for error in r["config_errors"]:
            lines.append(f"    config: {error}")
    return "\n".join(lines)
