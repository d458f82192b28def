"""The composition root: builds every service from the config, supervises them, and runs the
main loop (signals, systemd watchdog, health snapshots, retention).

Concurrency model: threads. Each device, the flow loop, the print queue, sync, the screens
and the control socket are supervised loops in their own threads; they talk through queues
(scans and door events go to the one flow thread). The main thread only supervises.
"""

from __future__ import annotations

import logging
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.config import AgentConfig
from agent.flows.actions import Actions
from agent.flows.cart import Cart
from agent.flows.context import CartContext
from agent.flows.feedback import Feedback, FeedbackBus
from agent.health import Health
from agent.services import build_devices, build_print_queue
from agent.status import write_health
from agent.store import Store, StoreError
from agent.supervisor import Backoff, Supervisor
from agent.systemd import Notifier

log = logging.getLogger("agent.daemon")

# Which services a pushed config section rebuilds.
FLOW_KEYS = {"locker", "scanner", "printer", "security", "ticket_services", "deposit_timeout_s",
             "timezone"}


class Daemon:
    def __init__(self, cfg: AgentConfig, config_path: str, store: Store,
                 notifier: Notifier | None = None, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.store = store
        self.notifier = notifier or Notifier()
        self.clock = clock
        self.started_at = clock()
        self.supervisor = Supervisor(Backoff(initial_s=0.5, maximum_s=30.0))
        self.feedback = FeedbackBus()
        self.scan_tap = FeedbackBus(keep=10)  # raw scans, for `cart-agent scan-test`
        self.stop_event = threading.Event()
        self._pending_configs: queue.Queue[AgentConfig] = queue.Queue()
        self.cart: Cart | None = None
        self.actions: Actions | None = None
        self.devices: dict[str, Any] = {}
        self.sync: Any = None
        self.storage = Health("storage")

    # --- building -------------------------------------------------------------------------

    def start_flows(self) -> None:
        cfg = self.cfg
        devices = build_devices(cfg, on_scan=self._on_scan, on_door=self._on_door)
        self.devices = devices
        ctx = CartContext(cfg=cfg, store=self.store, locker=devices.get("locker"),
                          feedback=self.feedback, clock=self.clock)
        ctx.compartments.sync_from_config(list(cfg.locker.compartments))
        self.cart = Cart(ctx)
        self.actions = Actions(self.cart)
        self.supervisor.start(self.cart)
        printing = build_print_queue(cfg, ctx, devices.get("printer"))
        if printing is not None:
            ctx.wake_printer = printing.wake
            self.devices["printing"] = printing
            self.supervisor.start(printing)
        for name in ("locker", "scanner", "printer"):
            if name in devices:
                self.supervisor.start(devices[name])

    def stop_flows(self) -> None:
        for name in ("scanner", "locker", "printing", "printer", "flows"):
            self.supervisor.stop_service(name)

    def _on_scan(self, text: str | None, error: str | None, mono: float) -> None:
        self.scan_tap.publish(Feedback(kind="scan", zh=text or "", en="", reason=error))
        if self.cart is not None:
            self.cart.scan(text, error, mono)

    def _on_door(self, event: Any) -> None:
        if self.cart is not None:
            self.cart.door(event)

    def start_sync(self) -> None:
        if not self.cfg.mqtt.enabled:
            return
        from agent.sync.service import SyncService

        self.sync = SyncService(self.cfg, self.config_path, self.store,
                                health_snapshot=self.device_health,
                                command_handler=self.handle_command,
                                on_config=self._on_config, started_at=self.started_at)
        self.supervisor.start(self.sync)

    def start_extras(self) -> None:
        from agent.control import ControlSocket

        self.supervisor.start(ControlSocket(self))
        if self.cfg.web.enabled:
            from agent.web.server import WebService

            self.supervisor.start(WebService(self))

    # --- what other parts ask of the daemon ---------------------------------------------

    def device_health(self) -> dict[str, dict[str, Any]]:
        health = self.supervisor.health()
        out: dict[str, dict[str, Any]] = {}
        for name in ("scanner", "printer", "locker"):
            snap = health.get(name)
            if snap is None:
                out[name] = {"ok": True, "error": None} if self._not_configured(name) else {
                    "ok": False, "error": "not running"}
            else:
                out[name] = {"ok": bool(snap["ok"]), "error": snap["error"]}
        return out

    def _not_configured(self, name: str) -> bool:
        cfg = self.cfg
        return {"scanner": cfg.scanner.kind == "none", "printer": cfg.printer.kind == "none",
                "locker": not (cfg.locker.enabled and cfg.locker.compartments)}[name]

    def handle_command(self, name: str, args: dict[str, Any]) -> object:
        from agent.commands import run_command

        return run_command(self, name, args)

    def _on_config(self, new_cfg: AgentConfig) -> None:
        # Called from the sync thread: the rebuild happens on the main thread.
        self._pending_configs.put(new_cfg)

    def apply_config(self, new_cfg: AgentConfig) -> None:
        old = self.cfg.model_dump()
        new = new_cfg.model_dump()
        changed = {key for key in new if new[key] != old.get(key)}
        self.cfg = new_cfg
        if changed & FLOW_KEYS:
            log.info("config change in %s: rebuilding devices and flows", sorted(changed))
            self.stop_flows()
            self.start_flows()
        if "web" in changed and self.cfg.web.enabled:
            log.info("config change in web: restarting the screens")
            self.supervisor.stop_service("web")
            from agent.web.server import WebService

            self.supervisor.start(WebService(self))
        elif "web" in changed:
            self.supervisor.stop_service("web")
        if "mqtt" in changed and self.sync is not None:
            log.info("config change in mqtt: reconnecting")
            self.supervisor.stop_service("sync")
            self.start_sync()

    # --- the main loop ------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        self.start_flows()
        self.start_sync()
        self.start_extras()
        self.notifier.ready(f"cart {self.cfg.cart_id} serving")
        log.info("cart-agent %s serving as cart %s", __version__, self.cfg.cart_id)
        tick = min(1.0, self.notifier.watchdog_interval_s or 1.0)
        next_health = next_prune = 0.0
        while not self.stop_event.wait(tick):
            self.notifier.watchdog()
            now = self.clock()
            try:
                cfg = self._pending_configs.get_nowait()
            except queue.Empty:
                pass
            else:
                self.apply_config(cfg)
            if now >= next_health:
                next_health = now + 5.0
                self._snapshot(now)
            if now >= next_prune:
                next_prune = now + 3600.0
                self._prune()
        return self.shutdown()

    def service_health(self) -> dict[str, dict[str, Any]]:
        health = self.supervisor.health()
        health["storage"] = self.storage.snapshot()
        return health

    def _snapshot(self, now: float) -> None:
        # Writing the snapshot doubles as the storage probe: a full disk shows here even
        # when no scan is coming in.
        health = self.service_health()
        try:
            write_health(self.store, health, now)
            self.storage.set_ok(disk_free_mb=self.disk_free_mb())
        except StoreError as exc:
            if self.storage.set_error(str(exc)):
                log.error("storage problem: %s", exc)

    def disk_free_mb(self) -> int:
        return shutil.disk_usage(self.cfg.data_dir).free // (1024 * 1024)

    def _prune(self) -> None:
        try:
            removed = self.store.prune(self.cfg.retention_days)
            if removed:
                log.info("pruned %d synced transactions older than %d days", removed,
                         self.cfg.retention_days)
        except StoreError as exc:
            log.error("retention prune failed: %s", exc)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_event.set())

    def shutdown(self) -> int:
        log.info("stopping")
        self.notifier.stopping()
        self.supervisor.stop(timeout_s=3.0)
        try:
            self.store.set_meta("health", None)
        except StoreError as exc:
            log.error("could not clear the health snapshot: %s", exc)
        self.store.close()
        return 0
