"""Each configured device: its node (there, right group) and whether it answers.

With the agent running, "answers" is the agent's own health of the device (it holds the
port; a second open would compete for the bytes). Without it, the doctor opens the device
with the same drivers the agent uses: the scanner port is opened and read, the printer asked
its real-time status (DLE EOT), every lock board asked for its doors.
"""

from __future__ import annotations

from typing import Any

import serial

from agent.admin.doctor.context import Context
from agent.admin.doctor.device_paths import (
    CAMERA_GROUP,
    SERIAL_GROUP,
    USB_PRINTER_GROUP,
    node_problem,
)
from agent.admin.doctor.report import Check, fail, ok, skip
from agent.admin.doctor.sound import sound_checks
from agent.config import AgentConfig
from agent.devices.errors import cannot_open

ANSWER_S = 0.2  # how long the scanner port is read: it only speaks when a code is shown


def device_checks(ctx: Context) -> list[Check]:
    return [scanner(ctx), printer(ctx), *locker(ctx), *sound_checks(ctx)]


def _from_agent(ctx: Context, name: str, what: str, fix: str) -> Check:
    snap = ctx.service(name) or {"ok": False, "error": "not started by the agent"}
    if snap.get("ok"):
        return ok(name, f"{what}; answers (the running agent's view)")
    return fail(name, f"{what}; the agent reports: {snap.get('error')}", fix)


def scanner(ctx: Context) -> Check:
    sc = ctx.cfg.scanner
    if sc.kind == "none":
        return skip("scanner", "not configured (scanner.kind = \"none\")")
    fix = "check the cable and the scanner's USB-serial mode; journalctl -u cart-agent"
    if sc.kind == "camera":
        if isinstance(sc.camera, str) and sc.camera.startswith("/dev/"):
            problem = node_problem(sc.camera, CAMERA_GROUP)
            if problem:
                return fail("scanner", *problem)
        if ctx.running:
            return _from_agent(ctx, "scanner", f"camera {sc.camera}", fix)
        return skip("scanner", f"camera {sc.camera}: not opened without the agent "
                    "(cart-agent scan-test reads it)")
    problem = node_problem(sc.port, SERIAL_GROUP)
    if problem:
        return fail("scanner", *problem)
    if ctx.running:
        return _from_agent(ctx, "scanner", sc.port, fix)
    try:
        with serial.Serial(sc.port, sc.baudrate, timeout=ANSWER_S) as port:
            port.read(64)
    except (serial.SerialException, OSError, ValueError) as exc:
        return fail("scanner", cannot_open(sc.port, exc), fix)
    return ok("scanner", f"{sc.port} readable")


def _printer_service(cfg: AgentConfig) -> Any:
    from agent.devices.printer.service import PrinterService

    pr = cfg.printer
    return PrinterService(
        kind=pr.kind, port=pr.port if isinstance(pr.port, str) else None,
        baudrate=pr.baudrate, host=pr.host or None,
        tcp_port=pr.port if isinstance(pr.port, int) else None, path=pr.path or None,
        vendor_id=pr.vendor_id, product_id=pr.product_id)


def printer(ctx: Context) -> Check:
    pr = ctx.cfg.printer
    if pr.kind == "none":
        return skip("printer", "not configured (printer.kind = \"none\")")
    where = {"serial": str(pr.port), "file": pr.path, "network": f"{pr.host}:{pr.port}",
             "usb": f"usb {pr.vendor_id or 0:04x}:{pr.product_id or 0:04x}"}[pr.kind]
    node = {"serial": (str(pr.port), SERIAL_GROUP), "file": (pr.path, USB_PRINTER_GROUP)}
    if pr.kind in node:
        problem = node_problem(*node[pr.kind])
        if problem:
            return fail("printer", *problem)
    fix = "switch the printer on, load paper, close the cover; cart-agent print-test"
    if ctx.running:
        return _from_agent(ctx, "printer", where, fix)
    from agent.devices.printer.service import PrinterError

    service = _printer_service(ctx.cfg)
    try:
        status = service.query_status()
    except PrinterError as exc:
        return fail("printer", f"{where}: {exc}", fix)
    finally:
        service.close()
    if status.can_print:
        return ok("printer", f"{where} answers: {status.state.replace('_', ' ')}")
    if status.state == "unknown" and pr.kind in ("file", "usb"):
        return ok("printer", f"{where} opened (its status cannot be read this way)")
    return fail("printer", f"{where}: {status.state.replace('_', ' ')}"
                + (f" ({status.reason})" if status.reason else ""), fix)


def locker(ctx: Context) -> list[Check]:
    lk = ctx.cfg.locker
    if not lk.enabled or not lk.compartments:
        return [skip("locker", "not configured (no compartments)")]
    boards = sorted({c.board for c in lk.compartments})
    problem = node_problem(lk.port, SERIAL_GROUP)
    if problem:
        return [fail("locker", *problem)] + [
            skip(f"lock board {b}", "not asked (the bus failed)") for b in boards]
    head = ok("locker", f"{lk.port} ({lk.protocol}, {len(boards)} boards)")
    fix = ("check the board's power, its address switches and the RS485 wiring (A/B); "
           "cart-agent locker status")
    if ctx.running:
        snap = ctx.service("locker") or {}
        seen = {str(k): v for k, v in (snap.get("boards") or {}).items()}
        out = [head]
        for b in boards:
            h = seen.get(str(b))
            if h and h.get("ok"):
                out.append(ok(f"lock board {b}", "answers (the running agent's view)"))
            else:
                why = h.get("error") if h else snap.get("error") or "not polled"
                out.append(fail(f"lock board {b}", f"the agent reports: {why}", fix))
        return out
    return [head, *_boards_direct(ctx.cfg, boards, fix)]


def _boards_direct(cfg: AgentConfig, boards: list[int], fix: str) -> list[Check]:
    from agent.devices.lockboard.bus import LockBus
    from agent.devices.lockboard.frames import LockBoardError

    lk = cfg.locker
    out = []
    try:
        with LockBus(lk.port, lk.protocol, lk.baudrate, lk.closed_bit, lk.open_timeout_s,
                     lk.status_timeout_s) as bus:
            for b in boards:
                try:
                    doors = bus.read_board(b)
                except LockBoardError as exc:
                    out.append(fail(f"lock board {b}", str(exc), fix))
                    continue
                closed = sum(1 for v in doors.values() if v)
                out.append(ok(f"lock board {b}", f"answers ({closed} of {len(doors)} "
                                                 "locks closed)"))
    except (LockBoardError, OSError) as exc:
        return [fail(f"lock board {b}", f"bus: {exc}", fix) for b in boards]
    return out
