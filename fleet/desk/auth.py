"""Who may use the desk: users with scrypt password hashes, a lockout after wrong passwords,
server-side sessions with a CSRF token, and two roles (manager acts, viewer looks).

The hash format is the attendant PIN's (`scrypt$n$r$p$salt$hash`, agent/web/auth.py), and
it is checked by the same bounded verifier. Sessions are rows in desk_sessions keyed by the
SHA-256 of the cookie value, so a copy of the database does not hold usable cookies; they
expire after SESSION_IDLE_S without a request and SESSION_MAX_S after login.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from agent.web.auth import verify_pin
from fleet.desk.db import Database

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1   # ~0.1 s and 32 MiB per login here
PASSWORD_MIN, PASSWORD_MAX = 10, 128
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
ROLES = ("manager", "viewer")
LOCKOUT_FAILURES = 5
LOCKOUT_S = 300
SESSION_IDLE_S = 30 * 60
SESSION_MAX_S = 12 * 3600
# Checked against when the user does not exist, so a login takes as long either way.
_DUMMY = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


class AuthError(ValueError):
    """Bad user input for an account (exit 2 at the command line)."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def check_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AuthError(f"a password is {PASSWORD_MIN}-{PASSWORD_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in password):
        raise AuthError("a password cannot hold control characters")


def hash_password(password: str) -> str:
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R,
                            p=SCRYPT_P, dklen=32, maxmem=64 * 1024 * 1024)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def check_username(name: str) -> str:
    if not USERNAME.match(name):
        raise AuthError(f"bad user name {name!r}: 1-32 of a-z 0-9 . _ - (starting with a-z "
                        "or 0-9)")
    return name


# --- accounts (cart-fleet desk-user) -------------------------------------------------------


def add_user(db: Database, name: str, password: str, role: str) -> bool:
    """Create the user, or set a new password and role; True when it was created."""
    check_username(name)
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    encoded = hash_password(password)
    row = db.one("INSERT INTO desk_users (username, password_hash, role) VALUES (%s, %s, %s) "
                 "ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, "
                 "role = excluded.role, failures = 0, locked_until = NULL "
                 "RETURNING (xmax = 0) AS created", (name, encoded, role))
    # A new password ends the user's sessions.
    db.execute("DELETE FROM desk_sessions WHERE username = %s", (name,))
    return bool(row and row["created"])


def remove_user(db: Database, name: str) -> bool:
    return db.execute("DELETE FROM desk_users WHERE username = %s", (check_username(name),)) > 0


def list_users(db: Database) -> list[dict[str, object]]:
    return db.query("SELECT username, role, created_at, locked_until FROM desk_users "
                    "ORDER BY username")


# --- logging in ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    ok: bool
    username: str = ""
    role: str = ""
    locked_until: dt.datetime | None = None


def login(db: Database, name: str, password: str) -> Login:
    """Check a password; counts failures per user and locks the account for a while."""
    if not USERNAME.match(name) or len(password) > PASSWORD_MAX:
        verify_pin(password[:PASSWORD_MAX], _DUMMY)
        return Login(False)
    with db.connection() as conn:
        row = conn.execute("SELECT username, password_hash, role, failures, locked_until, "
                           "now() AS now FROM desk_users WHERE username = %s FOR UPDATE",
                           (name,)).fetchone()
        if row is None:
            verify_pin(password, _DUMMY)
            return Login(False)
        if row["locked_until"] is not None and row["locked_until"] > row["now"]:
            return Login(False, locked_until=row["locked_until"])
        if verify_pin(password, row["password_hash"]):
            conn.execute("UPDATE desk_users SET failures = 0, locked_until = NULL "
                         "WHERE username = %s", (name,))
            return Login(True, row["username"], row["role"])
        failures = row["failures"] + 1
        locked = row["now"] + dt.timedelta(seconds=LOCKOUT_S) \
            if failures >= LOCKOUT_FAILURES else None
        conn.execute("UPDATE desk_users SET failures = %s, locked_until = %s WHERE username = %s",
                     (0 if locked else failures, locked, name))
        return Login(False, locked_until=locked)


# --- sessions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    username: str
    role: str
    csrf: str

    @property
    def can_act(self) -> bool:
        return self.role == "manager"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def open_session(db: Database, username: str) -> str:
    """A new session; returns the cookie value (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    db.execute("DELETE FROM desk_sessions WHERE last_seen < now() - make_interval(secs => %s) "
               "OR created_at < now() - make_interval(secs => %s)",
               (SESSION_IDLE_S, SESSION_MAX_S))
    db.execute("INSERT INTO desk_sessions (token_hash, username, csrf) VALUES (%s, %s, %s)",
               (_token_hash(token), username, secrets.token_urlsafe(32)))
    return token


def find_session(db: Database, token: str | None) -> Session | None:
    if not token or len(token) > 100:
        return None
    row = db.one("UPDATE desk_sessions s SET last_seen = now() FROM desk_users u "
                 "WHERE s.token_hash = %s AND u.username = s.username "
                 "AND s.last_seen > now() - make_interval(secs => %s) "
                 "AND s.created_at > now() - make_interval(secs => %s) "
                 "RETURNING s.username, u.role, s.csrf",
                 (_token_hash(token), SESSION_IDLE_S, SESSION_MAX_S))
    return Session(row["username"], row["role"], row["csrf"]) if row else None


def close_session(db: Database, token: str | None) -> None:
    if token and len(token) <= 100:
        db.execute("DELETE FROM desk_sessions WHERE token_hash = %s", (_token_hash(token),))


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    if session is None or not submitted:
        return False
    return hmac.compare_digest(session.csrf.encode(), submitted.encode("utf-8", "replace"))
