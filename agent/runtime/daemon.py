"""The composition root: builds every service from the config, supervises them, and runs the
main loop (signals, systemd watchdog, health snapshots, retention, pushed configs).

Concurrency model: threads. Each device, the flow loop, the print queue, sync, the screens
and the control socket are supervised loops in their own threads; they talk through queues
(scans and door events go to the one flow thread). The main thread only supervises, and
applies pushed configs (agent/runtime/reconfigure.py), so one thread owns the running config.
This is the only place that builds the cart's objects and starts their threads; the screens,
the control socket and the fleet's commands get the ports of one CartFacade.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from agent import __version__
from agent.admin.control_socket import ControlSocket
from agent.admin.remote_commands import run_command
from agent.backoff import Backoff
from agent.clock import TrustedClock
from agent.clock import evidence as clock_evidence
from agent.config import AgentConfig
from agent.devices.audio.service import AudioService
from agent.devices.lockboard.locker import DoorEvent
from agent.devices.scanner.lines import ScanEvent
from agent.flows.actions import Actions
from agent.flows.announce import Announcer
from agent.flows.cart import Cart
from agent.flows.compartments import Compartments
from agent.flows.context import CartContext
from agent.flows.feedback import Feedback, FeedbackBus
from agent.health import Health
from agent.runtime import logs
from agent.runtime.clock_watch import ClockWatch
from agent.runtime.facade import CartFacade
from agent.runtime.reconfigure import Reconfigure
from agent.runtime.supervisor import Supervisor
from agent.runtime.systemd import Notifier
from agent.runtime.updates import build_updater
from agent.runtime.wiring import Devices, build_audio, build_devices, build_print_queue
from agent.store import Store, StoreError
from agent.sync.desired import Decision, DesiredConfig, Rollback
from agent.sync.service import SyncService

log = logging.getLogger("agent.daemon")

# Which services a pushed config section rebuilds.
FLOW_KEYS = {"locker", "scanner", "printer", "security", "ticket_services", "deposit_timeout_s",
             "timezone", "light"}
FLOW_SERVICES = ("scanner", "locker", "printing", "printer", "light", "flows")
AUDIO_KEYS = {"audio", "timezone"}
SETTLE_S = 2.0  # for sync to report an outcome on its old connection before it is replaced


class Daemon:
    def __init__(self, cfg: AgentConfig, config_path: str, store: Store,
                 notifier: Notifier | None = None, clock: Callable[[], float] = time.time) -> None:
        self.cfg = cfg
        self.config_path = config_path
        self.store = store
        self.notifier = notifier or Notifier()
        # Every decision and record is dated by the trusted clock (agent/clock): `clock` is
        # only its wall clock. Its durable evidence is read before anything is dated.
        self.trusted = TrustedClock(cfg.clock.max_skew_s, wall=clock,
                                    persist=clock_evidence.keeper(store, StoreError))
        clock_evidence.load(self.trusted, store)
        store.use_clock(self.trusted)
        self.clock: Callable[[], float] = self.trusted
        self.clock_watch = ClockWatch(self.trusted, store)
        self.started_at = self.trusted()
        self.supervisor = Supervisor(Backoff(initial_s=0.5, maximum_s=30.0))
        self.feedback = FeedbackBus()
        self.scan_tap = FeedbackBus(keep=10)  # raw scans, for `cart-agent scan-test`
        self.stop_event = threading.Event()
        self._changes: queue.Queue[Decision | Rollback] = queue.Queue()
        self.cart: Cart | None = None
        self.actions: Actions | None = None
        self.devices = Devices()
        self.sync: SyncService | None = None
        self.audio: AudioService | None = None
        self.announcer: Announcer | None = None
        self.feedback.listen(self._announce)
        self.storage = Health("storage")
        self.facade = CartFacade(self)
        self.reconfigure = Reconfigure(DesiredConfig(config_path, store, cfg.cart_id,
                                                     self.trusted),
                                       self)
        self.serving = False  # READY said: the update's health gate waits for it
        self.updater = build_updater(self, self.facade, self.facade)

    # --- building -------------------------------------------------------------------------

    def start_flows(self) -> None:
        cfg = self.cfg
        devices = build_devices(cfg, on_scan=self._on_scan, on_door=self._on_door)
        self.devices = devices
        ctx = CartContext(cfg=cfg, store=self.store, locker=devices.locker,
                          feedback=self.feedback, clock=self.clock, trusted=self.trusted,
                          light=devices.light)
        self.cart = Cart(ctx)
        self.actions = Actions(self.cart)
        self.supervisor.start(self.cart)
        printing = build_print_queue(cfg, ctx, devices.printer)
        if printing is not None:
            ctx.wake_printer = printing.wake
            self.supervisor.start(printing)
        for device in devices.started_in_order():
            self.supervisor.start(device)

    def stop_flows(self) -> None:
        for name in FLOW_SERVICES:
            self.supervisor.stop_service(name)

    def start_audio(self) -> None:
        """The speaker and what it says; rebuilt alone when [audio] changes."""
        self.audio = build_audio(self.cfg)
        if self.audio is None:
            self.announcer = None
            return
        self.announcer = Announcer(self.cfg.audio, self.cfg.tz, self.audio.play, self.clock)
        self.supervisor.start(self.audio)

    def stop_audio(self) -> None:
        self.announcer = None
        self.supervisor.stop_service("audio")

    def _announce(self, event: Feedback) -> None:
        announcer = self.announcer
        if announcer is not None:
            announcer.feedback(event)

    def _on_scan(self, scan: ScanEvent) -> None:
        announcer = self.announcer
        if announcer is not None:  # before anything is decided: the resident hears it read
            announcer.scan_read()
        self.scan_tap.publish(Feedback(kind="scan", zh=scan.text or "", en="",
                                       reason=scan.error))
        if self.cart is not None:
            self.cart.scan(scan)

    def _on_door(self, event: DoorEvent) -> None:
        if self.cart is not None:
            self.cart.door(event)

    def start_sync(self) -> None:
        if not self.cfg.mqtt.enabled:
            return
        self.sync = SyncService(self.cfg, self.config_path, self.store,
                                health_snapshot=self.facade.devices,
                                command_handler=self.handle_command,
                                hand_over=self._changes.put, started_at=self.started_at,
                                clock=self.trusted)
        self.supervisor.start(self.sync)

    def start_web(self) -> None:
        from agent.web.auth import Lockout
        from agent.web.server import WebService

        f = self.facade
        self.supervisor.start(WebService(f, f, f, f, f, Lockout(self.store, clock=self.clock)))

    def start_extras(self) -> None:
        f = self.facade
        self.supervisor.start(ControlSocket(self.cfg.data_dir, f, f, f, f))
        if self.cfg.web.enabled:
            self.start_web()
        self.supervisor.start(self.updater)

    def restart(self, reason: str) -> None:
        """Stop cleanly; the service manager starts whatever `releases/current` is now."""
        log.info("restarting: %s", reason)
        self.stop_event.set()

    def announce(self) -> None:
        if self.sync is not None:
            self.sync.announce()

    def handle_command(self, name: str, args: dict[str, Any]) -> object:
        return run_command(self.facade, name, args)

    # --- a pushed config ----------------------------------------------------------------

    def rebuild(self, old: AgentConfig, new: AgentConfig, restoring: bool = False) -> None:
        """Run with `new`, rebuilding the services whose settings changed (Rebuildable). Sync
        is not among them: it is told the outcome first, then replaced (`_settle`)."""
        before, after = old.model_dump(), new.model_dump()
        changed = {key for key in after if after[key] != before.get(key)}
        if changed & FLOW_KEYS:
            self._put_compartments(new, strict=not restoring)
        self.cfg = new
        self.trusted.skew_s = float(new.clock.max_skew_s)
        if "log_level" in changed:
            logs.set_level(new.log_level)
        if changed & FLOW_KEYS:
            log.info("config change in %s: rebuilding devices and flows", sorted(changed))
            self.stop_flows()
            self.start_flows()
        if changed & AUDIO_KEYS:
            log.info("config change in audio: restarting the speaker")
            self.stop_audio()
            self.start_audio()
        if "web" in changed:
            log.info("config change in web: restarting the screens")
            self.supervisor.stop_service("web")
            if new.web.enabled:
                self.start_web()

    def _put_compartments(self, cfg: AgentConfig, strict: bool) -> None:
        """The store's compartments as the config lists them; first, so that a store that
        cannot take it fails the change before any service was stopped."""
        try:
            Compartments(self.store).sync_from_config(list(cfg.locker.compartments))
        except StoreError as exc:
            if strict:
                raise
            log.error("compartments not brought back in line with the config: %s", exc)

    def _settle(self, change: Decision | Rollback) -> None:
        settled = self.reconfigure.apply(change, self.cfg)
        sync = self.sync
        if sync is None:
            return
        taken = sync.settle(settled)
        if settled.config.mqtt != sync.link:
            # New link settings: the outcome is reported where the push came from, then a
            # new service connects with them (on probation: rolled back if it cannot).
            taken.wait(SETTLE_S)
            log.info("config change in mqtt: reconnecting")
            self.supervisor.stop_service("sync")
            self.start_sync()

    # --- the main loop ------------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        Compartments(self.store).sync_from_config(list(self.cfg.locker.compartments))
        self.start_flows()
        self.start_audio()
        self.start_sync()
        self.start_extras()
        self.notifier.ready(f"cart {self.cfg.cart_id} serving")
        self.serving = True
        log.info("cart-agent %s serving as cart %s", __version__, self.cfg.cart_id)
        tick = min(1.0, self.notifier.watchdog_interval_s or 1.0)
        next_health = next_prune = 0.0
        while True:
            try:
                change = self._changes.get(timeout=tick)
            except queue.Empty:
                change = None
            if self.stop_event.is_set():
                break
            self.notifier.watchdog()
            if change is not None:
                self._settle(change)
            now = time.monotonic()
            if now >= next_health:
                next_health = now + 5.0
                self.clock_watch.tick(now)
                self._snapshot(self.clock())
            if now >= next_prune:
                next_prune = now + 3600.0
                self._prune()
        return self.shutdown()

    def _snapshot(self, now: float) -> None:
        # Writing the snapshot doubles as the storage probe: a full disk shows here even
        # when no scan is coming in.
        health = self.facade.services()
        try:
            self.store.set_meta("health", json.dumps({"at": now, "services": health},
                                                     default=str))
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
