"""The screens' server under a flood, the control socket beside it: hundreds of slow-loris
connections and event streams against the real daemon (a separate process with a descriptor
limit), and the resident screen and the control socket still answer. The control
socket also answers malformed requests with an error and audits the caller's real uid."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from agent.admin.control_client import call
from tests.faults.harness import FaultCart
from tests.mqtt_broker import free_port
from tests.support import wait_for

CHILD_NOFILE = 1024  # the default soft limit, where the attack run broke the old server
FLOOD = 500          # slow-loris connections, and as many event streams


def limited() -> None:  # runs in the child before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (CHILD_NOFILE, CHILD_NOFILE))


def raw(sock_path: Path, payload: bytes) -> list[dict]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(sock_path))
        s.sendall(payload)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return [json.loads(line) for line in data.splitlines() if line.strip()]


@pytest.fixture
def flooded_cart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    port = free_port()
    cart = FaultCart(tmp_path, broker_port=None, web={"enabled": True, "port": port})
    import subprocess

    real_popen = subprocess.Popen

    def popen(*args, **kwargs):  # the daemon, with a small descriptor limit
        return real_popen(*args, preexec_fn=limited, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    cart.start()
    monkeypatch.setattr(subprocess, "Popen", real_popen)
    wait_for(lambda: _get(port, "/", 2) == 200, what="the screens")
    yield cart, port
    cart.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _get(port: int, path: str, timeout: float) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            r.read()
            return int(r.status)
    except OSError:
        return 0


@pytest.mark.timeout(120)
def test_slow_loris_and_event_streams_leave_the_screen_and_control_socket_alive(
        flooded_cart) -> None:
    cart, port = flooded_cart
    held: list[socket.socket] = []
    try:
        for i in range(2 * FLOOD):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            if i % 2:  # slow loris: a request that never ends
                s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            else:      # an event stream nobody reads
                s.sendall(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            held.append(s)
        # the control socket answers at once, whatever the web is going through
        started = time.monotonic()
        replies = list(call(str(cart.data_dir), {"op": "ping"}, timeout_s=5))
        assert replies
        assert replies[0]["ok"] is True
        assert (cart.data_dir / "control.sock").exists()
        ping_s = time.monotonic() - started
        # the screen answers once the slow clients' time is up (HEADER_S), if not before
        started = time.monotonic()
        assert _get(port, "/", 20) == 200
        took = time.monotonic() - started
        assert cart.proc is not None
        assert cart.proc.poll() is None
        fds = len(os.listdir(f"/proc/{cart.proc.pid}/fd"))
        assert fds < CHILD_NOFILE - 100, fds
        print(f"\nflood: {FLOOD} slow-loris + {FLOOD} streams held; control ping "
              f"{ping_s:.2f} s; GET / {took:.2f} s; daemon holds {fds} descriptors "
              f"(limit {CHILD_NOFILE})")
    finally:
        for s in held:
            s.close()
    # and once the flood is gone, the screen's own stream works again
    assert _get(port, "/", 5) == 200


def test_control_socket_errors_and_audit(flooded_cart) -> None:
    cart, _port = flooded_cart
    sock = cart.data_dir / "control.sock"
    for bad in (b'{"op": "scan_stream", "count": [1]}\n', b'{"op": "feedback_stream", '
                b'"count": "x"}\n', b"not json\n", b"[1, 2]\n", b"\xff\xfe\n",
                b'{"op": "locker_open", "compartment": {"a": 1}, "reason": 5}\n'):
        replies = raw(sock, bad)
        assert replies, bad
        assert replies[0]["ok"] is False, (bad, replies)
        assert replies[0]["error"], (bad, replies)
    assert raw(sock, b'{"op": "ping"}\n')[0]["ok"] is True
    # the audit names the caller by the kernel's word, not the request's
    reply = raw(sock, json.dumps({"op": "locker_open", "compartment": "A01",
                                  "reason": "cleaning", "by": "mallory"}).encode() + b"\n")
    assert reply[0]["ok"] is True, reply
    opened = [json.loads(d) for (d,) in cart.query(
        "SELECT data FROM transactions WHERE type = 'locker.open'")]
    assert opened[-1]["by"].startswith(f"uid:{os.getuid()}")
    assert "mallory" not in str(opened)
    # the local way back in for a locked-out attendant, through the running daemon
    from tests.faults.test_store_loss import agent

    cart.query("SELECT 1")  # (the store is there)
    done = agent("attendant", "unlock", "-c", str(cart.config))
    assert done.returncode == 0, done.stderr
    assert "unlocked" in done.stdout, done.stderr
    reset = [json.loads(d) for (d,) in cart.query(
        "SELECT data FROM transactions WHERE type = 'attendant.lockout_reset'")]
    assert reset
    assert reset[-1]["by"].startswith(f"uid:{os.getuid()}")
