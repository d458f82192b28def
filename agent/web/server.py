"""The screens' web server: a supervised service serving the bottle app with waitress.

waitress multiplexes every connection on one poll loop and runs requests on a fixed pool of
threads, so connections cost a file descriptor each, never a thread: an attack run's 300
slow-loris connections and 300 event streams once exhausted the 1024 descriptors with the
stdlib's thread-per-connection server (and took the control socket down with them). Bounds
here: connection_limit() sockets (beyond it waitress stops accepting until timeouts free some),
HEADER_S to send a whole request, IDLE_S between requests, MAX_STREAMS event streams of
STREAM_MAX_S each.

It listens on 127.0.0.1 by default: the kiosk browser runs on the cart itself.
"""

from __future__ import annotations

import logging
import resource
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from agent.health import Health
from agent.ports import CartActions, ConfigView, Feeds, HealthView, ReadModel
from agent.web.auth import Lockout, Sessions
from agent.web.guard import WSGIApp, with_security_headers
from agent.web.views import WebContext, build_app

log = logging.getLogger("agent.web")

SESSION_IDLE_S = 15 * 60
POLL_S = 0.25          # how often the poll loop looks at the stop flag
THREADS = 12           # request workers
MAX_STREAMS = 6        # resident screens at once (a cart has one or two); the rest for pages
STREAM_MAX_S = 300.0   # then the stream ends and the browser reconnects (retry: 2000)
MAX_CONNECTIONS = 1000  # sockets, and never more than half the descriptor limit (below)
HEADER_S = 5.0         # to send a whole request
IDLE_S = 15            # between requests on a kept-alive connection
STREAM_PATH = "/events"


class _CartServer(TcpWSGIServer):  # type: ignore[misc]  # waitress ships no types
    """waitress's server with the defence it lacks: a client that has not sent a whole
    request within HEADER_S is dropped (slow loris; waitress itself only drops a connection
    idle for channel_timeout, which a client trickling one byte at a time never is)."""

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.request is None:
                channel.partial_since = None
                continue
            since = getattr(channel, "partial_since", None)
            if since is None:
                channel.partial_since = now
            elif now - since > HEADER_S:
                channel.will_close = True


def connection_limit() -> int:
    """Sockets the screens may hold: half the process's descriptor limit at most, so the
    devices, the store, the broker link and the control socket always have theirs."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(16, min(MAX_CONNECTIONS, soft // 2 - 64))


class StreamLimit:
    """At most `slots` event streams at once, each at most `max_s` long (the browser's
    EventSource reconnects by itself): a stream holds a worker thread, and the pages need
    the rest. Beyond it, 503 at once. `on_count` hears how many are open after each change
    (a resident screen holds one for as long as it is shown: `cart-agent doctor` asks)."""

    def __init__(self, app: WSGIApp, slots: int, max_s: float,
                 clock: Callable[[], float] = time.monotonic,
                 on_count: Callable[[int], None] = lambda _n: None) -> None:
        self.app = app
        self.slots = threading.BoundedSemaphore(slots)
        self.max_s = max_s
        self.clock = clock
        self.on_count = on_count
        self.open = 0
        self._count_lock = threading.Lock()

    def _count(self, delta: int) -> None:
        with self._count_lock:
            self.open += delta
            self.on_count(self.open)

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != STREAM_PATH:
            return self.app(environ, start_response)
        if not self.slots.acquire(blocking=False):
            start_response("503 Service Unavailable", [  # and the socket is freed now
                ("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", "5"),
                ("Connection", "close")])
            return [b"too many screens open; try again shortly\n"]
        try:
            inner = self.app(environ, start_response)
        except BaseException:
            self.slots.release()
            raise
        return self._bounded(inner)

    def _bounded(self, inner: Iterable[bytes]) -> Iterator[bytes]:
        deadline = self.clock() + self.max_s
        self._count(+1)
        try:
            for chunk in inner:
                yield chunk
                if self.clock() >= deadline:
                    break
        finally:
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            self._count(-1)
            self.slots.release()


class WebService:
    """`run(stop)` binds cfg.web.listen:cfg.web.port and serves until stop; `port` is the port
    really bound (the config may say 0 in tests)."""

    name = "web"

    def __init__(self, actions: CartActions, read: ReadModel, health: HealthView,
                 config: ConfigView, feeds: Feeds, lockout: Lockout) -> None:
        self.config = config
        self.health = Health("web")
        self.port: int | None = None
        self.sessions = Sessions(idle_s=SESSION_IDLE_S)
        self.lockout = lockout
        self._closing = threading.Event()
        self.app = StreamLimit(with_security_headers(build_app(WebContext(
            actions, read, health, config, feeds, self.sessions, lockout,
            stopping=self._closing.is_set)), log), slots=MAX_STREAMS, max_s=STREAM_MAX_S,
            on_count=self._screens)

    def _screens(self, count: int) -> None:
        if self.health.ok:
            self.health.set_ok(resident_screens=count)

    def run(self, stop: threading.Event) -> None:
        cfg = self.config.config.web
        adj = Adjustments(host=cfg.listen, port=cfg.port, threads=THREADS,
                          connection_limit=connection_limit(), channel_timeout=IDLE_S,
                          cleanup_interval=1, asyncore_use_poll=True, ident="cart-agent",
                          expose_tracebacks=False, log_socket_errors=False)
        socket_map: dict[int, Any] = {}
        dispatcher = ThreadedTaskDispatcher()
        try:
            server = _CartServer(self.app, socket_map, dispatcher=dispatcher, adj=adj,
                                 sockinfo=adj.listen[0])
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {cfg.listen}:{cfg.port}: "
                                     f"{exc.strerror}") from None
        dispatcher.set_thread_count(THREADS)
        self._closing.clear()
        self.port = int(server.effective_port)
        self.health.set_ok(listen=cfg.listen, port=self.port, resident_screens=self.app.open)
        log.info("screens on http://%s:%d/ (attendant console at /attendant)", cfg.listen,
                 self.port)
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=POLL_S, map=socket_map, use_poll=True, count=1)
        finally:
            self._closing.set()  # event streams end within their next wait
            dispatcher.shutdown(timeout=2)
            wasyncore.close_all(socket_map)
