"""Fleet keys and QR tokens: Ed25519 key pairs, signed tokens, their QR images."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.contract import KEY_ID_PATTERN
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import BASE_SERVICES, TokenVerifier
from agent.jws import b64url_encode, encode_public_key, load_private_key, sign

RESERVED_CLAIMS = {"svc", "jti", "cart", "exp", "nbf", "iat"}
SERVICES = BASE_SERVICES  # what a cart accepts in `svc` (CONTRACT.md section 3)
# The claims each service needs, for --help and for the error when one is missing.
SERVICE_CLAIMS = {"parcel": "parcel=TRACKING", "meal": "order=ID items='[\"...\"]' [name=...] "
                  "[compartment=ID]", "ticket": "service=CODE", "courier": "sub=ID [name=...]"}
_TTL = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


class BadInput(ValueError):
    """Bad input for a key or token operation (exit 2)."""


def check_kid(kid: str) -> str:
    if not re.match(KEY_ID_PATTERN, kid):
        raise BadInput(f"bad key id {kid!r}: use 1-64 of A-Z a-z 0-9 _ . -")
    return kid


def keygen(out_dir: Path, kid: str) -> tuple[Path, Path]:
    """Write KID.pem (PKCS#8, private, mode 0600) and KID.pub (base64url of 32 raw bytes)."""
    check_kid(kid)
    out_dir.mkdir(parents=True, exist_ok=True)
    pem_path, pub_path = out_dir / f"{kid}.pem", out_dir / f"{kid}.pub"
    for path in (pem_path, pub_path):
        if path.exists():
            raise BadInput(f"{path} exists; not overwriting a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    pub_path.write_text(encode_public_key(key.public_key()) + "\n", encoding="ascii")
    return pem_path, pub_path


def read_signing_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        return load_private_key(Path(path).read_bytes())
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    except (ValueError, TypeError) as exc:
        raise BadInput(f"{path}: not an unencrypted Ed25519 private key ({exc})") from None


def parse_ttl(text: str) -> float:
    match = _TTL.match(text.strip())
    if not match or float(match.group(1)) <= 0:
        raise BadInput(f"bad ttl {text!r}: use e.g. 90s, 15m, 2h, 7d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_value(text: str) -> Any:
    """JSON when it parses (so '["米饭","青菜"]' is a list and 'true' a bool), else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list[str], what: str = "claim") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise BadInput(f"bad {what} {pair!r}: use NAME=VALUE")
        out[name] = parse_value(value)
    return out


def issue_token(key: Ed25519PrivateKey, kid: str, svc: str, cart: str | None = None,
                ttl_s: float = 7200, claims: dict[str, Any] | None = None,
                now: float | None = None) -> str:
    check_kid(kid)
    if svc not in SERVICES:
        raise BadInput(f"unknown service {svc!r}: use one of {', '.join(SERVICES)}")
    extra = claims or {}
    clash = sorted(RESERVED_CLAIMS & set(extra))
    if clash:
        raise BadInput(f"claim(s) {', '.join(clash)} are set by their own options")
    try:
        # The cart's own check of the claims a service needs: a token it would refuse
        # as bad_claims is not issued.
        TokenVerifier._check_shape(svc, extra)
    except ScanRefused as exc:
        raise BadInput(f"--svc {svc} needs {SERVICE_CLAIMS[svc]}: {exc.detail}") from None
    if ttl_s < 1:
        raise BadInput("the ttl must be at least 1 s")
    issued = int(time.time() if now is None else now)
    # iat: when it was issued, evidence of the time for a cart's clock (CONTRACT.md section 6).
    body: dict[str, Any] = {"svc": svc, "jti": b64url_encode(secrets.token_bytes(16)),
                            "iat": issued, "nbf": issued, "exp": issued + int(ttl_s)}
    if cart:
        body["cart"] = cart
    body.update(extra)
    return sign(body, key, kid)


def write_qr_png(text: str, path: str | Path, scale: int = 6) -> None:
    import segno

    # micro=False: segno would pick a Micro QR for short input, which scanners do not read.
    segno.make(text, micro=False, error="m").save(str(path), kind="png", scale=scale, border=4)
