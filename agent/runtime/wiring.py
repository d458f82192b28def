"""Maps the config onto device objects and the print queue. Only the runtime calls it (the
daemon, and the one-shot cart the maintenance commands build when no daemon runs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.config import AgentConfig
from agent.devices.audio.service import AudioService
from agent.devices.lockboard.locker import DoorEvent
from agent.devices.protocols import Light, Locker, Printer, Scanner
from agent.devices.scanner.lines import ScanEvent
from agent.flows.context import CartContext
from agent.flows.printing import PrintQueue

OnScan = Callable[[ScanEvent], None]
OnDoor = Callable[[DoorEvent], None]


@dataclass
class Devices:
    """The devices the config names; None where it names none."""

    locker: Locker | None = None
    scanner: Scanner | None = None
    printer: Printer | None = None
    light: Light | None = None

    def started_in_order(self) -> list[Locker | Scanner | Printer | Light]:
        """Locker first: the flows' first scan may want a door."""
        return [d for d in (self.locker, self.scanner, self.printer, self.light)
                if d is not None]


def build_locker(cfg: AgentConfig, on_door: OnDoor) -> Locker | None:
    lk = cfg.locker
    if not (lk.enabled and lk.compartments):
        return None
    from agent.devices.lockboard.frames import LockAddress
    from agent.devices.lockboard.locker import LockerService
    from agent.flows.open_outcome import confirm_window_s

    return LockerService(
        port=lk.port, protocol=lk.protocol, baudrate=lk.baudrate, closed_bit=lk.closed_bit,
        addresses=[LockAddress(c.board, c.lock) for c in lk.compartments], on_event=on_door,
        poll_interval_s=lk.poll_interval_s, open_timeout_s=lk.open_timeout_s,
        status_timeout_s=lk.status_timeout_s, left_open_after_s=lk.door_left_open_s,
        command_window_s=confirm_window_s(lk),
    )


def build_scanner(cfg: AgentConfig, on_scan: OnScan) -> Scanner | None:
    sc = cfg.scanner
    if sc.kind == "serial":
        from agent.devices.scanner.serial_scanner import SerialScanner

        return SerialScanner(sc.port, sc.baudrate, on_scan, repeat_window_s=sc.repeat_window_s,
                             idle_timeout_s=sc.idle_timeout_s or None, max_line=sc.max_line)
    if sc.kind == "camera":
        from agent.devices.scanner.camera import CameraScanner

        return CameraScanner(sc.camera, sc.decoder, on_scan, repeat_window_s=sc.repeat_window_s)
    return None


def build_printer(cfg: AgentConfig) -> Printer | None:
    pr = cfg.printer
    if pr.kind == "none":
        return None
    from agent.devices.printer.service import PrinterService
    from agent.flows.receipts import printer_profile

    return PrinterService(
        kind=pr.kind,
        port=pr.port if isinstance(pr.port, str) else None,
        baudrate=pr.baudrate, host=pr.host or None,
        tcp_port=pr.port if isinstance(pr.port, int) else None,
        path=pr.path or None, vendor_id=pr.vendor_id, product_id=pr.product_id,
        profile=printer_profile(pr),
    )


def build_light(cfg: AgentConfig) -> Light | None:
    li = cfg.light
    if li.kind == "none":
        return None
    from agent.devices.light.outputs import CART, FileLights, GpioLights, LightOutputs
    from agent.devices.light.service import LightService

    # A compartment's own light is named by its id; the cart's one light by CART.
    offsets = {**li.lines, **({CART: li.cart_line} if li.cart_line is not None else {})}
    outputs: LightOutputs = (FileLights(li.path) if li.kind == "file"
                             else GpioLights(li.chip, offsets, li.active_low))
    lit = list(li.lines)
    if li.kind == "file" and not li.lines and li.cart_line is None:
        lit = [c.id for c in cfg.locker.compartments]  # a file records a light for each
    return LightService(outputs, {comp: comp for comp in lit},
                        cart_light=li.cart_line is not None,
                        blink_s=li.blink_s, max_blink_s=li.max_blink_s)


def build_audio(cfg: AgentConfig) -> AudioService | None:
    au = cfg.audio
    if au.kind == "none":
        return None
    from agent.devices.audio.outputs import AlsaOutput, FileOutput

    output = FileOutput(au.path, au.keep) if au.kind == "file" else AlsaOutput(au.device)
    return AudioService(output, au.volume, au.queue)


def build_devices(cfg: AgentConfig, on_scan: OnScan, on_door: OnDoor) -> Devices:
    return Devices(build_locker(cfg, on_door), build_scanner(cfg, on_scan), build_printer(cfg),
                   build_light(cfg))


def build_print_queue(cfg: AgentConfig, ctx: CartContext, printer: Printer | None
                      ) -> PrintQueue | None:
    if printer is None:
        return None
    from agent.flows.receipts import ReceiptRenderer

    return PrintQueue(ctx, printer, ReceiptRenderer(cfg).render)
