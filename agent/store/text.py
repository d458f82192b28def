"""Everything the store keeps is valid UTF-8.

A Python str can hold a lone surrogate (`"\\ud800"`, e.g. from a JSON escape) that no UTF-8
encoder accepts: sqlite3 raises UnicodeEncodeError on it, and so would the MQTT payload and
the screens later. The store escapes such characters as text (`\\ud800`, six characters), so
what goes in is kept, readable, and can be sent anywhere.
"""

from __future__ import annotations

from typing import Any


def utf8_safe(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def clean(value: Any) -> Any:
    """`value` with every string (keys too) made UTF-8 safe; other values as they are."""
    if isinstance(value, str):
        return utf8_safe(value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def clean_params(params: Any) -> Any:
    """SQL parameters (a sequence or a mapping) with their strings made UTF-8 safe."""
    if isinstance(params, dict):
        return {k: utf8_safe(v) if isinstance(v, str) else v for k, v in params.items()}
    return tuple(utf8_safe(p) if isinstance(p, str) else p for p in params)
