"""One function per parser that takes outside bytes. Each may raise only the clear, typed
error its caller turns into an answer; anything else (a crash, a hang) is a finding.

Used by tests/test_fuzz.py (Hypothesis, in the normal suite) and `python -m fuzz` (atheris,
coverage-guided).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent import jws
from agent.config import ConfigError, validate
from agent.devices.lockboard import bs, kerong
from agent.devices.lockboard.frames import FrameError
from agent.devices.printer.status import parse_status
from agent.devices.scanner.lines import (
    LineReader,
    ScanEvent,
    TooLong,
    UnreadableScan,
    decode_scan,
)
from agent.flows.refusals import ScanRefused
from agent.flows.tokens import TokenVerifier, public_facts
from agent.sync.command_ledger import CommandError, check_envelope
from agent.sync.downlink import ControlError, read_control
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


class _ScanPath:
    """The real flows on a real store (in a temp dir, on tmpfs where there is one) with no
    devices: what a scan becomes, down to the bytes published."""

    def __init__(self) -> None:
        from agent.flows.context import CartContext
        from agent.flows.feedback import FeedbackBus
        from agent.flows.scan import ScanFlow
        from agent.store import Store

        shm = Path("/dev/shm")
        self.dir = tempfile.mkdtemp(prefix="fuzz-scan-", dir=shm if shm.is_dir() else None)
        atexit.register(shutil.rmtree, self.dir, True)
        self.cfg = validate({
            "cart_id": "bc-01", "data_dir": self.dir, "scanner": {"kind": "none"},
            "printer": {"kind": "none"}, "mqtt": {"enabled": False}, "web": {"enabled": False},
            "locker": {"enabled": False, "compartments": [
                {"id": "A01", "board": 1, "lock": 1, "size": "S"},
                {"id": "A02", "board": 1, "lock": 2, "size": "M"}]},
            "security": {"token_keys": _FLEET | {"k1": _FLEET["f1"]}},
        })
        self.store = Store(self.cfg.db_path, "bc-01")
        self.ctx = CartContext(cfg=self.cfg, store=self.store, locker=None,
                               feedback=FeedbackBus())
        self.ctx.compartments.sync_from_config(list(self.cfg.locker.compartments))
        with self.store.write() as w:  # a parcel to pick up, so that path is reachable
            w.execute("UPDATE compartments SET parcel = 'SF0000000001', door = 'closed' "
                      "WHERE id = 'A01'")
            w.execute("UPDATE compartments SET door = 'closed' WHERE id = 'A02'")
        self.flow = ScanFlow(self.ctx)

    def texts(self, data: bytes) -> list[str]:
        mode, body = (data[0] % 3, data[1:]) if data else (0, b"")
        if mode == 0:  # scanner bytes, as the serial scanner reads them
            reader = LineReader(max_line=2048, idle_timeout_s=0.3)
            now = time.monotonic()
            out = []
            for line in reader.feed(body, now) + reader.flush_idle(now + 1.0):
                if isinstance(line, TooLong):
                    continue
                with contextlib.suppress(UnreadableScan):
                    out.append(decode_scan(line))
            return out
        if mode == 1:  # the claims of a token the trusted issuer signed
            header = jws.b64url_encode(b'{"alg":"EdDSA","kid":"k1"}')
            signing_input = header + "." + jws.b64url_encode(body)
            return [signing_input + "." + jws.b64url_encode(_KEY.sign(signing_input.encode()))]
        # claims JSON the fuzzer may break, shaped like a real token so decisions are reached
        claims: dict[str, Any] = {"svc": "meal", "jti": body[:8].hex(), "exp": 2**40,
                                  "order": "M1", "items": ["饭"]}
        with contextlib.suppress(ValueError, RecursionError):
            extra = json.loads(body.decode("utf-8", "surrogatepass"))
            if isinstance(extra, dict):
                claims.update(extra)
        with contextlib.suppress(ValueError, TypeError):
            return [jws.sign(claims, _KEY, "k1")]
        return []

    def run(self, data: bytes) -> None:
        from agent.sync.outbox import encode_batch
        from agent.web.present import resident_event
        from agent.web.stream import sse

        for text in self.texts(data):
            feedback = self.flow.handle(ScanEvent.of_text(text, "fuzz"))
            assert feedback.kind in {"accepted", "refused", "deposit", "info"}
            public = resident_event(feedback)
            if public is not None:
                sse("feedback", public, feedback.id).encode("utf-8")
        batch = self.store.pending_batch(1000, 262_144)
        if batch:
            payload, _count = encode_batch("bc-01", batch, 262_144)
            assert isinstance(json.loads(payload.decode("utf-8")), dict)
            with self.store.write() as w:  # keep the store small: forget what was "sent"
                w.execute("DELETE FROM transactions WHERE seq < (SELECT MAX(seq) "
                          "FROM transactions)")
                w.execute("UPDATE transactions SET state = 'synced'")
        for (blob,) in self.store.conn.execute(
                "SELECT CAST(data AS BLOB) FROM transactions UNION ALL "
                "SELECT CAST(value AS BLOB) FROM meta"):
            blob.decode("utf-8")


_SCAN_PATH: list[_ScanPath] = []


def scan_path(data: bytes) -> None:
    """Scanner line -> token -> decision -> store -> publish: nothing may raise, everything
    stored and published is valid UTF-8 JSON."""
    if not _SCAN_PATH:
        _SCAN_PATH.append(_ScanPath())
    _SCAN_PATH[0].run(data)


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
    "scan_path": scan_path,
}
