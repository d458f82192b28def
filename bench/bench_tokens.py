"""Verifying one QR token (structure, signature, claims) against the raw Ed25519 verify of the
same signature with `cryptography`, in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.flows.tokens import TokenVerifier


def _per_op_us(call: Callable[[], object], n: int) -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n):
            call()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def run(quick: bool = False) -> list[dict[str, object]]:
    n = 300 if quick else 5000
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    now = time.time()
    token = jws.sign({"svc": "parcel", "jti": "a1b2c3d4e5f6", "parcel": "SF1234567890",
                      "cart": "bc-01", "nbf": int(now), "exp": int(now + 3600)}, key, "k1")
    head, body, sig = token.split(".")
    signing_input = f"{head}.{body}".encode()
    signature = jws.b64url_decode(sig)
    verifier = TokenVerifier({"k1": public}, "bc-01", 120, 2048)

    raw_us = _per_op_us(lambda: public.verify(signature, signing_input), n)
    ours_us = _per_op_us(lambda: verifier.verify(token), n)
    return [{
        "name": "token verification (JWS EdDSA, claims checked)",
        "value": round(ours_us, 1), "unit": "µs/token",
        "baseline": "raw cryptography Ed25519 verify", "baseline_value": round(raw_us, 1),
        "ratio": round(ours_us / raw_us, 2),
    }]


if __name__ == "__main__":
    for row in run():
        print(row)
