"""ULIDs: 48-bit millisecond time + 80 random bits, Crockford base32, sortable by time."""

from __future__ import annotations

import base64
import os
import threading
import time

from agent.contract import ULID_ALPHABET

# RFC 4648 base32 (C speed) mapped onto Crockford's alphabet. 20 bytes give exactly 32
# characters; the last 26 hold the 128-bit value behind two zero bits, as a ULID does.
_TO_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ULID_ALPHABET.encode())
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def new_ulid(now_ms: int | None = None) -> str:
    """Monotonic within a process: ids made in the same millisecond still sort in order."""
    global _last_ms, _last_rand
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _lock:
        if ms <= _last_ms:
            ms = _last_ms
            rand = (_last_rand + 1) & ((1 << 80) - 1)
        else:
            rand = int.from_bytes(os.urandom(10), "big")
        _last_ms, _last_rand = ms, rand
    value = (ms << 80) | rand
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_TO_CROCKFORD).decode()
