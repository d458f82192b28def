"""The one TOML writer, for config files the project writes: a cart's config at provisioning,
the demo's run config, the tests' configs. The standard library reads TOML but does not
write it.

Standard library only, and importing nothing else of the agent: scripts/provision-cart runs
it with the system's python3 before the agent is installed.
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class TomlError(ValueError):
    """The document holds something TOML cannot say, or that would read back differently."""


def _string(text: str) -> str:
    # JSON's escapes are a subset of TOML's basic strings; JSON leaves DEL bare, TOML may not.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(name: object) -> str:
    if not isinstance(name, str):
        raise TomlError(f"a TOML key is a string, not {type(name).__name__}")
    return name if _BARE_KEY.fullmatch(name) else _string(name)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(i)}" for k, i in v.items()) + "}"
    raise TomlError(f"cannot write {type(v).__name__} to TOML")


def _is_tables(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(i, dict) for i in v)


def _body(doc: dict[str, Any], prefix: str) -> list[str]:
    # Plain keys first: after a [table] header they would belong to that table.
    lines = [f"{_key(k)} = {_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not _is_tables(v)]
    for k, v in doc.items():
        name = prefix + _key(k)
        if isinstance(v, dict):
            lines += ["", f"[{name}]", *_body(v, name + ".")]
        elif _is_tables(v):
            for item in v:
                lines += ["", f"[[{name}]]", *_body(item, name + ".")]
    return lines


def to_toml(doc: dict[str, Any]) -> str:
    """`doc` as TOML with [tables] and [[arrays of tables]]; TomlError unless it reads back
    as the same document (a config file must never say something else than was meant)."""
    text = "\n".join(_body(doc, "")).strip("\n") + "\n"
    try:
        same = tomllib.loads(text) == doc
    except tomllib.TOMLDecodeError as exc:
        raise TomlError(f"not valid TOML: {exc}") from None
    if not same:
        raise TomlError("the document does not survive a TOML round trip")
    return text
