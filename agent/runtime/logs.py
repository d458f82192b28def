"""Structured logging: JSON lines for journald when not on a tty, readable lines on a tty.

A redacting filter runs on every record, so a token or password that reaches a log call by
mistake is cut before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

# A JWS compact token (header base64url starts with "eyJ", i.e. '{"'), or anything that looks
# like a secret assignment.
_JWS = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{8,}")
_SECRET = re.compile(r"(?i)\b(password|passwd|secret|pin|private_key)(\s*[=:]\s*)(\S+)")


def redact(text: str) -> str:
    text = _JWS.sub(lambda m: f"<token …{m.group(0)[-6:]}>", text)
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}<redacted>", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in getattr(record, "fields", {}).items():
            entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup(level: str = "INFO", json_lines: bool | None = None) -> None:
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(
        JsonFormatter() if json_lines
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    set_level(level)
    for noisy in ("escpos", "PIL", "asyncio", "amqtt", "transitions"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def set_level(level: str) -> None:
    """The level of the cart's own records (a pushed `log_level` takes effect through here)."""
    logging.getLogger().setLevel(level)
