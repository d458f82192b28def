"""A static file server for releases that honours Range requests and can cut every response
after a number of bytes, the way a mobile link drops mid-file."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d+)-$")


class ReleaseServer:
    def __init__(self, root: Path, cut_after: int | None = None) -> None:
        self.root = root.resolve()
        self.cut_after = cut_after  # bytes per response before the connection is dropped
        self.requests: list[tuple[str, int]] = []  # (path, status)
        self.drops = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                path = (server.root / self.path.lstrip("/")).resolve()
                if server.root not in path.parents or not path.is_file():
                    server.requests.append((self.path, 404))
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start, status = 0, 200
                m = _RANGE.match(self.headers.get("Range", ""))
                if m:
                    start, status = int(m.group(1)), 206
                    if start >= len(data):
                        server.requests.append((self.path, 416))
                        self.send_error(416)
                        return
                server.requests.append((self.path, status))
                self.send_response(status)
                self.send_header("Content-Length", str(len(data) - start))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if not body:
                    return
                chunk = data[start:]
                if server.cut_after is not None and len(chunk) > server.cut_after:
                    self.wfile.write(chunk[:server.cut_after])
                    self.wfile.flush()
                    server.drops += 1
                    self.close_connection = True
                    return
                self.wfile.write(chunk)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> ReleaseServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def ranged(self) -> int:
        return sum(1 for _, status in self.requests if status == 206)
