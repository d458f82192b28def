"""Rules between the fields of one config table, each reported under the key it is about
(`locker.compartments[3].board: ...`, the same format as a field's own error).

They are checked on the document as written, beside the field checks, so that `check-config`
and a pushed config's report name every problem in one pass: a pydantic model validator runs
only once all of its own fields are valid. The models run the same rules (agent/config.py),
so a model built directly cannot break them either. Values of the wrong type are left to the
field checks: a rule looks only at values it can read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Problem = tuple[str, str]  # the key path inside the table, what is wrong
KEY_MAPS = ("token_keys", "fleet_keys", "root_keys", "release_keys")


class CrossFieldError(ValueError):
    """A table breaks one of these rules (raised by the models; validate() reports the
    rules' own findings instead, with their keys)."""


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def mqtt(m: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    cert, key = m.get("cert_file"), m.get("key_file")
    if isinstance(cert, str) and isinstance(key, str) and bool(cert) != bool(key):
        out.append(("key_file" if cert else "cert_file", "cert_file and key_file go together"))
    password, password_file = m.get("password"), m.get("password_file")
    if isinstance(password, str) and isinstance(password_file, str) and password \
            and password_file:
        out.append(("password_file", "give password or password_file, not both"))
    low, high = m.get("reconnect_min_s"), m.get("reconnect_max_s")
    if _number(low) and _number(high) and low > high:  # type: ignore[operator]
        out.append(("reconnect_min_s", "must not exceed reconnect_max_s"))
    return out


def printer(p: Mapping[str, Any]) -> list[Problem]:
    kind, port = p.get("kind"), p.get("port")
    if kind == "network":
        out: list[Problem] = []
        if not p.get("host"):
            out.append(("host", "kind = 'network' needs host"))
        if not isinstance(port, int) or isinstance(port, bool):
            out.append(("port", "kind = 'network' needs a numeric port"))
        return out
    if kind == "serial" and not isinstance(port, str):
        return [("port", "kind = 'serial' needs port as a device path")]
    if kind == "usb" and (p.get("vendor_id") is None or p.get("product_id") is None):
        return [("vendor_id" if p.get("vendor_id") is None else "product_id",
                 "kind = 'usb' needs vendor_id and product_id")]
    if kind == "file" and not p.get("path"):
        return [("path", "kind = 'file' needs path")]
    return []


def locker(lk: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    compartments = lk.get("compartments")
    if not isinstance(compartments, list):
        return out
    protocol = lk.get("protocol")
    seen_ids: set[str] = set()
    seen_locks: set[tuple[int, int]] = set()
    for i, comp in enumerate(compartments):
        if not isinstance(comp, Mapping):
            continue
        at = f"compartments[{i}]"
        ident, board, lock = comp.get("id"), comp.get("board"), comp.get("lock")
        if isinstance(ident, str):
            if ident in seen_ids:
                out.append((f"{at}.id", f"duplicate id {ident!r}"))
            seen_ids.add(ident)
        if not (isinstance(board, int) and isinstance(lock, int)):
            continue
        if (board, lock) in seen_locks:
            out.append((at, f"board {board} lock {lock} used twice"))
        seen_locks.add((board, lock))
        if protocol == "kerong" and (board > 15 or lock > 16):
            out.append((f"{at}.board" if board > 15 else f"{at}.lock",
                        "kerong boards are 0-15, locks 1-16"))
        if protocol == "bs" and board < 1:
            out.append((f"{at}.board", "bs boards are 1-255"))
    return out


def security(s: Mapping[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    maps = {name: s.get(name) for name in KEY_MAPS}
    seen: dict[str, str] = {}
    for name, keys in maps.items():
        if not isinstance(keys, Mapping):
            continue
        for kid, value in keys.items():
            if not isinstance(value, str):
                continue
            other = seen.get(value.strip())
            if other is not None and not other.startswith(name + "."):
                out.append((f"{name}.{kid}", f"the same key is already in {other}; "
                                             "a key has one job"))
            seen.setdefault(value.strip(), f"{name}.{kid}")
    fleet, root = maps["fleet_keys"], maps["root_keys"]
    if isinstance(fleet, Mapping) and isinstance(root, Mapping):
        shared = sorted(set(fleet) & set(root))
        if shared:
            out.append(("root_keys", f"root_keys and fleet_keys share key id(s) {shared}: "
                                     "a signature must say which of the two signed it"))
    return out


TABLES: dict[str, Callable[[Mapping[str, Any]], list[Problem]]] = {
    "mqtt": mqtt, "printer": printer, "locker": locker, "security": security,
}


def check(table: str, values: Mapping[str, Any]) -> None:
    """For a model's validator: raise CrossFieldError when its values break a rule."""
    found = TABLES[table](values)
    if found:
        raise CrossFieldError("; ".join(f"{key}: {why}" for key, why in found))
