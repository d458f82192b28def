"""The print queue: receipts are queued in the store with their transaction and printed by
this loop. A receipt that could not print stays queued and is printed when the printer is
back; nothing is dropped on a paper-out or an unplugged cable."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from agent.contract import rfc3339
from agent.devices.printer.receipt import Rendered
from agent.devices.protocols import Printer
from agent.flows.context import CartContext
from agent.health import Health
from agent.store import StoreError, Tx

log = logging.getLogger(__name__)


Render = Callable[[str, Tx], Rendered]


class PrintQueue:
    """A supervised service: prints queued jobs oldest first, one at a time."""

    name = "printing"

    def __init__(self, ctx: CartContext, printer: Printer, render: Render,
                 retry_s: float = 5.0) -> None:
        self.ctx = ctx
        self.printer = printer
        self.render = render
        self.retry_s = retry_s
        self.health = Health("printing")
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def queued(self) -> int:
        return int(self.ctx.store.query(
            "SELECT COUNT(*) AS n FROM print_jobs WHERE state = 'queued'")[0]["n"])

    def run(self, stop: threading.Event) -> None:
        self.health.set_ok()
        while not stop.is_set():
            self._wake.clear()
            failed = self.print_pending()
            if stop.is_set():
                return
            self._wake.wait(self.retry_s if failed else 2.0)

    def print_pending(self) -> bool:
        """Print every queued job; returns True if one failed (the rest wait their turn)."""
        jobs = self.ctx.store.query(
            "SELECT id, tx_id, kind FROM print_jobs WHERE state = 'queued' ORDER BY id LIMIT 20")
        for job in jobs:
            tx = self.ctx.store.get_tx(job["tx_id"])
            if tx is None:
                self._finish(job["id"], "failed", "transaction not found")
                continue
            try:
                rendered = self.render(job["kind"], tx)
            except (ValueError, KeyError) as exc:
                log.error("receipt for %s cannot be rendered: %s", tx.id, exc)
                self._finish(job["id"], "failed", f"render: {exc}")
                continue
            try:
                self.printer.print_bytes(rendered.data)
            except Exception as exc:  # noqa: BLE001 - the printer's errors and OSError alike
                self._attempt_failed(job["id"], f"{type(exc).__name__}: {exc}")
                if self.health.set_error(f"printing paused: {exc}"):
                    log.warning("receipt %s stays queued: %s", tx.id, exc)
                return True
            # A receipt that printed with placeholders says so in its job's record.
            note = "; ".join(rendered.notes) or None
            if note:
                log.warning("receipt %s printed with placeholders: %s", tx.id, note)
            self._finish(job["id"], "printed", note)
            if self.health.set_ok():
                log.info("printing resumed")
        return False

    def _finish(self, job_id: int, state: str, error: str | None) -> None:
        try:
            with self.ctx.store.write() as w:
                w.execute("UPDATE print_jobs SET state = ?, last_error = ?, printed_at = ?, "
                          "attempts = attempts + 1 WHERE id = ?",
                          (state, error, rfc3339(self.ctx.clock()), job_id))
        except StoreError:
            log.exception("could not mark print job %s %s", job_id, state)

    def _attempt_failed(self, job_id: int, error: str) -> None:
        try:
            with self.ctx.store.write() as w:
                w.execute("UPDATE print_jobs SET attempts = attempts + 1, last_error = ? "
                          "WHERE id = ?", (error, job_id))
        except StoreError:
            log.exception("could not record print failure for job %s", job_id)
