"""Reading what the fleet sends down: size cap, signature (when required), strict JSON.

Shared by desired configs and commands, so both refuse the same things for the same reasons:
oversized payloads before any parsing, unsigned payloads when `security.fleet_keys` is set, a
signature by a key not in `fleet_keys`, duplicate JSON members, nesting bombs.
"""

from __future__ import annotations

import json
from typing import Any

from agent.jws import (
    JwsError,
    b64url_decode,
    key_map,
    looks_like_jws,
    strict_json_object,
    verify,
)

MAX_CONTROL_BYTES = 256 * 1024


class ControlError(Exception):
    """A down payload refused before its content was looked at; the message is the reason."""


def parse_json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        return strict_json_object(raw, what)
    except JwsError as exc:
        raise ControlError(str(exc)) from None


def read_control(payload: bytes, fleet_keys: dict[str, str], what: str) -> dict[str, Any]:
    """The JSON object a control message carries, verified when signing is on."""
    if len(payload) > MAX_CONTROL_BYTES:
        raise ControlError(f"{what} is {len(payload)} bytes, more than {MAX_CONTROL_BYTES} bytes")
    if not fleet_keys:
        return parse_json_object(payload, what)
    try:
        text = payload.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ControlError(f"{what} must be signed (a JWS compact string)") from None
    if text.startswith("{"):
        raise ControlError(f"{what} must be signed (a JWS compact string), got plain JSON")
    try:
        verified = verify(text, key_map(fleet_keys), max_bytes=MAX_CONTROL_BYTES)
    except JwsError as exc:
        raise ControlError(f"{what} signature refused ({exc.reason}): {exc}") from None
    except RecursionError:
        raise ControlError(f"{what} is nested too deeply") from None
    return verified.claims


def peek_id(payload: bytes) -> str | None:
    """The `id` of a refused command, when readable, so the sender can match the answer."""
    if len(payload) > MAX_CONTROL_BYTES:
        return None
    try:
        text = payload.decode("utf-8").strip()
        if looks_like_jws(text):
            # Unverified, and used for nothing but addressing the refusal.
            text = b64url_decode(text.split(".")[1]).decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("id"), str) and len(value["id"]) <= 64:
        return str(value["id"])
    return None
