"""One function per parser that takes outside bytes. Each may raise only the clear, typed
error its caller turns into an answer; anything else (a crash, a hang) is a finding.

Used by tests/test_fuzz.py (Hypothesis, in the normal suite) and `python -m fuzz` (atheris,
coverage-guided).
"""

from __future__ import annotations

import contextlib
import time
import tomllib
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.config import ConfigError, validate
from agent.devices.lockboard import bs, kerong
from agent.devices.lockboard.frames import FrameError
from agent.devices.printer.status import parse_status
from agent.devices.scanner.lines import LineReader, TooLong, UnreadableScan, decode_scan
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import TokenVerifier, public_facts
from agent.sync.commands import CommandError, check_envelope
from agent.sync.control import ControlError, read_control
from agent.sync.outbox import parse_ack

_KEY = Ed25519PrivateKey.generate()
_VERIFIER = TokenVerifier({"k1": _KEY.public_key()}, "bc-01", 120, 2048)
_FLEET = {"f1": jws.encode_public_key(_KEY.public_key())}


def scanner_line(data: bytes) -> None:
    reader = LineReader(max_line=256, idle_timeout_s=0.3)
    now = time.monotonic()
    lines = reader.feed(data, now) + reader.flush_idle(now + 1.0)
    for line in lines:
        if isinstance(line, TooLong):
            continue
        assert len(line) <= 256
        with contextlib.suppress(UnreadableScan):
            decode_scan(line)


def token(data: bytes) -> None:
    text = data.decode("utf-8", "replace")
    public_facts(text)
    with contextlib.suppress(ScanRefused):
        _VERIFIER.verify(text)


def lockboard_replies(data: bytes) -> None:
    for codec in (bs, kerong):
        stream = codec.reply_stream()
        stream.feed(data[: len(data) // 2])
        stream.feed(data[len(data) // 2:])
        with contextlib.suppress(FrameError):
            codec.decode_reply(data[:9])


def printer_status(data: bytes) -> None:
    parts = [data[i:i + 1] or None for i in range(3)]
    status = parse_status({1: parts[0], 2: parts[1], 4: parts[2]})
    assert status.state in {"ok", "paper_near_end", "paper_out", "cover_open", "offline",
                            "error", "unknown"}


def config_document(data: bytes) -> None:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
        validate(doc)
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, ConfigError):
        pass


def mqtt_command(data: bytes) -> None:
    for keys in ({}, _FLEET):
        with contextlib.suppress(ControlError, CommandError):
            check_envelope(read_control(data, keys, "command"), "bc-01")


def mqtt_desired_config(data: bytes) -> None:
    try:
        doc = read_control(data, {}, "config")
        config = doc.get("config")
        if isinstance(config, dict):
            validate({"cart_id": "bc-01", **config})
    except (ControlError, ConfigError):
        pass


def mqtt_ack(data: bytes) -> None:
    with contextlib.suppress(ControlError):
        parse_ack(data)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "scanner_line": scanner_line,
    "token": token,
    "lockboard_replies": lockboard_replies,
    "printer_status": printer_status,
    "config_document": config_document,
    "mqtt_command": mqtt_command,
    "mqtt_desired_config": mqtt_desired_config,
    "mqtt_ack": mqtt_ack,
}
