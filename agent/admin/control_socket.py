"""The local control socket: how maintenance commands reach a running daemon.

A Unix socket in data_dir (mode 0660; data_dir itself is 0700 and belongs to the agent's
user), one JSON request per connection, JSON-line replies. Audit records name the caller by
the uid the kernel reports (SO_PEERCRED); a malformed request gets an error reply; at most
MAX_CONNECTIONS at once; running out of descriptors elsewhere in the process never removes
the socket. The maintenance commands try it first (agent/admin/control_client.py) and drive
the devices themselves only when no daemon answers, so two processes never talk on one bus.
It sees the cart through the ports (agent/ports.py), never the daemon.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import pwd
import queue
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

from agent import __version__
from agent.admin.control_client import socket_path
from agent.flows.actions import ActionError
from agent.flows.feedback import FeedbackBus
from agent.health import Health
from agent.ports import CartActions, ConfigView, Feeds, HealthView

log = logging.getLogger(__name__)
MAX_REQUEST = 4096
MAX_CONNECTIONS = 16  # at once; more get "busy" (a stream holds one for its length)
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ControlSocket:
    name = "control"

    def __init__(self, data_dir: str, actions: CartActions, health: HealthView,
                 config: ConfigView, feeds: Feeds) -> None:
        self.actions = actions
        self.view = health
        self.config = config
        self.feeds = feeds
        self.health = Health("control")
        self.path = socket_path(data_dir)
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def run(self, stop: threading.Event) -> None:
        self.path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(self.path))
            os.chmod(self.path, 0o660)
            inode = self.path.stat().st_ino
            server.listen(8)
            server.settimeout(0.25)
            self.health.set_ok()
            while not stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if exc.errno not in _OUT_OF_RESOURCES:
                        raise
                    # Out of descriptors (or memory) because of something else in the
                    # process: keep the socket and its file, wait, try again.
                    if self.health.set_error(f"accept: {exc.strerror}"):
                        log.error("control socket cannot accept: %s; retrying", exc.strerror)
                    stop.wait(0.2)
                    continue
                if not self._slots.acquire(blocking=False):
                    _refuse_busy(conn)
                    continue
                if not self.health.ok:
                    self.health.set_ok()
                threading.Thread(target=self._serve, args=(conn, stop), daemon=True,
                                 name="control-conn").start()
        finally:
            server.close()
            with contextlib.suppress(OSError):
                if self.path.stat().st_ino == inode:  # never remove another daemon's socket
                    self.path.unlink()

    def _serve(self, conn: socket.socket, stop: threading.Event) -> None:
        try:
            with conn:
                conn.settimeout(5.0)
                try:
                    caller = _peer(conn)
                    request = _read_request(conn)
                    for reply in self._dispatch(request, stop, caller):
                        conn.sendall(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
                except Exception as exc:
                    # A malformed request, or an action that failed unexpectedly: the caller
                    # gets an error, the service keeps listening.
                    if not isinstance(exc, OSError | ValueError):
                        log.exception("control request failed")
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps(reply).encode() + b"\n")
        finally:
            self._slots.release()

    def _dispatch(self, req: dict[str, Any], stop: threading.Event,
                  caller: str) -> Iterator[dict[str, Any]]:
        op = req.get("op")
        if op == "ping":
            yield {"ok": True, "pid": os.getpid(), "cart_id": self.config.config.cart_id,
                   "version": __version__, "health": self.view.services(),
                   "clock": self.view.clock()}
        elif op == "locker_status":
            doors, health = self.view.doors()
            yield {"ok": True, "doors": doors, "health": health}
        elif op == "locker_open":
            try:
                # who asked is what the kernel says (SO_PEERCRED), never what the request says
                result = self.actions.open_compartment(req.get("compartment"), req.get("reason"),
                                                       by=caller, source="cli")
                yield {"ok": True, "result": result}
            except ActionError as exc:
                yield {"ok": False, "error": str(exc)}
        elif op == "print_test":
            try:
                self.actions.print_test()
                yield {"ok": True}
            except ActionError as exc:
                yield {"ok": False, "error": str(exc)}
        elif op == "lockout_reset":
            yield {"ok": True, "result": self.actions.reset_lockout(caller)}
        elif op == "scan_stream":
            yield from self._stream(self.feeds.scans, _count(req), stop, raw=True)
        elif op == "feedback_stream":
            yield from self._stream(self.feeds.feedback, _count(req), stop, raw=False)
        else:
            yield {"ok": False, "error": f"unknown op {str(op)[:40]!r}"}

    def _stream(self, bus: FeedbackBus, count: int, stop: threading.Event,
                raw: bool) -> Iterator[dict[str, Any]]:
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


def _count(req: dict[str, Any]) -> int:
    count = req.get("count") or 0
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 1_000_000:
        raise ValueError("count must be a whole number 0..1000000")
    return count


def _peer(conn: socket.socket) -> str:
    """The calling process's user, from the kernel (SO_PEERCRED): `uid:N (name)`."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    try:
        return f"uid:{uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid:{uid}"


def _refuse_busy(conn: socket.socket) -> None:
    with conn, contextlib.suppress(OSError):
        conn.settimeout(0.5)
        conn.sendall(b'{"ok": false, "error": "busy: too many control connections"}\n')


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
