"""Who may use the attendant console: the PIN hash, the lockout after wrong PINs, sessions.

The PIN is kept only as an scrypt hash in the config (`cart-agent hash-pin` makes one). A PIN
has few possible values, so the real defence is the lockout: after `lockout_failures` wrong
PINs from one client the console refuses that client every PIN for `lockout_s`. It is per
client so that a guesser cannot keep the real attendant out; `cart-agent attendant unlock`
clears it locally. The counts live in the store's meta table, so restarting the daemon (or
pulling the power) does not buy more guesses.

Sessions live in memory only: a restart logs the attendant out, which is the safe direction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.store import Store

# 2**15 costs ~0.1 s and 32 MiB here; a cart's ARM board is several times slower, and each
# login pays it once. A short PIN falls to an offline search whatever the cost, so the cost
# only has to make online guessing slow; the lockout does the rest.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_BYTES, HASH_BYTES = 16, 32
PIN_MIN, PIN_MAX = 4, 64
# Bounds on what a hash string may ask for, so a bad config cannot make a login eat the RAM.
MAX_N, MAX_R, MAX_P = 2**20, 32, 16
MAX_MEM = 256 * 1024 * 1024

META_CLIENTS = "web.pin_lockout"  # JSON: client address -> [failures, locked_until, last_try]
MAX_CLIENTS = 256


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def check_pin_format(pin: str) -> None:
    if not PIN_MIN <= len(pin) <= PIN_MAX or any(ord(c) < 32 or ord(c) == 127 for c in pin):
        raise ValueError(f"a PIN is {PIN_MIN}-{PIN_MAX} printable characters")


def hash_pin(pin: str, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """`scrypt$n$r$p$salt$hash` (salt and hash in unpadded base64), for `attendant_pin_hash`."""
    check_pin_format(pin)
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                            maxmem=MAX_MEM)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def verify_pin(pin: str, encoded: str) -> bool:
    """True when `pin` matches; False for a wrong PIN and for any malformed hash string."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, expected = _unb64(parts[4]), _unb64(parts[5])
    except (ValueError, binascii.Error):
        return False
    if not (1 < n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= MAX_R and 1 <= p <= MAX_P
            and salt and 16 <= len(expected) <= 128 and 128 * n * r * p < MAX_MEM):
        return False
    try:
        digest = hashlib.scrypt(pin.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p,
                                dklen=len(expected), maxmem=MAX_MEM)
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    locked_until: float | None = None   # set when the console is locked (now or by this try)
    failures: int = 0                   # wrong PINs in a row so far
    no_pin: bool = False                # no PIN hash configured


class Lockout:
    """Counts wrong PINs per client (its address) in the store; `attempt` is serialised, so
    guesses cannot race. One client's guesses lock that client out, not the attendant at
    another screen; `reset` (cart-agent attendant unlock, over the control socket) clears it."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()

    def _table(self) -> dict[str, list[float]]:
        """client -> [failures, locked_until, last_try]."""
        raw = self.store.get_meta(META_CLIENTS)
        try:
            table = json.loads(raw) if raw else {}
        except ValueError:
            table = {}
        return {str(k): v for k, v in table.items()
                if isinstance(v, list) and len(v) == 3
                and all(isinstance(x, int | float) for x in v)} if isinstance(table, dict) else {}

    def _save(self, table: dict[str, list[float]]) -> None:
        if len(table) > MAX_CLIENTS:  # forget the clients seen longest ago
            keep = sorted(table.items(), key=lambda kv: kv[1][2])[-MAX_CLIENTS:]
            table = dict(keep)
        self.store.set_meta(META_CLIENTS, json.dumps(table) if table else None)

    def locked_until(self, client: str = "") -> float | None:
        entry = self._table().get(client)
        until = float(entry[1]) if entry else 0.0
        return until if until > self.clock() else None

    def failures(self, client: str = "") -> int:
        entry = self._table().get(client)
        return int(entry[0]) if entry else 0

    def reset(self, client: str | None = None) -> int:
        """Clear the lock and count of one client, or of all; returns how many were cleared."""
        with self._lock:
            table = self._table()
            cleared = len(table) if client is None else int(client in table)
            if client is None:
                table = {}
            else:
                table.pop(client, None)
            self._save(table)
            return cleared

    def attempt(self, pin: str, encoded: str, max_failures: int, lock_s: float,
                client: str = "") -> LoginResult:
        with self._lock:
            now = self.clock()
            table = self._table()
            failures, until, _last = table.get(client, [0, 0.0, now])
            if until > now:
                return LoginResult(False, locked_until=until, failures=int(failures))
            if not encoded:
                return LoginResult(False, no_pin=True)
            if verify_pin(pin, encoded):
                if client in table:
                    del table[client]
                    self._save(table)
                return LoginResult(True)
            failures = int(failures) + 1
            if failures >= max_failures:
                table[client] = [0, now + lock_s, now]
                self._save(table)
                return LoginResult(False, locked_until=now + lock_s, failures=failures)
            table[client] = [failures, 0.0, now]
            self._save(table)
            return LoginResult(False, failures=failures)


@dataclass
class Session:
    token: str
    csrf: str
    authenticated: bool
    last_seen: float
    flash: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, zh, en)


class Sessions:
    """Server-side session table: a random token in the cookie, everything else here."""

    def __init__(self, idle_s: float = 900.0, max_sessions: int = 64,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self.clock = clock
        self._lock = threading.Lock()
        self._table: dict[str, Session] = {}

    def create(self, authenticated: bool = False) -> Session:
        now = self.clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), authenticated,
                          now)
        with self._lock:
            self._expire(now)
            if len(self._table) >= self.max_sessions:
                # Anonymous sessions (a login form opened) go first, then the idlest.
                victim = min(self._table.values(),
                             key=lambda s: (s.authenticated, s.last_seen))
                del self._table[victim.token]
            self._table[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        if not token or len(token) > 64:
            return None
        now = self.clock()
        with self._lock:
            self._expire(now)
            session = self._table.get(token)
            if session is not None:
                session.last_seen = now
            return session

    def login(self, old: Session) -> Session:
        """A new token for the logged-in session, so a token seen before login is worthless."""
        self.drop(old.token)
        session = self.create(authenticated=True)
        session.flash.extend(old.flash)
        return session

    def drop(self, token: str) -> None:
        with self._lock:
            self._table.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._table.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._table)

    def _expire(self, now: float) -> None:
        stale = [t for t, s in self._table.items() if now - s.last_seen > self.idle_s]
        for token in stale:
            del self._table[token]


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    if session is None or not submitted:
        return False
    return hmac.compare_digest(session.csrf.encode(), submitted.encode("utf-8", "replace"))


def reset_lockout(store: Store, by: str) -> dict[str, int]:
    """Clear every attendant PIN lock (the local way back in), with an audit record."""
    cleared = Lockout(store).reset()
    store.record("attendant.lockout_reset", {"by": by, "clients": cleared})
    return {"cleared": cleared}
