"""The maintenance commands' side of the control socket (agent/admin/control_socket.py): one
JSON request per connection, JSON-line replies."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def socket_path(data_dir: str) -> Path:
    return Path(data_dir) / "control.sock"


def call(data_dir: str, request: dict[str, Any], timeout_s: float = 15.0
         ) -> Iterator[dict[str, Any]]:
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
