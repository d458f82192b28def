"""The screens' web server: a supervised service serving the bottle app with the stdlib's
wsgiref server, one thread per connection (the daemon's concurrency model is threads; each
resident screen holds one connection open for its event stream).

It listens on 127.0.0.1 by default: the kiosk browser runs on the cart itself.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from agent.health import Health
from agent.web.auth import Lockout, Sessions
from agent.web.views import WebContext, build_app

if TYPE_CHECKING:
    from agent.daemon import Daemon

log = logging.getLogger("agent.web")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# default-src 'self' forbids inline scripts and styles: every script and style is a file under
# /static. frame-ancestors and X-Frame-Options both refuse framing (clickjacking the console).
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; "
                                "frame-ancestors 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    # Not no-referrer: under it Chromium sends `Origin: null` on form posts, and the console
    # refuses POSTs whose Origin is not its own.
    ("Referrer-Policy", "same-origin"),
]
SESSION_IDLE_S = 15 * 60
POLL_S = 0.25  # how often the accept loop looks at the stop flag


class _ErrorLog:
    """`wsgi.errors` into the log: bottle writes the traceback of a failed route there."""

    def write(self, text: str) -> None:
        if text.strip():
            log.error("a screen request failed:\n%s", text.rstrip())

    def flush(self) -> None:
        pass


def with_security_headers(app: WSGIApp) -> WSGIApp:
    """Adds the security headers to every answer (error pages and redirects included) and
    sends bottle's tracebacks to the log instead of stderr."""
    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        static = str(environ.get("PATH_INFO", "")).startswith("/static/")
        environ["wsgi.errors"] = _ErrorLog()

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            # Pages show live state (and the console's form tokens): never from a cache.
            # Static files may be kept but are revalidated (their Last-Modified answers 304).
            headers = [h for h in headers if h[0].lower() != "cache-control"]
            headers += [*SECURITY_HEADERS, ("Cache-Control", "no-cache" if static else "no-store")]
            return start_response(status, headers, exc_info)
        return app(environ, start)
    return wrapped


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True      # an open event stream must not hold up a stop
    block_on_close = False


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    timeout = 30  # a client that stops reading cannot pin a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (no headers, so no cookies); at debug level, the screen polls.
        log.debug("%s " + format, self.address_string(), *args)


class WebService:
    """`run(stop)` binds cfg.web.listen:cfg.web.port and serves until stop; `port` is the port
    really bound (the config may say 0 in tests)."""

    name = "web"

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.health = Health("web")
        self.port: int | None = None
        self.sessions = Sessions(idle_s=SESSION_IDLE_S)
        self.lockout = Lockout(daemon.store, clock=daemon.clock)
        self._closing = threading.Event()
        self.app = with_security_headers(build_app(WebContext(
            daemon, self.sessions, self.lockout, stopping=self._closing.is_set)))

    def run(self, stop: threading.Event) -> None:
        cfg = self.daemon.cfg.web
        server_class = _Server6 if ":" in cfg.listen else _Server
        try:
            server = make_server(cfg.listen, cfg.port, self.app, server_class=server_class,
                                 handler_class=_QuietHandler)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {cfg.listen}:{cfg.port}: "
                                     f"{exc.strerror}") from None
        self._closing.clear()
        self.port = int(server.server_address[1])
        server.timeout = POLL_S
        self.health.set_ok(listen=cfg.listen, port=self.port)
        log.info("screens on http://%s:%d/ (attendant console at /attendant)", cfg.listen,
                 self.port)
        try:
            while not stop.is_set():
                server.handle_request()
        finally:
            self._closing.set()
            server.server_close()
