"""Maps the config onto device objects. Only the daemon and the maintenance commands call it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.config import AgentConfig
from agent.flows.context import CartContext
from agent.flows.printing import PrintQueue

ScanCallback = Callable[[str | None, str | None, float], None]


def build_locker(cfg: AgentConfig, on_door: Callable[[Any], None]) -> Any:
    from agent.devices.lockboard.frames import LockAddress
    from agent.devices.lockboard.locker import LockerService
    from agent.flows.open_outcome import confirm_window_s

    lk = cfg.locker
    return LockerService(
        port=lk.port, protocol=lk.protocol, baudrate=lk.baudrate, closed_bit=lk.closed_bit,
        addresses=[LockAddress(c.board, c.lock) for c in lk.compartments], on_event=on_door,
        poll_interval_s=lk.poll_interval_s, open_timeout_s=lk.open_timeout_s,
        status_timeout_s=lk.status_timeout_s, left_open_after_s=lk.door_left_open_s,
        command_window_s=confirm_window_s(lk),
    )


def build_scanner(cfg: AgentConfig, on_scan: ScanCallback) -> Any:
    sc = cfg.scanner

    def deliver(event: Any) -> None:
        on_scan(event.text, event.error, event.mono)

    if sc.kind == "serial":
        from agent.devices.scanner.serial_scanner import SerialScanner

        return SerialScanner(sc.port, sc.baudrate, deliver, repeat_window_s=sc.repeat_window_s,
                             idle_timeout_s=sc.idle_timeout_s or None, max_line=sc.max_line)
    if sc.kind == "camera":
        from agent.devices.scanner.camera import CameraScanner

        return CameraScanner(sc.camera, sc.decoder, deliver, repeat_window_s=sc.repeat_window_s)
    return None


def build_printer(cfg: AgentConfig) -> Any:
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


def build_devices(cfg: AgentConfig, on_scan: ScanCallback,
                  on_door: Callable[[Any], None]) -> dict[str, Any]:
    devices: dict[str, Any] = {}
    if cfg.locker.enabled and cfg.locker.compartments:
        devices["locker"] = build_locker(cfg, on_door)
    scanner = build_scanner(cfg, on_scan)
    if scanner is not None:
        devices["scanner"] = scanner
    printer = build_printer(cfg)
    if printer is not None:
        devices["printer"] = printer
    return devices


def build_print_queue(cfg: AgentConfig, ctx: CartContext, printer: Any) -> PrintQueue | None:
    if printer is None:
        return None
    from agent.flows.receipts import ReceiptRenderer

    return PrintQueue(ctx, printer, ReceiptRenderer(cfg).render)
