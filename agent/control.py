"""The local control socket: how maintenance commands reach a running daemon.

A Unix socket in data_dir (mode 0660; data_dir itself belongs to the agent's user), one JSON
request per connection, JSON-line replies. The maintenance commands try it first and drive
the devices themselves only when no daemon answers, so two processes never talk on one bus.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.flows.actions import ActionError
from agent.flows.feedback import FeedbackBus
from agent.health import Health

if TYPE_CHECKING:
    from agent.daemon import Daemon

log = logging.getLogger(__name__)
MAX_REQUEST = 4096


def socket_path(data_dir: str) -> Path:
    return Path(data_dir) / "control.sock"


class ControlSocket:
    name = "control"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.health = Health("control")
        self.path = socket_path(daemon.cfg.data_dir)

    def run(self, stop: threading.Event) -> None:
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(self.path))
            os.chmod(self.path, 0o660)
            server.listen(8)
            server.settimeout(0.25)
            self.health.set_ok()
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._serve, args=(conn, stop), daemon=True,
                                 name="control-conn").start()
        finally:
            server.close()
            self.path.unlink(missing_ok=True)

    def _serve(self, conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                request = _read_request(conn)
                for reply in self._dispatch(request, stop):
                    conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
            except (OSError, ValueError) as exc:
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")

    def _dispatch(self, req: dict[str, Any], stop: threading.Event) -> Any:
        d = self.daemon
        op = req.get("op")
        if op == "ping":
            yield {"ok": True, "pid": os.getpid(), "cart_id": d.cfg.cart_id,
                   "health": d.service_health()}
        elif op == "locker_status":
            locker = d.devices.get("locker")
            states = locker.door_states() if locker is not None else {}
            health = locker.health.snapshot() if locker is not None else {}
            yield {"ok": True, "doors": {f"{a.board}:{a.lock}": s for a, s in states.items()},
                   "health": health}
        elif op == "locker_open":
            if d.actions is None:
                yield {"ok": False, "error": "agent is starting"}
                return
            try:
                result = d.actions.open_compartment(req.get("compartment"), req.get("reason"),
                                                    by=str(req.get("by", "cli"))[:64],
                                                    source="cli")
                yield {"ok": True, "result": result}
            except ActionError as exc:
                yield {"ok": False, "error": str(exc)}
        elif op == "print_test":
            from agent.flows.receipts import test_receipt_bytes

            printer = d.devices.get("printer")
            if printer is None:
                yield {"ok": False, "error": "no printer configured"}
                return
            try:
                printer.print_bytes(test_receipt_bytes(d.cfg))
                yield {"ok": True}
            except Exception as exc:  # the printer's typed errors, reported to the caller
                yield {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        elif op == "scan_stream":
            yield from self._stream(d.scan_tap, int(req.get("count") or 0), stop, raw=True)
        elif op == "feedback_stream":
            yield from self._stream(d.feedback, int(req.get("count") or 0), stop, raw=False)
        else:
            yield {"ok": False, "error": f"unknown op {str(op)[:40]!r}"}

    def _stream(self, bus: FeedbackBus, count: int, stop: threading.Event, raw: bool) -> Any:
        sub = bus.subscribe()
        try:
            yield {"ok": True, "streaming": True}
            seen = 0
            while not stop.is_set() and (count <= 0 or seen < count):
                try:
                    event = sub.get(timeout=0.5)
                except queue.Empty:
                    continue
                seen += 1
                yield {"scan": event.zh or None, "error": event.reason} if raw else {
                    "feedback": event.as_dict()}
        finally:
            bus.unsubscribe(sub)


def _read_request(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while b"\n" not in data:
        chunk = conn.recv(1024)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST:
            raise ValueError("request too long")
    request = json.loads(data.split(b"\n", 1)[0] or b"{}")
    if not isinstance(request, dict):
        raise ValueError("request must be a JSON object")
    return request


def call(data_dir: str, request: dict[str, Any], timeout_s: float = 15.0) -> Any:
    """Yield the daemon's replies; raises ConnectionError when no daemon listens."""
    path = socket_path(data_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(str(path))
    except OSError as exc:
        sock.close()
        raise ConnectionError(f"no agent listening on {path}") from exc
    with sock:
        sock.sendall(json.dumps(request).encode() + b"\n")
        buffer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield json.loads(line)
