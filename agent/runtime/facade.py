"""The one object the runtime hands to the screens, the control socket and the fleet's commands:
it implements the ports (agent/ports.py) over the running daemon, so none of them needs to
know how the cart is put together or that its parts are rebuilt when a config is pushed."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, Protocol

from agent.clock import TrustedClock
from agent.config import AgentConfig
from agent.devices.audio.service import AudioService
from agent.flows.actions import ActionError, Actions
from agent.flows.announce import Announcer
from agent.flows.cart import Cart
from agent.flows.compartments import Compartment
from agent.flows.feedback import FeedbackBus
from agent.flows.read_model import StoreReadModel
from agent.health import Health
from agent.runtime.supervisor import Supervisor
from agent.runtime.wiring import Devices
from agent.store import Store, Tx
from agent.sync.service import SyncService
from agent.update.job import JobError, parse
from agent.update.updater import Updater
from agent.web.auth import reset_lockout

DEVICES = ("scanner", "printer", "locker", "audio", "light")


class Running(Protocol):
    """The daemon's parts as they are now (agent/runtime/daemon.py); rebuilt on a push."""

    cfg: AgentConfig
    store: Store
    clock: Callable[[], float]
    trusted: TrustedClock
    feedback: FeedbackBus
    scan_tap: FeedbackBus
    supervisor: Supervisor
    storage: Health
    cart: Cart | None
    actions: Actions | None
    devices: Devices
    sync: SyncService | None
    announcer: Announcer | None
    audio: AudioService | None
    updater: Updater


class CartFacade:
    """CartActions, ReadModel, HealthView, ConfigView and Feeds of one running daemon."""

    def __init__(self, daemon: Running) -> None:
        self._d = daemon
        self._read = StoreReadModel(daemon.store, lambda: daemon.cfg, daemon.clock,
                                    self._deposit_active)

    # --- ConfigView and Feeds ----------------------------------------------------------

    @property
    def config(self) -> AgentConfig:
        return self._d.cfg

    @property
    def feedback(self) -> FeedbackBus:
        return self._d.feedback

    @property
    def scans(self) -> FeedbackBus:
        return self._d.scan_tap

    # --- CartActions -------------------------------------------------------------------

    def _actions(self) -> Actions:
        actions = self._d.actions
        if actions is None:
            raise ActionError("the cart is starting; try again")
        return actions

    def open_compartment(self, compartment: object, reason: object, by: str,
                         source: str) -> dict[str, Any]:
        return self._actions().open_compartment(compartment, reason, by=by, source=source)

    def set_out_of_service(self, on: object, by: str, compartment: object = None,
                           reason: object = None) -> dict[str, Any]:
        return self._actions().set_out_of_service(on, by=by, compartment=compartment,
                                                  reason=reason)

    def reprint(self, tx_id: object, by: str) -> dict[str, Any]:
        return self._actions().reprint(tx_id, by=by)

    def revoke_token(self, jti: object, source: str) -> dict[str, Any]:
        return self._actions().revoke_token(jti, source=source)

    def deposit_mode(self, on: bool, attendant: str) -> dict[str, Any]:
        return self._actions().deposit_mode(on, attendant)

    def print_report(self, day: str | None, by: str) -> dict[str, Any]:
        return self._actions().print_report(day, by=by)

    def print_test(self) -> None:
        from agent.devices.printer.service import PrinterError
        from agent.flows.receipts import test_receipt_bytes

        printer = self._d.devices.printer
        if printer is None:
            raise ActionError("no printer configured")
        try:
            printer.print_bytes(test_receipt_bytes(self._d.cfg))
        except (PrinterError, OSError) as exc:
            raise ActionError(f"{type(exc).__name__}: {exc}") from None

    def test_audio(self, by: str) -> dict[str, Any]:
        announcer = self._d.announcer
        if announcer is None:
            raise ActionError("no speaker configured (audio.kind = \"none\")")
        languages = announcer.test_prompt()
        audio = self._d.audio
        problem = None if audio is None or audio.health.ok else audio.health.error
        return {"languages": languages, "problem": problem}

    def reset_lockout(self, by: str) -> dict[str, Any]:
        return dict(reset_lockout(self._d.store, by))

    def request_update(self, args: dict[str, Any], cmd_id: str | None = None
                       ) -> dict[str, Any]:
        try:
            return self._d.updater.accept(parse(args, cmd_id))
        except JobError as exc:
            raise ActionError(str(exc)) from None

    # --- ReadModel -----------------------------------------------------------------------

    def _deposit_active(self) -> bool:
        cart = self._d.cart
        return bool(cart is not None and cart.scans.deposit.active)

    def queue_stats(self) -> dict[str, Any]:
        return self._read.queue_stats()

    def last_sync_at(self) -> str | None:
        return self._read.last_sync_at()

    def out_of_service(self) -> bool:
        return self._read.out_of_service()

    def compartments(self) -> list[Compartment]:
        return self._read.compartments()

    def recent(self, types: Collection[str], limit: int) -> list[Tx]:
        return self._read.recent(types, limit)

    def config_versions(self) -> dict[str, int | None]:
        return self._read.config_versions()

    def print_queue(self) -> int:
        return self._read.print_queue()

    def day_report(self, day: str | None = None) -> dict[str, Any]:
        return self._read.day_report(day)

    def deposit_active(self) -> bool:
        return self._deposit_active()

    # --- HealthView ----------------------------------------------------------------------

    def devices(self) -> dict[str, dict[str, Any]]:
        health = self._d.supervisor.health()
        out: dict[str, dict[str, Any]] = {}
        for name in DEVICES:
            snap = health.get(name)
            if snap is None:
                out[name] = {"ok": True, "error": None} if self._not_configured(name) else {
                    "ok": False, "error": "not running"}
            else:
                out[name] = {"ok": bool(snap["ok"]), "error": snap["error"]}
        return out

    def _not_configured(self, name: str) -> bool:
        cfg = self._d.cfg
        return {"scanner": cfg.scanner.kind == "none", "printer": cfg.printer.kind == "none",
                "locker": not (cfg.locker.enabled and cfg.locker.compartments),
                "audio": cfg.audio.kind == "none", "light": cfg.light.kind == "none"}[name]

    def services(self) -> dict[str, dict[str, object]]:
        health = self._d.supervisor.health()
        health["storage"] = self._d.storage.snapshot()
        return health

    def clock(self) -> dict[str, Any]:
        return self._d.trusted.state().detail()

    def sync(self) -> dict[str, object] | None:
        sync = self._d.sync
        return None if sync is None else sync.health.snapshot()

    def online(self) -> bool:
        sync = self._d.sync
        return bool(sync is not None and sync.online())

    def doors(self) -> tuple[dict[str, bool | None], dict[str, object]]:
        locker = self._d.devices.locker
        if locker is None:
            return {}, {}
        states = locker.door_states()
        return ({f"{a.board}:{a.lock}": s for a, s in states.items()},
                locker.health.snapshot())
