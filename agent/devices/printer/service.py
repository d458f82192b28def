"""The receipt printer as a supervised service: one owner of the transport, thread-safe printing.

`print_bytes` raises a PrinterError saying why whenever a receipt may not have come out, so
the caller (the flows' print queue in the store) keeps it for a reprint: nothing is lost
silently. Status is asked before and after every receipt where the transport can read.

A printer that does not answer status requests is in an unknown state. Many cheap printers
never answer; those print "blind". But a printer that *has* answered on this service and then
falls silent is most likely switched off (a serial line swallows bytes without an error), so
from then on silence is treated as offline. `require_status` overrides that learning.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from agent.devices.printer.receipt import PrinterProfile, Receipt, render_receipt
from agent.devices.printer.status import (
    STATUS_REQUESTS,
    UNKNOWN,
    PrinterStatus,
    parse_status,
    status_request,
)
from agent.devices.printer.transport import Transport, TransportError, make_transport
from agent.health import Health

log = logging.getLogger(__name__)

_CHUNK = 1024  # bytes per write: a vanished printer is noticed within a chunk


class PrinterError(Exception):
    """A receipt did not print, or may not have printed completely (`partial`)."""

    def __init__(self, reason: str, status: PrinterStatus | None = None,
                 partial: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.partial = partial  # some bytes reached the printer: a reprint may duplicate lines


class PrinterOffline(PrinterError):
    """Unreachable, switched off, cover open, or reporting itself offline."""


class PaperOut(PrinterError):
    pass


class PrinterService:
    """`kind` is serial (port, baudrate), network (host, tcp_port, default 9100), file (path,
    e.g. /dev/usb/lp0) or usb (vendor_id, product_id; needs pyusb). `profile` is what receipts
    for this printer are rendered with (`print_receipt` uses it)."""

    name = "printer"

    def __init__(
        self,
        kind: str,
        port: str | None = None,
        baudrate: int = 9600,
        host: str | None = None,
        tcp_port: int | None = None,
        path: str | None = None,
        vendor_id: int | None = None,
        product_id: int | None = None,
        profile: PrinterProfile | None = None,
        status_timeout_s: float = 0.5,
        poll_interval_s: float = 5.0,
        require_status: bool | None = None,
    ) -> None:
        self.profile = profile or PrinterProfile()
        self.status_timeout_s = status_timeout_s
        self.poll_interval_s = poll_interval_s
        self.require_status = require_status
        self._transport: Transport = make_transport(
            kind, port, baudrate, host, tcp_port, path, vendor_id, product_id)
        self._open = False
        self._has_answered = False
        self._lock = threading.Lock()
        self.health = Health(self.name)
        self.last_status: PrinterStatus = UNKNOWN

    # -- supervised loop -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        try:
            with self._lock:
                self._ensure_open()
                status = self._query()
            self._note(status)
            while not stop.wait(self.poll_interval_s):
                # A receipt in progress holds the lock; its own status checks stand in.
                if not self._lock.acquire(timeout=self.poll_interval_s):
                    continue
                try:
                    self._ensure_open()
                    status = self._query()
                finally:
                    self._lock.release()
                self._note(status)
        finally:
            # A TransportError (an OSError) goes up to the supervisor, which logs it without a
            # traceback and calls run again; that run, or a print, reopens the port by path.
            with self._lock:
                self._close()

    # -- public API, called from other threads ---------------------------------------------

    def query_status(self) -> PrinterStatus:
        """Ask the printer now. Raises PrinterOffline when it cannot be reached at all."""
        with self._lock:
            try:
                self._ensure_open()
                status = self._query()
            except TransportError as exc:
                self._close()
                raise PrinterOffline(f"printer unreachable: {exc}") from exc
        self._note(status)
        return status

    def print_bytes(self, data: bytes, timeout_s: float = 10) -> None:
        """Send one rendered receipt, or raise PrinterError saying why it did not print."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise PrinterError(f"printer busy for {timeout_s} s")
        try:
            self._print_locked(data, deadline)
        finally:
            self._lock.release()

    def print_receipt(self, receipt: Receipt, timeout_s: float = 10) -> bytes:
        """Render with this printer's profile and print; returns the bytes sent."""
        data = render_receipt(receipt, self.profile)
        self.print_bytes(data, timeout_s)
        return data

    def close(self) -> None:
        """Release the port (one-shot use such as `cart-agent print-test`; `run` does it too)."""
        with self._lock:
            self._close()

    # -- internals (caller holds the lock) ---------------------------------------------------

    def _print_locked(self, data: bytes, deadline: float) -> None:
        try:
            self._ensure_open()
            before = self._query()
        except TransportError as exc:
            self._close()
            self._fail(f"printer unreachable: {exc}")
            raise PrinterOffline(f"printer unreachable: {exc}") from exc
        self._note(before)
        self._raise_for(before, partial=False)

        sent = 0  # bytes whose write completed
        attempted = False  # a failed write may still have delivered part of its chunk
        try:
            for start in range(0, len(data), _CHUNK):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransportError("print timed out")
                attempted = True
                # Whole seconds: a serial port reconfigures itself on every timeout change.
                self._transport.write(data[start : start + _CHUNK], float(math.ceil(remaining)))
                sent = min(len(data), start + _CHUNK)
            if not before.known and not self._must_answer():
                return  # a printer that never answers: asking again only adds a timeout
            self._transport.drain(max(0.0, deadline - time.monotonic()))
            after = self._query()
        except TransportError as exc:
            self._close()
            reason = f"printer lost after {sent} of {len(data)} bytes: {exc}"
            self._fail(reason)
            raise PrinterError(reason, partial=attempted) from exc
        self._note(after)
        # Bytes that reach a printer which then reports a problem may not have come out.
        self._raise_for(after, partial=True)

    def _ensure_open(self) -> None:
        if not self._open:
            self._transport.open()
            self._open = True
            log.info("printer %s open", self._transport.description)

    def _close(self) -> None:
        if self._open:
            self._transport.close()
            self._open = False

    def _query(self) -> PrinterStatus:
        if not self._transport.can_read:
            return PrinterStatus("unknown", reason=f"{self._transport.description} cannot read")
        self._transport.discard_input()
        answers: dict[int, bytes | None] = {}
        for n in STATUS_REQUESTS:
            self._transport.write(status_request(n), self.status_timeout_s)
            answers[n] = self._transport.read(16, self.status_timeout_s)
            if not answers[n] and n == STATUS_REQUESTS[0]:
                break  # silent: do not wait out the other two timeouts as well
        status = parse_status(answers)
        if status.known:
            self._has_answered = True
        return status

    def _must_answer(self) -> bool:
        if not self._transport.can_read:
            return False
        return self._has_answered if self.require_status is None else self.require_status

    def _raise_for(self, status: PrinterStatus, partial: bool) -> None:
        when = " while printing" if partial else ""
        if status.state == "paper_out":
            raise PaperOut(f"printer out of paper{when}", status, partial)
        if status.state in ("cover_open", "offline", "error"):
            raise PrinterOffline(f"printer {status.state.replace('_', ' ')}{when}", status,
                                 partial)
        if status.state == "unknown" and self._must_answer():
            raise PrinterOffline(f"printer stopped answering status requests{when} "
                                 f"(switched off?): {status.reason}", status, partial)

    def _note(self, status: PrinterStatus) -> None:
        """Health from a status: problems are unhealthy; unknown is ok unless it should answer."""
        self.last_status = status
        if status.can_print:
            changed = self.health.set_ok(status=status.state, status_reason=None)
        elif status.state == "unknown" and not self._must_answer():
            changed = self.health.set_ok(status="unknown", status_reason=status.reason)
        else:
            reason = "not answering" if status.state == "unknown" else status.state
            changed = self.health.set_error(reason.replace("_", " "), status=status.state,
                                            status_reason=status.reason)
        if changed:
            log.info("printer status: %s%s", status.state,
                     f" ({status.reason})" if status.reason else "")

    def _fail(self, reason: str) -> None:
        if self.health.set_error(reason, status="unknown"):
            log.warning("%s", reason)
