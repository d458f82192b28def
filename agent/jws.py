"""JWS compact serialization with EdDSA / Ed25519 (RFC 7515, RFC 8037): sign and verify.

Used for the residents' QR tokens and for signed fleet control (config pushes, commands).
Verification is strict on purpose: one algorithm only, under its two names `EdDSA` and
RFC 9864's `Ed25519` (a token saying `none` or `HS256` is refused, never "downgraded"),
canonical base64url, I-JSON objects (no duplicate names, no lone surrogates, no NaN), and a
size cap checked before any decoding.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
ALGORITHM = "EdDSA"
# RFC 9864 names the same algorithm (EdDSA with an Ed25519 key) "Ed25519"; issuers are moving
# to it. Nothing else is new: Ed448 and any other name stay refused.
ACCEPTED_ALGORITHMS = frozenset({ALGORITHM, "Ed25519"})
# A \uD800-\uDFFF escape in the raw JSON: the only way a lone surrogate gets into the text.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class JwsError(ValueError):
    """Why a JWS was refused: `reason` is a stable code, the message is for people."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not _B64URL.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None
    if b64url_encode(raw) != text:  # non-canonical trailing bits: a second encoding of one value
        raise ValueError("not canonical base64url")
    return raw


def decode_public_key(text: str) -> Ed25519PublicKey:
    """A trusted key as the config holds it: base64url of the 32 raw bytes."""
    try:
        raw = b64url_decode(text.strip())
    except ValueError:
        raise ValueError("public key is not base64url") from None
    if len(raw) != 32:
        raise ValueError(f"public key must be 32 bytes, got {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def encode_public_key(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return b64url_encode(raw)


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("not an Ed25519 private key")
    return key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate member {name!r}")
        out[name] = value
    return out


def _no_constants(name: str) -> Any:
    # Python's decoder takes NaN, Infinity and -Infinity; RFC 8259 JSON has no such literals.
    raise ValueError(f"{name} is not JSON")


def _lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_lone_surrogate(k) or _lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_lone_surrogate(v) for v in value)
    return False


def strict_json_object(raw: bytes, what: str) -> dict[str, Any]:
    """An I-JSON object (RFC 7493): UTF-8, no duplicate names, no lone surrogates, and none of
    Python's NaN/Infinity extensions."""
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                           parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise JwsError("unreadable", f"{what} is not UTF-8") from None
    except ValueError as exc:
        raise JwsError("unreadable", f"{what} is not valid JSON: {exc}") from None
    except RecursionError:
        raise JwsError("unreadable", f"{what} is nested too deeply") from None
    if not isinstance(value, dict):
        raise JwsError("unreadable", f"{what} is not a JSON object")
    # A lone surrogate passes json.loads and then fails every UTF-8 encoder downstream (the
    # store, MQTT, the screens): refuse it here, where it comes in.
    if _SURROGATE_ESCAPE.search(raw) and _lone_surrogate(value):
        raise JwsError("unreadable", f"{what} holds a lone surrogate (not I-JSON)")
    return value


def sign(claims: dict[str, Any], key: Ed25519PrivateKey, kid: str) -> str:
    header = {"alg": ALGORITHM, "kid": kid, "typ": "JWT"}
    signing_input = (
        b64url_encode(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url_encode(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    )
    return signing_input + "." + b64url_encode(key.sign(signing_input.encode("ascii")))


@dataclass(frozen=True)
class Verified:
    kid: str
    header: dict[str, Any]
    claims: dict[str, Any]


def looks_like_jws(text: str) -> bool:
    parts = text.split(".")
    return len(parts) == 3 and all(_B64URL.match(p) for p in parts) and bool(parts[0])


def verify(token: str, keys: dict[str, Ed25519PublicKey], max_bytes: int = 4096) -> Verified:
    """Check signature and structure (not time or use: those belong to the caller)."""
    if len(token) > max_bytes:
        raise JwsError("unreadable", f"token longer than {max_bytes} bytes")
    parts = token.split(".")
    if len(parts) != 3:
        raise JwsError("unreadable", "not a JWS compact token")
    try:
        header_raw, payload_raw, signature = (b64url_decode(p) for p in parts)
    except ValueError:
        raise JwsError("unreadable", "token is not base64url") from None
    header = strict_json_object(header_raw, "token header")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ACCEPTED_ALGORITHMS:
        raise JwsError("bad_signature",
                       f"algorithm {str(alg)[:32]!r} is not accepted (only EdDSA / Ed25519)")
    if "crit" in header:
        raise JwsError("unreadable", "token header has critical extensions")
    kid = header.get("kid")
    if not isinstance(kid, str) or kid not in keys:
        raise JwsError("unknown_key", f"key id {kid!r} is not trusted here")
    try:
        keys[kid].verify(signature, (parts[0] + "." + parts[1]).encode("ascii"))
    except InvalidSignature:
        raise JwsError("bad_signature", "signature does not verify") from None
    claims = strict_json_object(payload_raw, "token payload")
    return Verified(kid=kid, header=header, claims=claims)


def key_map(encoded: dict[str, str]) -> dict[str, Ed25519PublicKey]:
    return {kid: decode_public_key(value) for kid, value in encoded.items()}
