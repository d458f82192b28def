"""A full disk under the running daemon, and devices that vanish, return, babble or lag."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.admin.control_client import call
from agent.devices.lockboard.frames import LockAddress
from tests.faults.harness import REPO, FaultCart
from tests.support import Mounted, can_mount, fill_disk, wait_for


class Answers:
    def __init__(self, data_dir: Path) -> None:
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._listen, args=(data_dir,), daemon=True).start()
        wait_for(lambda: self.events, 20, what="feedback stream")

    def _listen(self, data_dir: Path) -> None:
        # The daemon may still be opening its control socket (a busy machine): try again
        # until the stream is open, then follow it to its end.
        deadline = time.monotonic() + 10
        while True:
            try:
                for reply in call(str(data_dir), {"op": "feedback_stream"}, timeout_s=600):
                    self.events.append(reply.get("feedback") or {"kind": "hello"})
                return
            except OSError:
                if self.events or time.monotonic() > deadline:
                    return
                time.sleep(0.1)

    def after_scan(self, cart: FaultCart, code: str) -> dict[str, Any]:
        before = len(self.events)
        cart.sim.scanner.scan(code)
        wait_for(lambda: len(self.events) > before, what="an answer")
        return self.events[before]


def status(cart: FaultCart) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "agent", "status", "--json", "-c",
                          str(cart.config)], cwd=REPO, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not can_mount(), reason="a small tmpfs for data_dir needs root to mount")
def test_full_disk_refuses_cleanly_and_recovers(tmp_path: Path) -> None:
    mount = Mounted(tmp_path / "small", size="3m")
    cart = FaultCart(tmp_path, None, data_dir=mount.path / "data")
    try:
        cart.start()
        answers = Answers(cart.data_dir)
        for _ in range(5):
            assert answers.after_scan(cart, cart.issuer.token("ticket", service="gov"))[
                "kind"] == "accepted"
        filler = mount.path / "filler"
        fill_disk(filler)  # to the last byte
        committed = cart.query("SELECT id, seq FROM transactions ORDER BY seq")
        refused = None
        for _ in range(40):   # the WAL may still hold some free pages; then it is full
            answer = answers.after_scan(cart, cart.issuer.token("ticket", service="gov"))
            if answer["kind"] == "refused":
                refused = answer
                break
        assert refused is not None
        assert refused["reason"] == "storage_full", refused
        assert "存储空间已满" in refused["zh"]
        assert cart.proc is not None
        assert cart.proc.poll() is None
        wait_for(lambda: status(cart)["devices"] and not status(cart)["services"].get(
            "storage", {"ok": True})["ok"], timeout_s=15, what="status to report storage")
        filler.unlink()
        wait_for(lambda: answers.after_scan(cart, cart.issuer.token(
            "ticket", service="bills"))["kind"] == "accepted", timeout_s=20,
            what="scans accepted once space returns")
        after = cart.query("SELECT id, seq FROM transactions ORDER BY seq")
        assert after[: len(committed)] == committed            # nothing committed was lost
        assert [s for _, s in after] == list(range(1, len(after) + 1))
        assert cart.query("PRAGMA integrity_check") == [("ok",)]
        assert cart.stop() == 0
    finally:
        cart.close()
        mount.close()


def test_devices_vanish_return_babble_and_lag(tmp_path: Path) -> None:
    cart = FaultCart(tmp_path, None)
    try:
        cart.start()
        answers = Answers(cart.data_dir)
        meal = lambda: cart.issuer.token("meal", order="M", items=["粥"], compartment="A03")  # noqa: E731
        assert answers.after_scan(cart, meal())["kind"] == "accepted"
        # the scanner and the lock bus are unplugged, then come back: no restart needed
        cart.sim.scanner.unplug()
        cart.sim.locker.unplug()
        wait_for(lambda: not status(cart)["devices"]["locker"]["ok"], timeout_s=15,
                 what="locker reported unhealthy")
        time.sleep(0.5)
        cart.sim.scanner.replug()
        cart.sim.locker.replug()
        wait_for(lambda: all(d["ok"] for d in status(cart)["devices"].values()),
                 timeout_s=30, what="devices healthy again")
        cart.sim.close_door("A03")
        assert answers.after_scan(cart, meal())["kind"] == "accepted"
        # garbage on the lock bus and a slow board: the open still happens exactly once
        cart.sim.locker.inject_garbage(b"\x8a\x01\xff\x00garbage\x80")
        cart.sim.locker.set_reply_delay(0.3)
        before = cart.sim.opens("A03")
        assert answers.after_scan(cart, meal())["kind"] == "accepted"
        assert cart.sim.opens("A03") == before + 1
        cart.sim.locker.set_reply_delay(0.0)
        # the scanner babbles invalid bytes: each is refused, the agent keeps serving
        cart.sim.scanner.send(b"\xff\xfe\xfd\r\n\x00\x01\x02\r\n")
        wait_for(lambda: len(cart.query("SELECT 1 FROM transactions WHERE type = "
                                        "'scan.rejected'")) >= 2, what="garbage refused")
        # the printer runs out of paper: receipts wait in the queue, then print
        cart.sim.printer.set_paper_out(True)
        assert answers.after_scan(cart, cart.issuer.token("ticket", service="gov"))[
            "kind"] == "accepted"
        time.sleep(1.0)
        queued = cart.query("SELECT COUNT(*) FROM print_jobs WHERE state = 'queued'")[0][0]
        assert queued >= 1
        cart.sim.printer.set_paper_out(False)
        wait_for(lambda: cart.query("SELECT COUNT(*) FROM print_jobs WHERE state = 'queued'")
                 == [(0,)], timeout_s=30, what="queued receipts printed after paper refill")
        assert cart.sim.locker.open_count(LockAddress(1, 3)) == cart.sim.opens("A03")
        assert cart.stop() == 0
    finally:
        cart.close()
