"""Helpers for the sync tests: a cart running SyncService in a thread on a real SQLite store,
an independent watcher client counting what crosses the broker, config files, waiting.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.clock import TrustedClock
from agent.config import AgentConfig, load, overlay
from agent.contract import CommandError, parse_rfc3339
from agent.runtime.reconfigure import Reconfigure
from agent.store import Store
from agent.sync.desired import Decision, DesiredConfig, Rollback, effective_config
from agent.sync.service import SyncService
from tests.support import offline_config, wait_for

CART = "bc-01"
PREFIX = "carts"

DESIRED = f"{PREFIX}/{CART}/config/desired"
FLEET = f"{PREFIX}/_all/config/desired"
REPORTED = f"{PREFIX}/{CART}/config/reported"
STATUS = f"{PREFIX}/{CART}/status"
CMD = f"{PREFIX}/{CART}/cmd"
RESULT = f"{PREFIX}/{CART}/cmd/result"


def cart_document(data_dir: Path, port: int, extra: dict[str, Any] | None = None,
                  **mqtt_overrides: Any) -> dict[str, Any]:
    doc = offline_config(data_dir.parent, cart_id=CART, data_dir=str(data_dir), mqtt={
        "enabled": True, "host": "127.0.0.1", "port": port, "keepalive": 5,
        "reconnect_min_s": 0.05, "reconnect_max_s": 0.3, "ack_timeout_s": 3.0,
        "telemetry_interval_s": 0.5, **mqtt_overrides})
    return overlay(doc, extra or {})


class Cart:
    """SyncService on a real store, run in a thread as the daemon's supervisor would, with the
    runtime's real config owner (Reconfigure) applying what sync hands over. Rebuilding is
    this harness's: it records each config it runs with and starts a new SyncService when the
    link settings change, as the daemon does; `fail_on_config` makes it fail on DEBUG."""

    def __init__(self, config_path: Path, fail_on_config: bool = False) -> None:
        self.config_path = config_path
        self.fail_on_config = fail_on_config
        file_cfg = load(config_path)
        self.store = Store(file_cfg.db_path, file_cfg.cart_id)
        self.applied: list[AgentConfig] = []
        self.executed: list[tuple[str, dict[str, Any]]] = []
        self.service: SyncService | None = None
        self.cfg: AgentConfig | None = None
        self.reconfigure = Reconfigure(
            DesiredConfig(str(config_path), self.store, file_cfg.cart_id), self)
        self._changes: queue.Queue[Decision | Rollback] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._owner: threading.Thread | None = None
        self.trusted: TrustedClock | None = None  # set before start() to give sync a clock

    def handle(self, name: str, args: dict[str, Any]) -> object:
        self.executed.append((name, args))
        if name == "open_compartment" and args["compartment"] == "Z99":
            raise CommandError("no such compartment: Z99")
        return {"done": name}

    def rebuild(self, old: AgentConfig, new: AgentConfig, restoring: bool = False) -> None:
        if self.fail_on_config and new.log_level == "DEBUG":
            raise RuntimeError("cannot rebuild the devices")
        self.cfg = new
        if not restoring:
            self.applied.append(new)

    def _own(self, stop: threading.Event) -> None:
        """The daemon's main loop, as far as pushed configs go."""
        while not stop.is_set():
            try:
                change = self._changes.get(timeout=0.05)
            except queue.Empty:
                continue
            assert self.cfg is not None
            assert self.service is not None
            settled = self.reconfigure.apply(change, self.cfg)
            service = self.service
            taken = service.settle(settled)
            if settled.config.mqtt != service.link:  # as the daemon does
                taken.wait(2.0)
                self._stop_service()
                self._start_service(settled.config)

    def _start_service(self, cfg: AgentConfig) -> None:
        self.service = SyncService(
            cfg, str(self.config_path), self.store,
            health_snapshot=lambda: {"scanner": {"ok": True, "error": None},
                                     "printer": {"ok": False, "error": "paper out"},
                                     "locker": {"ok": True, "error": None}},
            command_handler=self.handle, hand_over=self._changes.put, started_at=time.time(),
            clock=self.trusted)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,),
                                        name="test-sync", daemon=True)
        self._thread.start()

    def _stop_service(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            assert not self._thread.is_alive(), "sync service did not stop"
            self._thread = None

    def start(self) -> Cart:
        self.cfg = effective_config(str(self.config_path), self.store)
        self._start_service(self.cfg)
        self._owner_stop = threading.Event()
        self._owner = threading.Thread(target=self._own, args=(self._owner_stop,),
                                       name="test-owner", daemon=True)
        self._owner.start()
        return self

    def stop(self) -> None:
        if self._owner is not None:
            self._owner_stop.set()
            self._owner.join(10)
            self._owner = None
        self._stop_service()

    def close(self) -> None:
        self.stop()
        self.store.close()

    def wait_online(self, timeout_s: float = 10.0) -> None:
        wait_for(lambda: self.service is not None and self.service.online(), timeout_s,
                   what="the cart to be online")

    def pending(self) -> int:
        return int(self.store.queue_stats()["pending"])

    def record(self, n: int, type_: str = "ticket.issue") -> list[str]:
        return [self.store.record(type_, {"service": "gov", "number": i}).id for i in range(n)]


class Watcher:
    """An independent MQTT client: subscribes, counts and keeps everything it sees."""

    def __init__(self, port: int, topics: list[str], protocol: int = mqtt.MQTTv5) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_a: self._ready.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if topics:
            self.client.subscribe([(t, 1) for t in topics])
            assert self._ready.wait(5), "watcher could not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def on(self, topic: str) -> list[Any]:
        with self._lock:
            found = [p for t, p, _r in self.messages if t == topic]
        return [json.loads(p) for p in found]

    def wait_for(self, topic: str, predicate: Callable[[Any], bool] = lambda _d: True,
                 timeout_s: float = 10.0) -> Any:
        def find() -> Any:
            return next((d for d in reversed(self.on(topic)) if predicate(d)), None)
        return wait_for(find, timeout_s, what=f"a message on {topic}")

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def push(watcher, topic: str, doc: dict | bytes | str) -> dict:
    """Publish retained and return the first report made after it.

    By time, not by count: the retained report from before may still be on its way to a
    watcher that subscribed a moment ago. The cart reports on connecting, so one is awaited
    first: then nothing made before the push can arrive after it.
    """
    wait_for(lambda: watcher.on(REPORTED), 10, what="the cart's report on connecting")
    time.sleep(0.01)
    sent_at = time.time() - 0.001  # reports carry times truncated to the millisecond
    payload = doc if isinstance(doc, bytes | str) else json.dumps(doc)
    watcher.publish(topic, payload, retain=True)

    def first_after() -> dict | None:
        return next((r for r in watcher.on(REPORTED) if parse_rfc3339(r["at"]) >= sent_at),
                    None)

    return wait_for(first_after, 10, what="a config report")


def send(watcher, payload: dict | bytes | str) -> dict:
    """Publish a command and return the first result published after it."""
    before = len(watcher.on(RESULT))
    watcher.publish(CMD, payload if isinstance(payload, bytes | str) else json.dumps(payload))
    wait_for(lambda: len(watcher.on(RESULT)) > before, 10, what="a command result")
    return watcher.on(RESULT)[before]
