"""Reading what the fleet sends down: size cap, signature (when required), strict JSON.

Shared by desired configs and commands, so both refuse the same things for the same reasons:
oversized payloads before any parsing, unsigned payloads when `security.fleet_keys` is set, a
signature by a key not in `fleet_keys`, duplicate JSON members, nesting bombs.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

from agent.contract import parse_rfc3339
from agent.jws import (
    JwsError,
    b64url_decode,
    key_map,
    looks_like_jws,
    strict_json_object,
    verify,
)

log = logging.getLogger(__name__)

MAX_CONTROL_BYTES = 256 * 1024


class ControlError(Exception):
    """A down payload refused before its content was looked at; the message is the reason."""


def parse_json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        return strict_json_object(raw, what)
    except JwsError as exc:
        raise ControlError(str(exc)) from None


@dataclass(frozen=True)
class Signer:
    """Who vouched for a control message: a root key, a fleet key, or nobody (unsigned, only
    accepted while `security.fleet_keys` is empty)."""

    role: Literal["root", "fleet", "unsigned"]
    kid: str | None = None

    def __str__(self) -> str:
        return "unsigned" if self.kid is None else f"signed by {self.role} key {self.kid!r}"


def read_signed(payload: bytes, fleet_keys: dict[str, str], root_keys: dict[str, str],
                what: str) -> tuple[dict[str, Any], Signer]:
    """The JSON object a control message carries and who signed it. A JWS is verified against
    the fleet and root keys (config validation keeps their key ids apart); plain JSON is
    accepted only while no fleet key is configured."""
    if len(payload) > MAX_CONTROL_BYTES:
        raise ControlError(f"{what} is {len(payload)} bytes, more than {MAX_CONTROL_BYTES} bytes")
    text = None
    with contextlib.suppress(UnicodeDecodeError):
        text = payload.decode("ascii").strip()
    if not fleet_keys and (text is None or not looks_like_jws(text)):
        return parse_json_object(payload, what), Signer("unsigned")
    if text is None:
        raise ControlError(f"{what} must be signed (a JWS compact string)")
    if text.startswith("{"):
        raise ControlError(f"{what} must be signed (a JWS compact string), got plain JSON")
    keys = {**key_map(fleet_keys), **key_map(root_keys)}
    try:
        verified = verify(text, keys, max_bytes=MAX_CONTROL_BYTES)
    except JwsError as exc:
        raise ControlError(f"{what} signature refused ({exc.reason}): {exc}") from None
    except RecursionError:
        raise ControlError(f"{what} is nested too deeply") from None
    role: Literal["root", "fleet"] = "root" if verified.kid in root_keys else "fleet"
    return verified.claims, Signer(role, verified.kid)


def read_control(payload: bytes, fleet_keys: dict[str, str], what: str) -> dict[str, Any]:
    """The JSON object a command carries, verified when signing is on. Only fleet keys sign
    commands: a root key's one job is the cart's trust anchors."""
    doc, _signer = read_signed(payload, fleet_keys, {}, what)
    return doc


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
    ident = value.get("id") if isinstance(value, dict) else None
    if isinstance(ident, str) and len(ident) <= 64 and ident.isprintable():
        try:
            ident.encode("utf-8")  # a lone surrogate would break the answer's encoding
        except UnicodeEncodeError:
            return None
        return ident
    return None


def server_time(doc: dict[str, Any], what: str) -> float | None:
    """The server's `at` on a downlink (contract section 6), or None. A malformed one is
    ignored with a warning: it is evidence of the time, never a reason to refuse the rest."""
    at = doc.get("at")
    if at is None:
        return None
    if isinstance(at, str) and 0 < len(at) <= 40:
        try:
            return parse_rfc3339(at)
        except ValueError:
            pass
    log.warning("%s: ignored a malformed server time %r", what, str(at)[:40])
    return None
