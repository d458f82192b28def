"""PIN hashing, the persisted lockout and the session table, without a browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.store import Store
from agent.web.auth import Lockout, Sessions, csrf_ok, hash_pin, verify_pin

FAST = {"n": 2**10, "r": 8, "p": 1}  # cheap parameters where only the format is under test


def test_hash_and_verify() -> None:
    encoded = hash_pin("246810")
    scheme, n, r, p, salt, digest = encoded.split("$")
    assert (scheme, n, r, p) == ("scrypt", "32768", "8", "1")
    assert len(salt) >= 20
    assert len(digest) >= 40
    assert verify_pin("246810", encoded)
    assert not verify_pin("246811", encoded)
    assert not verify_pin("", encoded)
    assert hash_pin("246810") != encoded                  # a fresh salt every time


@pytest.mark.parametrize("pin", ["", "123", "x" * 65, "12\n34"])
def test_hash_refuses_bad_pins(pin: str) -> None:
    with pytest.raises(ValueError, match="a PIN is 4-64 printable characters"):
        hash_pin(pin)


@pytest.mark.parametrize("encoded", [
    "", "scrypt", "bcrypt$1$2$3$c2FsdA$aGFzaA", "scrypt$x$8$1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
    "scrypt$1000$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",          # n not a power of two
    "scrypt$1073741824$8$1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",    # would eat the RAM
    "scrypt$1024$8$1$!!!$aGFzaGhhc2hoYXNoaGFzaA",                  # not base64
    "scrypt$1024$8$1$c2FsdHNhbHQ$aGFzaA",                          # hash too short
])
def test_verify_rejects_malformed_hashes(encoded: str) -> None:
    assert verify_pin("246810", encoded) is False


@settings(max_examples=100, deadline=None)
@given(pin=st.text(min_size=4, max_size=12).filter(lambda s: all(31 < ord(c) != 127 for c in s)),
       other=st.text(max_size=12))
def test_verify_round_trip(pin: str, other: str) -> None:
    encoded = hash_pin(pin, **FAST)
    assert verify_pin(pin, encoded)
    assert verify_pin(other, encoded) is (other == pin)


@settings(max_examples=200, deadline=None)
@given(encoded=st.text(max_size=80))
def test_verify_never_raises(encoded: str) -> None:
    assert verify_pin("246810", "scrypt$1024$8$1$" + encoded) is False


class FakeNow:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_lockout_persists_across_restart(tmp_path: Path) -> None:
    encoded = hash_pin("246810", **FAST)
    now = FakeNow()
    store = Store(tmp_path / "cart.db", "bc-test", clock=now)
    lockout = Lockout(store, clock=now)
    for i in range(1, 5):
        result = lockout.attempt("000000", encoded, max_failures=5, lock_s=300)
        assert not result.ok
        assert result.failures == i
        assert result.locked_until is None
    store.close()

    # A restart keeps the count: one more wrong PIN locks.
    store = Store(tmp_path / "cart.db", "bc-test", clock=now)
    lockout = Lockout(store, clock=now)
    assert lockout.failures() == 4
    result = lockout.attempt("111111", encoded, max_failures=5, lock_s=300)
    assert result.locked_until == now.now + 300
    store.close()

    # Another restart: still locked, and the right PIN is refused while locked.
    store = Store(tmp_path / "cart.db", "bc-test", clock=now)
    lockout = Lockout(store, clock=now)
    assert lockout.locked_until() == now.now + 300
    result = lockout.attempt("246810", encoded, max_failures=5, lock_s=300)
    assert not result.ok
    assert result.locked_until == now.now + 300

    now.now += 301
    assert lockout.locked_until() is None
    assert lockout.attempt("246810", encoded, max_failures=5, lock_s=300).ok
    # After the lock the count starts over: four wrong PINs do not lock again.
    for _ in range(4):
        assert lockout.attempt("0000", encoded, 5, 300).locked_until is None
    assert lockout.attempt("246810", encoded, 5, 300).ok
    assert lockout.failures() == 0
    store.close()


def test_a_guesser_locks_out_only_itself_and_a_local_reset_clears_it(tmp_path: Path) -> None:
    encoded = hash_pin("246810", **FAST)
    now = FakeNow()
    store = Store(tmp_path / "cart.db", "bc-test", clock=now)
    lockout = Lockout(store, clock=now)
    for _round in range(3):  # five wrong PINs every five minutes, over and over
        for _ in range(5):
            lockout.attempt("000000", encoded, 5, 300, client="10.0.0.66")
        assert lockout.locked_until("10.0.0.66") == now.now + 300
        # the attendant's own screen is not locked and logs in
        assert lockout.locked_until("127.0.0.1") is None
        assert lockout.attempt("246810", encoded, 5, 300, client="127.0.0.1").ok
        now.now += 301
    for _ in range(5):
        lockout.attempt("1111", encoded, 5, 300, client="127.0.0.1")
    assert lockout.locked_until("127.0.0.1") is not None
    assert lockout.reset() == 2  # the local reset (cart-agent attendant unlock) clears all
    assert lockout.attempt("246810", encoded, 5, 300, client="127.0.0.1").ok
    store.close()


def test_no_pin_configured(tmp_path: Path) -> None:
    store = Store(tmp_path / "cart.db", "bc-test")
    result = Lockout(store).attempt("246810", "", 5, 300)
    assert result.no_pin
    assert not result.ok
    assert store.get_meta("web.pin_lockout") is None   # not counted as a guess
    store.close()


def test_sessions_expire_and_rotate() -> None:
    now = FakeNow()
    sessions = Sessions(idle_s=900, max_sessions=3, clock=now)
    anon = sessions.create()
    assert sessions.get(anon.token) is anon
    assert not anon.authenticated
    assert csrf_ok(anon, anon.csrf)
    assert not csrf_ok(anon, "x" + anon.csrf)
    assert not csrf_ok(anon, None)
    assert not csrf_ok(None, anon.csrf)

    logged = sessions.login(anon)
    assert logged.authenticated
    assert logged.token != anon.token
    assert logged.csrf != anon.csrf
    assert sessions.get(anon.token) is None              # the pre-login id is dead

    now.now += 600
    assert sessions.get(logged.token) is logged          # used: idle time starts over
    now.now += 901
    assert sessions.get(logged.token) is None            # idle too long
    assert sessions.get(None) is None
    assert sessions.get("x" * 100) is None

    # A full table evicts anonymous sessions before logged-in ones.
    kept = sessions.login(sessions.create())
    for _ in range(5):
        sessions.create()
    assert len(sessions) == 3
    assert sessions.get(kept.token) is kept
