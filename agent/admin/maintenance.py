"""Maintenance commands: through the running daemon's control socket when there is one, else
on a cart built for the one command (agent.ports.LocalCart, from the runtime), so two
processes never share one bus and a door opens the same way whoever asks."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import sys
import threading
from collections.abc import Iterator
from typing import Any

from agent.admin.control_client import call
from agent.config import AgentConfig, CompartmentConfig
from agent.devices.protocols import Scanner
from agent.devices.scanner.lines import ScanEvent
from agent.flows.actions import ActionError
from agent.ports import LocalCart
from agent.store import StoreError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
SCANNER_STOP_S = 10.0  # a camera's blocking read gives up within ~1 s


def _daemon(cfg: AgentConfig, request: dict[str, Any]) -> list[dict[str, Any]] | None:
    try:
        return list(call(cfg.data_dir, request))
    except ConnectionError:
        return None


def _fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"cart-agent: {message}", file=sys.stderr)
    return code


def status(cfg: AgentConfig, as_json: bool) -> int:
    """Prints what is known; exit 1 when the store is missing or unreadable (what is known is
    still printed, and the reason goes to stderr)."""
    from agent.admin.status import render_text, safe_collect

    report, problem = safe_collect(cfg)
    print(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render_text(report))
    if problem:
        return _fail(problem)
    return EXIT_OK


def _compartment(cfg: AgentConfig, comp_id: str) -> CompartmentConfig | None:
    for comp in cfg.locker.compartments:
        if comp.id == comp_id:
            return comp
    return None


def locker_status(cfg: AgentConfig, comp_id: str | None) -> int:
    comps = list(cfg.locker.compartments)
    if comp_id is not None:
        comp = _compartment(cfg, comp_id)
        if comp is None:
            return _fail(f"no compartment {comp_id!r} in the config", EXIT_USAGE)
        comps = [comp]
    if not comps:
        return _fail("no compartments configured", EXIT_USAGE)
    replies = _daemon(cfg, {"op": "locker_status"})
    doors: dict[str, bool | None] = {}
    errors: dict[int, str] = {}
    if replies is not None:
        doors = replies[0].get("doors", {}) if replies else {}
    else:
        from agent.devices.lockboard.bus import LockBus
        from agent.devices.lockboard.frames import LockBoardError

        lk = cfg.locker
        try:
            with LockBus(lk.port, lk.protocol, lk.baudrate, lk.closed_bit,
                         lk.open_timeout_s, lk.status_timeout_s) as bus:
                for board in sorted({c.board for c in comps}):
                    try:
                        for lock, is_closed in bus.read_board(board).items():
                            doors[f"{board}:{lock}"] = is_closed
                    except LockBoardError as exc:
                        errors[board] = str(exc)
        except (LockBoardError, OSError) as exc:
            return _fail(f"locker: {exc}")
    failed = False
    for comp in comps:
        closed = doors.get(f"{comp.board}:{comp.lock}")
        if comp.board in errors:
            state, failed = f"unknown ({errors[comp.board]})", True
        else:
            state = {True: "closed", False: "OPEN", None: "unknown"}[closed]
        print(f"{comp.id:6} board {comp.board:3} lock {comp.lock:2}  {comp.size}  door {state}")
    return EXIT_FAIL if failed and len(errors) == len({c.board for c in comps}) else EXIT_OK


def locker_open(cfg: AgentConfig, comp_id: str, reason: str, local: LocalCart) -> int:
    comp = _compartment(cfg, comp_id)
    if comp is None:
        return _fail(f"no compartment {comp_id!r} in the config", EXIT_USAGE)
    replies = _daemon(cfg, {"op": "locker_open", "compartment": comp_id, "reason": reason})
    if replies is not None:
        reply: dict[str, Any] = replies[0] if replies else {
            "ok": False, "error": "no answer from the agent"}
        if not reply.get("ok"):
            return _fail(str(reply.get("error")))
        result = reply["result"]
        if result.get("outcome") == "unknown":
            return _fail(f"{comp_id}: no answer from the lock board; not sent again, the agent "
                         f"is watching the door (recorded as {result['tx_id']})")
        print(f"{comp_id} opened (recorded as {result['tx_id']})")
        return EXIT_OK
    try:
        with _logs_silenced():
            result = local.open_compartment(comp_id, reason, by=_caller())
    except ActionError as exc:
        return _fail(str(exc))
    except StoreError as exc:
        return _fail(f"cannot record the opening, nothing opened: {exc}")
    except OSError as exc:  # the lock bus could not be opened: nothing was recorded or sent
        return _fail(str(exc) if str(exc).startswith("locker") else f"locker: {exc}")
    if result.get("outcome") != "released":
        return _fail(f"{comp_id}: not confirmed open (no answer from the lock board and the "
                     f"door was not seen open; recorded as {result['tx_id']}); check the door")
    print(f"{comp_id} opened (recorded as {result['tx_id']})")
    return EXIT_OK


def _caller() -> str:
    """Who opened it, as the control socket would name them: the user running the command."""
    uid = os.getuid()
    try:
        return f"uid:{uid} ({pwd.getpwuid(uid).pw_name})"
    except KeyError:
        return f"uid:{uid}"


def print_test(cfg: AgentConfig, local: LocalCart) -> int:
    if cfg.printer.kind == "none":
        return _fail("no printer configured", EXIT_USAGE)
    replies = _daemon(cfg, {"op": "print_test"})
    if replies is not None:
        reply = replies[0] if replies else {"ok": False, "error": "no answer from the agent"}
        if not reply.get("ok"):
            return _fail(f"print-test: {reply.get('error')}")
        print("test receipt printed")
        return EXIT_OK
    try:
        with _logs_silenced():
            local.print_test()
    except ActionError as exc:
        return _fail(f"print-test: {exc}")
    print("test receipt printed")
    return EXIT_OK


@contextlib.contextmanager
def _logs_silenced() -> Iterator[None]:
    """A one-shot command reports the device's error itself, once, on stderr. The device and
    flow code also log it for the daemon's journal; with no handler set up here, Python's
    last-resort handler would print that record as well: the same error twice. A NullHandler
    counts as a handler (records still reach any handler a caller set up on the root logger)."""
    devices = logging.getLogger("agent")
    quiet = logging.NullHandler()
    devices.addHandler(quiet)
    try:
        yield
    finally:
        devices.removeHandler(quiet)


def scan_test(cfg: AgentConfig, count: int, local: LocalCart) -> int:
    if cfg.scanner.kind == "none":
        return _fail("no scanner configured", EXIT_USAGE)
    try:
        replies = call(cfg.data_dir, {"op": "scan_stream", "count": count}, timeout_s=3600)
        first = next(replies)
    except ConnectionError:
        return _scan_direct(local, count)
    if not first.get("ok"):
        return _fail(str(first.get("error")))
    for reply in replies:
        _print_scan(reply.get("scan"), reply.get("error"))
    return EXIT_OK


def _print_scan(text: str | None, error: str | None) -> None:
    print(f"! {error}" if error else text, flush=True)


def _scan_direct(local: LocalCart, count: int) -> int:
    seen = 0
    done = threading.Event()

    def on_scan(scan: ScanEvent) -> None:
        nonlocal seen
        _print_scan(scan.text, scan.error)
        seen += 1
        if count and seen >= count:
            done.set()

    scanner = local.scanner(on_scan)
    if scanner is None:
        return _fail("no scanner configured", EXIT_USAGE)
    health = scanner.health
    worker = threading.Thread(target=_run_until, args=(scanner, done), daemon=True)
    worker.start()
    try:
        while not done.wait(0.2):
            if not worker.is_alive():
                return _fail(f"scanner: {health.error}")
    finally:
        # The scanner's thread must end (and a camera be released) before the process does:
        # exiting under a running OpenCV capture aborts the process.
        done.set()
        worker.join(SCANNER_STOP_S)
    return EXIT_OK


def _run_until(scanner: Scanner, done: threading.Event) -> None:
    try:
        scanner.run(done)
    except Exception as exc:  # noqa: BLE001 - reported by the caller through the scanner's health
        # A device error already says which device and why; anything else gets its type.
        scanner.health.set_error(str(exc) if isinstance(exc, OSError)
                                 else f"{type(exc).__name__}: {exc}")
