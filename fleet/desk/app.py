"""`cart-fleet desk`: the composition root. Opens the database and migrates the desk's tables,
starts the live watcher (QoS 0, fleet-wide) and the transactions follower in their own
threads, and serves the pages with waitress.

Each long-lived part is a supervised loop: the watcher reconnects by itself (paho), the
follower and the live writer log once when the database fails and retry; the pages answer
503 while the database is away. Nothing here runs at import time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from bottle import Bottle

from agent.web.guard import with_security_headers
from fleet.client import BrokerOptions, FleetError
from fleet.desk import forms, pages
from fleet.desk.db import Database, DeskDbError
from fleet.desk.follow import Follower
from fleet.desk.live import LiveFleet
from fleet.desk.schema import migrate
from fleet.desk.web import DeskContext, Refusal, refused_page
from fleet.operations import Signer
from fleet.watch import FleetWatcher

log = logging.getLogger("fleet.desk")


@dataclass
class DeskSettings:
    db_url: str
    host: str = "127.0.0.1"
    port: int = 8780
    broker: BrokerOptions = field(default_factory=BrokerOptions)
    signer: Signer | None = None
    timezone: str = "Asia/Shanghai"
    offline_alarm_s: float = 600.0
    table: str = "cart_transactions"
    threads: int = 6
    trusted_proxy: str | None = None  # a TLS proxy in front: believe its X-Forwarded-Proto


def build_app(ctx: DeskContext) -> Any:
    app = Bottle(catchall=True)

    def errors(callback: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return callback(*args, **kwargs)
            except Refusal as exc:
                return refused_page(ctx, exc)
            except DeskDbError as exc:
                log.error("desk: %s", exc)
                return refused_page(ctx, Refusal(503, "数据库暂时无法访问，请稍后再试",
                                                 "The database is unreachable; try again"))
            except FleetError as exc:
                return refused_page(ctx, Refusal(503, "无法连接消息服务器，未执行",
                                                 f"The broker is unreachable ({exc}); "
                                                 "nothing was done"))
        return wrapper

    app.install(errors)
    pages.install(app, ctx)
    forms.install(app, ctx)

    @app.error(404)
    def not_found(_error: Any) -> Any:
        return refused_page(ctx, Refusal(404, "页面不存在", "No such page")).body

    @app.error(405)
    def not_allowed(_error: Any) -> Any:
        return refused_page(ctx, Refusal(405, "请求方式不对", "Method not allowed")).body

    return with_security_headers(app, log)


class Desk:
    def __init__(self, settings: DeskSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.db = Database(settings.db_url, size=settings.threads + 3)
        self.live = LiveFleet(self.db, settings.offline_alarm_s, settings.broker.prefix, clock)
        self.follower = Follower(self.db, settings.table, self.tz)
        self.ctx = DeskContext(self.db, settings.broker, settings.signer, self.tz,
                               settings.table, clock)
        self.app = build_app(self.ctx)
        self.watcher: FleetWatcher | None = None
        self.server: Any = None
        self.port: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> Desk:
        migrate(self.db)
        self.live.load()
        self._spawn("desk-live", self.live.run)
        self._spawn("desk-follow", self.follower.run)
        self._spawn("desk-watch", self._watch)
        from waitress.server import create_server

        proxy: dict[str, Any] = {}
        if self.settings.trusted_proxy:
            proxy = {"trusted_proxy": self.settings.trusted_proxy,
                     "trusted_proxy_headers": {"x-forwarded-proto"}}
        self.server = create_server(self.app, host=self.settings.host, port=self.settings.port,
                                    threads=self.settings.threads, ident="cart-fleet-desk",
                                    clear_untrusted_proxy_headers=True, **proxy)
        self.port = int(self.server.effective_port)
        self._spawn("desk-http", lambda _stop: self.server.run())
        log.info("desk on http://%s:%d/", self.settings.host, self.port)
        return self

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _watch(self, stop: threading.Event) -> None:
        """Keep the fleet-wide subscription up; paho reconnects once it was made."""
        p = self.settings.broker.prefix
        topics = [f"{p}/+/status", f"{p}/+/telemetry", f"{p}/+/config/reported",
                  f"{p}/+/config/desired", f"{p}/+/cmd/result"]
        delay = 1.0
        while not stop.is_set():
            watcher = FleetWatcher(self.settings.broker, topics, self.live.on_message)
            try:
                watcher.start()
            except FleetError as exc:
                log.warning("desk: broker unreachable (%s); retrying in %.0f s", exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 30.0)
                continue
            log.info("desk: watching %s/+ on %s:%d", p, self.settings.broker.host,
                     self.settings.broker.port)
            self.watcher = watcher
            stop.wait()
            watcher.close()
            return

    def stop(self) -> None:
        self._stop.set()
        server, self.server = self.server, None
        if server is not None:
            _stop_waitress(server)
        for thread in self._threads:
            thread.join(10)
        self._threads.clear()
        self.db.close()

    def serve_forever(self, stop: threading.Event) -> None:
        while not stop.wait(1.0):
            if not all(t.is_alive() for t in self._threads):
                raise RuntimeError("a desk thread died; see the log")




def _stop_waitress(server: Any) -> None:
    """Stop a waitress server run in a thread: no new connections, let the requests in
    progress finish, then close what is left from inside its loop (the loop ends when
    nothing is left). The trigger is closed last, once no worker can pull it any more."""
    from waitress import wasyncore

    def stop_listening() -> None:
        wasyncore.dispatcher.close(server)  # the listening socket only, not the trigger

    def close_all() -> None:
        for channel in list(server._map.values()):
            with contextlib.suppress(OSError):
                channel.close()

    server.trigger.pull_trigger(stop_listening)
    server.task_dispatcher.shutdown(timeout=5)
    server.trigger.pull_trigger(close_all)
