"""Enough TOML writing for scripts/provision-cart's config: scalars, arrays, tables, arrays of
tables (the standard library reads TOML but does not write it)."""

from __future__ import annotations

import json
import re
from typing import Any


class Refused(Exception):
    """Bad input: nothing was changed."""


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(i)}" for k, i in v.items()) + "}"
    raise Refused(f"cannot write {type(v).__name__} to TOML")


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)


def to_toml(doc: dict[str, Any], prefix: str = "") -> str:
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not _is_tables(v)]
    for k, v in doc.items():
        name = prefix + _key(k)
        if isinstance(v, dict):
            lines += ["", f"[{name}]"] + ([body] if (body := to_toml(v, name + ".")
                                                     .strip("\n")) else [])
        elif _is_tables(v):
            for item in v:
                lines += ["", f"[[{name}]]", to_toml(item, name + ".").strip("\n")]
    return "\n".join(lines).strip("\n") + "\n"
